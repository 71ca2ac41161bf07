"""CLI for principals and keys (``principal create|create-key|keys|revoke-key``) and ``serve``'s first start."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
from typer.testing import CliRunner

import memcubed
from memcubed.interfaces.cli.app import app
from memcubed.testing.server import running_server


def _run(db: Path, *args: str, expect: int = 0, principal: str = "admin") -> Any:
    result = CliRunner().invoke(app, ["--db", str(db), "--embedder", "none", "--principal", principal, *args])
    assert result.exit_code == expect, (result.output, result.stderr)
    return result


def test_principal_create_prints_a_key_once(tmp_path: Path) -> None:
    db = tmp_path / "cli.db"
    _run(db, "init")
    out = _run(db, "principal", "create", "alice", "--label", "first").stdout
    assert "created user alice" in out and "mck_" in out
    key = out.split("store it now): ")[1].strip()
    created = json.loads(_run(db, "--json", "principal", "create", "bob", "--kind", "agent").stdout)
    assert created["principal"]["kind"] == "agent" and created["key"]["key"].startswith("mck_")
    extra = json.loads(_run(db, "--json", "principal", "create-key", "alice").stdout)
    keys = json.loads(_run(db, "--json", "principal", "keys", "alice").stdout)
    assert [k["label"] for k in keys] == ["first", ""]
    assert key not in json.dumps(keys) and all("key" not in k for k in keys)
    assert "alice" in _run(db, "principal", "keys").stdout
    assert "alice" in _run(db, "principal", "list").stdout
    _run(db, "principal", "revoke-key", extra["key_id"])
    with memcubed.open(db, embedder="none") as mc:
        assert mc.kernel.authenticate(key).name == "alice"
        revoked = [k for k in mc.api_keys("alice") if k.key_id == extra["key_id"]]
        assert revoked[0].revoked_at is not None
    # Non-admins manage only their own keys; errors map to exit codes.
    _run(db, "principal", "create-key", "bob", principal="alice", expect=77)
    _run(db, "principal", "revoke-key", "0123456789abcdef", expect=66)


def test_serve_issues_the_admin_key_on_first_start_only(tmp_path: Path) -> None:
    db = tmp_path / "serve.db"
    with running_server(db) as first:
        assert first.admin_key is not None
        assert httpx.get(f"{first.url}/me", headers={"Authorization": f"Bearer {first.admin_key}"}).json()[
            "name"] == "admin"
    with running_server(db) as second:
        assert second.admin_key is None
        assert httpx.get(f"{second.url}/me", headers={"Authorization": f"Bearer {first.admin_key}"}).status_code == 200


def test_a_restart_never_mints_a_key_after_the_admin_key_was_revoked(tmp_path: Path) -> None:
    """Revoking a leaked admin key must not put a new one in the logs at the next start."""
    db = tmp_path / "serve.db"
    with running_server(db) as first:
        leaked = first.admin_key
    assert leaked is not None
    _run(db, "principal", "revoke-key", leaked.split("_")[1])
    with running_server(db) as second:
        assert second.admin_key is None
        assert httpx.get(f"{second.url}/me", headers={"Authorization": f"Bearer {leaked}"}).status_code == 401
    with memcubed.open(db, embedder="none") as mc:
        assert [k.revoked_at is not None for k in mc.api_keys("admin")] == [True]  # nothing was minted
    reset = json.loads(_run(db, "--json", "principal", "reset-admin").stdout)
    _run(db, "principal", "create", "alice")
    assert "access_denied" in _run(db, "principal", "reset-admin", principal="alice", expect=77).stderr
    with running_server(db) as third:
        assert third.admin_key is None
        assert httpx.get(f"{third.url}/me", headers={"Authorization": f"Bearer {reset['key']}"}).json()[
            "name"] == "admin"
    with memcubed.open(db, embedder="none") as mc:
        creates = [r.details for r in mc.audit() if r.op == "key.create" and r.details["principal"] == "admin"]
        assert [d["label"] for d in creates] == ["first start", "reset-admin"]


def test_the_banner_never_prints_a_database_password() -> None:
    from memcubed.interfaces.cli.serve import _redacted

    assert _redacted("postgresql://mc:s3cret@db:5432/mem") == "postgresql://mc:***@db:5432/mem"
    assert _redacted("postgresql://db/mem") == "postgresql://db/mem"
    assert _redacted(".memcubed/memcubed.db") == ".memcubed/memcubed.db"
