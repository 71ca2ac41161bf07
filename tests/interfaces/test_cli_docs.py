"""Every CLI command and option documents itself (sqlite-utils' test_docs habit)."""

from __future__ import annotations

from typer.main import get_command
from typer.testing import CliRunner

from memcubed.interfaces.cli.app import app


def _commands(group: object, prefix: str = "") -> list[tuple[str, object]]:
    found = []
    for name, command in getattr(group, "commands", {}).items():
        found.append((f"{prefix}{name}", command))
        found.extend(_commands(command, f"{prefix}{name} "))
    return found


def test_every_command_and_option_has_help() -> None:
    commands = _commands(get_command(app))
    expected = {"add", "search", "cache", "chat", "audit verify", "principal create", "demo locomo"}
    assert expected <= {n for n, _ in commands}
    for name, command in commands:
        assert (getattr(command, "help", None) or "").strip(), f"command {name!r} has no help"
        for param in getattr(command, "params", []):
            if param.param_type_name == "option" and param.name != "ctx":
                assert (param.help or "").strip(), f"option {param.name!r} of {name!r} has no help"


def test_help_renders_for_every_command() -> None:
    runner = CliRunner()
    for name, _ in _commands(get_command(app)):
        result = runner.invoke(app, [*name.split(), "--help"])
        assert result.exit_code == 0 and "Usage" in result.output, name


