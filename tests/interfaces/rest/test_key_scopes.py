"""API keys over HTTP: a key's scope bounds what it may do, and principals can be disabled and deleted."""

from __future__ import annotations

import httpx
from tests.interfaces.rest.conftest import Login

from memcubed.testing.server import RunningServer


def _key(admin: httpx.Client, name: str, **body: object) -> str:
    issued = admin.post(f"/principals/{name}/keys", json=body)
    assert issued.status_code == 201, issued.text
    return str(issued.json()["key"])


def test_scopes_bound_what_a_key_may_do(server: RunningServer, admin: httpx.Client, login: Login) -> None:
    alice = login("alice")
    name = alice.principal  # type: ignore[attr-defined]
    cube = alice.post("/cubes", json={"text": "alice's tent is green"}).json()
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {_key(admin, name, scope='read')}"},
                      timeout=30) as reader:
        assert reader.get(f"/cubes/{cube['id']}").json()["text"] == "alice's tent is green"
        assert reader.get("/me").status_code == 200
        for response in (reader.post("/cubes", json={"text": "nope"}),
                         reader.patch(f"/cubes/{cube['id']}", json={"text": "nope"}),
                         reader.post(f"/principals/{name}/keys", json={}),
                         reader.post("/v1/chat/completions", json={"model": "m", "messages": []})):
            assert response.status_code == 403 and response.json()["error"]["details"]["scope"] == "read"
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {_key(admin, name, scope='write')}"},
                      timeout=30) as writer:
        assert writer.patch(f"/cubes/{cube['id']}", json={"importance": 0.4}).status_code == 200
        minted = writer.post(f"/principals/{name}/keys", json={"scope": "admin"})
        assert minted.status_code == 403  # no climbing from write to admin
    assert alice.get(f"/cubes/{cube['id']}").json()["version"] == 2
    records = admin.get("/audit", params={"limit": 1000}).json()["items"]
    while len(page := admin.get("/audit", params={"after_seq": records[-1]["seq"]}).json()["items"]):
        records += page
    assert [r["details"]["operation"] for r in records if r["op"] == "denied" and r["principal"] == name] == [
        "add", "update", "create_api_key", "chat_completions", "create_api_key"]
    expired = admin.post(f"/principals/{name}/keys", json={"expires_at": "2001-01-01T00:00:00Z"})
    assert expired.status_code == 422


def test_disable_and_delete_over_http(admin: httpx.Client, login: Login) -> None:
    bob = login("bob")
    name = bob.principal  # type: ignore[attr-defined]
    cube = bob.post("/cubes", json={"text": "bob's bike"}).json()
    assert admin.post(f"/principals/{name}/disable").json()["disabled"] is True
    assert bob.get("/me").status_code == 401
    assert admin.post(f"/principals/{name}/enable").json()["disabled"] is False
    assert bob.get("/me").status_code == 200
    assert admin.put(f"/principals/{name}/admin", json={"is_admin": True}).json()["is_admin"] is True
    assert admin.put(f"/principals/{name}/admin", json={"is_admin": False}).json()["is_admin"] is False
    gone = admin.delete(f"/principals/{name}")
    assert gone.status_code == 200 and gone.json()["deleted_at"] is not None
    assert bob.get("/me").status_code == 401
    assert admin.get(f"/cubes/{cube['id']}").json()["owner"] == name
    assert admin.post("/principals", json={"name": name}).status_code == 409
    assert bob.post(f"/principals/{name}/enable").status_code == 401
