"""The parameter-memory CLI commands end to end: consolidate (progress on stderr, evaluation table), recall, archive."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from memcubed.backends.models import LocalTransformersLM
from memcubed.interfaces.cli.app import app


def test_consolidate_recall_archive(tmp_path: Path, lm: LocalTransformersLM) -> None:
    runner = CliRunner()
    base = ["--db", str(tmp_path / "cli.db"), "--embedder", "none"]

    def run(*args: str, expect: int = 0):  # type: ignore[no-untyped-def]
        result = runner.invoke(app, [*base, *args])
        assert result.exit_code == expect, (result.exit_code, result.output, result.stderr)
        return result

    run("init")
    fact = run("add", "Thorlen the glassblower lives in Bergen.").stdout.strip()
    gated = run("consolidate", fact, "--epochs", "1", "--rank", "4", "--rehearsal", "0", "--no-control",
                "--recall-min", "1")  # one epoch does not recall the fact: the gate refuses the adapter
    assert "failed, stored inactive" in gated.stdout and "below recall_min" in gated.stdout
    assert "adapter_inactive" in run("recall", "Where?", "--adapter", gated.stdout.splitlines()[0], expect=75).stderr
    shown = run("consolidate", fact, "--epochs", "1", "--rank", "4", "--rehearsal", "0", "--no-control",
                "--recall-min", "0")
    cube_id = shown.stdout.splitlines()[0]
    assert "recall with no context" in shown.stdout and "facts" in shown.stdout and "control drift" in shown.stdout
    assert "passed, served" in shown.stdout
    assert "consolidating" in shown.stderr  # the progress bar, kept off stdout
    cube = json.loads(run("--json", "get", cube_id).stdout)
    assert cube["kind"] == "parameter" and cube["meta"]["rank"] == 4 and cube["derived_from"][0]["id"] == fact
    answer = json.loads(run("--json", "recall", "Thorlen the glassblower lives in", "--adapter", cube_id,
                            "--max-new-tokens", "3").stdout)
    assert answer["adapters"] == [cube_id]
    assert "archived" in run("archive", cube_id).stdout
    assert "conflict" in run("recall", "Where?", "--adapter", cube_id, expect=75).stderr
    assert "validation_error" in run("consolidate", fact, "--rank", "0", expect=65).stderr
