"""Search: the three modes, every filter, and the signals each hit reports."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

import memcubed
from memcubed import ConfigurationError, CubeState, MemCube


def _ids(result: memcubed.Memcubed | object) -> list[str]:
    return [hit.cube.id for hit in result.hits]  # type: ignore[attr-defined]


@pytest.fixture
def corpus(mc: memcubed.Memcubed) -> dict[str, MemCube]:
    return {
        "tea": mc.add("Alice prefers green tea over coffee in the morning", tags=["prefs", "drinks"]),
        "port": mc.add("The staging server listens on port 8080", tags=["infra"]),
        "cat": mc.add("Bob's cat is named Whiskers and sleeps all day", tags=["pets"]),
    }


def test_lexical_finds_by_words_and_reports_only_the_lexical_signal(
    mc: memcubed.Memcubed, corpus: dict[str, MemCube]
) -> None:
    result = mc.search("Whiskers", mode="lexical")
    assert _ids(result) == [corpus["cat"].id]
    hit = result.hits[0]
    assert set(hit.signals) == {"lexical"}
    assert hit.signals["lexical"].rank == 1
    assert hit.signals["lexical"].score > 0


def test_lexical_stems_words(mc: memcubed.Memcubed, corpus: dict[str, MemCube]) -> None:
    assert _ids(mc.search("sleeping cats", mode="lexical")) == [corpus["cat"].id]


def test_vector_finds_by_meaning_and_reports_only_the_vector_signal(
    mc: memcubed.Memcubed, corpus: dict[str, MemCube]
) -> None:
    result = mc.search("which hot beverage does she like to drink", mode="vector")
    assert _ids(result)[0] == corpus["tea"].id
    assert all(set(h.signals) == {"vector"} for h in result.hits)
    assert [h.signals["vector"].rank for h in result.hits] == list(range(1, len(result.hits) + 1))
    scores = [h.signals["vector"].score for h in result.hits]
    assert scores == sorted(scores, reverse=True)
    assert all(-1.0 <= s <= 1.0 + 1e-6 for s in scores)


def test_hybrid_says_which_signals_found_each_hit(mc: memcubed.Memcubed, corpus: dict[str, MemCube]) -> None:
    result = mc.search("port 8080", k=3)
    assert _ids(result)[0] == corpus["port"].id
    by_id = {h.cube.id: h for h in result.hits}
    assert set(by_id[corpus["port"].id].signals) == {"lexical", "vector"}
    for name in ("tea", "cat"):
        hit = by_id.get(corpus[name].id)
        if hit is not None:
            assert set(hit.signals) == {"vector"}
    fused = [h.score for h in result.hits]
    assert fused == sorted(fused, reverse=True)


def test_k_limits_results(mc: memcubed.Memcubed, corpus: dict[str, MemCube]) -> None:
    assert len(mc.search("anything at all", mode="vector", k=2).hits) == 2
    assert len(mc.search("anything at all", mode="vector", k=1).hits) == 1


def test_query_without_words_finds_nothing_lexically(mc: memcubed.Memcubed, corpus: dict[str, MemCube]) -> None:
    assert mc.search("?!", mode="lexical").hits == []


def test_stopword_only_query_finds_nothing_lexically(mc: memcubed.Memcubed) -> None:
    mc.add("to be or not to be")
    assert mc.search("to be", mode="lexical").hits == []
    assert len(mc.search("to be", mode="hybrid").hits) == 1


def test_namespace_filter(mc: memcubed.Memcubed) -> None:
    home = mc.add("the garden needs watering", namespace="home")
    work = mc.add("the garden project deadline", namespace="work")
    assert _ids(mc.search("garden", namespace="home", mode="lexical")) == [home.id]
    assert _ids(mc.search("garden", namespace="work", mode="vector")) == [work.id]
    assert mc.search("garden", mode="lexical").hits == []


def test_owner_filter(mc: memcubed.Memcubed) -> None:
    mine = mc.as_principal("alice").add("holiday plans for August")
    theirs = mc.as_principal("bob").add("holiday plans for December")
    assert _ids(mc.search("holiday plans", mode="lexical", filters={"owner": "alice"})) == [mine.id]
    assert _ids(mc.search("holiday plans", mode="vector", filters={"owner": "bob"})) == [theirs.id]


def test_tag_filter_needs_every_tag(mc: memcubed.Memcubed) -> None:
    both = mc.add("recipe for lemon cake", tags=["food", "sweet"])
    one = mc.add("recipe for lemon chicken", tags=["food"])
    assert set(_ids(mc.search("lemon recipe", mode="lexical", filters={"tags": ["food"]}))) == {both.id, one.id}
    assert _ids(mc.search("lemon recipe", mode="hybrid", filters={"tags": ["food", "sweet"]})) == [both.id]
    mc.update(both.id, tags=["food"])
    assert mc.search("lemon recipe", mode="vector", filters={"tags": ["sweet"]}).hits == []


def test_kind_filter(mc: memcubed.Memcubed, corpus: dict[str, MemCube]) -> None:
    assert len(mc.search("server", mode="lexical", filters={"kinds": ["plaintext"]}).hits) == 1
    assert mc.search("server", mode="lexical", filters={"kinds": ["activation", "parameter"]}).hits == []


def test_state_filter(mc: memcubed.Memcubed, corpus: dict[str, MemCube]) -> None:
    mc.archive(corpus["cat"].id)
    assert mc.search("Whiskers", mode="lexical").hits == []
    archived = mc.search("Whiskers", mode="vector", filters={"states": ["archived"]})
    assert _ids(archived) == [corpus["cat"].id]
    assert archived.hits[0].cube.state is CubeState.ARCHIVED
    mc.restore(corpus["cat"].id)
    assert _ids(mc.search("Whiskers", mode="lexical")) == [corpus["cat"].id]


def test_created_filters(mc: memcubed.Memcubed) -> None:
    early = mc.add("meeting notes one")
    late = mc.add("meeting notes two")
    assert late.created_at > early.created_at
    after = mc.search("meeting notes", mode="lexical", filters={"created_after": late.created_at})
    assert _ids(after) == [late.id]
    before = mc.search("meeting notes", mode="vector", filters={"created_before": late.created_at})
    assert _ids(before) == [early.id]
    window = {"created_after": early.created_at, "created_before": late.created_at + timedelta(microseconds=1)}
    assert set(_ids(mc.search("meeting notes", mode="lexical", filters=window))) == {early.id, late.id}


def test_occurred_filters_use_the_source_event_time(mc: memcubed.Memcubed) -> None:
    t = datetime(2024, 5, 1, 12, tzinfo=UTC)
    old = mc.add("trip to Rome", source={"occurred_at": t - timedelta(days=30)})
    new = mc.add("trip to Oslo", source={"occurred_at": t + timedelta(days=30)})
    undated = mc.add("trip to Lima")
    assert _ids(mc.search("trip", mode="lexical", filters={"occurred_after": t})) == [new.id]
    assert _ids(mc.search("trip", mode="vector", filters={"occurred_before": t})) == [old.id]
    assert undated.id in _ids(mc.search("trip", mode="lexical"))
    mc.update(old.id, source={"occurred_at": t + timedelta(days=1)})
    assert set(_ids(mc.search("trip", mode="lexical", filters={"occurred_after": t}))) == {old.id, new.id}


def test_search_needs_read_rights_in_every_mode(mc: memcubed.Memcubed) -> None:
    alice, bob = mc.as_principal("alice"), mc.as_principal("bob")
    secret = alice.add("alice's bank PIN hint is her birthday")
    for mode in ("lexical", "vector", "hybrid"):
        assert bob.search("bank PIN hint", mode=mode).hits == []
        assert _ids(alice.search("bank PIN hint", mode=mode)) == [secret.id]
    alice.share(secret.id, "bob")
    for mode in ("lexical", "vector", "hybrid"):
        found = bob.search("bank PIN hint", mode=mode)
        assert _ids(found) == [secret.id]
        assert found.hits[0].cube.acl == []
    alice.revoke(secret.id, "bob")
    for mode in ("lexical", "vector", "hybrid"):
        assert bob.search("bank PIN hint", mode=mode).hits == []


def test_search_counts_an_access(mc: memcubed.Memcubed, corpus: dict[str, MemCube]) -> None:
    mc.search("Whiskers", mode="lexical")
    mc.search("Kiwi", mode="lexical")
    assert mc.get(corpus["cat"].id).stats.access_count == 1
    assert mc.get(corpus["port"].id).stats.access_count == 0


def test_lexical_only_store_rejects_vector_mode(open_mc: Callable[..., memcubed.Memcubed], location: str) -> None:
    plain = open_mc(location, embedder="none")
    cube = plain.add("no vectors here")
    with pytest.raises(ConfigurationError):
        plain.search("vectors", mode="vector")
    hybrid = plain.search("vectors")
    assert _ids(hybrid) == [cube.id]
    assert set(hybrid.hits[0].signals) == {"lexical"}


def test_search_reports_timings(mc: memcubed.Memcubed, corpus: dict[str, MemCube]) -> None:
    result = mc.search("tea")
    assert result.total_ms >= result.index_ms >= 0
    assert result.embed_ms >= 0


def test_lexical_results_are_the_best_readable_ones_whoever_owns_the_better_matches(
    mc: memcubed.Memcubed,
) -> None:
    bob, carol = mc.as_principal("bob"), mc.as_principal("carol")
    bob.add_many([{"text": f"Kite kite kite: bob's kite number {i} flies high."} for i in range(60)])
    mine = [carol.add(f"Carol flew a kite once, on day {i}.") for i in range(3)]
    hits = carol.search("kite", mode="lexical", k=10).hits
    assert sorted(h.cube.id for h in hits) == sorted(c.id for c in mine)
    assert len(bob.search("kite", mode="lexical", k=10).hits) == 10
