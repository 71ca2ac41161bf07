"""Durable jobs under faults, with real processes: a `memcubed worker` killed with SIGKILL mid-compile or
mid-train loses its lease, a second worker finishes the job on its second attempt, exactly one derived cube
exists, garbage collection leaves no orphan blob, and the audit chain verifies (on SQLite and on PostgreSQL,
where the blobs live in the database too). SIGTERM gives a job back."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import memcubed
from memcubed import CubeKind
from memcubed.backends.models import LocalTransformersLM
from memcubed.schemas.jobs import JobRecord, JobState
from memcubed.testing.backends import Backend
from memcubed.testing.conformance.fixtures import OpenMc, backend, pg_cluster

__all__ = ["backend", "pg_cluster"]  # the conformance backends: the kill tests run on each

LEASE_S = 4.0  # short, so that a dead worker's job is free again soon; heartbeats keep a live one's
LONG = " ".join(f"Entry {i}: the lighthouse keeper logged a ship passing at dawn, with grey sails and a red hull."
                for i in range(12))
FAST = {"rank": 8, "alpha": 16, "statement_splits": [0.5], "epochs": 4, "learning_rate": 3e-3, "batch_size": 2,
        "rehearsal": 0, "rehearsal_tokens": 16, "answer_slack_tokens": 8}
FACTS = [("Velspar the potter lives in Cusco.", "Where does Velspar the potter live?", "Cusco"),
         ("Dravo the pilot collects blue marbles.", "What does Dravo the pilot collect?", "blue marbles")]


@pytest.fixture
def mc(open_mc: OpenMc, db_path: Path, monkeypatch: pytest.MonkeyPatch) -> memcubed.Memcubed:
    monkeypatch.setenv("MEMCUBED_JOB_LEASE_S", str(LEASE_S))
    return open_mc(db_path, embedder="none")


@pytest.fixture
def where(backend: Backend) -> str:
    """A fresh store on each conformance backend: a SQLite file, or a PostgreSQL database (DSN)."""
    return backend.location()


@pytest.fixture
def on_backend(where: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[memcubed.Memcubed]:
    """A client on ``where``; closed at teardown, before its store is removed."""
    monkeypatch.setenv("MEMCUBED_JOB_LEASE_S", str(LEASE_S))
    client = memcubed.open(where, embedder="none")
    yield client
    client.close()


def _worker(where: Path | str, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "MEMCUBED_JOB_LEASE_S": str(LEASE_S), "MEMCUBED_EMBEDDER": "none"}
    return subprocess.Popen([sys.executable, "-m", "memcubed", "--db", str(where), "worker", "--poll", "0.1",
                             "--no-gc", *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for(mc: memcubed.Memcubed, job_id: str, ready: Any, what: str, timeout: float = 600.0) -> JobRecord:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = mc.job(job_id)
        if ready(job):
            return job
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} never {what}: {mc.job(job_id)}")


def _take_over(mc: memcubed.Memcubed, job_id: str) -> JobRecord:
    """Run as the second worker once the dead one's lease ran out (nothing is claimable before)."""
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        finished = mc.kernel.run_next_job(worker="second")
        if finished is not None:
            assert finished.id == job_id
            return finished
        time.sleep(0.2)
    raise AssertionError("the job was never claimed again")


def _kill_mid_job(mc: memcubed.Memcubed, where: str, job_id: str, midway: Any) -> JobRecord:
    worker = _worker(where)
    try:
        running = _wait_for(mc, job_id, lambda j: j.state.finished or (j.state is JobState.RUNNING and midway(j)),
                            "got midway")
        os.kill(worker.pid, signal.SIGKILL)
    finally:
        worker.kill()
        worker.communicate()
    assert worker.returncode == -signal.SIGKILL
    assert (running.state, running.attempts) == (JobState.RUNNING, 1), running
    assert mc.job(job_id).state is JobState.RUNNING  # its dead worker's lease has not run out yet, or just did
    finished = _take_over(mc, job_id)
    assert (finished.state, finished.attempts, finished.worker) == (JobState.SUCCEEDED, 2, "second"), finished
    return finished


def _no_orphans(mc: memcubed.Memcubed) -> None:
    mc.collect_garbage(grace_s=0)
    stored = set(mc.kernel.blobs.iter_digests())
    assert stored and stored <= mc.kernel.store.referenced_digests()
    assert mc.verify_audit().ok


def _derived(mc: memcubed.Memcubed, kind: CubeKind) -> list[memcubed.MemCube]:
    return mc.list_cubes(filters={"kinds": [kind.value], "states": ["active", "stale"]}, limit=100)


def test_a_worker_killed_mid_compile_is_replaced(on_backend: memcubed.Memcubed, where: str,
                                                 lm: LocalTransformersLM) -> None:
    mc = on_backend
    sources = [mc.add(f"{LONG} Log {i}.") for i in range(10)]
    job = mc.submit_job("cache", cube_ids=[s.id for s in sources])
    finished = _kill_mid_job(mc, where, job.id, lambda j: j.total and 2 <= j.done < j.total)
    (act,) = _derived(mc, CubeKind.ACTIVATION)
    assert finished.result is not None and finished.result["cube_id"] == act.id
    assert sorted(r.id for r in act.derived_from) == sorted(s.id for s in sources)
    assert [r.op for r in mc.audit()].count("cache") == 1
    _no_orphans(mc)


def test_a_worker_killed_mid_train_is_replaced(on_backend: memcubed.Memcubed, where: str,
                                               lm: LocalTransformersLM) -> None:
    mc = on_backend
    facts = [mc.add(text, meta={"qa": [{"question": q, "answer": a}]}) for text, q, a in FACTS]
    job = mc.submit_job("consolidate", cube_ids=[f.id for f in facts], config=FAST, control=[])
    # Evaluation before training reports a step per probe, then training a step per batch: a third in is training.
    finished = _kill_mid_job(mc, where, job.id, lambda j: j.total and j.total // 3 <= j.done < j.total * 2 // 3)
    (adapter,) = _derived(mc, CubeKind.PARAMETER)
    assert finished.result is not None and finished.result["cube_id"] == adapter.id
    assert [r.op for r in mc.audit()].count("consolidate") == 1
    _no_orphans(mc)


def test_sigterm_gives_the_running_job_back(mc: memcubed.Memcubed, db_path: Path, lm: LocalTransformersLM) -> None:
    job = mc.submit_job("cache", cube_ids=[mc.add(f"{LONG} Log {i}.").id for i in range(10)])
    worker = _worker(db_path, "--kinds", "cache")
    try:
        _wait_for(mc, job.id, lambda j: j.state.finished or (j.total and 1 <= j.done < j.total), "started")
        worker.send_signal(signal.SIGTERM)
        _, err = worker.communicate(timeout=600)
    finally:
        worker.kill()
    assert worker.returncode == 0, err
    back = mc.job(job.id)
    assert (back.state, back.attempts, back.worker) == (JobState.QUEUED, 0, None), back
    assert f"job {job.id} cache attempt 1:" in err and "giving the running job back" in err
    assert _derived(mc, CubeKind.ACTIVATION) == []


def test_the_worker_refuses_unknown_kinds(db_path: Path, mc: memcubed.Memcubed) -> None:
    worker = _worker(db_path, "--kinds", "cache,defragment", "--once")
    _, err = worker.communicate(timeout=600)
    assert worker.returncode == 65 and "defragment" in err
