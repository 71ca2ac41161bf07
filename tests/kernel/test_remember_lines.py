"""``extract_format = "lines"``: the extractor answers ``turn id | subject | fact`` lines, which become facts
derived from their turns through the same resolution as JSON answers; a bad answer is retried like one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from memcubed.schemas.jobs import JobState
from memcubed.settings import Settings
from memcubed.testing.conformance.fixtures import OpenMc
from memcubed.testing.conformance.remember import turn
from memcubed.testing.openai_server import ScriptedChat, serve_openai


def test_fact_lines_become_traced_facts_and_a_bad_answer_is_retried(open_mc: OpenMc, db_path: Path) -> None:
    answers = ["t1 | Alice | Alice adopted a cat named Tom.\nt1,t2 | Tom | Tom is a grey cat.",
               "Sure! Alice likes tea.", "t1 | Alice | Alice likes tea."]

    def reply(messages: list[dict[str, Any]]) -> str:  # the resolver (asked when a fact looks known) adds
        return '{"action": "add"}' if "known" in messages[-1]["content"] else answers.pop(0)

    script = ScriptedChat([reply] * 10)
    with serve_openai(chat=script) as url:
        mc = open_mc(db_path, embedder="none", settings=Settings(
            models={"local": "local", "extractor": "openai:scripted"}, model_base_url=url, extractor="extractor",
            extract_format="lines"))
        mc.create_principal("alice")
        alice = mc.as_principal("alice")
        result = alice.remember([turn(1, "I adopted a cat named Tom."), turn(2, "He is grey.")])
        assert result.extracted and result.counts["add"] == 2 and result.counts["traced"] == 2
        assert "t1 | Anna | Anna moved" in script.received[0][0]["content"]  # the lines prompt, not the JSON one
        tom = alice.get(result.facts[1].cube_id or "")
        assert [r.id for r in tom.derived_from] == [t.cube_id for t in result.turns] and tom.meta["subject"] == "Tom"
        again = alice.remember([turn(3, "I like tea.")])
        assert again.extracted is False and again.retry_job is not None and "line 1 of 1 is not" in (again.reason or "")
        [job] = alice.run_jobs()
        assert job.state is JobState.SUCCEEDED and job.result is not None and job.result["counts"]["add"] == 1
