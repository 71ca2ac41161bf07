"""Conformance: ``reembed`` moves a store to another embedder on every backend. Every live cube gets the new
embedder's vectors (windows too), the record, the vectors search reads and the query cache switch at once,
search keeps the old vectors until then, cubes written meanwhile are never left with a stale vector, forgotten
text is never embedded, a worker killed mid-job leaves the store on its old embedder and the retried job
completes with no staged row left, and only administrators may start it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

import memcubed
from memcubed import AccessDenied, BackendUnavailable, ConfigurationError, Settings, ValidationError
from memcubed.backends.base import Embedder
from memcubed.backends.embedders import make_embedder
from memcubed.backends.embedders.static import StaticEmbedder
from memcubed.schemas.jobs import JobState
from memcubed.testing.backends import RawDb
from memcubed.testing.conformance.fixtures import OpenMc
from memcubed.testing.static_model import write_static_model

__all__ = [
    "test_a_cancelled_reembed_keeps_the_old_embedder_and_no_staged_row",
    "test_a_killed_worker_leaves_the_old_embedder_and_the_retried_job_completes",
    "test_a_statement_run_many_times_before_a_switch_still_runs_after_it",
    "test_a_switch_between_two_searches_refuses_the_next_one_of_a_client_on_the_old_space",
    "test_cubes_written_during_the_job_end_with_the_new_vectors_and_forgotten_text_is_never_embedded",
    "test_non_admins_are_refused_and_bad_targets_write_nothing",
    "test_reembed_to_another_dimension_switches_vectors_record_and_search",
    "test_reembed_to_the_same_embedder_changes_nothing",
]

TEXTS = ["my dog is a good pet", "the car took the road", "a cat sat on the mat", "we drive the car home",
         "my dog chased the cat", "the road was long"]  # every text has a word the tiny models know
LONG = " ".join(["my dog is a good pet and the cat sat on the mat"] * 40)  # several windows for any window size


def _models(tmp_path: Path) -> tuple[str, str]:
    return (f"static:{write_static_model(tmp_path / 'eight', dim=8)}",
            f"static:{write_static_model(tmp_path / 'sixteen', dim=16, shift=0.5)}")


def _staged(raw: RawDb) -> int:
    return int(raw.execute("SELECT count(*) FROM vec_stage").fetchone()[0])


def _assert_vectors(mc: memcubed.Memcubed, model: Embedder | str, cube_ids: list[str]) -> None:
    """Each cube's stored vector is exactly what ``model`` (or the static folder ``spec``) embeds its text to,
    and its window vectors have the model's dimension."""
    if isinstance(model, str):
        model = StaticEmbedder(model.removeprefix("static:"))
    for cube_id in cube_ids:
        text = mc.get(cube_id).text or ""
        entry = mc.kernel.store.load_index_entry(cube_id)
        assert entry is not None and entry.vector is not None
        assert entry.vector.shape == (model.dim,)
        np.testing.assert_allclose(entry.vector, model.embed([text])[0], rtol=1e-4, atol=1e-5)
        assert all(v.shape == (model.dim,) for v in entry.chunks)


def test_a_statement_run_many_times_before_a_switch_still_runs_after_it(open_mc: OpenMc, location: str,
                                                                         tmp_path: Path) -> None:
    """A server keeps its connections: PostgreSQL's driver prepares a statement after a few runs on one, and a
    prepared statement whose result type changes (vector(8) -> vector(16)) would fail from then on on every
    connection but the one that switched."""
    old, small = _models(tmp_path)
    mc = open_mc(location, embedder=old)
    ids = [c.id for c in mc.add_many([{"text": t} for t in TEXTS])]
    store = mc.kernel.store
    for _ in range(24):  # past the driver's prepare threshold on every pooled connection
        entry = store.load_index_entry(ids[0])
        assert entry is not None and entry.vector is not None and len(entry.vector) == 8
    assert open_mc(location, embedder=old).reembed(small).dim == 16  # another client, its own connections
    for _ in range(24):
        entry = store.load_index_entry(ids[0])
        assert entry is not None and entry.vector is not None and len(entry.vector) == 16

def test_reembed_to_another_dimension_switches_vectors_record_and_search(
        open_mc: OpenMc, location: str, raw_db: Callable[[str], RawDb], tmp_path: Path) -> None:
    old, small = _models(tmp_path)
    windows = Settings(embed_windows=True)
    mc = open_mc(location, embedder=old, settings=windows)
    ids = [c.id for c in mc.add_many([{"text": t} for t in [*TEXTS, LONG]])]
    mc.archive(ids[1])  # archived cubes keep their vectors (a restore finds them): they move too
    before = [h.cube.id for h in mc.search("pet", mode="vector", k=3).hits]
    seen: list[tuple[int, int]] = []
    # 8 -> 384 dimensions (the packaged MiniLM, which embeds a long memory's later windows too)
    report = mc.reembed("local", batch=2, progress=lambda done, total: seen.append((done, total)))
    minilm = make_embedder("local")
    assert minilm is not None and minilm.dim == 384
    assert report.switched and (report.previous, report.embedder, report.dim) == (f"{old}|8", f"{minilm.name}|384",
                                                                                  384)
    assert report.cubes == len(ids) and report.late == 0
    assert seen[0] == (0, len(ids)) and seen[-1] == (len(ids), len(ids)) and len(seen) >= 4
    _assert_vectors(mc, minilm, ids)
    assert len(mc.kernel.store.load_index_entry(ids[-1]).chunks) >= 1  # type: ignore[union-attr]
    assert _staged(raw_db(location)) == 0
    # Search reads the new space at once, in this client: the query is embedded by the new model.
    assert mc.kernel.embedder is minilm
    after = [h.cube.id for h in mc.search("my pet dog", mode="vector", k=3).hits]
    assert before and after and set(after) <= set(ids)
    # 384 -> 16: the windows go (this static model has none)
    assert mc.reembed(small).dim == 16
    _assert_vectors(mc, small, ids)
    assert mc.kernel.store.load_index_entry(ids[-1]).chunks == ()  # type: ignore[union-attr]
    after = [h.cube.id for h in mc.search("pet", mode="vector", k=3).hits]
    # The record: a reopen without naming an embedder gets the new one; the old ones are refused.
    mc.close()
    again = open_mc(location, embedder=None, settings=Settings())
    assert again.kernel.embedder is not None and again.kernel.embedder.name == small
    assert [h.cube.id for h in again.search("pet", mode="vector", k=3).hits] == after
    for refused in (old, "local"):
        with pytest.raises(ConfigurationError):
            open_mc(location, embedder=refused)
    switch = [r for r in again.audit(limit=1000) if r.op == "embedder.switch"]
    assert [(r.principal, r.details["from"], r.details["to"], r.details["cubes"]) for r in switch] == [
        ("admin", f"{old}|8", f"{minilm.name}|384", len(ids)), ("admin", f"{minilm.name}|384", f"{small}|16", len(ids))]
    assert again.verify_audit().ok


@pytest.mark.parametrize("exact_up_to", [2_000, 0], ids=["exact", "index"])
def test_a_switch_between_two_searches_refuses_the_next_one_of_a_client_on_the_old_space(
        open_mc: OpenMc, location: str, tmp_path: Path, exact_up_to: int) -> None:
    old, new = _models(tmp_path)
    settings = Settings(exact_vectors_up_to=exact_up_to)  # 0: candidates from the index, then exact rescoring
    mc = open_mc(location, embedder=old, settings=settings)
    mc.add_many([{"text": t} for t in TEXTS])
    other = open_mc(location, embedder=old, settings=settings)  # another process's client
    first = [h.cube.id for h in other.search("pet", mode="vector", k=3).hits]
    for _ in range(2):  # searches in a row: whatever one keeps for the next
        assert [h.cube.id for h in other.search("pet", mode="vector", k=3).hits] == first
        assert other.search("my dog", k=2).hits
    assert mc.reembed(new, batch=2).switched
    for mode in ("vector", "hybrid"):  # never a score of the 8-dimensional query against the new space
        with pytest.raises(ConfigurationError) as info:
            other.search("pet", mode=mode, k=3)
        assert info.value.details["reason"] == "reembedded"
    assert other.search("pet", mode="lexical", k=3).hits
    assert mc.search("pet", mode="vector", k=3).hits
    # Back to the first space: the client on it searches again, the old embedder's vectors, as a fresh client.
    assert mc.reembed(old, batch=2).switched
    fresh = open_mc(location, embedder=old, settings=settings)
    assert [h.cube.id for h in other.search("pet", mode="vector", k=3).hits] == first
    assert [h.cube.id for h in fresh.search("pet", mode="vector", k=3).hits] == first


def test_reembed_to_the_same_embedder_changes_nothing(open_mc: OpenMc, location: str, tmp_path: Path) -> None:
    old, _ = _models(tmp_path)
    mc = open_mc(location, embedder=old)
    cube = mc.add("my dog is a good pet")
    vector = mc.kernel.store.load_index_entry(cube.id).vector  # type: ignore[union-attr]
    audit = [r.seq for r in mc.audit(limit=1000)]
    report = mc.reembed(old)
    assert not report.switched and report.cubes == 0 and report.embedder == report.previous
    assert [r.seq for r in mc.audit(limit=1000)] == audit
    np.testing.assert_array_equal(mc.kernel.store.load_index_entry(cube.id).vector, vector)  # type: ignore[union-attr]


def test_cubes_written_during_the_job_end_with_the_new_vectors_and_forgotten_text_is_never_embedded(
        open_mc: OpenMc, location: str, raw_db: Callable[[str], RawDb], tmp_path: Path) -> None:
    old, new = _models(tmp_path)
    mc = open_mc(location, embedder=old)
    ids = [c.id for c in mc.add_many([{"text": t} for t in TEXTS])]
    other = open_mc(location, embedder=old)  # another process's client, opened before the switch
    raw = raw_db(location)
    during: dict[str, str] = {}

    def meanwhile(done: int, total: int) -> None:
        if done == 2 and not during:
            # Search still answers from the old vectors (8 dimensions) while the job runs.
            assert other.search("pet", mode="vector", k=2).hits
            during["added"] = other.add("a brand new memory about my dog").id
            other.update(ids[0], text="my cat is a good pet now")  # already staged: must be re-done
            other.delete(ids[5])
            other.forget(ids[5])  # staged or not: its text is gone and must never be embedded
            other.update(ids[4], importance=0.9)  # metadata only: its staged vector stays valid

    report = mc.reembed(new, batch=2, progress=meanwhile)
    # The edited cube was staged before its edit: it is embedded again at the switch. The added one lies ahead
    # of the job's scan, which stages it in turn.
    assert report.switched and report.late >= 1
    live = [*ids[:5], during["added"]]
    _assert_vectors(mc, new, live)
    assert mc.kernel.store.load_index_entry(ids[5]) is None
    assert _staged(raw) == 0
    assert report.cubes == len(live)
    # The client still holding the old embedder may neither write vectors of the old space nor search them.
    for stale in (lambda: other.add("written with the old embedder"),
                  lambda: other.search("pet", mode="vector", k=1)):
        with pytest.raises(ConfigurationError) as info:
            stale()
        assert info.value.details["reason"] == "reembedded"
    assert other.search("pet", mode="lexical", k=1).hits  # lexical search needs no vectors
    assert mc.search("cat pet", mode="vector", k=1).hits


def test_non_admins_are_refused_and_bad_targets_write_nothing(
        open_mc: OpenMc, location: str, raw_db: Callable[[str], RawDb], tmp_path: Path) -> None:
    old, new = _models(tmp_path)
    mc = open_mc(location, embedder=old)
    mc.create_principal("alice")
    alice = mc.as_principal("alice")
    alice.add("alice's own memory about her dog")
    record = mc.kernel.store.get_meta("embedder")
    audit = len(mc.audit(limit=1000))
    with pytest.raises(AccessDenied):
        alice.reembed(new)
    with pytest.raises(AccessDenied):
        alice.submit_job("reembed", embedder=new)
    for bad in ({"embedder": "none"}, {"embedder": ""}, {"embedder": new, "batch": 0},
                {"embedder": new, "batch": "8"}, {"embedder": "x\x00y"}, {"embedder": new, "extra": 1}):
        with pytest.raises(ValidationError):
            mc.submit_job("reembed", **bad)
    with pytest.raises(BackendUnavailable):
        mc.reembed(f"static:{tmp_path / 'no-such-model'}")
    assert mc.kernel.store.get_meta("embedder") == record and mc.list_jobs() == []
    assert _staged(raw_db(location)) == 0
    denied = [r for r in mc.audit(limit=1000)[audit:] if r.op == "denied"]
    assert [r.principal for r in denied] == ["alice", "alice"]
    if not location.startswith("postgres"):  # a lexical-only store has no vectors to move
        lexical = open_mc(tmp_path / "lexical.db", embedder="none")
        lexical.add("plain words")
        with pytest.raises(ValidationError):
            lexical.reembed(new)


def test_a_cancelled_reembed_keeps_the_old_embedder_and_no_staged_row(
        open_mc: OpenMc, location: str, raw_db: Callable[[str], RawDb], tmp_path: Path) -> None:
    old, new = _models(tmp_path)
    mc = open_mc(location, embedder=old)
    mc.add_many([{"text": t} for t in TEXTS])
    record = mc.kernel.store.get_meta("embedder")
    job = mc.submit_job("reembed", embedder=new, batch=1)

    staged: list[int] = []

    def cancel_midway(running: object, done: int, total: int) -> None:
        time.sleep(0.25)  # longer than the progress interval: every report reaches this callback
        if 0 < done < total and not staged:
            staged.append(_staged(raw_db(location)))
            mc.cancel_job(job.id)

    ended = mc.kernel.run_next_job(worker="w", report=cancel_midway)
    assert ended is not None and ended.id == job.id and ended.state is JobState.CANCELLED, ended
    assert staged and staged[0] > 0
    assert mc.kernel.embedder is not None and mc.kernel.embedder.name == old
    assert mc.kernel.store.get_meta("embedder") == record
    assert _staged(raw_db(location)) == 0
    assert mc.search("pet", mode="vector", k=1).hits


REEMBED_CHILD = """
# A worker that runs the queued reembed job and hangs, mid-job, at its first progress report past the start.
import sys, time
import memcubed
where = sys.argv[1]
mc = memcubed.open(where, embedder=None)

def report(job, done, total):
    time.sleep(0.25)  # longer than the progress interval: the next report, past the start, reaches here
    if 0 < done:
        print("midway", done, total, flush=True)
        time.sleep(600)

mc.kernel.run_next_job(worker="doomed", report=report)
"""


def test_a_killed_worker_leaves_the_old_embedder_and_the_retried_job_completes(
        open_mc: OpenMc, location: str, raw_db: Callable[[str], RawDb], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEMCUBED_JOB_LEASE_S", "2")
    old, new = _models(tmp_path)
    mc = open_mc(location, embedder=old)
    ids = [c.id for c in mc.add_many([{"text": f"{t} number {i}"} for i in range(40) for t in TEXTS[:2]])]
    job = mc.submit_job("reembed", embedder=new, batch=4)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "MEMCUBED_JOB_LEASE_S": "2"}
    env.pop("MEMCUBED_EMBEDDER", None)
    child = subprocess.Popen([sys.executable, "-c", REEMBED_CHILD, location], env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        line = child.stdout.readline()
        assert line.startswith("midway"), child.stderr.read() if child.stderr else line
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.kill()
        child.communicate()
    assert child.returncode == -signal.SIGKILL
    raw = raw_db(location)
    assert _staged(raw) > 0  # it had staged part of the new space
    # The store is still on its old embedder, and searchable with it.
    reopened = open_mc(location, embedder=None)
    assert reopened.kernel.embedder is not None and reopened.kernel.embedder.name == old
    assert reopened.search("dog pet", mode="vector", k=3).hits
    _assert_vectors(reopened, old, ids[:3])
    deadline = time.monotonic() + 300
    ended = None
    while ended is None and time.monotonic() < deadline:
        ended = reopened.kernel.run_next_job(worker="second")
        time.sleep(0.2)
    assert ended is not None and ended.id == job.id and ended.state is JobState.SUCCEEDED, ended
    assert ended.attempts == 2 and ended.result is not None and ended.result["cubes"] == len(ids)
    _assert_vectors(reopened, new, ids)
    assert _staged(raw) == 0
    assert open_mc(location, embedder=None).kernel.embedder.name == new  # type: ignore[union-attr]
