"""Reads never write on the request path; every write and every access lands in the durable event log,
and the log is folded into cube stats exactly once, on every backend."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

import memcubed
from memcubed import AlreadyExists, BackendUnavailable, NotFound, ValidationError, VersionConflict
from memcubed.backends.selection import open_backend
from memcubed.kernel import Kernel
from memcubed.kernel.outbox import _FOLD_MAX, STATS_CURSOR, fold_access
from memcubed.schemas.events import ACCESS, Event, LoggedEvent
from memcubed.settings import Settings
from memcubed.testing.backends import Backend, RawDb

OpenMc = Callable[..., memcubed.Memcubed]
# A background writer that never fires on its own during a test: only flush_events() and close() write.
QUIET = Settings(events_flush_interval_s=3600, events_flush_batch=1_000_000)


def _log(mc: memcubed.Memcubed, kinds: tuple[str, ...] | None = None) -> list[LoggedEvent]:
    return mc.kernel.store.read_events(after_seq=0, limit=10_000, kinds=kinds)


def _accesses(cube_id: str, n: int) -> list[Event]:
    at = datetime.now(UTC)
    return [Event(kind=ACCESS, principal="admin", at=at, cube_id=cube_id, version=1) for _ in range(n)]


def test_reads_succeed_while_another_process_holds_the_write_lock(backend: Backend, location: str,
                                                                  raw_db: Callable[[str], RawDb]) -> None:
    store, blobs = backend.impatient(location)
    mc = memcubed.Memcubed(Kernel(store, blobs=blobs, embedder=None, settings=QUIET), "admin")
    try:
        cube = mc.add("the spare key is under the blue flowerpot")
        holder = raw_db(location)
        holder.hold_write_lock()
        try:
            with pytest.raises(BackendUnavailable):  # the lock is real: a write waits for it, then gives up
                mc.add("a write must wait for the lock")
            assert mc.get(cube.id).text == "the spare key is under the blue flowerpot"
            assert [h.cube.id for h in mc.search("flowerpot", mode="lexical").hits] == [cube.id]
            assert mc.kernel._accesses.pending == 2
            with pytest.raises(BackendUnavailable):  # a flush that cannot write keeps the events buffered
                mc.kernel.flush_events()
            assert mc.kernel._accesses.pending == 2
        finally:
            holder.release()
        assert mc.kernel.flush_events() == 2
        assert mc.get(cube.id).stats.access_count == 2
    finally:
        mc.close()


def test_stats_appear_once_the_log_is_folded(open_mc: OpenMc, location: str) -> None:
    mc = open_mc(location, embedder="none", settings=QUIET)
    cube = mc.add("Whiskers the cat sleeps on the radiator")
    other = mc.add("the harbour opens at dawn")
    mc.get(cube.id)
    mc.get(cube.id)
    mc.search("Whiskers", mode="lexical")
    assert mc.get(cube.id).stats.access_count == 0  # nothing is written by a read
    assert _log(mc, (ACCESS,)) == []
    assert mc.kernel.flush_events() == 4
    stats = mc.get(cube.id).stats
    assert stats.access_count == 4 and stats.last_access is not None and 3.9 < stats.hotness <= 4.0
    assert mc.get(other.id).stats.access_count == 0
    logged = _log(mc, (ACCESS,))
    assert {(e.event.principal, e.event.cube_id, e.event.version) for e in logged} == {("admin", cube.id, 1)}
    assert [e.seq for e in logged] == sorted(e.seq for e in logged)
    assert mc.kernel.flush_events() == 2  # the two reads just above; nothing is folded twice
    assert mc.get(cube.id).stats.access_count == 5


def test_a_write_logs_its_events_in_its_own_transaction(open_mc: OpenMc, location: str) -> None:
    mc = open_mc(location, embedder="none", settings=QUIET)
    cube = mc.add("the meeting moved to Thursday")
    mc.update(cube.id, importance=0.7)
    kinds = [(e.event.kind, e.event.cube_id, e.event.version) for e in _log(mc)]
    assert kinds == [("principal.create", None, None), ("add", cube.id, 1), ("update", cube.id, 2)]
    ops = [(r.op, r.cube_id, r.version) for r in mc.audit()]
    assert kinds == ops  # one event per audit record, logged with no flush


def test_a_failed_write_logs_no_event(open_mc: OpenMc, location: str) -> None:
    mc = open_mc(location, embedder="none", settings=QUIET)
    cube = mc.add("version one")
    mc.create_principal("mallory")
    before = _log(mc)
    with pytest.raises(VersionConflict):
        mc.update(cube.id, text="a stale writer", expected_version=7)
    with pytest.raises(AlreadyExists):
        mc.add_many([{"text": "fresh", "id": cube.id}, {"text": "clash", "id": cube.id}])
    with pytest.raises(NotFound):
        mc.as_principal("mallory").update(cube.id, text="not yours")
    assert _log(mc) == before


def test_a_read_the_caller_may_not_make_records_no_event(open_mc: OpenMc, location: str) -> None:
    admin = open_mc(location, embedder="none", settings=QUIET)
    admin.create_principal("alice")
    admin.create_principal("bob")
    alice, bob = admin.as_principal("alice"), admin.as_principal("bob")
    secret = alice.add("alice's locker code is 4417")
    with pytest.raises(NotFound):
        bob.get(secret.id)
    with pytest.raises(NotFound):
        bob.get("01a00000-0000-7000-8000-000000000000")
    assert bob.search("locker code", mode="lexical").hits == []
    assert admin.kernel._accesses.pending == 0
    assert admin.kernel.flush_events() == 0
    assert [e for e in _log(admin, (ACCESS,)) if e.event.principal == "bob"] == []
    assert alice.get(secret.id).stats.access_count == 0


def test_events_survive_a_restart_and_fold_once_across_kernels(open_mc: OpenMc, location: str) -> None:
    first = open_mc(location, embedder="none", settings=QUIET)
    cube = first.add("durable")
    for _ in range(3):
        first.get(cube.id)
    first.close()  # close flushes what the buffer holds
    first.close()  # and closing again does nothing
    second = open_mc(location, embedder="none", settings=QUIET)
    assert second.get(cube.id).stats.access_count == 3
    second.close()
    # Logged but never folded (as a writer of the log that is not a kernel would leave them): they
    # survive a restart, and two kernels folding at once count each exactly once.
    store, _ = open_backend(location)
    try:
        with store.transaction():
            store.append_events(_accesses(cube.id, 50))
    finally:
        store.close()
    kernels = [open_mc(location, embedder="none", settings=QUIET) for _ in range(2)]
    folded: list[int] = []
    start = threading.Barrier(2)

    def fold(mc: memcubed.Memcubed) -> None:
        start.wait()
        folded.append(mc.kernel.flush_events())

    threads = [threading.Thread(target=fold, args=(k,)) for k in kernels]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(folded) == [0, 50]
    assert kernels[0].get(cube.id).stats.access_count == 54
    assert kernels[1].kernel.flush_events() == 0 and kernels[0].kernel.flush_events() == 1


def test_a_fold_that_does_not_commit_counts_nothing(open_mc: OpenMc, location: str) -> None:
    mc = open_mc(location, embedder="none", settings=QUIET)
    cube = mc.add("crash mid-fold")
    store = mc.kernel.store
    with store.transaction():
        store.append_events(_accesses(cube.id, 5))
    with pytest.raises(RuntimeError), store.transaction():
        assert fold_access(store, half_life_s=3600) == 5
        raise RuntimeError("the process dies before commit")
    assert store.get_meta(STATS_CURSOR) is None
    assert mc.get(cube.id).stats.access_count == 0
    assert mc.kernel.flush_events() == 6
    assert mc.get(cube.id).stats.access_count == 6


def test_a_long_backlog_is_folded_a_page_at_a_time(open_mc: OpenMc, location: str) -> None:
    mc = open_mc(location, embedder="none", settings=QUIET)
    cube, other = mc.add("popular"), mc.add("read once")
    store = mc.kernel.store
    with store.transaction():
        assert store.append_events(_accesses(cube.id, _FOLD_MAX + 5)) is not None
    mc.get(other.id)  # a fresh access behind the backlog
    assert mc.kernel.flush_events() == _FOLD_MAX + 6
    counts = store.load_stats([cube.id, other.id])
    assert (counts[cube.id].access_count, counts[other.id].access_count) == (_FOLD_MAX + 5, 1)
    with pytest.raises(ValidationError), store.transaction():
        fold_access(store, half_life_s=1.0, fresh=[Event(kind="add", principal="admin", at=datetime.now(UTC))])


def test_inline_stats_are_the_baseline(open_mc: OpenMc, location: str) -> None:
    mc = open_mc(location, embedder="none", settings=Settings(access_stats="inline"))
    cube = mc.add("counted the old way")
    mc.get(cube.id)
    assert mc.get(cube.id).stats.access_count == 1
    assert _log(mc, (ACCESS,)) == []


def test_folded_events_past_retention_are_trimmed(open_mc: OpenMc, location: str) -> None:
    mc = open_mc(location, embedder="none", settings=QUIET.model_copy(update={"events_retention_s": 1e-6}))
    cube = mc.add("short memory")
    mc.get(cube.id)
    assert mc.kernel.flush_events() == 1
    assert _log(mc) == []
    assert mc.get(cube.id).stats.access_count == 1
    mc.kernel.flush_events()
    assert mc.get(cube.id).stats.access_count == 2


# -- the Store Protocol's event log ------------------------------------------------
def test_store_event_log_pages_filters_and_trims(open_mc: OpenMc, location: str) -> None:
    store = open_mc(location, embedder="none", settings=QUIET).kernel.store
    start = store.read_events(after_seq=0, limit=1000)
    head = start[-1].seq if start else 0
    old = datetime(2020, 1, 1, tzinfo=UTC)
    batch = [Event(kind="add", principal="p", at=old, cube_id="c1", version=1, details={"n": [1, "two"]}),
             Event(kind=ACCESS, principal="q", at=old + timedelta(seconds=1), cube_id="c1", version=1),
             Event(kind=ACCESS, principal="q", at=datetime.now(UTC), cube_id="c2", version=3)]
    store.append_events([])
    with store.transaction():
        store.append_events(batch)
    with pytest.raises(RuntimeError), store.transaction():
        store.append_events(batch)
        raise RuntimeError("rolled back")
    logged = store.read_events(after_seq=head, limit=10)
    assert [e.event for e in logged] == batch
    assert logged[0].seq > head and [e.seq for e in logged] == sorted({e.seq for e in logged})
    assert store.read_events(after_seq=logged[0].seq, limit=1) == logged[1:2]
    assert store.read_events(after_seq=head, kinds=(ACCESS,)) == logged[1:]
    assert store.read_events(after_seq=head, kinds=()) == []
    assert store.read_events(after_seq=logged[-1].seq) == []
    with store.transaction():
        # Only what is both at or below the seq and older than the time goes.
        assert store.trim_events(through_seq=logged[1].seq, before=old + timedelta(seconds=1)) == 1
    assert store.read_events(after_seq=head) == logged[1:]
    with store.transaction():
        assert store.trim_events(through_seq=logged[-1].seq, before=datetime.now(UTC) + timedelta(days=1)) >= 2
        store.append_events(batch[:1])
    again = store.read_events(after_seq=0)
    assert len(again) == 1 and again[0].seq > logged[-1].seq  # a trimmed seq is never handed out again


def test_store_loads_stats_alone(open_mc: OpenMc, location: str) -> None:
    mc = open_mc(location, embedder="none", settings=QUIET)
    cube = mc.add("counted")
    mc.get(cube.id)
    mc.kernel.flush_events()
    stats = mc.kernel.store.load_stats([cube.id, "no-such-cube", cube.id])
    assert stats == {cube.id: mc.kernel.store.load_cube(cube.id).stats}  # type: ignore[union-attr]
    assert stats[cube.id].access_count == 1 and mc.kernel.store.load_stats([]) == {}


def test_a_finished_job_is_logged(open_mc: OpenMc, location: str) -> None:
    mc = open_mc(location, embedder="none", settings=QUIET)
    doomed = mc.add("deleted before its job runs")
    job = mc.submit_job("cache", cube_ids=[doomed.id])
    mc.delete(doomed.id)
    (failed,) = mc.run_jobs()
    assert failed.error is not None and failed.error["code"] == "not_found"
    ended = _log(mc, ("job.failed",))
    assert [(e.event.principal, e.event.details) for e in ended] == [
        ("admin", {"job": job.id, "kind": "cache", "attempt": 1})]
