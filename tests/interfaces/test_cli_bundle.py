"""``memcubed export`` and ``memcubed import`` of bundles through Typer's CliRunner, on real SQLite files; ``import``
still takes JSONL (tested in test_cli.py), and tells the two apart by the file."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from memcubed.interfaces.cli.app import app


def _run(db: Path, *args: str, principal: str = "admin", expect: int = 0) -> str:
    result = CliRunner().invoke(app, ["--db", str(db), "--principal", principal, "--embedder", "none", *args])
    assert result.exit_code == expect, (result.exit_code, result.output, result.stderr)
    return result.stdout


def test_export_then_import_a_bundle(tmp_path: Path) -> None:
    source, target, bundle = tmp_path / "source.db", tmp_path / "target.db", tmp_path / "out.mcb"
    for db in (source, target):
        _run(db, "init")
    _run(source, "principal", "create", "alice")
    first = _run(source, "add", "the heron fishes at dawn", "--namespace", "birds", "--tag", "pond",
                 principal="alice").strip()
    _run(source, "update", first, "--text", "the heron fishes at dusk", principal="alice")
    _run(source, "add", "another principal's note", "--namespace", "birds")
    exported = json.loads(_run(source, "--json", "export", "--out", str(bundle), "--namespace", "birds",
                               principal="alice"))
    assert exported["cubes"] == 1 and exported["versions"] == 2 and bundle.is_file()  # admin's note is not alice's
    assert "exported 1 cubes" in _run(source, "export", "--out", str(tmp_path / "by-id.mcb"), first,
                                      principal="alice")

    _run(target, "principal", "create", "bob")
    report = json.loads(_run(target, "--json", "import", str(bundle), "--namespace", "copied", principal="bob"))
    new_id = report["ids"][first]
    shown = json.loads(_run(target, "--json", "get", new_id, principal="bob"))
    assert shown["text"] == "the heron fishes at dusk" and shown["owner"] == "bob" and shown["version"] == 2
    assert "imported 1 cubes" in _run(target, "import", str(bundle), "--namespace", "again", principal="bob")

    # Refusals get the error table's exit codes: no namespace, someone else as owner, a damaged file.
    _run(target, "import", str(bundle), principal="bob", expect=65)
    _run(target, "import", str(bundle), "--namespace", "x", "--owner", "admin", principal="bob", expect=77)
    damaged = tmp_path / "damaged.mcb"
    data = bundle.read_bytes()
    damaged.write_bytes(data[: len(data) // 2])
    _run(target, "import", str(damaged), "--namespace", "x", principal="bob", expect=65)
    _run(source, "export", "--out", str(tmp_path / "no" / "such" / "dir.mcb"), first, principal="alice", expect=74)
