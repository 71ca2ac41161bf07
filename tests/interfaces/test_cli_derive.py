"""The CLI commands derived from the registry: parity with the input schemas, and hostile input through the real
app (Typer's CliRunner, a real SQLite store) answered with the kernel's own typed errors, writing nothing."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel
from typer.main import get_command
from typer.testing import CliRunner

import memcubed
from memcubed import MemcubedError, NotFound
from memcubed.interfaces.cli.app import app
from memcubed.interfaces.cli.derive import command_params
from memcubed.interfaces.cli.errors import exit_code
from memcubed.kernel.operation import Cli, Operation
from memcubed.kernel.registry import OPERATIONS
from memcubed.schemas.operation import CubeRef

HAND_WRITTEN = {
    "add_many": "`import` reads a JSONL file in batches (shared with import_bundle by file type)",
    "import_bundle": "`import` reads a bundle file (shared with add_many by file type)",
    "export_bundle": "`export` streams the bundle into a file",
    "cache": "takes --background (queue a job) and a model loaded by the CLI, draws progress",
    "consolidate": "takes --background and LoRA options outside its job schema, draws progress",
    "recompile": "draws training progress and prints the evaluation table",
    "generate": "loads the model through the CLI's model option and prints the generation",
    "generate_with_adapters": "`recall`: loads the model through the CLI's model option",
    "chat": "builds messages from one query text, --compare re-reads the prefix, prints timings",
    "verify_audit": "a subcommand (`audit verify`)",
    "create_principal": "a subcommand (`principal create`) that also issues and prints a key",
    "set_admin": "a subcommand (`principal set-admin`)",
    "get_principal": "a subcommand (`principal show`), defaulting to the acting principal",
    "create_api_key": "a subcommand (`principal create-key`)",
    "submit_job": "a subcommand (`jobs submit`) taking its params as one JSON argument",
    "cancel_job": "a subcommand (`jobs cancel`)",
    "propose_plan": "a subcommand (`plan propose`) that can write the plan to a file",
    "execute_plan": "a subcommand (`plan execute`) that reads the plan from a file",
    "collect_garbage": "`gc` prints what it purged and removed as a table",
    "reembed": "draws progress and may run in the background",
    "scheduler_plan": "a subcommand (`scheduler plan`)",
    "scheduler_run": "a subcommand (`scheduler run`)",
    "set_working_set": "a subcommand (`working-set set`)",
    "clear_working_set": "a subcommand (`working-set clear`)",
    "remember": "reads conversation turns from a file or stdin (cli/remember.py)",
    "extract": "cli/remember.py, kept by hand while remember changes",
}
"""Operations whose command is written by hand, and why (each still has the command its ``cli`` names)."""


def _leaves(op: Operation) -> dict[str, tuple[bool, bool]]:
    """What the schema says ``op``'s command takes: parameter name → (required, positional), read from the
    input fields (and the fields of the models it expands) and the declaration's renames."""
    assert op.command is not None
    decl = op.command
    found: dict[str, tuple[bool, bool]] = {}
    for name, info in op.input.model_fields.items():
        if name in decl.expand:
            model = info.annotation
            assert isinstance(model, type) and issubclass(model, BaseModel)
            for sub, sub_info in model.model_fields.items():
                found[decl.names.get(decl.expand[name] + sub, decl.expand[name] + sub)] = (sub_info.is_required(),
                                                                                          False)
        else:
            found[decl.names.get(name, name)] = (info.is_required(), False)
    return {name: (required, name in decl.args) for name, (required, _) in found.items()}


def test_every_derived_command_takes_its_schemas_fields() -> None:
    commands: dict[str, click.Command] = get_command(app).commands  # type: ignore[attr-defined]
    derived = [op for op in OPERATIONS.values() if op.command is not None]
    assert {op.name for op in derived} >= {"add", "get", "update", "delete", "forget", "undelete", "restore",
                                           "search", "list_cubes", "history", "share", "revoke", "accept_share",
                                           "decline_share", "get_version", "audit", "list_principals",
                                           "disable_principal", "enable_principal", "delete_principal", "set_trust",
                                           "list_api_keys", "revoke_api_key", "job", "list_jobs"}
    for words in {op.cli for op in derived}:
        ops = [op for op in derived if op.cli == words]
        schema = [_leaves(op) for op in ops]
        command = commands[words[0]]
        if len(words) == 2:
            command = command.commands[words[1]]  # type: ignore[attr-defined]
        params = {p.name: p for p in command.params if p.name != "help"}
        assert set(params) == {name for leaves in schema for name in leaves}, words
        for name, param in params.items():
            # required on the command line only where every operation sharing the command requires it
            assert param.required == all(leaves.get(name, (False, False))[0] for leaves in schema), (words, name)
            positional = param.param_type_name == "argument"
            assert positional == any(leaves.get(name, (False, False))[1] for leaves in schema), (words, name)
            if not positional:
                flags = next(op.command.flags.get(name) for op in ops if op.command and name in _leaves(op))
                assert set(flags or ()) <= set(param.opts) and param.opts, (words, name)
                assert (param.help or "").strip(), (words, name)
        assert command.help == ops[0].summary


def test_every_other_operation_is_listed_as_hand_written_with_a_reason() -> None:
    plain = {name for name, op in OPERATIONS.items() if op.command is None}
    assert plain == set(HAND_WRITTEN), (plain - set(HAND_WRITTEN), set(HAND_WRITTEN) - plain)
    assert all(reason.strip() for reason in HAND_WRITTEN.values())


def test_a_declaration_naming_a_missing_field_is_refused() -> None:
    base = OPERATIONS["forget"]
    for bad in (Cli(args=("id",)), Cli(flags={"cube": ("-c",)}), Cli(expand={"cube_id": ""}),
                Cli(names={"nothing": "x"}), Cli(names={"nothing": "cube_id"}), Cli(when="version")):
        broken = Operation("forget", CubeRef, base.output, base.authorize, base.execute, base.audit, base.cli,
                           base.summary, command=bad)
        with pytest.raises(ValueError, match="forget"):
            command_params(broken)


# -- through the real CLI ---------------------------------------------------------------------------------

Invoke = Callable[..., Any]


@pytest.fixture
def store(tmp_path: Path) -> tuple[Invoke, str]:
    runner = CliRunner()
    db = str(tmp_path / "derive.db")
    assert runner.invoke(app, ["--db", db, "--embedder", "none", "init"]).exit_code == 0

    def invoke(*args: str, principal: str = "admin") -> Any:
        return runner.invoke(app, ["--db", db, "--principal", principal, "--embedder", "none", *args])

    assert invoke("principal", "create", "bob").exit_code == 0
    return invoke, db


def _snapshot(db: str) -> tuple[Any, ...]:
    """Everything a failed command must leave as it was: the cubes (every state) and the audit chain."""
    with memcubed.open(db, embedder="none", create=False) as mc:
        cubes = mc.list_cubes(filters={"states": ["active", "stale", "archived", "deleted"]}, limit=1000)
        return tuple(c.model_dump_json() for c in cubes), tuple(r.hash for r in mc.audit(limit=1000))


def _kernel_error(db: str, principal: str, call: Callable[[memcubed.Memcubed], object]) -> MemcubedError:
    with memcubed.open(db, embedder="none", create=False) as mc, pytest.raises(MemcubedError) as caught:
        call(mc.as_principal(principal))
    return caught.value


def test_another_principals_cube_answers_as_the_kernel_does_and_writes_nothing(store: tuple[Invoke, str]) -> None:
    invoke, db = store
    cube_id = invoke("add", "admin's vault code is 4417", "-t", "secret").stdout.strip()
    before = _snapshot(db)
    api: dict[tuple[str, ...], Callable[[memcubed.Memcubed], object]] = {
        ("get", cube_id): lambda mc: mc.get(cube_id),
        ("get", cube_id, "--version", "1"): lambda mc: mc.get_version(cube_id, 1),
        ("update", cube_id, "--text", "mine now"): lambda mc: mc.update(cube_id, text="mine now"),
        ("delete", cube_id): lambda mc: mc.delete(cube_id),
        ("forget", cube_id): lambda mc: mc.forget(cube_id),
        ("undelete", cube_id): lambda mc: mc.undelete(cube_id),
        ("restore", cube_id): lambda mc: mc.restore(cube_id),
        ("history", cube_id): lambda mc: mc.history(cube_id),
        ("share", cube_id, "bob", "--right", "admin"): lambda mc: mc.share(cube_id, "bob", "admin"),
        ("revoke", cube_id, "admin"): lambda mc: mc.revoke(cube_id, "admin"),
        ("accept", cube_id): lambda mc: mc.accept_share(cube_id),
        ("decline", cube_id): lambda mc: mc.decline_share(cube_id),
        ("principal", "disable", "admin"): lambda mc: mc.disable_principal("admin"),
        ("principal", "keys", "admin"): lambda mc: mc.api_keys("admin"),
        ("principal", "trust", "all", "--name", "admin"): lambda mc: mc.set_trust("all", "admin"),
    }
    for args, call in api.items():
        expected = _kernel_error(db, "bob", call)
        result = invoke(*args, principal="bob")
        assert result.exit_code == exit_code(expected) and result.exit_code in (66, 77), args
        assert result.stderr.strip() == f"error [{expected.code}]: {expected.message}", args
        as_json = invoke("--json", *args, principal="bob")
        assert json.loads(as_json.stderr)["error"]["code"] == expected.code, args
        assert "4417" not in result.stdout + result.stderr + as_json.stderr
    assert isinstance(_kernel_error(db, "bob", api[("get", cube_id)]), NotFound)  # unreadable looks missing
    # Bob's denied attempts were audited (as every interface audits them); nothing else changed.
    cubes, chain = _snapshot(db)
    assert cubes == before[0] and chain[: len(before[1])] == before[1]


@pytest.mark.parametrize("args", [
    ("get", "{id}", "--as-of", "last tuesday"),
    ("get", "{id}", "--true-at", "2024-13-01"),
    ("get", "{id}", "--version", "0"),
    ("get", "{id}", "--version", "one"),
    ("get", "{id}", "--version", "1", "--as-of", "2024-01-01"),
    ("get", "not-a-cube-id"),
    ("search", "tea", "-k", "0"),
    ("search", "tea", "-k", "1001"),
    ("search", "tea", "--mode", "fuzzy"),
    ("search", "x" * 10_001),
    ("search", "tea", "--kind", "plaintext", "--kind", "quantum"),
    ("search", "tea", "--question-date", "soon"),
    ("list", "--state", "gone"),
    ("list", "--limit", "0"),
    ("list", "--offset", "-1"),
    ("list", "--namespace", "../etc"),
    ("add", "note", "--importance", "2.0"),
    ("add", "note", "--importance", "nan"),
    ("add", "note", "--importance", "True"),
    ("add", "note", "--meta", "{not json"),
    ("add", "note", "--derived-from", '[{"id": "{id}", "version": 0}]'),
    ("add", "note", "--source-type", "x" * 65),
    ("add", "note", "--tag", "t" * 65),
    ("add", "nul \x00 in text"),
    ("add", "   "),
    ("update", "{id}"),
    ("update", "{id}", "--importance", "-0.1"),
    ("update", "{id}", "--expected-version", "zero"),
    ("update", "{id}", "--source", '{"type": "x", "surprise": 1}'),
    ("delete", "{id}", "--expected-version", "0"),
    ("share", "{id}", "bob", "--right", "owner"),
    ("share", "{id}", "bob; DROP TABLE cubes"),
    ("revoke", "{id}", "' OR 1=1 --"),
    ("history", "{id}", "--limit", "1001"),
    ("jobs", "list", "--state", "asleep"),
    ("jobs", "show", ""),
    ("audit", "log", "--after", "-1"),
    ("audit", "log", "--cube", "../{id}"),
    ("principal", "keys", "--limit", "0"),
    ("principal", "trust", "everyone"),
    ("principal", "disable", "no such/name"),
])
def test_malformed_values_are_the_schemas_validation_error(store: tuple[Invoke, str], args: tuple[str, ...]) -> None:
    invoke, db = store
    cube_id = invoke("add", "Alice prefers green tea").stdout.strip()
    before = _snapshot(db)
    result = invoke("--json", *(a.replace("{id}", cube_id) for a in args))
    assert result.exit_code == 65, (result.exit_code, result.stdout, result.stderr)
    assert json.loads(result.stderr)["error"]["code"] == "validation_error"
    assert _snapshot(db) == before


def test_values_are_read_as_the_schema_reads_them(store: tuple[Invoke, str]) -> None:
    invoke, _ = store
    text = "'); DROP TABLE cubes; -- [bold]not markup[/] $(rm -rf /)"
    cube_id = invoke("add", text, "-n", "notes", "-t", "b", "-t", "a", "--meta", '{"k": [1, "two"]}',
                     "--valid-from", "2024-05-01T12:00:00", "--source-uri", "doc://1").stdout.strip()
    cube = json.loads(invoke("--json", "get", cube_id).stdout)
    assert cube["text"] == text and cube["namespace"] == "notes" and cube["tags"] == ["a", "b"]
    assert cube["meta"] == {"k": [1, "two"]} and cube["source"] == {"type": "cli", "uri": "doc://1", "ref": None,
                                                                    "occurred_at": None}
    assert cube["valid_from"].startswith("2024-05-01T12:00:00") and cube["valid_from"][19:] in ("Z", "+00:00")
    # a naive time is UTC: the cube did not exist at 2000-01-01 in any zone
    assert invoke("get", cube_id, "--as-of", "2000-01-01").exit_code == 66
    assert invoke("get", cube_id, "--as-of", "2999-01-01T00:00:00+05:00").exit_code == 0
    hits = json.loads(invoke("--json", "search", "DROP TABLE", "-n", "notes", "--mode", "lexical").stdout)["hits"]
    assert [h["cube"]["id"] for h in hits] == [cube_id]
    assert f"{cube_id} v2" in invoke("update", cube_id, "--importance", "1").stdout
    shared = invoke("share", cube_id, "bob").stdout
    assert shared.strip() == f"bob may read {cube_id} (v2)"
    assert invoke("revoke", cube_id, "bob").stdout.strip() == f"bob has no rights on {cube_id} (v2)"


@settings(max_examples=25, deadline=None)
@given(raw=st.one_of(st.floats(allow_nan=True, allow_infinity=True).map(repr), st.text(max_size=8)))
def test_importance_is_stored_exactly_or_refused_without_a_write(store: tuple[Invoke, str], raw: str) -> None:
    invoke, db = store
    before = _snapshot(db)
    result = invoke("--json", "add", "a note", "--importance", raw)
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if 0.0 <= value <= 1.0:
        assert result.exit_code == 0, (raw, result.stderr)
        assert json.loads(result.stdout)["importance"] == value
    else:
        assert result.exit_code == 65, (raw, result.exit_code, result.stderr)
        assert _snapshot(db) == before
