"""One real ``memcubed serve`` process for the REST tests (lexical-only store, free loopback port)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import httpx
import pytest

from memcubed.testing.server import RunningServer, running_server

Login = Callable[..., httpx.Client]


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """A real server process; its admin key was printed on first start."""
    with running_server(tmp_path_factory.mktemp("rest") / "server.db") as running:
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
