"""Jobs over HTTP: ``cache`` is submitted as a job; jobs are listed, read with their progress, cancelled."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from tests.interfaces.rest.conftest import Login

from memcubed.testing.server import running_server


def test_cache_runs_as_a_job_that_can_be_cancelled(tmp_path: Path) -> None:
    # No worker in this process: the job stays queued until cancelled.
    with running_server(tmp_path / "jobs.db", args=["--workers", "0"]) as srv, \
            httpx.Client(base_url=srv.url, headers={"Authorization": f"Bearer {srv.admin_key}"}) as admin:
        cube = admin.post("/cubes", json={"text": "the ferry leaves at nine"}).json()
        submitted = admin.post("/cache", json={"cube_ids": [cube["id"]]})
        assert submitted.status_code == 202
        job = submitted.json()
        assert job["kind"] == "cache" and job["state"] == "queued" and job["principal"] == "admin"
        seen = admin.get(f"/jobs/{job['id']}").json()
        assert (seen["done"], seen["total"]) == (0, 0)
        listed = admin.get("/jobs", params={"state": "queued"}).json()
        assert [j["id"] for j in listed["items"]] == [job["id"]] and listed["next"] is None
        cancelled = admin.post(f"/jobs/{job['id']}/cancel").json()
        assert cancelled["state"] == "cancelled"
        assert admin.get("/jobs", params={"state": "queued"}).json()["items"] == []
        # Submitting checks what the operation would: unknown cubes never get queued.
        missing = admin.post("/cache", json={"cube_ids": ["01a20ee7-ce89-7000-b5f9-03900b03a199"]})
        assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
        assert admin.get("/jobs/nope").status_code == 404


@pytest.mark.parametrize("model", ["local:/etc", "../x", "HuggingFaceTB/SmolLM2-360M-Instruct", "openai:gpt-4o"])
def test_a_client_cannot_choose_what_the_server_loads(login: Login, model: str) -> None:
    """Only model ids the operator configured are accepted; a path or a hub name is refused before anything
    is queued, and the error names the allowed ids without describing the server's filesystem."""
    alice = login("alice")
    cube = alice.post("/cubes", json={"text": "the ferry leaves at nine"}).json()
    refused = alice.post("/cache", json={"cube_ids": [cube["id"]], "model": model})
    assert refused.status_code == 422, refused.text
    error = refused.json()["error"]
    assert error["code"] == "validation_error" and error["details"]["allowed"] == ["local"]
    assert not any(word in error["message"].lower() for word in ("/etc", "folder", "file", "directory", "path"))
    assert alice.get("/jobs").json()["items"] == []
