"""Bundles over HTTP against the real server: download a bundle, upload it as the raw body, and hostile uploads
refused with the error body (never a 5xx)."""

from __future__ import annotations

import io
import zipfile

import httpx
from tests.interfaces.rest.conftest import Login


def test_download_then_upload_a_bundle(login: Login) -> None:
    alice, bob = login("alice"), login("bob")
    made = alice.post("/cubes", json={"text": "the kite nests in the old oak", "namespace": "birds"})
    assert made.status_code == 201, made.text
    cube_id = made.json()["id"]
    assert alice.post("/cubes/" + cube_id + "/share", json={"principal": bob.principal}).status_code == 200
    exported = alice.post("/bundles/export", json={"namespace": "birds"})
    assert exported.status_code == 200 and exported.headers["content-type"] == "application/zip"
    assert exported.headers["x-memcubed-cubes"] == "1"
    bundle = exported.content
    with zipfile.ZipFile(io.BytesIO(bundle)) as archive:
        assert bob.principal.encode() not in b"".join(archive.read(n) for n in archive.namelist())  # no grants

    uploaded = bob.post("/bundles/import", params={"namespace": "copied"}, content=bundle,
                        headers={"Content-Type": "application/octet-stream"})
    assert uploaded.status_code == 200, uploaded.text
    report = uploaded.json()
    new_id = report["ids"][cube_id]
    assert report["owner"] == bob.principal and new_id != cube_id
    copy = bob.get(f"/cubes/{new_id}").json()
    assert copy["text"] == "the kite nests in the old oak" and copy["namespace"] == "copied"
    assert alice.get(f"/cubes/{new_id}").status_code == 404  # bob's copy is bob's alone

    # Hostile uploads: not a bundle, someone else as owner, another principal's cube ids, an oversized body.
    junk = bob.post("/bundles/import", params={"namespace": "x"}, content=b"GIF89a not a zip")
    assert junk.status_code == 422 and junk.json()["error"]["code"] == "validation_error"
    middle = len(bundle) // 3
    tampered = bundle[:middle] + bytes([bundle[middle] ^ 0x01]) + bundle[middle + 1:]
    refused = bob.post("/bundles/import", params={"namespace": "x"}, content=tampered)
    assert refused.status_code == 422 and refused.json()["error"]["code"] in ("corrupt_bundle", "validation_error")
    foreign = bob.post("/bundles/import", params={"namespace": "x", "owner": alice.principal}, content=bundle)
    assert foreign.status_code == 403
    private = alice.post("/cubes", json={"text": "alice's private note"}).json()["id"]
    assert bob.post("/bundles/export", json={"cube_ids": [private]}).status_code == 404
    huge = bob.post("/bundles/import", params={"namespace": "x"}, content=b"\0" * (33 * 2**20))
    assert huge.status_code == 413
    assert bob.post("/bundles/import", params={"namespace": "../etc"}, content=bundle).status_code == 422


def test_the_bundle_routes_need_a_key(server: object) -> None:
    url = server.url
    with httpx.Client(base_url=url) as anonymous:
        assert anonymous.post("/bundles/export", json={}).status_code == 401
        assert anonymous.post("/bundles/import", params={"namespace": "x"}, content=b"x").status_code == 401
