"""The approximate path of vector search (used above ``exact_vectors_up_to`` cubes: SQLite's binary-quantised
candidates, PostgreSQL's HNSW index), checked against the exact path on the same data."""

from __future__ import annotations

from collections.abc import Callable

import memcubed
from memcubed.testing.backends import Backend

TOPICS = ["cooking pasta", "training for a marathon", "repairing a bicycle", "learning the violin",
          "planting tomatoes", "debugging python code", "saving for a house", "visiting Lisbon"]


def _fill(client: memcubed.Memcubed) -> None:
    client.create_principal("alice")
    client.create_principal("bob")
    alice, bob = client.as_principal("alice"), client.as_principal("bob")
    for i in range(240):
        topic = TOPICS[i % len(TOPICS)]
        owner = alice if i % 3 else bob
        owner.add(f"Day {i}: notes on {topic}, part {i // len(TOPICS)}", tags=["rare"] if i == 7 else [])


def test_approximate_search_agrees_with_exact_search(open_mc: Callable[..., memcubed.Memcubed],
                                                     backend: Backend) -> None:
    exact = open_mc(backend.location())
    binary = open_mc(backend.location(), settings=memcubed.Settings(exact_vectors_up_to=0))
    for client in (exact, binary):
        _fill(client)
    for query in ("how do I cook spaghetti", "running a long race", "fixing my bike", "a trip to Portugal"):
        top = [[h.cube.text for h in c.search(query, mode="vector", k=3).hits] for c in (exact, binary)]
        assert top[0] == top[1], query
        assert len(top[0]) == 3


def test_approximate_path_filters_rights_and_never_starves_on_filters(
    open_mc: Callable[..., memcubed.Memcubed], backend: Backend
) -> None:
    client = open_mc(backend.location(), settings=memcubed.Settings(exact_vectors_up_to=0))
    _fill(client)
    alice, bob = client.as_principal("alice"), client.as_principal("bob")
    hits = bob.search("bicycle repair", mode="vector", k=50).hits
    assert hits and all(h.cube.owner == "bob" for h in hits)
    shared = next(h.cube for h in alice.search("violin lessons", mode="vector", k=1).hits)
    alice.share(shared.id, "bob")
    found = [h.cube.id for h in bob.search("violin lessons", mode="vector", k=50).hits]
    assert shared.id in found and all(h.cube.owner == "bob" or h.cube.id == shared.id
                                      for h in bob.search("violin lessons", mode="vector", k=50).hits)
    rare = alice.search("cooking", mode="vector", k=5, filters={"tags": ["rare"]}).hits
    assert [h.cube.tags for h in rare] == [["rare"]]
