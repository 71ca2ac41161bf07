"""Background jobs: submitted through the kernel, claimed from the store, run with progress, cancellable."""

from __future__ import annotations

import threading
import time

import pytest

import memcubed
from memcubed import CubeKind
from memcubed.backends.models import LocalTransformersLM
from memcubed.backends.selection import open_backend
from memcubed.engines.scheduler import JobWorker
from memcubed.kernel.base import utcnow
from memcubed.schemas.jobs import JobRecord, JobState

LONG = " ".join(f"Entry {i}: the lighthouse keeper logged a ship passing at dawn, with grey sails and a red hull."
                for i in range(12))


def _wait(mc: memcubed.Memcubed, job_id: str, until: set[JobState], timeout: float = 120.0, *,
          total: int | None = None) -> JobRecord:
    """Wait until the job is in one of ``until`` (and, with ``total``, has reported that many steps or ended)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = mc.job(job_id)
        if job.state in until and (total is None or job.total == total or job.state.finished):
            return job
        time.sleep(0.02)
    raise AssertionError(f"job {job_id} never reached {until}")


def test_a_cache_job_runs_with_progress_as_its_submitter(mc: memcubed.Memcubed, lm: LocalTransformersLM) -> None:
    alice = mc.as_principal("alice")
    sources = [alice.add(f"Fact {i}: the red kite nests in the old oak by the mill.") for i in range(3)]
    job = alice.submit_job("cache", cube_ids=[s.id for s in sources])
    assert job.state is JobState.QUEUED and job.principal == "alice" and job.params["mode"] == "exact"
    assert [r.op for r in mc.audit()][-1] == "job.submit"
    (done,) = alice.run_jobs()
    assert done.id == job.id and done.state is JobState.SUCCEEDED and done.error is None
    assert done.done == done.total == 3 and done.started_at is not None and done.finished_at is not None
    act = alice.get(done.result["cube_id"])  # type: ignore[index]
    assert act.kind is CubeKind.ACTIVATION and act.owner == "alice"
    assert sorted(r.id for r in act.derived_from) == sorted(s.id for s in sources)
    assert alice.run_jobs() == []  # nothing left: a job runs once


def test_bad_jobs_are_refused_before_they_are_queued(mc: memcubed.Memcubed) -> None:
    alice, bob = mc.as_principal("alice"), mc.as_principal("bob")
    private = alice.add("Alice's locker code is 4471.")
    with pytest.raises(memcubed.ValidationError):
        alice.submit_job("defragment")
    with pytest.raises(memcubed.ValidationError):
        alice.submit_job("cache", cube_ids=[])
    with pytest.raises(memcubed.ValidationError):
        alice.submit_job("cache", cube_ids=[private.id], mode="fast")
    with pytest.raises(memcubed.ValidationError):
        alice.submit_job("cache", cube_ids=[private.id], unknown=1)
    with pytest.raises(memcubed.ValidationError):
        mc.kernel.submit_job({"kind": "cache", "params": ["not", "an", "object"]}, principal="alice")
    with pytest.raises((memcubed.AccessDenied, memcubed.NotFound)):
        bob.submit_job("cache", cube_ids=[private.id])
    assert mc.jobs() == [] and "job.submit" not in [r.op for r in mc.audit()]


def test_jobs_are_visible_to_their_submitter_and_admins_only(mc: memcubed.Memcubed) -> None:
    alice, bob = mc.as_principal("alice"), mc.as_principal("bob")
    job = alice.submit_job("cache", cube_ids=[alice.add("The ferry leaves at nine.").id])
    assert [j.id for j in alice.jobs()] == [job.id] and bob.jobs() == []
    assert mc.job(job.id).id == job.id and [j.id for j in mc.jobs(state="queued")] == [job.id]
    with pytest.raises(memcubed.NotFound):
        bob.job(job.id)
    with pytest.raises(memcubed.NotFound):
        bob.cancel_job(job.id)
    with pytest.raises(memcubed.ValidationError):
        mc.jobs(state="sleeping")


def test_a_cancelled_queued_job_never_runs(mc: memcubed.Memcubed) -> None:
    alice = mc.as_principal("alice")
    job = alice.submit_job("cache", cube_ids=[alice.add("The ferry leaves at nine.").id])
    cancelled = alice.cancel_job(job.id)
    assert cancelled.state is JobState.CANCELLED and cancelled.error["code"] == "cancelled"  # type: ignore[index]
    assert alice.run_jobs() == [] and alice.cancel_job(job.id).state is JobState.CANCELLED
    assert [r.op for r in mc.audit()][-1] == "job.cancel"


def test_a_running_job_stops_at_its_next_step_and_keeps_nothing(mc: memcubed.Memcubed,
                                                                lm: LocalTransformersLM) -> None:
    sources = [mc.add(f"{LONG} Log {i}.") for i in range(8)]
    job = mc.submit_job("cache", cube_ids=[s.id for s in sources])
    worker = JobWorker(mc.kernel, poll_s=0.01).start()
    try:
        # Cancel once it has started its steps (a cancel before its first report would stop it at 0 of 0).
        _wait(mc, job.id, {JobState.RUNNING, *[s for s in JobState if s.finished]}, total=8)
        mc.cancel_job(job.id)
        final = _wait(mc, job.id, {s for s in JobState if s.finished})
    finally:
        worker.stop()
    assert final.state is JobState.CANCELLED, final
    assert final.done < final.total == 8
    assert "cache" not in [r.op for r in mc.audit()]  # no activation cube was written
    mc.collect_garbage(grace_s=0)  # the segments it computed before it stopped are collected
    assert set(mc.kernel.blobs.iter_digests()) <= mc.kernel.store.referenced_digests()


def test_a_failing_job_is_recorded_and_the_worker_goes_on(mc: memcubed.Memcubed, lm: LocalTransformersLM) -> None:
    doomed, fine = mc.add("Soon deleted."), mc.add("The bakery opens at seven.")
    first = mc.submit_job("cache", cube_ids=[doomed.id])
    second = mc.submit_job("cache", cube_ids=[fine.id])
    mc.delete(doomed.id)
    failed, succeeded = mc.run_jobs()
    assert (failed.id, failed.state, failed.error["code"]) == (first.id, JobState.FAILED, "not_found")  # type: ignore[index]
    assert (succeeded.id, succeeded.state) == (second.id, JobState.SUCCEEDED)


def test_concurrent_workers_on_separate_connections_claim_each_job_once(mc: memcubed.Memcubed,
                                                                        location: str) -> None:
    queued = [mc.submit_job("cache", cube_ids=[mc.add(f"Note {i}.").id]).id for i in range(40)]
    claimed: list[str] = []
    lock = threading.Lock()

    def claim(name: str) -> None:
        store, _ = open_backend(location)  # its own connections: as another process would
        try:
            while True:
                with store.transaction():
                    job = store.claim_job(name, utcnow(), ["cache"])
                if job is None:
                    return
                assert job.worker == name and job.state is JobState.RUNNING
                with lock:
                    claimed.append(job.id)
        finally:
            store.close()

    threads = [threading.Thread(target=claim, args=(f"w{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(claimed) == sorted(queued)  # every job exactly once
