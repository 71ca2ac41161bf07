"""Vocabulary bridging and exchange scoring on every backend: a category word of the question ("cities") reaches a
memory naming one ("Paris") through the words of the searcher's own hits; another principal's or another
namespace's words never become expansion terms nor move the searcher's ranking; an adjacent turn shares its
hit's score only when it could be a hit itself (rights, filters, deletion)."""

from __future__ import annotations

from typing import Any

import pytest

import memcubed
from memcubed.engines.text import TextConfig
from memcubed.schemas.ops import SearchResult

VOCAB = TextConfig(vocab_weight=1.0, vocab_threshold=0.5)
EXCHANGE = TextConfig(exchange_weight=0.5)
QUESTION = "Which cities has Melanie visited?"


@pytest.fixture
def vocab(mc: memcubed.Memcubed) -> memcubed.Memcubed:
    """``mc`` (local embedder, principals alice, bob, carol) with the vocabulary stage on."""
    mc.kernel.text.config = VOCAB
    return mc


def _line(result: SearchResult) -> str:
    return next((line for line in result.explanation if line.startswith("vocab:")), "")


def _ranking(result: SearchResult) -> list[tuple[str, float]]:
    return [(hit.cube.id, round(hit.score, 9)) for hit in result.hits]


def _alice_corpus(who: memcubed.Memcubed, namespace: str = "default") -> memcubed.MemCube:
    who.add("Melanie: we had a lovely picnic by the lake", namespace=namespace)
    who.add("Melanie: my kids love painting with me", namespace=namespace)
    return who.add("Melanie: last summer we walked all over Paris", namespace=namespace)


def test_a_category_word_reaches_a_memory_that_names_one(vocab: memcubed.Memcubed) -> None:
    paris = _alice_corpus(vocab)
    result = vocab.search(QUESTION, k=3)
    assert "cities->paris" in _line(result)
    assert "vocab" in result.hits[0].signals and result.hits[0].cube.id == paris.id
    vocab.kernel.text.config = TextConfig()  # the control: no stage, no line, no signal
    plain = vocab.search(QUESTION, k=3)
    assert _line(plain) == "" and all("vocab" not in hit.signals for hit in plain.hits)


def test_another_principals_words_are_never_expansion_terms(vocab: memcubed.Memcubed) -> None:
    alice, bob = vocab.as_principal("alice"), vocab.as_principal("bob")
    _alice_corpus(alice)
    secret = bob.add("Melanie: the codeword is Tokyo")
    before = alice.search(QUESTION, k=5)
    assert "tokyo" not in _line(before) and secret.id not in {h.cube.id for h in before.hits}
    bob.update(secret.id, text="Melanie: the codeword is Bingo")  # the same length: the same BM25 statistics
    assert _ranking(alice.search(QUESTION, k=5)) == _ranking(before)
    bob.update(secret.id, text="Melanie: the codeword is Tokyo")
    bob.share(secret.id, "alice")  # the positive control: once readable, its word bridges
    assert "->tokyo" in _line(alice.search(QUESTION, k=5))


def test_another_namespaces_words_never_reach_a_tenant(vocab: memcubed.Memcubed) -> None:
    _alice_corpus(vocab, "tenant")
    before = vocab.search(QUESTION, namespace="tenant", k=5)
    vocab.add("Melanie: the codeword is Tokyo", namespace="other")
    after = vocab.search(QUESTION, namespace="tenant", k=5)
    assert "tokyo" not in _line(after) and _ranking(after) == _ranking(before) and _line(after) == _line(before)
    vocab.add("Melanie: we flew to Tokyo", namespace="tenant")  # the positive control: its own word
    assert "->tokyo" in _line(vocab.search(QUESTION, namespace="tenant", k=5))


def test_a_fact_of_unreadable_sources_brings_no_words(vocab: memcubed.Memcubed) -> None:
    alice, bob, carol = (vocab.as_principal(p) for p in ("alice", "bob", "carol"))
    source = bob.add("Melanie flew to Tokyo")
    bob.share(source.id, "alice")
    fact = alice.add("Melanie visited Tokyo", derived_from=[{"id": source.id, "version": 1}])
    alice.share(fact.id, "carol")  # carol may read the fact's row, not its source
    _alice_corpus(carol)
    assert "tokyo" not in _line(carol.search(QUESTION, k=5))
    bob.share(source.id, "carol")
    assert "->tokyo" in _line(carol.search(QUESTION, k=5))


def test_the_stage_without_an_embedder_is_a_no_op(open_mc: Any, location: str) -> None:
    lexical = open_mc(location, embedder="none")
    lexical.kernel.text.config = VOCAB
    _alice_corpus(lexical)
    assert _line(lexical.search(QUESTION, k=3)) == ""


def _turn(who: memcubed.Memcubed, text: str, ref: str, **kwargs: Any) -> memcubed.MemCube:
    return who.add(text, source={"type": "conversation", "uri": "chat:1", "ref": ref}, **kwargs)


def _fill(who: memcubed.Memcubed) -> None:
    for i, text in enumerate(["The weather was grey all week", "We repainted the kitchen", "Traffic was awful",
                              "The printer broke again"]):
        _turn(who, text, f"x{i}", namespace="default")


def test_a_reply_shares_in_its_questions_score(mc: memcubed.Memcubed) -> None:
    mc.kernel.text.config = EXCHANGE
    _fill(mc)
    # The answer comes first, so the question's words are not in its context column either.
    reply = _turn(mc, "Melanie: it has been wonderful for my mental health", "t1")
    ask = _turn(mc, "Caroline: so the marathon training is going well?", "t2")
    query = "How is the marathon training going?"
    result = mc.search(query, k=10)
    ids = [hit.cube.id for hit in result.hits]
    assert ids[:2] == [ask.id, reply.id]
    assert result.hits[1].signals["exchange"].rank == 1
    assert any(line.startswith("exchange:") for line in result.explanation)
    lexical = mc.search(query, k=10, mode="lexical")  # single-signal modes stay single-signal
    assert all(set(hit.signals) == {"lexical"} for hit in lexical.hits) and lexical.explanation == []
    mc.kernel.text.config = TextConfig(exchange_weight=0)  # the control: alone, the reply ranks lower
    plain = [hit.cube.id for hit in mc.search(query, k=10).hits]
    assert plain.index(reply.id) > 1


def test_an_adjacent_turn_shares_a_score_only_when_it_could_be_a_hit(mc: memcubed.Memcubed) -> None:
    mc.kernel.text.config = EXCHANGE
    alice, bob = mc.as_principal("alice"), mc.as_principal("bob")
    _turn(alice, "Caroline: how is the marathon training going?", "t1", tags=["chat"])
    reply = _turn(bob, "Melanie: great for my mental health, honestly", "t2")
    query = "How is the marathon training going?"
    assert reply.id not in {h.cube.id for h in alice.search(query, k=10).hits}
    bob.share(reply.id, "alice")  # the positive control
    assert "exchange" in {h.cube.id: h for h in alice.search(query, k=10).hits}[reply.id].signals
    tagged = alice.search(query, k=10, filters={"tags": ["chat"]})
    assert reply.id not in {h.cube.id for h in tagged.hits}  # a neighbour obeys the filters like a hit
    bob.delete(reply.id)
    assert reply.id not in {h.cube.id for h in alice.search(query, k=10).hits}


def test_adjacent_ids_are_preceding_and_following_in_one_query(mc: memcubed.Memcubed) -> None:
    a, b, c, d = (_turn(mc, f"turn {i}", f"t{i}") for i in range(4))
    _turn(mc, "same source, other namespace", "o1", namespace="other")
    loose = mc.add("no source at all")
    mc.delete(c.id)  # a deleted turn is skipped, as by ``preceding`` and ``following``
    store = mc.kernel.store
    got = store.adjacent_ids([a.id, b.id, d.id, loose.id, "no-such-id"])
    assert got == {a.id: (None, b.id), b.id: (a.id, d.id), d.id: (b.id, None)}
    for cube in (a, b, d):
        before = store.preceding(cube.namespace, "chat:1", before=cube.id)
        after = store.following(cube.namespace, "chat:1", after=cube.id)
        assert got[cube.id] == (before.id if before else None, after.id if after else None)
    assert store.adjacent_ids([]) == {}


def test_toward_lifts_a_reply_toward_its_question_never_past_it(mc: memcubed.Memcubed) -> None:
    _fill(mc)
    reply = _turn(mc, "Melanie: it has been wonderful for my mental health", "t1")
    ask = _turn(mc, "Caroline: so the marathon training is going well?", "t2")
    query = "How is the marathon training going?"
    mc.kernel.text.config = TextConfig(exchange_weight=0)  # the control
    plain = {hit.cube.id: hit for hit in mc.search(query, k=10).hits}
    mc.kernel.text.config = TextConfig(exchange_weight=0.5, exchange_mode="toward")
    result = mc.search(query, k=10).hits
    got = {hit.cube.id: hit for hit in result}
    assert result[0].cube.id == ask.id and got[ask.id].score == plain[ask.id].score  # the best hit never moves
    assert "exchange" in got[reply.id].signals and got[reply.id].score < got[ask.id].score
    before = plain[reply.id].score if reply.id in plain else None
    assert before is None or got[reply.id].score > before
