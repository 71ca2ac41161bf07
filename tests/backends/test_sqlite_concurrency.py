"""Several OS processes writing one SQLite file at once lose nothing."""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import memcubed
from memcubed import VersionConflict

WORKERS = 3
ADDS = 15
UPDATES = 8


def _worker(path: str, worker: int, shared_id: str) -> tuple[list[str], int, int]:
    """Add ``ADDS`` cubes and win ``UPDATES`` optimistic updates of the shared cube.

    Returns the ids added, the successful updates and the conflicts seen on the way.
    """
    added: list[str] = []
    updated = conflicts = 0
    with memcubed.open(path, embedder="none") as mc:
        for i in range(ADDS):
            added.append(mc.add(f"worker {worker} memory {i}", tags=[f"w{worker}"]).id)
            if i % 2 == 0 and updated < UPDATES:
                while True:
                    current = mc.get(shared_id)
                    try:
                        mc.update(shared_id, text=f"counter touched by worker {worker}, step {i}",
                                  expected_version=current.version)
                    except VersionConflict:
                        conflicts += 1
                        continue
                    updated += 1
                    break
    return added, updated, conflicts


def test_concurrent_processes_lose_nothing(tmp_path: Path) -> None:
    path = tmp_path / "shared.db"
    with memcubed.open(path, embedder="none") as setup:
        shared = setup.add("counter touched by nobody")
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=WORKERS, mp_context=ctx) as pool:
        futures = [pool.submit(_worker, str(path), w, shared.id) for w in range(WORKERS)]
        results = [f.result(timeout=300) for f in futures]

    with memcubed.open(path, embedder="none") as mc:
        for worker, (added, _, _) in enumerate(results):
            assert len(added) == ADDS
            assert [mc.get(cube_id).text for cube_id in added] == [f"worker {worker} memory {i}" for i in range(ADDS)]
            tagged = mc.search("memory", k=1000, mode="lexical", filters={"tags": [f"w{worker}"]}).hits
            assert {h.cube.id for h in tagged} == set(added)
        successes = sum(updated for _, updated, _ in results)
        assert successes == WORKERS * UPDATES
        final = mc.get(shared.id)
        assert final.version == 1 + successes
        history = mc.history(shared.id, limit=1000)
        assert [h.version for h in history] == list(range(1, final.version + 1))
        assert [h.op for h in history] == ["add"] + ["update"] * successes
        assert [r.version for r in mc.audit(cube_id=shared.id)] == list(range(1, final.version + 1))
        records = mc.audit(limit=10_000)
        assert [r.seq for r in records] == list(range(1, len(records) + 1))
        assert len(records) == 1 + 1 + WORKERS * ADDS + successes  # admin, shared cube, adds, updates
        report = mc.verify_audit()
        assert report.ok, report.problems
