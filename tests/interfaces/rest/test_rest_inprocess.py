"""The same REST tests in process, through FastAPI's TestClient (breadth and coverage of the app code,
which the real-server tests exercise in another process), plus the proxy and MCP wiring in process."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from tests.interfaces.rest.conftest import Login
from tests.interfaces.rest.test_api import (  # noqa: F401 - collected here against the in-process app
    test_add_many_is_atomic,
    test_audit_and_principals_are_paginated,
    test_bad_input_gets_the_error_body,
    test_cube_lifecycle,
    test_history_is_paginated,
    test_non_admin_limits,
    test_share_and_revoke_over_http,
)
from tests.interfaces.rest.test_rights import (  # noqa: F401
    pair,
    test_a_cannot_touch_b_anywhere,
    test_a_read_grant_is_exactly_read,
)

import memcubed
from memcubed.interfaces.rest import create_app
from memcubed.settings import Settings


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory, upstream: str) -> Iterator[memcubed.Memcubed]:
    settings = Settings(upstream_base_url=upstream, upstream_api_key="upstream-secret")
    db: Path = tmp_path_factory.mktemp("inprocess") / "app.db"
    with memcubed.open(db, embedder="none", settings=settings) as mc:
        yield mc


@pytest.fixture(scope="module")
def app_client(store: memcubed.Memcubed) -> Iterator[TestClient]:
    with TestClient(create_app(store.kernel), base_url="http://127.0.0.1") as client:  # runs the lifespan
        yield client


@pytest.fixture(scope="module")
def admin(app_client: TestClient, store: memcubed.Memcubed) -> TestClient:
    app_client.headers["Authorization"] = f"Bearer {store.create_api_key().key}"
    return app_client


@pytest.fixture
def login(admin: TestClient) -> Login:
    def _login(prefix: str = "user", *, is_admin: bool = False) -> httpx.Client:
        name = f"{prefix}-{uuid.uuid4().hex[:8]}"
        assert admin.post("/principals", json={"name": name, "is_admin": is_admin}).status_code == 201
        issued = admin.post(f"/principals/{name}/keys", json={"label": "test"}).json()
        client = TestClient(admin.app, base_url="http://127.0.0.1",
                            headers={"Authorization": f"Bearer {issued['key']}"})
        client.principal = name  # type: ignore[attr-defined]
        client.key_id = issued["key_id"]  # type: ignore[attr-defined]
        return client

    return _login


def test_proxy_in_process(login: Login, upstream_seen: list[dict[str, Any]]) -> None:
    alice = login("alice")
    cube = alice.post("/cubes", json={"text": "the canal freezes in January"}).json()
    parts = [{"type": "text", "text": "when does the canal freeze"}]
    body = {"model": "m", "messages": [{"role": "system", "content": [{"type": "text", "text": "Be brief."}]},
                                       {"role": "user", "content": parts}],
            "memcubed": {"remember": True}, "temperature": 0}
    answer = alice.post("/v1/chat/completions", json=body)
    assert answer.status_code == 200, answer.text
    assert answer.headers["x-memcubed-cubes"] == cube["id"]
    sent = upstream_seen[-1]
    assert sent["temperature"] == 0 and sent["messages"][0]["content"].endswith("\nBe brief.")
    assert "the canal freezes in January" in sent["messages"][0]["content"]
    assert len(answer.json()["memcubed"]["remembered"]) == 2
    with alice.stream("POST", "/v1/chat/completions", json={**body, "stream": True}) as streamed:
        text = streamed.read().decode()
    assert text.rstrip().endswith("data: [DONE]") and "chat.completion.chunk" in text
    nothing = alice.post("/v1/chat/completions", json={"model": "m", "messages": [{"role": "assistant",
                                                                                      "content": "hi"}]})
    assert nothing.status_code == 200 and nothing.headers["x-memcubed-cubes"] == ""


def test_mcp_needs_a_key_in_process(app_client: TestClient) -> None:
    response = app_client.post("/mcp", headers={"Authorization": "Bearer nope"},
                               json={"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}})
    assert response.status_code == 401 and response.json()["error"]["code"] == "authentication_failed"
    assert app_client.get("/health").json()["status"] == "ok"


def test_mcp_tools_in_process(store: memcubed.Memcubed) -> None:
    """The tool bodies, through the SDK's in-process client (the transports are tested in test_mcp.py)."""
    import anyio
    from mcp import Client
    from tests.interfaces.test_mcp import _exercise

    from memcubed.interfaces.mcp import build_mcp_server

    store.create_principal("mcp-user")
    store.create_principal("mcp-other")
    server = build_mcp_server(store.kernel, lambda _ctx, _op: "mcp-user")

    async def main() -> None:
        async with Client(server) as client:
            await _exercise(client, "mcp-other")

    anyio.run(main)
