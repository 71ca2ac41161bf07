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
