"""Retrieval stages after the first queries (expansion, sub-queries, adjacent turns) keep to the searcher's
rights: another principal's words never enter an expanded query, a fact derived from unreadable sources never
seeds one, and an adjacent turn is returned only when it could be a hit itself; the same query twice gives the
same results."""

from __future__ import annotations

from typing import Any

import pytest

import memcubed
from memcubed.backends.base import SearchScope
from memcubed.engines.text import TextConfig
from memcubed.schemas.ops import SearchFilters, SearchResult

# router off: every stage runs for every query, whatever the question's cues (the router has its own tests)
STAGES = TextConfig(expand_hits=3, expand_terms=6, expand_weight=0.5, split_weight=0.3, neighbour_hits=3,
                    router=False)


@pytest.fixture
def staged(mc: memcubed.Memcubed) -> memcubed.Memcubed:
    """``mc`` with every retrieval stage on (the defaults may leave some off)."""
    mc.kernel.text.config = STAGES
    return mc


def _signals(result: SearchResult) -> dict[str, set[str]]:
    return {hit.cube.id: set(hit.signals) for hit in result.hits}


def _turn(who: memcubed.Memcubed, text: str, ref: str, **kwargs: Any) -> memcubed.MemCube:
    return who.add(text, source={"type": "conversation", "uri": "chat:1", "ref": ref}, **kwargs)


def test_expansion_takes_words_only_from_hits_the_searcher_may_read(staged: memcubed.Memcubed) -> None:
    staged.kernel.text.config = STAGES.model_copy(update={"expand_hits": 1})  # the best hit alone seeds it
    alice, bob = staged.as_principal("alice"), staged.as_principal("bob")
    alice.add("We planted tomatoes in the garden")
    target = alice.add("The quokka smiled at the camera")
    secret = bob.add("tomatoes tomatoes quokka quokka")
    found = _signals(alice.search("tomatoes", k=10))
    assert secret.id not in found
    assert "expand" not in found.get(target.id, set())  # "quokka" came only from bob's memory
    bob.share(secret.id, "alice")  # the positive control: once readable, it does seed the expansion
    assert "expand" in _signals(alice.search("tomatoes", k=10))[target.id]


def test_a_fact_of_unreadable_sources_never_seeds_an_expansion(staged: memcubed.Memcubed) -> None:
    staged.kernel.text.config = STAGES.model_copy(update={"expand_hits": 1})
    alice, bob, carol = (staged.as_principal(p) for p in ("alice", "bob", "carol"))
    source = bob.add("bob's private note about the merger with Zebracorp")
    bob.share(source.id, "alice")
    fact = alice.add("merger merger zebracorp", derived_from=[{"id": source.id, "version": 1}])
    alice.share(fact.id, "carol")  # carol may read the fact's row, not its source
    carol.add("The merger talks start on Monday")
    target = carol.add("Zebracorp stock went up")
    found = _signals(carol.search("merger", k=10))
    assert fact.id not in found and "expand" not in found.get(target.id, set())
    bob.share(source.id, "carol")
    assert "expand" in _signals(carol.search("merger", k=10))[target.id]


def test_adjacent_turns_come_with_a_hit_only_when_they_could_be_hits(staged: memcubed.Memcubed) -> None:
    alice, bob = staged.as_principal("alice"), staged.as_principal("bob")
    first = _turn(alice, "Did you ever adopt the puppy?", "t1", tags=["chat"])
    second = _turn(bob, "Yes, his name is Biscuit", "t2", tags=["chat"])
    third = _turn(alice, "Lovely name", "t3")
    for query in ("adopt the puppy", "Lovely name"):
        assert second.id not in _signals(alice.search(query, k=10))
    bob.share(second.id, "alice")
    assert "neighbour" in _signals(alice.search("adopt puppy", k=10))[second.id]
    tagged = _signals(alice.search("adopt puppy", k=10, filters={"tags": ["chat"]}))
    assert third.id not in tagged and first.id in tagged  # a neighbour obeys the filters like a hit
    bob.delete(second.id)
    assert second.id not in _signals(alice.search("adopt puppy", k=10))


def test_neighbours_are_placed_after_their_hit_and_say_so(staged: memcubed.Memcubed) -> None:
    staged.kernel.text.config = TextConfig(neighbour_hits=3)  # neighbours alone: expansions would reorder
    turns = [_turn(staged, text, f"t{i}") for i, text in enumerate(
        ["What is the name of the puppy?", "Biscuit", "Cute", "Unrelated weather talk today"])]
    result = staged.search("name of the puppy", k=3, mode="hybrid")
    ids = [hit.cube.id for hit in result.hits]
    assert ids[:2] == [turns[0].id, turns[1].id] and len(ids) == 3
    assert result.hits[1].signals["neighbour"].rank == 1  # the answer follows its question
    lexical = staged.search("name of the puppy", k=3, mode="lexical")
    assert all(set(h.signals) == {"lexical"} for h in lexical.hits)  # single-signal modes stay single-signal


def test_staged_search_is_deterministic(staged: memcubed.Memcubed) -> None:
    for i in range(12):
        _turn(staged, f"Melanie painted sunrise number {i} and Caroline went hiking", f"t{i}")
    query = "What do Melanie and Caroline like to do?"
    one, two = staged.search(query, k=8), staged.search(query, k=8)
    assert [(h.cube.id, h.score, h.signals) for h in one.hits] == [(h.cube.id, h.score, h.signals) for h in two.hits]
    assert any("split" in h.signals for h in one.hits)


def test_scoped_ids_apply_rights_and_filters_like_a_search(mc: memcubed.Memcubed) -> None:
    alice, bob = mc.as_principal("alice"), mc.as_principal("bob")
    mine, tagged = alice.add("mine"), alice.add("tagged", tags=["x"])
    theirs, elsewhere = bob.add("theirs"), alice.add("elsewhere", namespace="other")
    gone = alice.add("gone")
    alice.delete(gone.id)
    ids = [mine.id, tagged.id, theirs.id, elsewhere.id, gone.id, "01a2a0c8-0000-7000-8000-000000000000"]
    scope = SearchScope(principal="alice", is_admin=False, namespace="default")
    assert mc.kernel.store.scoped_ids(ids, scope) == {mine.id, tagged.id}
    only_x = SearchScope(principal="alice", is_admin=False, namespace="default", filters=SearchFilters(tags=["x"]))
    assert mc.kernel.store.scoped_ids(ids, only_x) == {tagged.id}
    assert mc.kernel.store.scoped_ids([], scope) == set()
    bob.share(theirs.id, "alice")
    assert theirs.id in mc.kernel.store.scoped_ids(ids, scope)


def test_load_scoped_is_load_cubes_scoped_ids_and_adjacent_ids_in_one_query(mc: memcubed.Memcubed) -> None:
    alice, bob = mc.as_principal("alice"), mc.as_principal("bob")
    first, tagged = _turn(alice, "first", "t1"), _turn(alice, "tagged", "t2", tags=["x"])
    theirs, shared = _turn(bob, "theirs", "t3"), _turn(bob, "shared", "t4")
    bob.share(shared.id, "alice")
    bob.share(shared.id, "carol", right="write")
    gone, loose = _turn(alice, "gone", "t5"), alice.add("no source")
    alice.delete(gone.id)
    elsewhere = _turn(alice, "elsewhere", "t6", namespace="other")
    ids = [first.id, tagged.id, theirs.id, shared.id, gone.id, loose.id, elsewhere.id,
           "01a2a0c8-0000-7000-8000-000000000000"]
    store = mc.kernel.store
    for filters in (SearchFilters(), SearchFilters(tags=["x"])):
        scope = SearchScope(principal="alice", is_admin=False, namespace="default", filters=filters)
        got = store.load_scoped(ids, scope, adjacent=True)
        assert got.cubes == store.load_cubes(ids)  # grants, stats and all
        assert len(got.cubes[shared.id].acl) == 2  # both grants, as load_cubes gives them
        assert got.selected == store.scoped_ids(ids, scope)
        assert got.adjacent == store.adjacent_ids(ids)
        assert store.load_scoped(ids, scope).adjacent == {}
    assert store.load_scoped([], scope, adjacent=True).cubes == {}
