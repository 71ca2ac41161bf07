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
