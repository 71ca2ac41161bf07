"""Which CLI commands may create a store: only ``init``, ``serve`` and ``demo``; the rest refuse a missing one."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from memcubed.interfaces.cli.app import app


def _run(db: Path, *args: str) -> object:
    return CliRunner().invoke(app, ["--db", str(db), "--embedder", "none", *args])


@pytest.mark.parametrize("command", [
    ["search", "anything"], ["add", "a memory"], ["get", "01"], ["history", "01"], ["audit", "verify"],
    ["audit", "log"], ["principal", "list"], ["principal", "create", "alice"], ["jobs", "list"],
    ["import", "{items}"], ["mcp", "--principal", "admin"], ["worker", "--once"],
])
def test_commands_refuse_a_mistyped_store_and_create_nothing(tmp_path: Path, command: list[str]) -> None:
    (tmp_path / "items.jsonl").write_text('{"text": "x"}\n')
    db = tmp_path / "memroies.db"  # a typo of an existing store's name
    result = _run(db, *(arg.format(items=tmp_path / "items.jsonl") for arg in command))
    assert result.exit_code == 66, (result.output, result.stderr)  # type: ignore[attr-defined]
    assert "store_not_found" in result.stderr and str(db) in result.stderr  # type: ignore[attr-defined]
    assert not db.exists() and not Path(f"{db}-wal").exists()


def test_json_errors_name_the_code(tmp_path: Path) -> None:
    result = _run(tmp_path / "none.db", "--json", "search", "tea")
    assert result.exit_code == 66  # type: ignore[attr-defined]
    assert json.loads(result.stderr)["error"]["code"] == "store_not_found"  # type: ignore[attr-defined]


def test_init_creates_the_store_once_then_commands_work(tmp_path: Path) -> None:
    db = tmp_path / "memories.db"
    first = _run(db, "init")
    assert first.exit_code == 0 and "store ready" in first.stdout  # type: ignore[attr-defined]
    assert db.exists() and db.stat().st_mode & 0o777 == 0o600
    assert _run(db, "init").exit_code == 0  # type: ignore[attr-defined]  # idempotent
    assert _run(db, "add", "Alice prefers green tea").exit_code == 0  # type: ignore[attr-defined]
    found = _run(db, "--json", "search", "green tea", "--mode", "lexical")
    assert found.exit_code == 0 and json.loads(found.stdout)["hits"]  # type: ignore[attr-defined]


def test_init_refuses_a_missing_folder(tmp_path: Path) -> None:
    result = _run(tmp_path / "no" / "such" / "memories.db", "init")
    assert result.exit_code == 66 and "never created" in result.stderr  # type: ignore[attr-defined]
    assert not (tmp_path / "no").exists()


def test_mcp_needs_an_explicit_principal_or_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without --principal (or MEMCUBED_PRINCIPAL) or --key, stdio MCP refuses to start instead of acting as admin."""
    monkeypatch.delenv("MEMCUBED_PRINCIPAL", raising=False)
    monkeypatch.delenv("MEMCUBED_API_KEY", raising=False)
    db = tmp_path / "mcp.db"
    assert _run(db, "init").exit_code == 0  # type: ignore[attr-defined]
    refused = _run(db, "mcp")
    assert refused.exit_code == 78 and "--principal" in refused.stderr  # type: ignore[attr-defined]
    bad_key = _run(db, "mcp", "--key", "mck_0123456789abcdef_" + "A" * 43)
    assert bad_key.exit_code == 77  # type: ignore[attr-defined]
    import memcubed

    with memcubed.open(db, embedder="none") as mc:
        mc.create_principal("alice")
        mc.create_principal("bob")
        alice_key = mc.create_api_key("alice").key
    mismatch = _run(db, "mcp", "--principal", "bob", "--key", alice_key)
    assert mismatch.exit_code == 78 and "differ" in mismatch.stderr  # type: ignore[attr-defined]
    unknown = _run(db, "mcp", "--principal", "mallory")
    assert unknown.exit_code == 77  # type: ignore[attr-defined]
