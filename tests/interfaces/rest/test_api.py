"""The REST API end to end against a real ``memcubed serve`` process: operations, pagination, errors, keys."""

from __future__ import annotations

import httpx
from tests.interfaces.rest.conftest import Login

from memcubed.testing.server import RunningServer


def _error(response: httpx.Response, status: int, code: str) -> dict[str, object]:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["code"] == code
    return body["error"]  # type: ignore[no-any-return]


def test_health_and_openapi(server: RunningServer) -> None:
    assert httpx.get(f"{server.url}/health").json()["status"] == "ok"
    spec = httpx.get(f"{server.url}/openapi.json").json()
    operations = {op["operationId"] for path in spec["paths"].values() for op in path.values()}
    assert {"add", "add_many", "get", "update", "delete", "forget", "search", "history", "get_version", "share",
            "revoke", "audit", "verify_audit", "create_principal", "list_principals", "create_api_key",
            "list_api_keys", "revoke_api_key", "chat_completions"} <= operations
    # Bodies are the core schemas, not copies.
    assert spec["paths"]["/cubes"]["post"]["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/CubeCreate")


def test_cube_lifecycle(login: Login) -> None:
    alice = login("alice")
    created = alice.post("/cubes", json={"text": "Alice keeps bees on the roof", "tags": ["hobby"]})
    assert created.status_code == 201
    cube = created.json()
    assert cube["owner"] == alice.principal and cube["version"] == 1  # type: ignore[attr-defined]
    assert alice.get(f"/cubes/{cube['id']}").json()["text"] == "Alice keeps bees on the roof"
    updated = alice.patch(f"/cubes/{cube['id']}", json={"text": "Alice keeps two hives", "expected_version": 1})
    assert updated.json()["version"] == 2
    _error(alice.patch(f"/cubes/{cube['id']}", json={"importance": 0.9, "expected_version": 1}), 409,
           "version_conflict")
    hits = alice.post("/search", json={"query": "hives", "mode": "lexical"}).json()["hits"]
    assert [h["cube"]["id"] for h in hits] == [cube["id"]]
    assert alice.get(f"/cubes/{cube['id']}/versions/1").json()["cube"]["text"] == "Alice keeps bees on the roof"
    deleted = alice.delete(f"/cubes/{cube['id']}", params={"expected_version": 2})
    assert deleted.json()["state"] == "deleted"
    _error(alice.get(f"/cubes/{cube['id']}"), 404, "not_found")
    forgotten = alice.post(f"/cubes/{cube['id']}/forget").json()
    assert forgotten["forgotten"] is True and forgotten["text"] is None


def test_add_many_is_atomic(login: Login) -> None:
    alice = login("alice")
    taken = "5e1f0000-0000-5000-8000-0000000000bb"
    batch = alice.post("/cubes/batch", json=[{"text": "one", "id": taken}, {"text": "two"}])
    assert batch.status_code == 201 and len(batch.json()) == 2
    _error(alice.post("/cubes/batch", json=[{"text": "three"}, {"text": "dup", "id": taken}]), 409, "already_exists")
    hits = alice.post("/search", json={"query": "three", "mode": "lexical"}).json()["hits"]
    assert [h["cube"]["text"] for h in hits] == []


def test_history_is_paginated(login: Login) -> None:
    alice = login("alice")
    cube = alice.post("/cubes", json={"text": "v1"}).json()
    for n in range(2, 6):
        alice.patch(f"/cubes/{cube['id']}", json={"text": f"v{n}"})
    first = alice.get(f"/cubes/{cube['id']}/history", params={"limit": 2}).json()
    assert [e["version"] for e in first["items"]] == [1, 2] and first["next"] == 2
    second = alice.get(f"/cubes/{cube['id']}/history", params={"limit": 2, "offset": first["next"]}).json()
    assert [e["version"] for e in second["items"]] == [3, 4]
    last = alice.get(f"/cubes/{cube['id']}/history", params={"limit": 2, "offset": 4}).json()
    assert [e["version"] for e in last["items"]] == [5] and last["next"] is None


def test_audit_and_principals_are_paginated(admin: httpx.Client, login: Login) -> None:
    for _ in range(3):
        login("page")
    page = admin.get("/principals", params={"limit": 2}).json()
    assert len(page["items"]) == 2 and page["next"] == 2
    names = [p["name"] for p in page["items"]]
    assert names == sorted(names)
    audit = admin.get("/audit", params={"limit": 3}).json()
    assert [r["seq"] for r in audit["items"]] == [1, 2, 3] and audit["next"] == 3
    more = admin.get("/audit", params={"limit": 3, "after_seq": audit["next"]}).json()
    assert [r["seq"] for r in more["items"]] == [4, 5, 6]
    assert admin.get("/audit/verify").json()["ok"] is True


def test_share_and_revoke_over_http(login: Login) -> None:
    alice, bob = login("alice"), login("bob")
    cube = alice.post("/cubes", json={"text": "the door code is 4711"}).json()
    _error(bob.get(f"/cubes/{cube['id']}"), 404, "not_found")
    shared = alice.post(f"/cubes/{cube['id']}/share", json={"principal": bob.principal, "right": "read"})  # type: ignore[attr-defined]
    assert shared.status_code == 200
    assert bob.get(f"/cubes/{cube['id']}").json()["text"] == "the door code is 4711"
    assert alice.delete(f"/cubes/{cube['id']}/grants/{bob.principal}").status_code == 200  # type: ignore[attr-defined]
    _error(bob.get(f"/cubes/{cube['id']}"), 404, "not_found")


def test_keys_unknown_revoked_and_missing_are_401(server: RunningServer, admin: httpx.Client, login: Login) -> None:
    alice = login("alice")
    assert alice.get("/me").json()["name"] == alice.principal  # type: ignore[attr-defined]
    second = admin.post(f"/principals/{alice.principal}/keys", json={"label": "laptop"}).json()  # type: ignore[attr-defined]
    listed = alice.get("/keys").json()["items"]
    assert {k["key_id"] for k in listed} == {alice.key_id, second["key_id"]}  # type: ignore[attr-defined]
    assert all("secret_hash" not in k and "key" not in k for k in listed)
    revoked = alice.delete(f"/keys/{second['key_id']}").json()
    assert revoked["revoked_at"] is not None
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {second['key']}"}) as stale:
        error = _error(stale.get("/me"), 401, "authentication_failed")
        assert stale.get("/me").headers["www-authenticate"] == "Bearer"
    assert error["message"] == "invalid, revoked, expired or unknown API key"
    forged = second["key"][:-4] + ("AAAA" if not second["key"].endswith("AAAA") else "BBBB")
    for headers in ({}, {"Authorization": "Bearer nonsense"}, {"Authorization": f"Basic {second['key']}"},
                    {"Authorization": f"Bearer {forged}"}):
        _error(httpx.get(f"{server.url}/me", headers=headers), 401, "authentication_failed")
    # The first key still works: revocation is per key.
    assert alice.get("/me").status_code == 200


def test_non_admin_limits(login: Login, admin: httpx.Client) -> None:
    alice, bob = login("alice"), login("bob")
    _error(alice.post("/principals", json={"name": "mallory"}), 403, "access_denied")
    _error(alice.get("/principals"), 403, "access_denied")
    _error(alice.get("/audit"), 403, "access_denied")
    _error(alice.post(f"/principals/{bob.principal}/keys", json={}), 403, "access_denied")  # type: ignore[attr-defined]
    _error(alice.get("/keys", params={"principal": bob.principal}), 403, "access_denied")  # type: ignore[attr-defined]
    _error(alice.delete(f"/keys/{bob.key_id}"), 403, "access_denied")  # type: ignore[attr-defined]
    _error(alice.get(f"/principals/{bob.principal}"), 403, "access_denied")  # type: ignore[attr-defined]
    # A principal may give itself another key.
    assert alice.post(f"/principals/{alice.principal}/keys", json={}).status_code == 201  # type: ignore[attr-defined]
    assert admin.get(f"/principals/{bob.principal}").json()["name"] == bob.principal  # type: ignore[attr-defined]


def test_bad_input_gets_the_error_body(login: Login) -> None:
    alice = login("alice")
    _error(alice.post("/cubes", json={"text": "   "}), 422, "validation_error")
    _error(alice.post("/cubes", json={"text": "x", "colour": "red"}), 422, "validation_error")
    _error(alice.post("/cubes", content=b"{not json", headers={"content-type": "application/json"}), 422,
           "validation_error")
    _error(alice.get("/cubes/not-a-cube-id"), 422, "validation_error")
    _error(alice.get("/cubes/01a20ee7-ce89-7000-b5f9-03900b03a199"), 404, "not_found")
    _error(alice.get("/cubes/01a20ee7-ce89-7000-b5f9-03900b03a199", params={"as_of": "2026-01-01T00:00:00"}), 422,
           "validation_error")
    _error(alice.get("/nowhere"), 404, "not_found")
    _error(alice.put("/search"), 405, "method_not_allowed")
    body = _error(alice.post("/cubes", json={"text": 3}), 422, "validation_error")
    assert body["details"]["errors"][0]["field"] == "body.text"  # type: ignore[index]
