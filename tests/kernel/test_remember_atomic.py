"""A failed extraction's turns, its failure record and its retry job are one write: a fault between them, or
a process killed while the model is asked, never leaves a stored turn whose extraction has no retry. The
retry job's own output (every fact and its successor) commits once, with the job's end."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from memcubed.errors import BudgetExceeded, StorageError
from memcubed.schemas.jobs import JobState
from memcubed.testing.conformance.fixtures import OpenMc
from memcubed.testing.conformance.remember import facts, turn
from memcubed.testing.conformance.remember_crash import REMEMBER_CHILD, extractor_settings, orphan_turns
from memcubed.testing.openai_server import ScriptedChat, serve_openai

_REFUSE_JOBS = "CREATE TRIGGER refuse_jobs BEFORE INSERT ON jobs BEGIN SELECT RAISE(ABORT, 'disk gone'); END"


def test_a_fault_before_the_retry_job_is_stored_stores_no_turn(open_mc: OpenMc, db_path: Path,
                                                               raw_db: Any) -> None:
    script = ScriptedChat(["Sure! Alice adopted a cat.", "not json either"])
    with serve_openai(chat=script) as url:
        mc = open_mc(db_path, embedder="none", settings=extractor_settings(url))
        mc.create_principal("alice")
        alice = mc.as_principal("alice")
        raw = raw_db(db_path)
        raw.execute(_REFUSE_JOBS)  # the write fails after the turns are inserted, when the retry job is
        with pytest.raises(StorageError):
            alice.remember([turn(1, "I adopted a cat named Tom."), turn(2, "He is grey.")])
        assert alice.list_cubes() == [] and orphan_turns(alice) == []
        raw.execute("DROP TRIGGER refuse_jobs")
        result = alice.remember([turn(1, "I adopted a cat named Tom."), turn(2, "He is grey.")])  # the resend
        assert [t.action for t in result.turns] == ["added", "added"] and result.retry_job is not None
        assert orphan_turns(alice) == []
        [submitted] = [r for r in mc.audit(limit=100) if r.op == "job.submit"]  # the failure record
        assert submitted.details["job"] == result.retry_job and submitted.details["attempt"] == 1
        assert submitted.details["failure"] and submitted.details["failure"] in (result.reason or "")


def test_a_process_killed_while_the_model_is_asked_leaves_no_turn_without_its_retry(
        open_mc: OpenMc, db_path: Path) -> None:
    asked, release = threading.Event(), threading.Event()

    def hang(messages: Any) -> str:
        asked.set()
        release.wait(120)
        return "never read"

    script = ScriptedChat([hang, "Sure! Alice adopted a cat."])
    turns = [turn(1, "I adopted a cat named Tom."), turn(2, "He is grey.")]
    wire = json.dumps(turns, default=str)
    with serve_openai(chat=script) as url:
        mc = open_mc(db_path, embedder="none", settings=extractor_settings(url))
        mc.create_principal("alice")
        alice = mc.as_principal("alice")
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
        child = subprocess.Popen([sys.executable, "-c", REMEMBER_CHILD, str(db_path), url, wire], env=env)
        try:
            assert asked.wait(300), "the child never asked the model"
            os.kill(child.pid, signal.SIGKILL)  # dies mid-call: nothing it did may leave a turn behind
            child.wait()
        finally:
            release.set()
            if child.poll() is None:
                child.kill()
        assert alice.list_cubes() == [] and orphan_turns(alice) == []
        result = alice.remember(turns)  # the client resends what was never acknowledged
        assert result.retry_job is not None and orphan_turns(alice) == []


def test_a_retry_job_commits_all_its_facts_and_its_successor_with_its_end(open_mc: OpenMc, db_path: Path) -> None:
    script = ScriptedChat(["prose", "prose", facts(("Alice", "Alice adopted a cat named Tom.", ["t1"]),
                                                   ("Tom", "Tom is a grey cat.", ["t2"])), "prose again"])
    with serve_openai(chat=script) as url:
        mc = open_mc(db_path, embedder="none", settings=extractor_settings(url, extract_batch_turns=2))
        mc.create_principal("alice")
        alice = mc.as_principal("alice")
        result = alice.remember([turn(1, "I adopted a cat named Tom."), turn(2, "He is grey."),
                                 turn(3, "I also like tea.")])
        assert result.retry_job is not None and result.extracted is False
        [job] = alice.run_jobs(limit=1)
        # The first batch's two facts and the queued retry of the second batch: one output, one end.
        assert job.state is JobState.SUCCEEDED and job.result is not None, job.error
        assert job.result["counts"]["add"] == 2 and job.result["retry_job"] is not None
        assert alice.job(job.result["retry_job"]).params == {"cube_ids": [result.turns[2].cube_id], "attempt": 3}
        assert sorted(f.text or "" for f in alice.list_cubes(filters={"tags": ["fact"]})) == [
            "Alice adopted a cat named Tom.", "Tom is a grey cat."]
        assert orphan_turns(alice) == []


def test_turns_over_the_quota_store_nothing_and_queue_no_retry(open_mc: OpenMc, db_path: Path) -> None:
    with serve_openai(chat=ScriptedChat(["prose"])) as url:
        mc = open_mc(db_path, embedder="none", settings=extractor_settings(url, quota_cubes=1))
        mc.create_principal("alice")
        alice = mc.as_principal("alice")
        with pytest.raises(BudgetExceeded):
            alice.remember([turn(1, "I adopted a cat named Tom."), turn(2, "He is grey.")])
        assert alice.list_cubes() == [] and alice.list_jobs() == []
        assert [r.op for r in mc.audit(limit=100) if r.op in ("add", "job.submit")] == []
