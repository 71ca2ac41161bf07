"""PostgreSQL's re-embed switch (``backends/postgres/nextspace.py``): the next space and its graph index are built
before the switch, readers keep the old vectors until the switch commits, and a build killed midway leaves the
store as it was and the rerun completes. The behaviour every backend shares is in ``conformance/reembed.py``."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import psycopg
import pytest

import memcubed
from memcubed.backends.postgres.schema import WRITE_LOCK
from memcubed.testing.backends import PgCluster
from memcubed.testing.static_model import write_static_model

TEXTS = ["my dog is a good pet", "the car took the road", "a cat sat on the mat", "we drive the car home"]
INDEXED = memcubed.Settings(exact_vectors_up_to=0)  # every search takes the graph-index path


@pytest.fixture
def dsn(pg_cluster: PgCluster) -> Iterator[str]:
    where = pg_cluster.create()
    yield where
    pg_cluster.drop(where)


def _sql(dsn: str, sql: str, params: Any = ()) -> list[tuple[Any, ...]]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        cursor = conn.execute(sql, params)
        return cursor.fetchall() if cursor.description else []


def _space(dsn: str) -> dict[str, Any]:
    """What the vector tables hold: the live column's type, its graph index, and the next space's rows."""
    return {
        "type": _sql(dsn, "SELECT format_type(atttypid, atttypmod) FROM pg_attribute"
                          " WHERE attrelid = 'cube_emb'::regclass AND attname = 'emb'")[0][0],
        "index": _sql(dsn, "SELECT indrelid::regclass::text, indisvalid FROM pg_index"
                           " WHERE indexrelid = to_regclass('cube_emb_hnsw')"),
        "next_index": _sql(dsn, "SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass('cube_emb_next_hnsw')"),
        "leftover": [_sql(dsn, f"SELECT count(*) FROM {t}")[0][0] for t in ("vec_stage", "cube_emb_next",
                                                                            "cube_chunk_next")],
    }


def _models(tmp_path: Path) -> tuple[str, str]:
    return (f"static:{write_static_model(tmp_path / 'eight', dim=8)}",
            f"static:{write_static_model(tmp_path / 'sixteen', dim=16, shift=0.5)}")


def _top(mc: memcubed.Memcubed, query: str) -> str:
    """Which of the tiny models' two topics the best vector hit of ``query`` is about."""
    text = mc.search(query, mode="vector", k=1).hits[0].cube.text or ""
    return "animals" if any(w in text for w in ("dog", "cat", "pet")) else "traffic"


def test_each_switch_swaps_in_a_next_space_whose_index_was_built_before_it(dsn: str, tmp_path: Path) -> None:
    old, new = _models(tmp_path)
    mc = memcubed.open(dsn, embedder=old, settings=INDEXED)
    try:
        mc.add_many([{"text": f"{t} {i}"} for i in range(10) for t in TEXTS])
        # The write lock, held at session level (outside a transaction, so the concurrent build, which waits for
        # every older snapshot, does not wait for it) once all is staged: from there the switch waits for it.
        # Only the main thread touches `held` (a psycopg connection serialises its callers, so an unlock from
        # here could wait forever behind a lock request from the job's thread); the job's progress callback asks
        # for the lock and waits, bounded, until the main thread has it.
        held = psycopg.connect(dsn, autocommit=True)
        held.execute("SET lock_timeout = '60s'")  # a lock that cannot be had fails the test instead of hanging it
        want, got = threading.Event(), threading.Event()
        building: dict[str, Any] = {}

        def hold_writes(done: int, total: int) -> None:
            if done == total and not want.is_set():
                want.set()
                got.wait(timeout=90)

        job = threading.Thread(target=lambda: building.update(report=mc.reembed(new, batch=8, progress=hold_writes)),
                               daemon=True)
        job.start()
        reader = memcubed.open(dsn, embedder=old, settings=INDEXED)
        locked = False
        try:
            assert want.wait(timeout=120), "the job never staged every vector"
            held.execute("SELECT pg_advisory_lock(%s)", (WRITE_LOCK,))
            locked = True
            got.set()
            deadline = time.monotonic() + 120
            while _space(dsn)["next_index"] != [(True,)] and time.monotonic() < deadline:
                time.sleep(0.05)
            # The graph index of the next space is complete while the switch still waits: readers see the old
            # vectors, through the old index.
            assert _space(dsn)["next_index"] == [(True,)] and "report" not in building
            assert _space(dsn)["type"] == "vector(8)"
            assert _top(reader, "dog pet") == "animals"
        finally:
            got.set()
            if locked:
                held.execute("SELECT pg_advisory_unlock(%s)", (WRITE_LOCK,))
            job.join(timeout=120)
            held.close()
            reader.close()
        assert not job.is_alive(), "the switch did not finish once the write lock was released"
        assert building["report"].switched and building["report"].cubes == 40
        after = _space(dsn)
        assert after == {"type": "vector(16)", "index": [("cube_emb", True)], "next_index": [], "leftover": [0, 0, 0]}
        assert (_top(mc, "car road"), _top(mc, "dog pet")) == ("traffic", "animals")
        # And back: the pair of tables swaps again, the old space emptied each time.
        assert mc.reembed(old, batch=16).switched
        assert _space(dsn) == {**after, "type": "vector(8)"}
        assert (_top(mc, "cat"), _top(mc, "drive")) == ("animals", "traffic")
    finally:
        mc.close()


def test_a_build_killed_midway_leaves_the_store_as_it_was_and_the_rerun_switches(dsn: str, tmp_path: Path) -> None:
    old, new = _models(tmp_path)
    mc = memcubed.open(dsn, embedder=old, settings=INDEXED)
    try:
        ids = [c.id for c in mc.add_many([{"text": f"{t} {i}"} for i in range(5) for t in TEXTS])]
        # Once all is staged, a writer's open transaction on the next space: the concurrent build, past its
        # first phase (its INVALID index is in the catalog), waits for it, and is killed there.
        blocker = psycopg.connect(dsn)
        failed: list[Exception] = []

        def block(done: int, total: int) -> None:
            if done == total:
                blocker.execute("DELETE FROM cube_emb_next WHERE seq = -1")

        def run() -> None:
            try:
                mc.reembed(new, batch=8, progress=block)
            except Exception as exc:
                failed.append(exc)

        job = threading.Thread(target=run)
        job.start()
        try:
            deadline = time.monotonic() + 120
            waiting: list[tuple[Any, ...]] = []
            while not waiting and time.monotonic() < deadline:
                waiting = _sql(dsn, "SELECT pid FROM pg_stat_activity WHERE query LIKE 'CREATE INDEX CONCURRENTLY%%'"
                                    " AND wait_event_type = 'Lock'")
                time.sleep(0.05)
            assert waiting, "the build never waited for the open writer"
            assert _sql(dsn, "SELECT pg_terminate_backend(%s)", (waiting[0][0],)) == [(True,)]
            job.join(timeout=120)
        finally:
            blocker.rollback()
            blocker.close()
        assert not job.is_alive() and [type(e) for e in failed] == [memcubed.BackendUnavailable]
        state = _space(dsn)
        assert state["type"] == "vector(8)" and state["index"] == [("cube_emb", True)]
        assert state["next_index"] == [(False,)] and state["leftover"][1] == len(ids)  # INVALID; the mirror kept
        reopened = memcubed.open(dsn, embedder=None, settings=INDEXED)
        try:
            assert reopened.kernel.embedder is not None and reopened.kernel.embedder.name == old
            assert _top(reopened, "dog pet") == "animals"
            report = reopened.reembed(new, batch=8)
            assert report.switched and report.cubes == len(ids) and report.late == 0
            assert _space(dsn) == {"type": "vector(16)", "index": [("cube_emb", True)], "next_index": [],
                                   "leftover": [0, 0, 0]}
            assert _top(reopened, "car road") == "traffic"
        finally:
            reopened.close()
    finally:
        mc.close()


def _mirror(dsn: str) -> dict[tuple[int, int], str]:
    return {(int(seq), 0): emb for seq, emb in _sql(dsn, "SELECT seq, emb::text FROM cube_emb_next")} | {
        (int(seq), int(n)): emb for seq, n, emb in _sql(dsn, "SELECT seq, n, emb::text FROM cube_chunk_next")}


def _stage(dsn: str) -> dict[tuple[int, int], str]:
    return {(int(seq), int(n)): emb for seq, n, emb in _sql(dsn, "SELECT seq, n, emb::text FROM vec_stage")}


def test_the_database_keeps_the_next_space_equal_to_the_stage_whoever_writes_it(dsn: str, tmp_path: Path) -> None:
    """A process on code before the mirror (a mixed-version fleet) stages and unindexes through ``vec_stage`` only:
    a cube restaged with another vector, one unstaged, one unindexed. The mirror follows every write, an in-place
    update of the stage is refused, and what switches in is the stage."""
    old, new = _models(tmp_path)
    mc = memcubed.open(dsn, embedder=old, settings=INDEXED)
    try:
        mc.add_many([{"text": f"{t} {i}"} for i in range(3) for t in TEXTS])
        expected: dict[int, str] = {}
        seen: list[bool] = []

        def tamper(done: int, total: int) -> None:
            if done != total or expected:
                return
            expected.update(_sql(dsn, "SELECT seq, emb::text FROM vec_stage WHERE n = 0"))
            a, b, c = sorted(expected)[:3]
            _sql(dsn, "DELETE FROM vec_stage WHERE seq = %s", (a,))  # restaged by the old code with b's vector
            _sql(dsn, "INSERT INTO vec_stage (seq, n, emb) VALUES (%s, 0, %s::vector)", (a, expected[b]))
            expected[a] = expected[b]
            for table in ("vec_stage", "cube_emb", "cube_chunk"):  # c unindexed by the old code
                _sql(dsn, f"DELETE FROM {table} WHERE seq = %s", (c,))
            del expected[c]
            with pytest.raises(psycopg.errors.RaiseException, match="never updated"):
                _sql(dsn, "UPDATE vec_stage SET emb = emb WHERE seq = %s", (b,))
            seen.append(_mirror(dsn) == _stage(dsn) and len(_stage(dsn)) == 11)

        report = mc.reembed(new, batch=4, progress=tamper)
        assert seen == [True]
        assert report.switched and len(expected) == 11
        assert dict(_sql(dsn, "SELECT seq, emb::text FROM cube_emb")) == expected
        assert _space(dsn)["leftover"] == [0, 0, 0]
    finally:
        mc.close()


def test_a_switch_held_up_by_a_long_reader_is_refused_and_the_rerun_switches(dsn: str, tmp_path: Path) -> None:
    """The swap's lock waits at most ``stage_lock_wait`` behind a transaction reading the live vectors: the move is
    refused (Conflict), the store keeps its old vectors and its stage, and the rerun switches without restaging."""
    old, new = _models(tmp_path)
    patient = f"{dsn}{'&' if urlsplit(dsn).query else '?'}options={quote('-c lock_timeout=20000')}"
    mc = memcubed.open(patient, embedder=old, settings=INDEXED)
    mc.kernel.store.stage_lock_wait = "300ms"  # type: ignore[attr-defined]
    reader = psycopg.connect(dsn)
    try:
        mc.add_many([{"text": t} for t in TEXTS])
        reader.execute("SELECT count(*) FROM cube_emb")  # ACCESS SHARE until the reader's transaction ends
        with pytest.raises(memcubed.Conflict, match="long transaction"):
            mc.reembed(new, batch=8)
        assert _space(dsn)["type"] == "vector(8)" and _top(mc, "dog pet") == "animals"
        assert len(_stage(dsn)) == len(TEXTS) and _mirror(dsn) == _stage(dsn)
        reader.rollback()
        restaged: list[int] = []
        report = mc.reembed(new, batch=8, progress=lambda done, total: restaged.append(done))
        assert report.switched and restaged == [len(TEXTS)]  # everything was staged already
        assert _space(dsn)["type"] == "vector(16)" and _top(mc, "dog pet") == "animals"
    finally:
        reader.close()
        mc.close()


def test_a_second_reembed_during_a_build_is_refused_and_writers_go_on(dsn: str, tmp_path: Path) -> None:
    """Emptying the next space waits for its lock under the store's write lock: while an index build holds that
    table, a new re-embed is refused after a bounded wait instead of stalling every writer for the build."""
    old, new = _models(tmp_path)
    # The session's own bound (20 s) only keeps a regression from hanging the suite; the stage's is far shorter.
    patient = f"{dsn}{'&' if urlsplit(dsn).query else '?'}options={quote('-c lock_timeout=20000')}"
    mc = memcubed.open(patient, embedder=old, settings=INDEXED)
    mc.kernel.store.stage_lock_wait = "300ms"  # type: ignore[attr-defined]
    blocker = psycopg.connect(dsn)
    try:
        mc.add_many([{"text": t} for t in TEXTS])
        blocker.execute("DELETE FROM cube_emb_next WHERE seq = -1")  # a writer the build must wait for
        build = threading.Thread(target=_sql, args=(dsn, "CREATE INDEX CONCURRENTLY other_build ON cube_emb_next"
                                                         " (seq)"), daemon=True)
        build.start()
        deadline = time.monotonic() + 60
        while not _sql(dsn, "SELECT 1 FROM pg_stat_activity WHERE query LIKE 'CREATE INDEX CONCURRENTLY%%'"
                            " AND wait_event_type = 'Lock'") and time.monotonic() < deadline:
            time.sleep(0.05)
        with pytest.raises(memcubed.Conflict, match="building the next vector space"):
            mc.reembed(new, batch=8)
        assert len(mc.add_many([{"text": "written while the build waits"}])) == 1  # the write lock was let go
        assert _space(dsn)["type"] == "vector(8)" and _top(mc, "dog pet") == "animals"
    finally:
        blocker.rollback()
        blocker.close()
        mc.close()
    build.join(timeout=60)
    assert not build.is_alive()
