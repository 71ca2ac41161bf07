"""The dense query without the conversation's speakers' names, on every backend: a question naming a participant
("What instruments does Melanie play?") is embedded without that name, so that the turns that only name or address
her stop crowding the vector ranking; a name is taken for a speaker only from turns the searcher may read, and a
name that opens no readable turn (a topic) stays in the embedded text."""

from __future__ import annotations

import memcubed
from memcubed.engines.text import TextConfig
from memcubed.schemas.ops import SearchResult

STRIP = TextConfig(strip_speakers="replace")
QUESTION = "What instruments does Melanie play?"


def _line(result: SearchResult) -> str:
    return next((line for line in result.explanation if line.startswith("dense:")), "")


def _chat(who: memcubed.Memcubed) -> str:
    """A two-person chat in which Melanie is named and addressed often; one of her turns answers QUESTION."""
    for text in ("Caroline: Melanie, that's so great to hear!", "Caroline: Thanks, Melanie, you are the best",
                 "Caroline: Melanie, how are the kids doing?", "Melanie: the kids are fine, thanks Caroline",
                 "Caroline: wow Melanie, what a lovely photo"):
        who.add(text, source={"type": "conversation", "uri": "chat:1"})
    return who.add("Melanie: I play the clarinet and the violin most evenings",
                   source={"type": "conversation", "uri": "chat:1"}).id


def _vector_scores(result: SearchResult, signal: str = "vector") -> dict[str, float]:
    return {hit.cube.id: round(hit.signals[signal].score, 6) for hit in result.hits if signal in hit.signals}


def _dense(mc: memcubed.Memcubed, text: str) -> dict[str, float]:
    return _vector_scores(mc.search(text, k=10, mode="vector"))


def test_a_speakers_name_is_left_out_of_the_dense_query(mc: memcubed.Memcubed) -> None:
    _chat(mc)
    mc.kernel.text.config = TextConfig()  # the control: the whole question is embedded
    plain = mc.search(QUESTION, k=10)
    assert _line(plain) == "" and _vector_scores(plain) == _dense(mc, QUESTION)
    mc.kernel.text.config = STRIP
    stripped = mc.search(QUESTION, k=10)
    assert _line(stripped) == "dense: embedded without the speakers' names Melanie"
    without = _dense(mc, "What instruments does play?")
    assert _vector_scores(stripped) == without != _dense(mc, QUESTION)
    assert not any("topic" in hit.signals for hit in stripped.hits)
    # ``add``: the whole question's ranking stays, the one without the name is fused beside it as ``topic``.
    mc.kernel.text.config = TextConfig(strip_speakers="add")
    both = mc.search(QUESTION, k=10)
    assert _line(both) == "dense: embedded without the speakers' names Melanie"
    assert _vector_scores(both) == _dense(mc, QUESTION) and _vector_scores(both, "topic") == without
    # Single-signal modes are left as they are.
    vector = mc.search(QUESTION, k=10, mode="vector")
    assert _line(vector) == "" and _vector_scores(vector) == _dense(mc, QUESTION)


def test_a_name_no_readable_turn_opens_with_stays(mc: memcubed.Memcubed) -> None:
    alice, bob = mc.as_principal("alice"), mc.as_principal("bob")
    alice.add("user: Rachel got married in June, a lovely wedding", source={"type": "conversation", "uri": "c:1"})
    alice.add("user: we talked about the wedding cake", source={"type": "conversation", "uri": "c:1"})
    secret = bob.add("Rachel: my own wedding notes, married in June", source={"type": "conversation", "uri": "c:2"})
    alice.kernel.text.config = STRIP
    question = "When did Rachel get married?"
    kept = alice.search(question, k=10)
    assert _line(kept) == "" and secret.id not in {h.cube.id for h in kept.hits}
    alice.kernel.text.config = TextConfig(strip_speakers="add")
    assert not any("topic" in h.signals for h in alice.search(question, k=10).hits)
    # Bob's unreadable turn neither shows nor changes Alice's ranking: the same as with the stage off.
    alice.kernel.text.config = TextConfig()
    assert [(h.cube.id, h.score) for h in alice.search(question, k=10).hits] == [
        (h.cube.id, h.score) for h in kept.hits]
    bob.share(secret.id, "alice")  # the positive control: once readable, Rachel opens a turn, so is a speaker
    alice.kernel.text.config = STRIP
    assert _line(alice.search(question, k=10)) == "dense: embedded without the speakers' names Rachel"


def _signalled(result: SearchResult, *signals: str) -> set[str]:
    return {hit.cube.id for hit in result.hits if any(s in hit.signals for s in signals)}


def test_the_topic_view_can_rescore_the_pool_or_keep_the_speakers_own_turns(mc: memcubed.Memcubed) -> None:
    clarinet = _chat(mc)
    for i in range(12):  # turns that name or address Melanie crowd the whole question's first-stage lists
        mc.add(f"Caroline: Melanie, day {i} was great, Melanie!", source={"type": "conversation", "uri": "chat:1"})
    for text in ("Caroline: my brother keeps a drum kit and two guitars in the garage",
                 "Caroline: I wish I could play an instrument, maybe the piano"):
        mc.add(text, source={"type": "conversation", "uri": "chat:1"})
    narrow = TextConfig(candidates=10, vector_candidates=10)  # first-stage lists shorter than the chat
    mc.kernel.text.config = narrow.model_copy(update={"strip_speakers": "add"})
    added = mc.search(QUESTION, k=10)
    topic, pool = _signalled(added, "topic"), _signalled(added, "lexical", "vector")
    assert topic - pool  # the control: ``add`` brings candidates of its own
    mc.kernel.text.config = narrow.model_copy(update={"strip_speakers": "pool"})
    pooled = mc.search(QUESTION, k=10)
    assert _signalled(pooled, "topic") <= _signalled(pooled, "lexical", "vector")
    assert not (_signalled(pooled, "topic") & (topic - pool))
    # ``own``: only Melanie's turns carry the topic signal; ``add`` gave it to Caroline's as well.
    melanies = {h.cube.id for h in added.hits if (h.cube.text or "").startswith("Melanie:")}
    assert topic - melanies
    mc.kernel.text.config = narrow.model_copy(update={"strip_speakers": "own"})
    owned = mc.search(QUESTION, k=10)
    assert clarinet in _signalled(owned, "topic")
    assert all((h.cube.text or "").startswith("Melanie:") for h in owned.hits if "topic" in h.signals)
    assert _line(owned) == "dense: embedded without the speakers' names Melanie"


def test_the_speakers_own_view_skips_a_turn_whose_derivation_is_unreadable(mc: memcubed.Memcubed) -> None:
    alice, bob = mc.as_principal("alice"), mc.as_principal("bob")
    _chat(alice)
    theirs = bob.add("Melanie: my instruments: I play the clarinet", source={"type": "conversation", "uri": "b:1"})
    bob.share(theirs.id, "alice")
    fact = alice.add("Melanie: my instruments: I play the clarinet", derived_from=[{"id": theirs.id, "version": 1}],
                     source={"type": "conversation", "uri": "chat:2"})
    bob.revoke(theirs.id, "alice")
    alice.kernel.text.config = TextConfig(strip_speakers="own")
    result = alice.search(QUESTION, k=10)
    assert fact.id not in {h.cube.id for h in result.hits}
    # Its place in the topic view would leave a gap in the ranks of the turns that are shown.
    ranks = sorted(h.signals["topic"].rank for h in result.hits if "topic" in h.signals)
    assert ranks == list(range(1, len(ranks) + 1))
    bob.share(theirs.id, "alice")  # the positive control: readable again, it is shown with its topic rank
    again = alice.search(QUESTION, k=10)
    assert "topic" in next(h for h in again.hits if h.cube.id == fact.id).signals


def test_the_topic_view_can_be_kept_to_questions_asking_for_several_things(mc: memcubed.Memcubed) -> None:
    _chat(mc)
    one = "Does Melanie play the clarinet?"  # one fact: the router does not choose ``hop``
    mc.kernel.text.config = TextConfig()
    plain = mc.search(one, k=10)
    hop_only = TextConfig(strip_speakers="add", topic_hop_only=True)
    mc.kernel.text.config = hop_only
    kept = mc.search(one, k=10)
    assert _line(kept) == "" and not _signalled(kept, "topic")
    assert [(h.cube.id, h.score) for h in kept.hits] == [(h.cube.id, h.score) for h in plain.hits]
    mc.kernel.text.config = TextConfig(strip_speakers="add")  # the control: without the cue limit it runs
    assert _signalled(mc.search(one, k=10), "topic")
    mc.kernel.text.config = hop_only  # a list question ("What instruments …") gets the topic view
    listed = mc.search(QUESTION, k=10)
    assert _signalled(listed, "topic") and _line(listed) == "dense: embedded without the speakers' names Melanie"
