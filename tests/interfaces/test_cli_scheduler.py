"""``memcubed scheduler plan --dry-run | run | log`` end to end on a real SQLite file, and the REST routes."""

from __future__ import annotations

import json
from pathlib import Path

from fastapi.testclient import TestClient
from typer.testing import CliRunner

import memcubed
from memcubed.engines.scheduler import SchedulerLoop
from memcubed.interfaces.cli.app import app
from memcubed.interfaces.rest import create_app
from memcubed.testing.conformance.fixtures import OpenMc


def test_plan_run_and_log_from_the_command_line(tmp_path: Path) -> None:
    runner = CliRunner()
    db = str(tmp_path / "cli.db")

    def cli(*args: str, principal: str = "admin", expect: int = 0) -> str:
        result = runner.invoke(app, ["--db", db, "--principal", principal, "--embedder", "none", *args])
        assert result.exit_code == expect, (result.output, result.stderr)
        return result.stdout

    assert runner.invoke(app, ["--db", db, "--embedder", "none", "init"]).exit_code == 0
    cli("principal", "create", "alice")
    cube_id = cli("add", "the lighthouse keeper's name is Ada", principal="alice").strip()
    for _ in range(3):
        cli("get", cube_id, principal="alice")
    planned = json.loads(cli("--json", "scheduler", "plan", "--dry-run"))
    # alice's one hot memory becomes her working set (whose KV also serves it wherever it leads a prefix)
    assert [(d["action"], d["outcome"], d["principal"]) for d in planned["decisions"]] == [
        ("working_set", "planned", "alice")]
    assert planned["decisions"][0]["inputs"]["why"] == "no working set yet"
    assert json.loads(cli("--json", "scheduler", "log")) == []  # the dry run recorded nothing
    ran = json.loads(cli("--json", "scheduler", "run"))
    assert [(d["action"], d["outcome"]) for d in ran["decisions"]] == [("working_set", "done")]
    assert "work" in cli("scheduler", "log")  # the table wraps the action
    assert [d["targets"] for d in json.loads(cli("--json", "scheduler", "log", principal="alice"))] == [[cube_id]]
    assert "access_denied" in runner.invoke(app, ["--db", db, "--principal", "alice", "--embedder", "none",
                                                  "scheduler", "run"]).stderr


def test_rest_routes_and_the_background_loop(open_mc: OpenMc, db_path: Path) -> None:
    mc: memcubed.Memcubed = open_mc(db_path, embedder="none")
    mc.create_principal("alice")
    cube = mc.as_principal("alice").add("the bakery opens at six")
    for _ in range(3):
        mc.as_principal("alice").get(cube.id)
    mc.kernel.flush_events()
    with TestClient(create_app(mc.kernel), base_url="http://127.0.0.1") as client:
        admin = {"Authorization": f"Bearer {mc.create_api_key().key}"}
        alice = {"Authorization": f"Bearer {mc.create_api_key(owner='alice').key}"}
        plan = client.post("/scheduler/plan", json={}, headers=admin)
        assert plan.status_code == 200 and plan.json()["decisions"][0]["outcome"] == "planned"
        assert client.post("/scheduler/run", json={}, headers=alice).status_code == 403
        assert client.post("/scheduler/plan", json={"policy": "nope"}, headers=admin).status_code == 422
        assert client.get("/scheduler/log", headers=alice).json()["items"] == []
    loop = SchedulerLoop(mc.kernel, interval_s=3600)
    assert [d.outcome for d in loop.tick().decisions] == ["done"] and loop.ticks == 1
    assert [d.principal for d in mc.as_principal("alice").scheduler_log()] == ["alice"]
