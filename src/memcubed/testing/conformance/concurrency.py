"""Several OS processes writing one store at once lose nothing, on every backend.

Each worker adds cubes of its own and wins a fixed number of optimistic updates (``expected_version``)
of the same shared cubes, retrying after every ``VersionConflict``. Afterwards: every add is there,
each shared cube has versions 1..n without gaps or duplicates, one audit record per version, and
the whole audit log is a single valid chain. A deadlock would show up as a worker timing out.
"""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor

import memcubed
from memcubed import VersionConflict
from memcubed.schemas.ops import AuditRecord

WORKERS = 4
ADDS = 12
UPDATES = 6  # per worker and shared cube
SHARED = 2


def _worker(location: str, worker: int, shared_ids: list[str]) -> tuple[list[str], int, int]:
    """Add ``ADDS`` cubes and win ``UPDATES`` optimistic updates of each shared cube.

    Returns the ids added, the successful updates and the conflicts seen on the way.
    """
    added: list[str] = []
    updated = conflicts = 0
    with memcubed.open(location, embedder="none") as mc:
        for i in range(ADDS):
            added.append(mc.add(f"worker {worker} memory {i}", tags=[f"w{worker}"]).id)
            if i % 2 == 0 and updated < UPDATES * SHARED:
                for shared_id in shared_ids:
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


def test_concurrent_processes_lose_nothing(location: str) -> None:
    with memcubed.open(location, embedder="none") as setup:
        shared = [setup.add(f"counter {n} touched by nobody").id for n in range(SHARED)]
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=WORKERS, mp_context=ctx) as pool:
        futures = [pool.submit(_worker, location, w, shared) for w in range(WORKERS)]
        results = [f.result(timeout=300) for f in futures]

    with memcubed.open(location, embedder="none") as mc:
        for worker, (added, _, _) in enumerate(results):
            assert len(added) == ADDS
            assert [mc.get(cube_id).text for cube_id in added] == [f"worker {worker} memory {i}" for i in range(ADDS)]
            tagged = mc.search("memory", k=1000, mode="lexical", filters={"tags": [f"w{worker}"]}).hits
            assert {h.cube.id for h in tagged} == set(added)
        successes = sum(updated for _, updated, _ in results)
        assert successes == WORKERS * UPDATES * SHARED
        for shared_id in shared:
            final = mc.get(shared_id)
            assert final.version == 1 + WORKERS * UPDATES  # no lost update
            history = mc.history(shared_id, limit=1000)
            assert [h.version for h in history] == list(range(1, final.version + 1))  # no duplicate, no gap
            assert [h.op for h in history] == ["add"] + ["update"] * WORKERS * UPDATES
            assert [r.version for r in mc.audit(cube_id=shared_id)] == list(range(1, final.version + 1))
        records: list[AuditRecord] = []
        while page := mc.audit(after_seq=records[-1].seq if records else 0, limit=1000):
            records += page
        assert [r.seq for r in records] == list(range(1, len(records) + 1))
        assert len(records) == 1 + SHARED + WORKERS * ADDS + successes  # admin, shared cubes, adds, updates
        report = mc.verify_audit()
        assert report.ok, report.problems
