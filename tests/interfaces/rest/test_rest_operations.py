"""The operations REST gained from the registry (list_cubes, chat, generate, generate_with_adapters,
consolidate, submit_job, recompile, archive), in process, with the packaged model and small requests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest
from fastapi.testclient import TestClient
from mcp import Client

import memcubed
from memcubed.backends import models as model_backends
from memcubed.backends.models import LocalTransformersLM
from memcubed.interfaces.mcp import build_mcp_server
from memcubed.interfaces.rest import create_app

HOSTILE = ["local:/etc", "../x", "HuggingFaceTB/SmolLM2-360M-Instruct"]


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[tuple[memcubed.Memcubed, TestClient, TestClient]]:
    """An admin client, and REST clients holding alice's and bob's keys."""
    with memcubed.open(tmp_path / "ops.db", embedder="none") as mc, \
            TestClient(create_app(mc.kernel), base_url="http://127.0.0.1") as alice:
        bob = TestClient(alice.app, base_url="http://127.0.0.1")  # the lifespan runs once, in alice's
        for name, client in (("alice", alice), ("bob", bob)):
            mc.create_principal(name)
            client.headers["Authorization"] = f"Bearer {mc.create_api_key(name).key}"
        yield mc, alice, bob


def test_list_cubes_pages_what_the_caller_may_read(stack: tuple[memcubed.Memcubed, TestClient, TestClient]) -> None:
    _, alice, bob = stack
    ids = [alice.post("/cubes", json={"text": f"note {i}", "tags": ["n"] if i % 2 else []}).json()["id"]
           for i in range(5)]
    bob.post("/cubes", json={"text": "bob's own"})
    first = alice.get("/cubes", params={"limit": 2}).json()
    assert [c["id"] for c in first["items"]] == ids[::-1][:2] and first["next"] == 2
    rest = alice.get("/cubes", params={"limit": 2, "offset": 2}).json()["items"]
    assert [c["id"] for c in rest] == ids[::-1][2:4]
    tagged = alice.get("/cubes", params=[("tag", "n")]).json()["items"]
    assert {c["id"] for c in tagged} == {ids[1], ids[3]}
    assert [c["text"] for c in bob.get("/cubes").json()["items"]] == ["bob's own"]
    alice.delete(f"/cubes/{ids[0]}")
    assert ids[0] not in {c["id"] for c in alice.get("/cubes").json()["items"]}
    deleted = alice.get("/cubes", params=[("state", "deleted")]).json()["items"]
    assert [c["id"] for c in deleted] == [ids[0]]
    assert alice.get("/cubes", params={"limit": 0}).status_code == 422


def test_generation_routes(stack: tuple[memcubed.Memcubed, TestClient, TestClient], lm: LocalTransformersLM) -> None:
    _, alice, bob = stack
    cube = alice.post("/cubes", json={"text": "The ferry to Lysholm leaves at nine."}).json()
    chat = alice.post("/chat", json={"messages": [{"role": "user", "content": "When does the ferry leave?"}],
                                     "k": 1, "max_new_tokens": 2, "model": "local"})
    assert chat.status_code == 200, chat.text
    assert chat.json()["used"] == [cube["id"]] and chat.json()["via"] == "kv"
    assert bob.post("/chat", json={"messages": [{"role": "user", "content": "When does the ferry leave?"}],
                                   "k": 1, "max_new_tokens": 2}).json()["used"] == []
    plain = alice.post("/generate", json={"query": "The ferry", "max_new_tokens": 2})
    assert plain.status_code == 200 and plain.json()["injected"] == []
    adapters = alice.post("/generate/adapters", json={"query": "The ferry", "max_new_tokens": 2})
    assert adapters.status_code == 200 and adapters.json()["adapters"] == []
    # Someone else's cube as an activation: refused as get would refuse it.
    stolen = bob.post("/generate", json={"query": "x", "activation_id": cube["id"], "max_new_tokens": 2})
    assert stolen.status_code == 404
    not_activation = alice.post("/generate", json={"query": "x", "activation_id": cube["id"]})
    assert not_activation.status_code == 422


@pytest.mark.parametrize("model", HOSTILE)
def test_no_route_takes_a_model_path(stack: tuple[memcubed.Memcubed, TestClient, TestClient], model: str) -> None:
    mc, alice, _ = stack
    cube = alice.post("/cubes", json={"text": "The ferry leaves at nine."}).json()
    loaded = set(model_backends._LOADED)
    calls = [("/chat", {"messages": [{"role": "user", "content": "hi"}], "model": model}),
             ("/generate", {"query": "hi", "model": model}),
             ("/generate/adapters", {"query": "hi", "model": model}),
             ("/consolidate", {"cube_ids": [cube["id"]], "model": model}),
             ("/jobs", {"kind": "cache", "params": {"cube_ids": [cube["id"]], "model": model}})]
    for path, body in calls:
        refused = alice.post(path, json=body)
        assert refused.status_code == 422, (path, refused.text)
        assert refused.json()["error"]["details"]["allowed"] == ["local"], path
    refused = alice.post(f"/cubes/{cube['id']}/recompile", params={"model": model})
    assert refused.status_code == 422 and refused.json()["error"]["details"]["allowed"] == ["local"]
    assert mc.jobs() == [] and set(model_backends._LOADED) == loaded and model not in str(loaded)


def test_jobs_recompile_and_archive_routes(stack: tuple[memcubed.Memcubed, TestClient, TestClient]) -> None:
    mc, alice, bob = stack
    cube = alice.post("/cubes", json={"text": "The ferry leaves at nine."}).json()
    queued = alice.post("/consolidate", json={"cube_ids": [cube["id"]]})
    assert queued.status_code == 202 and queued.json()["kind"] == "consolidate"
    submitted = alice.post("/jobs", json={"kind": "cache", "params": {"cube_ids": [cube["id"]]}})
    assert submitted.status_code == 202 and submitted.json()["state"] == "queued"
    assert bob.post("/jobs", json={"kind": "cache", "params": {"cube_ids": [cube["id"]]}}).status_code == 404
    assert alice.post("/jobs", json={"kind": "defragment"}).status_code == 422
    assert len(mc.jobs()) == 2
    # A plaintext cube is never recompiled; it can be archived (and restored) by its owner, not by a stranger.
    assert alice.post(f"/cubes/{cube['id']}/recompile").status_code == 422
    assert bob.post(f"/cubes/{cube['id']}/archive").status_code == 404
    archived = alice.post(f"/cubes/{cube['id']}/archive")
    assert archived.status_code == 200 and archived.json()["state"] == "archived"
    restored = alice.post(f"/cubes/{cube['id']}/restore")
    assert restored.status_code == 200 and restored.json()["state"] == "active"
    assert alice.post(f"/cubes/{cube['id']}/restore").status_code == 422  # not archived
    deleted = alice.delete(f"/cubes/{cube['id']}")
    assert deleted.status_code == 200
    assert alice.post(f"/cubes/{cube['id']}/undelete").json()["state"] == "active"


def test_mcp_reaches_the_generated_tools(stack: tuple[memcubed.Memcubed, TestClient, TestClient]) -> None:
    mc, _, _ = stack
    server = build_mcp_server(mc.kernel, lambda _ctx, _op: "alice")
    alice = mc.as_principal("alice")
    cube = alice.add("the heron fishes at dawn")
    alice.share(cube.id, "bob")

    async def main() -> None:
        async with Client(server) as client:
            listed = (await client.call_tool("list_cubes", {"request": {}})).structured_content
            assert listed is not None and [c["id"] for c in listed["result"]] == [cube.id]
            revoked = (await client.call_tool("revoke", {"request": {"cube_id": cube.id, "grantee": "bob"}}))
            assert revoked.structured_content is not None and revoked.structured_content["acl"] == []
            job = (await client.call_tool("cache", {"request": {"cube_ids": [cube.id]}})).structured_content
            assert job is not None and job["kind"] == "cache" and job["state"] == "queued"
            bad = await client.call_tool("cache", {"request": {"cube_ids": [cube.id], "model": "local:/etc"}})
            assert bad.is_error and "allowed" in bad.content[0].text
            deleted = (await client.call_tool("delete", {"request": {"cube_id": cube.id}})).structured_content
            assert deleted is not None and deleted["state"] == "deleted"

    anyio.run(main)
    assert len(mc.jobs()) == 1


def test_the_schema_publishes_the_allowed_model_ids(stack: tuple[memcubed.Memcubed, TestClient, TestClient]) -> None:
    _, alice, _ = stack
    spec = alice.get("/openapi.json").json()
    schemas = spec["components"]["schemas"]
    for name in ("CacheJob", "ConsolidateJob", "ChatInput", "GenerateInput", "AdapterGenerateInput"):
        branches = schemas[name]["properties"]["model"]["anyOf"]
        assert [b["enum"] for b in branches if b.get("type") == "string"] == [["local"]], name
    recompile = spec["paths"]["/cubes/{cube_id}/recompile"]["post"]["parameters"]
    assert ["local"] in [b.get("enum") for p in recompile if p["name"] == "model" for b in p["schema"]["anyOf"]]
    # The proxy's model is the upstream's business: left free.
    assert "enum" not in str(schemas["ChatCompletionRequest"]["properties"]["model"])
