"""Durable jobs: claims are leased, an expired lease is claimed again (and counts an attempt), a worker that
lost its lease never commits, retries are bounded, and many workers (threads and processes) run each job once."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from datetime import timedelta
from typing import Any

import memcubed
from memcubed import CubeKind
from memcubed.backends.models import LocalTransformersLM
from memcubed.backends.selection import open_backend
from memcubed.kernel.base import utcnow
from memcubed.schemas.jobs import JobRecord, JobState
from memcubed.settings import Settings
from memcubed.testing.backends import Backend
from memcubed.testing.conformance.fixtures import OpenMc

_PAST = timedelta(hours=1)


def _activations(mc: memcubed.Memcubed) -> list[memcubed.MemCube]:
    return [c for c in mc.list_cubes(limit=1000, filters={"kinds": ["activation"], "states": ["active", "stale"]})
            if c.kind is CubeKind.ACTIVATION]


def test_a_claim_is_leased_and_an_expired_lease_is_claimed_again(mc: memcubed.Memcubed) -> None:
    job = mc.submit_job("cache", cube_ids=[mc.add("The tram runs every ten minutes.").id])
    store, now = mc.kernel.store, utcnow()
    with store.transaction():
        first = store.claim_job("w1", now, ["cache"], lease_until=now + timedelta(seconds=30))
    assert first is not None and first.id == job.id and first.attempts == 1 and first.worker == "w1"
    assert first.lease_until is not None and first.heartbeat_at is not None
    with store.transaction():
        assert store.claim_job("w2", now + timedelta(seconds=29), ["cache"]) is None  # still leased
        second = store.claim_job("w2", now + timedelta(seconds=31), ["cache"],
                                 lease_until=now + timedelta(seconds=61))
    assert second is not None and (second.worker, second.attempts) == ("w2", 2)
    with store.transaction():
        # The first worker's claim is gone: it can neither renew nor finish; the holder can.
        assert store.renew_job_lease(job.id, "w1", 1, now, now + timedelta(seconds=90)) is None
        assert not store.finish_job(job.id, JobState.SUCCEEDED, now, result={}, worker="w1", attempt=1)
        assert store.renew_job_lease(job.id, "w2", 2, now, now + timedelta(seconds=90)) is False
        assert store.finish_job(job.id, JobState.SUCCEEDED, now, result={"ok": 1}, worker="w2", attempt=2)
    done = mc.job(job.id)
    assert (done.state, done.result, done.attempts, done.lease_until) == (JobState.SUCCEEDED, {"ok": 1}, 2, None)


def test_a_job_whose_workers_keep_dying_fails_with_attempts_exhausted(mc: memcubed.Memcubed) -> None:
    job = mc.submit_job("cache", cube_ids=[mc.add("The ferry leaves at nine.").id])
    store, start = mc.kernel.store, utcnow() - _PAST
    for attempt in range(mc.kernel.settings.job_max_attempts):  # each claim's worker dies at once
        at = start + timedelta(minutes=attempt)
        with store.transaction():
            claimed = store.claim_job(f"dead{attempt}", at, ["cache"], lease_until=at)
        assert claimed is not None and claimed.attempts == attempt + 1
    assert mc.run_jobs() == []  # nothing claimable: the job is ended instead
    failed = mc.job(job.id)
    assert failed.state is JobState.FAILED and failed.error is not None
    assert failed.error["code"] == "attempts_exhausted" and failed.error["details"]["attempts"] == 3
    assert "job.failed" in [e.event.kind for e in mc.kernel.store.read_events(after_seq=0, limit=1000)]


def test_a_cancelled_job_whose_worker_died_ends_cancelled(mc: memcubed.Memcubed) -> None:
    job = mc.submit_job("cache", cube_ids=[mc.add("The ferry leaves at nine.").id])
    store, at = mc.kernel.store, utcnow() - _PAST
    with store.transaction():
        store.claim_job("dead", at, ["cache"], lease_until=at)
    assert mc.cancel_job(job.id).state is JobState.RUNNING  # requested; its worker will never see it
    assert mc.run_jobs() == []
    assert mc.job(job.id).state is JobState.CANCELLED


def test_a_worker_whose_lease_was_taken_does_not_commit(mc: memcubed.Memcubed, location: str,
                                                        lm: LocalTransformersLM) -> None:
    sources = [mc.add(f"Log {i}: the lighthouse keeper saw a ship with grey sails.") for i in range(3)]
    job = mc.submit_job("cache", cube_ids=[s.id for s in sources])
    thief, _ = open_backend(location)  # another worker, on its own connections

    def steal(running: JobRecord, done: int, total: int) -> None:
        if total and done == total:  # after the last step, right before the output would commit
            with thief.transaction():  # as if the lease had run out: claim it an hour from now
                stolen = thief.claim_job("thief", utcnow() + _PAST, ["cache"])
            assert stolen is not None and stolen.attempts == 2

    try:
        ended = mc.kernel.run_next_job(worker="first", report=steal)
    finally:
        thief.close()
    assert ended is not None and ended.id == job.id
    assert (ended.state, ended.worker, ended.attempts) == (JobState.RUNNING, "thief", 2)
    assert _activations(mc) == [] and "cache" not in [r.op for r in mc.audit()]
    assert mc.verify_audit().ok


def test_a_transient_failure_is_retried_and_a_final_one_is_not(mc: memcubed.Memcubed,
                                                               lm: LocalTransformersLM) -> None:
    source = mc.add("The market opens at eight on Saturdays.")
    job = mc.submit_job("cache", cube_ids=[source.id])
    changed: list[int] = []

    def change_source(running: JobRecord, done: int, total: int) -> None:
        if total and done == total and not changed:  # a source changes under the first attempt: Conflict
            changed.append(mc.update(source.id, text="The market opens at nine on Saturdays.").version)

    first = mc.kernel.run_next_job(worker="w", report=change_source)
    assert first is not None and (first.id, first.state, first.attempts) == (job.id, JobState.QUEUED, 1)
    assert first.error is not None and first.error["code"] == "conflict"
    second = mc.kernel.run_next_job(worker="w")
    assert second is not None and (second.state, second.attempts) == (JobState.SUCCEEDED, 2)
    (act,) = _activations(mc)
    assert act.id == second.result["cube_id"] and act.derived_from[0].version == changed[0]  # type: ignore[index]
    doomed = mc.add("Soon deleted.")
    final = mc.submit_job("cache", cube_ids=[doomed.id])
    mc.delete(doomed.id)
    (failed,) = mc.run_jobs()
    assert (failed.id, failed.state, failed.attempts) == (final.id, JobState.FAILED, 1)
    assert failed.error is not None and failed.error["code"] == "not_found"


def test_a_transient_failure_on_the_last_attempt_fails_with_attempts_exhausted(
        backend: Backend, open_mc: OpenMc, lm: LocalTransformersLM) -> None:
    mc = open_mc(backend.location(), embedder="none", settings=Settings(job_max_attempts=1))
    source = mc.add("The market opens at eight on Saturdays.")
    job = mc.submit_job("cache", cube_ids=[source.id])

    def change_source(running: JobRecord, done: int, total: int) -> None:
        if total and done == total:
            mc.update(source.id, text="The market opens at nine on Saturdays.")

    ended = mc.kernel.run_next_job(worker="w", report=change_source)
    assert ended is not None and (ended.id, ended.state, ended.attempts) == (job.id, JobState.FAILED, 1)
    assert ended.error is not None and ended.error["code"] == "attempts_exhausted"
    assert ended.error["details"]["last_error"]["code"] == "conflict" and _activations(mc) == []
    assert mc.run_jobs() == []


def test_a_stopping_worker_gives_its_job_back_without_using_an_attempt(mc: memcubed.Memcubed,
                                                                       lm: LocalTransformersLM) -> None:
    job = mc.submit_job("cache", cube_ids=[mc.add(f"Line {i} of the harbour log.").id for i in range(3)])
    stop = threading.Event()

    def stop_now(running: JobRecord, done: int, total: int) -> None:
        stop.set()

    given_back = mc.kernel.run_next_job(worker="w", stop=stop, report=stop_now)
    assert given_back is not None and (given_back.id, given_back.state) == (job.id, JobState.QUEUED)
    assert given_back.attempts == 0 and given_back.worker is None and _activations(mc) == []
    (done,) = mc.run_jobs()
    assert (done.state, done.attempts) == (JobState.SUCCEEDED, 1) and len(_activations(mc)) == 1


_CLAIMER = """
import json, sys
from datetime import timedelta
from memcubed.backends.selection import open_backend
from memcubed.kernel.base import utcnow
from memcubed.schemas.jobs import JobState
store, _ = open_backend(sys.argv[1])
name, ran = sys.argv[2], []
while True:
    now = utcnow()
    with store.transaction():
        job = store.claim_job(name, now, ["cache"], lease_until=now + timedelta(seconds=60), max_attempts=3)
    if job is None:
        break
    with store.transaction():
        assert store.finish_job(job.id, JobState.SUCCEEDED, utcnow(), result={"by": name}, worker=name,
                                attempt=job.attempts)
    ran.append(job.id)
store.close()
print(json.dumps(ran))
"""


def test_workers_in_threads_and_processes_run_each_job_exactly_once(mc: memcubed.Memcubed, location: str) -> None:
    queued = [mc.submit_job("cache", cube_ids=[mc.add(f"Note {i}.").id]).id for i in range(60)]
    ran: list[str] = []
    lock = threading.Lock()

    def thread_worker(name: str) -> None:
        store, _ = open_backend(location)  # its own connections, as another process would have
        try:
            while True:
                now = utcnow()
                with store.transaction():
                    job = store.claim_job(name, now, ["cache"], lease_until=now + timedelta(seconds=60))
                if job is None:
                    return
                with store.transaction():
                    assert store.finish_job(job.id, JobState.SUCCEEDED, utcnow(), result={"by": name},
                                            worker=name, attempt=job.attempts)
                with lock:
                    ran.append(job.id)
        finally:
            store.close()

    processes = [subprocess.Popen([sys.executable, "-c", _CLAIMER, location, f"p{i}"], stdout=subprocess.PIPE,
                                  text=True) for i in range(3)]
    threads = [threading.Thread(target=thread_worker, args=(f"t{i}",)) for i in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    outputs: list[Any] = []
    for process in processes:
        out, _ = process.communicate(timeout=600)
        assert process.returncode == 0
        outputs.append(json.loads(out.strip().splitlines()[-1]))
    ran += [job_id for out in outputs for job_id in out]
    assert sorted(ran) == sorted(queued)  # every job exactly once
    jobs = mc.jobs(limit=1000)
    assert {(j.state, j.attempts) for j in jobs} == {(JobState.SUCCEEDED, 1)}
    assert {j.result["by"] for j in jobs} == {j.worker for j in jobs}  # type: ignore[index]
