"""The scheduler runs by itself: ``memcubed serve`` ticks it, hot plaintext becomes KV with no one asking,
and a plan's steps are judged against the scheduler's budgets."""

from __future__ import annotations

import time
from pathlib import Path

import httpx

import memcubed
from memcubed.schemas.plan import StepStatus
from memcubed.settings import Settings
from memcubed.testing.conformance.fixtures import OpenMc
from memcubed.testing.server import running_server


def test_serve_caches_hot_memories_by_itself(tmp_path: Path) -> None:
    env = {"MEMCUBED_SCHEDULER_ENABLED": "1", "MEMCUBED_SCHEDULER_INTERVAL_S": "1",
           "MEMCUBED_EVENTS_FLUSH_INTERVAL_S": "0.2"}
    with running_server(tmp_path / "served.db", env=env) as server:
        admin = {"Authorization": f"Bearer {server.admin_key}"}
        with httpx.Client(base_url=server.url, timeout=60) as http:
            assert http.post("/principals", json={"name": "alice"}, headers=admin).status_code == 201
            issued = http.post("/principals/alice/keys", json={"scope": "write"}, headers=admin).json()
            alice = {"Authorization": f"Bearer {issued['key']}"}
            cube = http.post("/cubes", json={"text": "the lighthouse keeper is called Ada"}, headers=alice).json()
            other = http.post("/cubes", json={"text": "a cold note nobody reads"}, headers=alice).json()
            for _ in range(4):
                assert http.get(f"/cubes/{cube['id']}", headers=alice).status_code == 200
            deadline, found = time.monotonic() + 240, []
            while time.monotonic() < deadline and not found:
                time.sleep(1)
                page = http.get("/cubes", params={"kind": "activation"}, headers=alice).json()
                found = page["items"]
            assert found, "no activation cube appeared: the scheduler did not cache the hot memory"
            assert [ref["id"] for ref in found[0]["derived_from"]] == [cube["id"]]
            assert other["id"] not in [ref["id"] for item in found for ref in item["derived_from"]]
            log = http.get("/scheduler/log", headers=alice).json()["items"]
            # Her one hot memory became her working set (an activation cube of its KV), chosen by the scheduler.
            assert any(d["action"] == "working_set" and d["targets"] == [cube["id"]] for d in log)
            assert found[0]["source"]["uri"] == "working-set"


def test_a_plan_is_held_to_the_schedulers_budgets(open_mc: OpenMc, db_path: Path) -> None:
    mc: memcubed.Memcubed = open_mc(db_path, embedder="none",
                                    settings=Settings(scheduler_budgets={"compile_tokens_per_hour": 0}))
    mc.create_principal("bob")
    bob = mc.as_principal("bob")
    note = bob.add("bob keeps the spare key under the blue pot").id
    report = bob.execute_plan({"steps": [{"id": "k", "op": "cache", "args": {"cube_ids": [note]}},
                                         {"id": "s", "op": "search", "args": {"query": "spare key"}}]})
    steps = {s.id: s for s in report.steps}
    assert steps["k"].status is StepStatus.REJECTED and "compile_tokens_per_hour" in (steps["k"].reason or "")
    assert steps["s"].status is StepStatus.RAN
    assert mc.jobs() == []  # nothing was queued
