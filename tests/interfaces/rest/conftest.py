"""One real ``memcubed serve`` process for the REST tests (the default local embedder, a free loopback port),
whose chat proxy forwards to a real local OpenAI-compatible server."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from memcubed.testing.openai_server import EchoChat, serve_openai
from memcubed.testing.server import RunningServer, running_server

Login = Callable[..., httpx.Client]


@pytest.fixture(scope="session")
def upstream_seen() -> list[dict[str, Any]]:
    """Every request body the upstream of the session's server received."""
    return []


@pytest.fixture(scope="session")
def upstream(upstream_seen: list[dict[str, Any]]) -> Iterator[str]:
    """The upstream of the session's chat proxy: an OpenAI-compatible server answering with ``EchoChat``."""
    with serve_openai(chat=EchoChat(), api_key="upstream-secret", seen=upstream_seen) as url:
        yield url


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory, upstream: str) -> Iterator[RunningServer]:
    """A real server process; its admin key was printed on first start."""
    env = {"MEMCUBED_UPSTREAM_BASE_URL": upstream, "MEMCUBED_UPSTREAM_API_KEY": "upstream-secret"}
    with running_server(tmp_path_factory.mktemp("rest") / "server.db", embedder="local", env=env) as running:
        assert running.admin_key is not None
        yield running


@pytest.fixture(scope="session")
def admin(server: RunningServer) -> Iterator[httpx.Client]:
    """An HTTP client holding the administrator's key."""
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {server.admin_key}"},
                      timeout=30) as client:
        yield client


@pytest.fixture
def login(server: RunningServer, admin: httpx.Client) -> Iterator[Login]:
    """Create a fresh principal (random name) with a key; return a client holding that key (``.principal`` set)."""
    clients: list[httpx.Client] = []

    def _login(prefix: str = "user", *, is_admin: bool = False) -> httpx.Client:
        name = f"{prefix}-{uuid.uuid4().hex[:8]}"
        assert admin.post("/principals", json={"name": name, "is_admin": is_admin}).status_code == 201
        issued = admin.post(f"/principals/{name}/keys", json={"label": "test"}).json()
        client = httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {issued['key']}"}, timeout=30)
        client.principal = name  # type: ignore[attr-defined]
        client.key_id = issued["key_id"]  # type: ignore[attr-defined]
        clients.append(client)
        return client

    yield _login
    for client in clients:
        client.close()
