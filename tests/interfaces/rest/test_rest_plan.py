"""The planner over REST and MCP: propose with a configured (scripted, real HTTP) model, execute with the
caller's rights; a client can neither name a model path nor plan administration over the network."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest
from fastapi.testclient import TestClient
from mcp import Client

import memcubed
from memcubed.interfaces.mcp import build_mcp_server
from memcubed.interfaces.rest import create_app
from memcubed.settings import Settings
from memcubed.testing.openai_server import ScriptedChat, serve_openai

Stack = tuple[memcubed.Memcubed, TestClient, TestClient, ScriptedChat]


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    """An admin client, REST clients holding alice's and bob's keys, and the scripted upstream model."""
    scripted = ScriptedChat([], then='{"steps": []}')
    with serve_openai(chat=scripted) as url:
        settings = Settings(models={"local": "local", "scripted": "openai:planner"}, model_base_url=url)
        with memcubed.open(tmp_path / "plan.db", embedder="none", settings=settings) as mc, \
                TestClient(create_app(mc.kernel), base_url="http://127.0.0.1") as alice:
            bob = TestClient(alice.app, base_url="http://127.0.0.1")
            for name, client in (("alice", alice), ("bob", bob)):
                mc.create_principal(name)
                client.headers["Authorization"] = f"Bearer {mc.create_api_key(name).key}"
            yield mc, alice, bob, scripted


def test_propose_and_execute_over_rest_act_with_the_callers_rights(stack: Stack) -> None:
    mc, alice, bob, scripted = stack
    secret = alice.post("/cubes", json={"text": "alice's locker is 12"}).json()["id"]
    scripted.replies = [json.dumps({"steps": [
        {"id": "a", "op": "add", "args": {"text": "bob's plan worked"}},
        {"id": "b", "op": "forget", "args": {"cube_id": secret}},
        {"id": "c", "op": "create_principal", "args": {"name": "eve", "is_admin": True}}]})]
    proposed = bob.post("/plans/propose", json={"goal": "tidy up", "model": "scripted"})
    assert proposed.status_code == 200, proposed.text
    assert proposed.json()["model"] == "openai:planner" and secret not in json.dumps(scripted.received)
    ran = bob.post("/plans/execute", json={"plan": proposed.json()["plan"]})
    assert ran.status_code == 200, ran.text
    assert [(s["status"], s["code"]) for s in ran.json()["steps"]] == [
        ("ran", None), ("rejected", "not_found"), ("rejected", "access_denied")]
    assert mc.get(secret).version == 1 and "eve" not in [p.name for p in mc.list_principals()]
    # An administrator's key does not let a plan administer over HTTP either.
    admin = TestClient(alice.app, base_url="http://127.0.0.1",
                       headers={"Authorization": f"Bearer {mc.create_api_key().key}"})
    admin_plan = {"steps": [{"id": "c", "op": "create_principal", "args": {"name": "eve"}}]}
    refused = admin.post("/plans/execute", json={"plan": admin_plan}).json()["steps"][0]
    assert refused["status"] == "rejected" and refused["code"] == "access_denied"


@pytest.mark.parametrize("model", ["local:/etc", "openai:gpt-4o", "../x"])
def test_propose_refuses_a_model_that_is_not_configured(stack: Stack, model: str) -> None:
    mc, alice, _, scripted = stack
    refused = alice.post("/plans/propose", json={"model": model})
    assert refused.status_code == 422 and refused.json()["error"]["details"]["allowed"] == ["local", "scripted"]
    assert scripted.received == [] and [r.op for r in mc.audit()].count("plan.propose") == 0


def test_a_malformed_proposal_is_a_422_with_its_reason(stack: Stack) -> None:
    _, alice, _, scripted = stack
    scripted.replies = ['{"steps": [{"id": "a", "op": "add", "args": {"text": "cut off']
    refused = alice.post("/plans/propose", json={"model": "scripted"})
    assert refused.status_code == 422
    assert refused.json()["error"]["code"] == "malformed_plan"
    assert refused.json()["error"]["details"]["reason"] == "truncated"


def test_mcp_executes_a_plan_as_its_principal(stack: Stack) -> None:
    mc, alice, _, _ = stack
    secret = alice.post("/cubes", json={"text": "alice's locker is 12"}).json()["id"]
    server = build_mcp_server(mc.kernel, lambda _ctx, _op: "bob")
    plan = {"steps": [{"id": "a", "op": "delete", "args": {"cube_id": secret}}]}

    async def main() -> None:
        async with Client(server) as client:
            result = (await client.call_tool("execute_plan", {"request": {"plan": plan}})).structured_content
            assert result is not None and result["steps"][0]["code"] == "not_found"

    anyio.run(main)
    assert mc.get(secret).state.value == "active"
