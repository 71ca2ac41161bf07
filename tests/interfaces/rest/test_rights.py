"""Rights over HTTP: principal A's key never reads, searches, changes, shares, forgets or sees the history
of B's cubes."""

from __future__ import annotations

import httpx
import pytest
from tests.interfaces.rest.conftest import Login

DENIED = {403, 404}


@pytest.fixture
def pair(login: Login) -> tuple[httpx.Client, httpx.Client, dict[str, object]]:
    """Bob owns a cube holding a secret; Alice has no grant on it."""
    alice, bob = login("alice"), login("bob")
    cube = bob.post("/cubes", json={"text": "bob's secret: the vault opens with zebra-42", "tags": ["secret"]}).json()
    return alice, bob, cube


def _denied(response: httpx.Response) -> None:
    assert response.status_code in DENIED, response.text
    assert "zebra" not in response.text


def test_a_cannot_touch_b_anywhere(pair: tuple[httpx.Client, httpx.Client, dict[str, object]]) -> None:
    alice, bob, cube = pair
    cid = cube["id"]
    requests = [
        alice.build_request("GET", f"/cubes/{cid}"),
        alice.build_request("GET", f"/cubes/{cid}", params={"include_deleted": "true"}),
        alice.build_request("GET", f"/cubes/{cid}", params={"as_of": "2100-01-01T00:00:00Z"}),
        alice.build_request("PATCH", f"/cubes/{cid}", json={"text": "overwritten"}),
        alice.build_request("DELETE", f"/cubes/{cid}"),
        alice.build_request("POST", f"/cubes/{cid}/forget"),
        alice.build_request("GET", f"/cubes/{cid}/history"),
        alice.build_request("GET", f"/cubes/{cid}/versions/1"),
        alice.build_request("POST", f"/cubes/{cid}/share", json={"principal": alice.principal, "right": "admin"}),  # type: ignore[attr-defined]
        alice.build_request("DELETE", f"/cubes/{cid}/grants/{bob.principal}"),  # type: ignore[attr-defined]
        alice.build_request("GET", "/audit", params={"cube_id": cid}),
        alice.build_request("DELETE", f"/keys/{bob.key_id}"),  # type: ignore[attr-defined]
        alice.build_request("GET", "/keys", params={"principal": bob.principal}),  # type: ignore[attr-defined]
        alice.build_request("POST", f"/principals/{bob.principal}/keys", json={}),  # type: ignore[attr-defined]
        alice.build_request("POST", "/cache", json={"cube_ids": [cid]}),
    ]
    for request in requests:
        _denied(alice.send(request))
    for mode in ("hybrid", "lexical"):
        hits = alice.post("/search", json={"query": "vault zebra secret", "mode": mode}).json()["hits"]
        assert hits == []
    filtered = alice.post("/search", json={"query": "vault", "filters": {"owner": bob.principal}}).json()  # type: ignore[attr-defined]
    assert filtered["hits"] == []
    # Nothing changed: one version, Bob's text, Bob's key still works.
    assert bob.get(f"/cubes/{cid}/history").json()["items"][-1]["version"] == 1
    assert "zebra-42" in bob.get(f"/cubes/{cid}").json()["text"]


def test_proxy_only_sees_the_callers_memories(pair: tuple[httpx.Client, httpx.Client, dict[str, object]]) -> None:
    alice, _, _ = pair
    # No upstream is configured here, but retrieval runs first only for the caller: nothing of Bob's leaks
    # into the error either.
    response = alice.post("/v1/chat/completions",
                          json={"model": "m", "messages": [{"role": "user", "content": "what opens the vault?"}]})
    assert "zebra" not in response.text


def test_a_read_grant_is_exactly_read(pair: tuple[httpx.Client, httpx.Client, dict[str, object]]) -> None:
    alice, bob, cube = pair
    cid = cube["id"]
    bob.post(f"/cubes/{cid}/share", json={"principal": alice.principal, "right": "read"})  # type: ignore[attr-defined]
    assert "zebra" in alice.get(f"/cubes/{cid}").json()["text"]
    assert alice.post("/search", json={"query": "vault zebra"}).json()["hits"][0]["cube"]["id"] == cid
    assert alice.get(f"/cubes/{cid}/history").status_code == 200
    assert alice.get(f"/cubes/{cid}").json()["acl"] == []  # ACL internals only for sharers
    for request in [alice.build_request("PATCH", f"/cubes/{cid}", json={"text": "overwritten"}),
                    alice.build_request("DELETE", f"/cubes/{cid}"),
                    alice.build_request("POST", f"/cubes/{cid}/forget"),
                    alice.build_request("POST", f"/cubes/{cid}/share", json={"principal": "admin", "right": "read"})]:
        assert alice.send(request).status_code == 403
    bob.delete(f"/cubes/{cid}/grants/{alice.principal}")  # type: ignore[attr-defined]
    _denied(alice.get(f"/cubes/{cid}"))
