"""``reembed`` through every interface: only administrators may start it, over REST (a real ``memcubed serve``
process, whose own worker runs the job), MCP (streamable HTTP on that server), the CLI and the Python API;
an administrator's job switches the server's store and its searches go on in the new space."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from typer.testing import CliRunner

import memcubed
from memcubed import AccessDenied
from memcubed.interfaces.cli.app import app
from memcubed.testing.server import RunningServer, running_server
from memcubed.testing.static_model import write_static_model


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    folder = tmp_path_factory.mktemp("models")
    return (f"static:{write_static_model(folder / 'eight', dim=8)}",
            f"static:{write_static_model(folder / 'sixteen', dim=16, shift=0.5)}")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, models: tuple[str, str]) -> Iterator[RunningServer]:
    with running_server(tmp_path_factory.mktemp("reembed") / "server.db", embedder=models[0]) as running:
        yield running


def _client(server: RunningServer, key: str | None) -> httpx.Client:
    return httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {key}"}, timeout=60)


def _user(server: RunningServer, name: str) -> str:
    with _client(server, server.admin_key) as admin:
        admin.post("/principals", json={"name": name}).raise_for_status()
        key: str = admin.post(f"/principals/{name}/keys", json={}).json()["key"]
    return key


def _error(result: Any) -> dict[str, Any]:
    assert result.is_error
    text = result.content[0].text
    body: dict[str, Any] = json.loads(text[text.index("{"):])
    return body["error"]  # type: ignore[no-any-return]


def test_rest_and_mcp_refuse_non_admins_and_an_admin_job_switches_the_server(
        server: RunningServer, models: tuple[str, str]) -> None:
    old, new = models
    alice_key = _user(server, "alice")
    with _client(server, alice_key) as alice, _client(server, server.admin_key) as admin:
        ids = [alice.post("/cubes", json={"text": text}).json()["id"]
               for text in ("my dog is a good pet", "the car took the road", "my cat is a pet too")]
        refused = alice.post("/reembed", json={"embedder": new})
        assert refused.status_code == 403 and refused.json()["error"]["code"] == "access_denied"
        assert admin.get("/jobs").json()["items"] == []
        for bad in ({"embedder": "none"}, {"embedder": new, "batch": 0}, {"embedder": new, "extra": True}, {}):
            assert admin.post("/reembed", json=bad).status_code in (400, 422), bad

        async def mcp() -> None:
            async with create_mcp_http_client(headers={"Authorization": f"Bearer {alice_key}"}) as http, \
                    Client(streamable_http_client(f"{server.url}/mcp", http_client=http)) as client:
                error = _error(await client.call_tool("reembed", {"request": {"embedder": new}}))
                assert error["code"] == "access_denied"

        anyio.run(mcp)
        assert admin.get("/jobs").json()["items"] == []
        before = alice.post("/search", json={"query": "pet", "mode": "vector", "k": 2})
        assert before.status_code == 200 and before.json()["hits"]
        queued = admin.post("/reembed", json={"embedder": new, "batch": 1})
        assert queued.status_code == 202, queued.text
        job_id = queued.json()["id"]
        deadline = time.monotonic() + 120
        while (job := admin.get(f"/jobs/{job_id}").json())["state"] not in ("succeeded", "failed", "cancelled"):
            assert time.monotonic() < deadline, job
            time.sleep(0.1)
        assert job["state"] == "succeeded", job
        assert job["result"]["switched"] and job["result"]["dim"] == 16 and job["result"]["cubes"] == len(ids)
        assert job["done"] == job["total"] == len(ids)
        # The server's worker ran it: the server itself now searches and writes in the new space.
        after = alice.post("/search", json={"query": "pet", "mode": "vector", "k": 2})
        assert after.status_code == 200 and {h["cube"]["id"] for h in after.json()["hits"]} <= set(ids)
        assert alice.post("/cubes", json={"text": "a new dog"}).status_code == 201
        switch = [r for r in admin.get("/audit", params={"limit": 1000}).json()["items"]
                  if r["op"] == "embedder.switch"]
        assert len(switch) == 1 and switch[0]["details"]["to"] == f"{new}|16"
        assert f"{old}|8" == switch[0]["details"]["from"]


def _cli(db: Path, *args: str, principal: str = "admin", expect: int = 0) -> tuple[str, str]:
    result = CliRunner().invoke(app, ["--db", str(db), "--principal", principal, *args])
    assert result.exit_code == expect, (result.stdout, result.stderr)
    return result.stdout, result.stderr


def test_cli_refuses_non_admins_and_switches_with_a_progress_bar(tmp_path: Path, models: tuple[str, str]) -> None:
    old, new = models
    db = tmp_path / "cli.db"
    _cli(db, "--embedder", old, "init")
    _cli(db, "principal", "create", "alice")
    for text in ("my dog is a good pet", "the car took the road"):
        _cli(db, "add", text, principal="alice")
    _, err = _cli(db, "reembed", new, principal="alice", expect=77)
    assert "access_denied" in err or "administrators" in err
    _cli(db, "reembed", "none", expect=65)
    queued = json.loads(_cli(db, "--json", "reembed", new, "--background")[0])
    assert queued["kind"] == "reembed" and queued["state"] == "queued"
    _cli(db, "jobs", "cancel", queued["id"])
    out, err = _cli(db, "reembed", new, "--batch", "1")
    assert f"switched to {new}|16 (2 cubes" in out and "re-embedding" in err  # the bar is drawn on stderr
    assert "already on" in _cli(db, "reembed", new)[0]
    with memcubed.open(db, embedder=None) as mc:
        assert mc.kernel.embedder is not None and mc.kernel.embedder.name == new
        with pytest.raises(AccessDenied):
            mc.as_principal("alice").reembed(old)
