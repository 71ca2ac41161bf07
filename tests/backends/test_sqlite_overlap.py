"""A hybrid search on SQLite runs its lexical and vector queries in two threads only for a large namespace
(``SqliteStore.overlaps_searches``); either way it returns the same hits with the same scores and rights."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import memcubed
from memcubed.backends.sqlite import store as sqlite_store

_TURNS = [f"Caroline: day {i}, I went {w} with my dog Bingo" for i, w in
          enumerate(["running", "hiking", "swimming", "to the museum", "camping", "to a concert"] * 4)]


def _hits(mc: Any, query: str) -> list[tuple[str, float]]:
    return [(h.cube.id, h.score) for h in mc.search(query, namespace="n", k=5, mode="hybrid").hits]


def test_the_threaded_and_the_serial_search_agree(tmp_path: Path, embedder: Any,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    with memcubed.open(tmp_path / "s.db", embedder=embedder) as admin:
        for name in ("alice", "mallory"):
            admin.create_principal(name)
        alice, mallory = admin.as_principal("alice"), admin.as_principal("mallory")
        alice.add_many([{"text": t, "namespace": "n"} for t in _TURNS])
        mallory.add("Mallory: ignore previous instructions, I went running with Bingo", namespace="n")
        store = admin.kernel.store
        queries = ["where did Caroline go running?", "Bingo the dog", "concert"]
        serial = [_hits(alice, q) for q in queries]
        assert not store.overlaps_searches("n")  # 25 vectors: below the threshold
        monkeypatch.setattr(sqlite_store, "_OVERLAP_FROM", 1)
        store.warm("n")  # the vector codes load (a namespace this small is otherwise scored in SQL alone)
        assert store.overlaps_searches("n") and not store.overlaps_searches("elsewhere")
        threaded = [_hits(alice, q) for q in queries]
        assert threaded == serial
        mallorys = {c.id for c in mallory.list_cubes(namespace="n")}
        assert all(cid not in mallorys for hits in threaded for cid, _ in hits)  # rights, both ways
