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


def _cube_requests(client: httpx.Client, cid: object, other: str) -> list[httpx.Request]:
    """Every route naming a cube, aimed at ``cid``."""
    return [
        client.build_request("GET", f"/cubes/{cid}"),
        client.build_request("GET", f"/cubes/{cid}", params={"include_deleted": "true"}),
        client.build_request("GET", f"/cubes/{cid}", params={"as_of": "2100-01-01T00:00:00Z"}),
        client.build_request("PATCH", f"/cubes/{cid}", json={"text": "overwritten"}),
        client.build_request("DELETE", f"/cubes/{cid}"),
        client.build_request("POST", f"/cubes/{cid}/forget"),
        client.build_request("GET", f"/cubes/{cid}/history"),
        client.build_request("GET", f"/cubes/{cid}/versions/1"),
        client.build_request("POST", f"/cubes/{cid}/share", json={"principal": client.principal, "right": "admin"}),  # type: ignore[attr-defined]
        client.build_request("DELETE", f"/cubes/{cid}/grants/{other}"),
        client.build_request("POST", f"/cubes/{cid}/archive"),
        client.build_request("POST", f"/cubes/{cid}/restore"),
        client.build_request("POST", f"/cubes/{cid}/undelete"),
        client.build_request("POST", f"/cubes/{cid}/recompile"),
        client.build_request("GET", "/audit", params={"cube_id": cid}),
        client.build_request("POST", "/cache", json={"cube_ids": [cid]}),
        client.build_request("POST", "/consolidate", json={"cube_ids": [cid]}),
        client.build_request("POST", "/generate", json={"query": "x", "activation_id": cid}),
        client.build_request("POST", "/generate/adapters", json={"query": "x", "parameter_ids": [cid]}),
    ]


def test_a_cannot_touch_b_anywhere(pair: tuple[httpx.Client, httpx.Client, dict[str, object]]) -> None:
    alice, bob, cube = pair
    cid = cube["id"]
    missing = "01a00000-0000-7000-8000-00000000dead"
    # A cube Alice cannot read answers exactly as a missing one does, on every route: ids cannot be probed.
    for probe, absent in zip(_cube_requests(alice, cid, bob.principal), _cube_requests(alice, missing, bob.principal),  # type: ignore[attr-defined]
                             strict=True):
        response, baseline = alice.send(probe), alice.send(absent)
        _denied(response)
        assert (response.status_code, response.json()["error"]["code"]) == (404, "not_found"), probe.url
        assert response.text == baseline.text.replace(missing, str(cid)), probe.url
    requests = [
        alice.build_request("DELETE", f"/keys/{bob.key_id}"),  # type: ignore[attr-defined]
        alice.build_request("GET", "/keys", params={"principal": bob.principal}),  # type: ignore[attr-defined]
        alice.build_request("POST", f"/principals/{bob.principal}/keys", json={}),  # type: ignore[attr-defined]
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


def test_a_chosen_id_cannot_be_squatted(login: Login) -> None:
    alice, mallory = login("alice"), login("mallory")
    key = "5e1f0000-0000-5000-8000-0000000000aa"  # a predictable importer key (uuid5 of the input)
    squatted = mallory.post("/cubes", json={"text": "mallory got here first", "id": key})
    assert squatted.status_code == 201
    mine = alice.post("/cubes", json={"text": "alice's imported turn", "id": key})
    assert mine.status_code == 201 and mine.json()["id"] != squatted.json()["id"]
    again = alice.post("/cubes", json={"text": "imported again", "id": key})
    assert again.status_code == 409 and again.json()["error"]["code"] == "already_exists"
    assert alice.get(f"/cubes/{mine.json()['id']}").json()["text"] == "alice's imported turn"
    assert mallory.get(f"/cubes/{mine.json()['id']}").status_code == 404
