"""`memcubed gc` and `memcubed worker --kinds` through the CLI (the process-level worker tests are in
tests/kernel/test_job_faults.py)."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from memcubed.interfaces.cli.app import app


def _cli(db: Path, *args: str, principal: str = "admin", expect: int = 0) -> tuple[str, str]:
    result = CliRunner().invoke(app, ["--db", str(db), "--principal", principal, "--embedder", "none", *args])
    assert result.exit_code == expect, (result.stdout, result.stderr)
    return result.stdout, result.stderr


def test_gc_reports_collects_and_refuses_non_admins(tmp_path: Path) -> None:
    db = tmp_path / "m.db"
    _cli(db, "init")
    _cli(db, "principal", "create", "alice")
    dry = json.loads(_cli(db, "--json", "gc", "--dry-run", "--grace", "0")[0])
    assert dry["dry_run"] is True and dry["collected"] == 0 and dry["blobs"] == 0
    assert "would collect 0 blobs" in _cli(db, "gc", "--dry-run")[0]
    assert "collected 0 blobs" in _cli(db, "gc", "--grace", "0")[0]
    _, err = _cli(db, "gc", "--grace", "0", principal="alice", expect=77)
    assert "access_denied" in err or "administrators" in err
    _cli(db, "gc", "--grace", "-1", expect=65)


def test_worker_once_with_kinds(tmp_path: Path) -> None:
    db = tmp_path / "m.db"
    _cli(db, "init")
    assert json.loads(_cli(db, "--json", "worker", "--once", "--kinds", "cache,consolidate")[0]) == []
    _, err = _cli(db, "worker", "--once", "--kinds", "defragment", expect=65)
    assert "defragment" in err


def test_gc_purges_deleted_cubes_past_their_retention(tmp_path: Path) -> None:
    db = tmp_path / "m.db"
    _cli(db, "init")
    cube_id = _cli(db, "add", "a note to delete")[0].strip()
    _cli(db, "delete", cube_id)
    assert "purged 0 cubes" in _cli(db, "gc")[0]  # inside the default retention (30 days)
    dry = json.loads(_cli(db, "--json", "gc", "--dry-run", "--retention", "0")[0])
    assert dry["purged"] == [cube_id] and dry["retention_s"] == 0
    out = _cli(db, "gc", "--retention", "0")[0]
    assert "purged 1 cubes deleted more than 0 s ago" in out and cube_id in out
    _, err = _cli(db, "undelete", cube_id, expect=66)
    assert "forgotten" in err
    _cli(db, "gc", "--retention", "-5", expect=65)
