"""The MCP tools through the official SDK's own client: over stdio (``memcubed mcp``) and over streamable
HTTP (mounted at ``/mcp`` in a real ``memcubed serve`` process, authenticated by API key)."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

import memcubed
from memcubed.testing.server import RunningServer, running_server

TOOLS = {"add", "search", "get", "update", "forget", "history", "share"}


def _error(result: Any) -> dict[str, Any]:
    """The error body a failed tool call carries."""
    assert result.is_error
    text = result.content[0].text
    body: dict[str, Any] = json.loads(text[text.index("{"):])
    return body["error"]  # type: ignore[no-any-return]


async def _exercise(client: Client, other: str) -> None:
    """Every tool once, as the connected principal, plus a denied call on ``other``'s cube id."""
    assert {t.name for t in (await client.list_tools()).tools} >= TOOLS
    added = (await client.call_tool("add", {"cube": {"text": "the heron fishes at dawn", "tags": ["birds"]}}))
    cube = added.structured_content
    assert cube is not None and cube["version"] == 1
    got = (await client.call_tool("get", {"cube_id": cube["id"]})).structured_content
    assert got is not None and got["text"] == "the heron fishes at dawn"
    found = (await client.call_tool("search", {"request": {"query": "heron dawn", "mode": "lexical"}}))
    assert found.structured_content is not None
    assert [h["cube"]["id"] for h in found.structured_content["hits"]] == [cube["id"]]
    # get in both times: as known at a record time, and only if it held at an event time.
    dated = (await client.call_tool("add", {"cube": {"text": "the swift nested in May",
                                                     "valid_from": "2023-05-01T00:00:00Z"}})).structured_content
    assert dated is not None
    held = (await client.call_tool("get", {"cube_id": dated["id"], "true_at": "2023-06-01T00:00:00Z"}))
    assert held.structured_content is not None and held.structured_content["id"] == dated["id"]
    before = await client.call_tool("get", {"cube_id": dated["id"], "true_at": "2023-04-01T00:00:00Z"})
    assert _error(before)["code"] == "not_found"
    assert _error(await client.call_tool("get", {"cube_id": cube["id"], "as_of": "2000-01-01T00:00:00Z"}))[
        "code"] == "not_found"  # not stored yet then
    updated = await client.call_tool("update", {"cube_id": cube["id"], "change": {"text": "the heron fishes at dusk"}})
    assert updated.structured_content is not None and updated.structured_content["version"] == 2
    shared = await client.call_tool("share", {"cube_id": cube["id"], "grant": {"principal": other, "right": "read"}})
    assert shared.structured_content is not None and shared.structured_content["acl"] == [
        {"principal": other, "right": 1, "accepted": False}] and shared.structured_content["acl_version"] == 1
    history = (await client.call_tool("history", {"cube_id": cube["id"]})).structured_content
    assert history is not None and [e["version"] for e in history["result"]] == [1, 2]  # a share keeps the version
    forgotten = (await client.call_tool("forget", {"cube_id": cube["id"]})).structured_content
    assert forgotten is not None and forgotten["forgotten"] is True
    assert _error(await client.call_tool("get", {"cube_id": cube["id"]}))["code"] == "not_found"
    bad = await client.call_tool("add", {"cube": {"text": "   "}})
    assert bad.is_error


@pytest.mark.parametrize("by_key", [False, True], ids=["principal", "key"])
def test_stdio(tmp_path: Path, by_key: bool) -> None:
    db = tmp_path / "mcp.db"
    with memcubed.open(db, embedder="none") as admin:
        admin.create_principal("alice")
        admin.create_principal("bob")
        secret = admin.as_principal("bob").add("bob's boat is called Wren")
        acting = ["--key", admin.create_api_key("alice").key] if by_key else ["--principal", "alice"]
    env = {k: v for k, v in os.environ.items() if k not in ("MEMCUBED_PRINCIPAL", "MEMCUBED_API_KEY")}
    params = StdioServerParameters(command=sys.executable,
                                   args=["-m", "memcubed", "--db", str(db), "--embedder", "none", "mcp", *acting],
                                   env=env)

    async def main() -> None:
        async with Client(params) as client:
            await _exercise(client, "bob")
            assert _error(await client.call_tool("get", {"cube_id": secret.id}))["code"] == "not_found"
            found = await client.call_tool("search", {"request": {"query": "boat Wren"}})
            assert found.structured_content is not None and found.structured_content["hits"] == []

    anyio.run(main)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with running_server(tmp_path_factory.mktemp("mcp") / "server.db") as running:
        yield running


def _key(server: RunningServer, name: str) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {server.admin_key}"}
    httpx.post(f"{server.url}/principals", headers=headers, json={"name": name}).raise_for_status()
    issued: dict[str, Any] = httpx.post(f"{server.url}/principals/{name}/keys", headers=headers, json={}).json()
    return issued


def test_streamable_http(server: RunningServer) -> None:
    alice, bob = _key(server, "alice"), _key(server, "bob")
    secret = httpx.post(f"{server.url}/cubes", headers={"Authorization": f"Bearer {bob['key']}"},
                        json={"text": "bob's boat is called Wren"}).json()

    async def main() -> None:
        async with create_mcp_http_client(headers={"Authorization": f"Bearer {alice['key']}"}) as http, \
                Client(streamable_http_client(f"{server.url}/mcp", http_client=http)) as client:
            await _exercise(client, "bob")
            assert _error(await client.call_tool("get", {"cube_id": secret["id"]}))["code"] == "not_found"
            # Revocation acts at once, even within an open MCP connection.
            revoked = httpx.delete(f"{server.url}/keys/{alice['key_id']}",
                                   headers={"Authorization": f"Bearer {server.admin_key}"})
            assert revoked.status_code == 200
            with pytest.raises(Exception):  # noqa: B017 - the SDK reports the HTTP 401 as its own error
                await client.call_tool("get", {"cube_id": secret["id"]})

    anyio.run(main)


def test_http_without_a_valid_key_is_401(server: RunningServer) -> None:
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
    for headers in ({}, {"Authorization": "Bearer mck_0000000000000000_" + "A" * 43}):
        response = httpx.post(f"{server.url}/mcp", json=body,
                              headers={**headers, "Accept": "application/json, text/event-stream"})
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "authentication_failed"


def test_a_read_scoped_key_only_reads(server: RunningServer) -> None:
    carol = _key(server, "carol")
    auth = {"Authorization": f"Bearer {carol['key']}"}
    note = httpx.post(f"{server.url}/cubes", headers=auth, json={"text": "carol's kayak is red"}).json()
    reader = httpx.post(f"{server.url}/principals/carol/keys", headers=auth, json={"scope": "read"}).json()

    async def main() -> None:
        async with create_mcp_http_client(headers={"Authorization": f"Bearer {reader['key']}"}) as http, \
                Client(streamable_http_client(f"{server.url}/mcp", http_client=http)) as client:
            found = await client.call_tool("get", {"cube_id": note["id"]})
            assert found.structured_content is not None and found.structured_content["text"] == note["text"]
            refused = _error(await client.call_tool("add", {"cube": {"text": "written with a read key"}}))
            assert refused["code"] == "access_denied" and refused["details"]["scope"] == "read"

    anyio.run(main)
    hits = httpx.post(f"{server.url}/search", headers=auth, json={"query": "written with a read key",
                                                                  "mode": "lexical"}).json()["hits"]
    assert hits == []
