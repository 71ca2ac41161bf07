"""Several ``memcubed serve`` processes on one PostgreSQL database behave as one service."""

from __future__ import annotations

from pathlib import Path

import httpx

from memcubed.testing.backends import PgCluster
from memcubed.testing.server import running_server


def test_two_servers_share_one_postgres(pg_cluster: PgCluster, tmp_path: Path) -> None:
    dsn = pg_cluster.create()
    try:
        with running_server(dsn, log=tmp_path / "a.log") as a, running_server(dsn, log=tmp_path / "b.log") as b:
            assert a.admin_key is not None and b.admin_key is None  # one store: the key was issued once
            admin_a = httpx.Client(base_url=a.url, headers={"Authorization": f"Bearer {a.admin_key}"})
            admin_b = httpx.Client(base_url=b.url, headers={"Authorization": f"Bearer {a.admin_key}"})
            with admin_a, admin_b:
                # A principal and a key made through A work through B at once.
                admin_a.post("/principals", json={"name": "alice"}).raise_for_status()
                admin_a.post("/principals", json={"name": "bob"}).raise_for_status()
                alice_key = admin_a.post("/principals/alice/keys", json={}).json()
                bob_key = admin_b.post("/principals/bob/keys", json={}).json()
                alice_a = httpx.Client(base_url=a.url, headers={"Authorization": f"Bearer {alice_key['key']}"})
                alice_b = httpx.Client(base_url=b.url, headers={"Authorization": f"Bearer {alice_key['key']}"})
                bob_b = httpx.Client(base_url=b.url, headers={"Authorization": f"Bearer {bob_key['key']}"})
                with alice_a, alice_b, bob_b:
                    cube = alice_a.post("/cubes", json={"text": "the orchard needs pruning in March"}).json()
                    assert alice_b.get(f"/cubes/{cube['id']}").json()["text"] == cube["text"]
                    hits = alice_b.post("/search", json={"query": "orchard pruning", "mode": "lexical"}).json()
                    assert [h["cube"]["id"] for h in hits["hits"]] == [cube["id"]]
                    alice_b.patch(f"/cubes/{cube['id']}", json={"text": "the orchard needs pruning in February"})
                    history = alice_a.get(f"/cubes/{cube['id']}/history").json()["items"]
                    assert [e["version"] for e in history] == [1, 2]
                    assert bob_b.get(f"/cubes/{cube['id']}").status_code == 404
                    alice_a.post(f"/cubes/{cube['id']}/share", json={"principal": "bob"}).raise_for_status()
                    assert bob_b.get(f"/cubes/{cube['id']}").status_code == 200
                    # Revoking a key through one server locks it out of the other at once.
                    admin_b.delete(f"/keys/{alice_key['key_id']}").raise_for_status()
                    assert alice_a.get("/me").status_code == 401
                    assert admin_a.get("/audit/verify").json()["ok"] is True
    finally:
        pg_cluster.drop(dsn)
