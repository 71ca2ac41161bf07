"""``memcubed plan propose`` and ``plan execute`` through Typer's CliRunner, with a scripted upstream model."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from memcubed.interfaces.cli.app import app
from memcubed.testing.openai_server import ScriptedChat, serve_openai


@pytest.fixture
def scripted() -> Iterator[tuple[ScriptedChat, dict[str, str]]]:
    chat = ScriptedChat([], then='{"steps": []}')
    with serve_openai(chat=chat) as url:
        yield chat, {"MEMCUBED_MODELS": json.dumps({"local": "local", "scripted": "openai:planner"}),
                     "MEMCUBED_MODEL_BASE_URL": url}


def test_propose_execute_and_dry_run_from_the_command_line(tmp_path: Path,
                                                           scripted: tuple[ScriptedChat, dict[str, str]]) -> None:
    chat, env = scripted
    runner = CliRunner()
    db = str(tmp_path / "cli.db")

    def cli(*args: str, principal: str = "admin", expect: int = 0) -> Any:
        result = runner.invoke(app, ["--db", db, "--principal", principal, "--embedder", "none", *args], env=env)
        assert result.exit_code == expect, (result.exit_code, result.output)
        return result

    assert runner.invoke(app, ["--db", db, "--embedder", "none", "init"], env=env).exit_code == 0
    cli("principal", "create", "bob")
    secret = cli("add", "admin's own note").stdout.strip()
    plan = {"steps": [{"id": "a", "op": "add", "args": {"text": "from the plan"}},
                      {"id": "b", "op": "delete", "args": {"cube_id": secret}}]}
    chat.replies = [f"```json\n{json.dumps(plan)}\n```"] * 3
    shown = json.loads(cli("--json", "plan", "propose", "--goal", "note it", "--model", "scripted",
                           principal="bob").stdout)
    assert [s["op"] for s in shown["plan"]["steps"]] == ["add", "delete"]
    dry = json.loads(cli("--json", "plan", "propose", "--model", "scripted", "--dry-run", principal="bob").stdout)
    assert [s["status"] for s in dry["report"]["steps"]] == ["valid", "rejected"]
    ran = json.loads(cli("--json", "plan", "propose", "--model", "scripted", "--execute", principal="bob").stdout)
    assert [(s["status"], s["code"]) for s in ran["report"]["steps"]] == [("ran", None), ("rejected", "not_found")]
    assert "(no summary)" in cli("plan", "propose", "--model", "scripted", principal="bob").stdout
    chat.replies = [json.dumps({"summary": "scripted", **plan})] * 2
    assert "plan executed" in cli("plan", "propose", "--model", "scripted", "--execute", principal="bob").stdout
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(plan))
    table = cli("plan", "execute", str(path), "--dry-run", principal="bob").stdout
    assert "dry run" in table and "rejected" in table
    # A file that is no JSON plan is refused with the data-error exit code; a malformed reply likewise.
    path.write_text("not json")
    cli("plan", "execute", str(path), expect=65)
    path.write_text("[]")
    cli("plan", "execute", str(path), expect=65)
    chat.replies = ['{"steps": [{"id": "a", "op": "add", "args": {"text": "cut']
    assert "truncated" in cli("plan", "propose", "--model", "scripted", expect=65).output
