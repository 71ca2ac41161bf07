"""Operations as data: one registry, every interface reaches every operation under its name, and
``validate`` checks input, rights and model ids while writing nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import pytest
from fastapi.testclient import TestClient
from typer.main import get_command

import memcubed
from memcubed import AccessDenied, MemcubedError, NotFound, ValidationError
from memcubed.interfaces.cli.app import app as cli_app
from memcubed.interfaces.mcp import build_mcp_server
from memcubed.interfaces.rest import create_app
from memcubed.kernel.registry import OPERATIONS
from memcubed.testing.conformance.fixtures import OpenMc

REST_ONLY = {"health", "chat_completions", "whoami"}
"""Server conveniences that are no kernel operation: liveness, the OpenAI proxy, get_principal of oneself."""


@pytest.fixture
def mc(open_mc: OpenMc, db_path: Path) -> memcubed.Memcubed:
    client = open_mc(db_path, embedder="none")
    for name in ("alice", "bob"):
        client.create_principal(name)
    return client


def _cli_paths(group: Any, prefix: tuple[str, ...] = ()) -> set[tuple[str, ...]]:
    found: set[tuple[str, ...]] = set()
    for name, command in getattr(group, "commands", {}).items():
        found.add((*prefix, name))
        found |= _cli_paths(command, (*prefix, name))
    return found


def test_every_operation_is_reachable_from_every_interface(mc: memcubed.Memcubed) -> None:
    names = set(OPERATIONS)
    assert {"chat", "generate", "consolidate", "recompile", "archive", "list_cubes", "delete", "revoke"} <= names
    # Python API: a Memcubed method of the same name.
    assert {n for n in names if not callable(getattr(memcubed.Memcubed, n, None))} == set()
    # CLI: the command each operation declares exists.
    paths = _cli_paths(get_command(cli_app))
    assert {op.name: op.cli for op in OPERATIONS.values() if op.cli not in paths} == {}
    # REST: an operation_id per operation, and nothing else but the server's own conveniences.
    with TestClient(create_app(mc.kernel), base_url="http://127.0.0.1") as client:
        spec = client.get("/openapi.json").json()
    rest = {op["operationId"] for path in spec["paths"].values() for op in path.values()}
    assert names - rest == set() and rest - names == REST_ONLY
    # MCP: one tool per operation, named alike.
    tools = anyio.run(build_mcp_server(mc.kernel, lambda _ctx, _op: "alice").list_tools)
    assert {t.name for t in tools} == names
    # Job kinds: exactly the job-capable operations, taking the operation's input schema as params.
    kinds = mc.kernel.job_kinds()
    assert set(kinds) == set(OPERATIONS.jobs())
    assert all(kinds[k].params is OPERATIONS[k].input for k in kinds)


def _private_cube(mc: memcubed.Memcubed) -> str:
    return mc.as_principal("alice").add("alice's vault code is 4417").id


def _payloads(cube_id: str) -> dict[str, dict[str, Any]]:
    """A payload per operation that targets alice's private cube (or needs more than bob holds)."""
    return {
        "get": {"cube_id": cube_id}, "update": {"cube_id": cube_id, "change": {"text": "x"}},
        "delete": {"cube_id": cube_id}, "forget": {"cube_id": cube_id}, "history": {"cube_id": cube_id},
        "get_version": {"cube_id": cube_id, "version": 1},
        "share": {"cube_id": cube_id, "grant": {"principal": "bob", "right": "read"}},
        "revoke": {"cube_id": cube_id, "grantee": "bob"}, "cache": {"cube_ids": [cube_id]},
        "consolidate": {"cube_ids": [cube_id]}, "recompile": {"cube_id": cube_id}, "archive": {"cube_id": cube_id},
        "add": {"text": "mine", "derived_from": [{"id": cube_id, "version": 1}]},
        "generate": {"query": "the code is", "activation_id": cube_id},
        "generate_with_adapters": {"query": "the code is", "parameter_ids": [cube_id]},
        "chat": {"messages": [{"role": "user", "content": "code?"}], "activation_id": cube_id},
        "audit": {"cube_id": cube_id}, "verify_audit": {}, "list_principals": {},
        "create_principal": {"name": "mallory"}, "get_principal": {"name": "alice"},
        "create_api_key": {"owner": "alice"}, "list_api_keys": {"owner": "alice"},
        "disable_principal": {"name": "alice"}, "enable_principal": {"name": "alice"},
        "delete_principal": {"name": "alice"}, "set_admin": {"name": "bob", "is_admin": True},
        "accept_share": {"cube_id": cube_id}, "decline_share": {"cube_id": cube_id},
        "set_trust": {"policy": "all", "name": "alice"},
        "submit_job": {"kind": "cache", "params": {"cube_ids": [cube_id]}},
    }


def test_validate_refuses_what_execute_refuses_and_writes_nothing(mc: memcubed.Memcubed) -> None:
    cube_id = _private_cube(mc)
    records = len(mc.audit())
    for name, payload in _payloads(cube_id).items():
        with pytest.raises((AccessDenied, NotFound, ValidationError)) as validated:
            OPERATIONS.validate(mc.kernel, name, payload, "bob")
        # A refusal writes one "denied" record and nothing else; a cube bob cannot read is just not found.
        denied = 1 if isinstance(validated.value, AccessDenied) else 0
        new = mc.audit()[records:]
        assert [(r.op, r.principal, r.details["operation"]) for r in new] == [("denied", "bob", name)] * denied, name
        with pytest.raises(MemcubedError) as executed:
            OPERATIONS[name].execute(mc.kernel, OPERATIONS[name].input.model_validate(payload), "bob")
        assert type(executed.value) is type(validated.value), name
        records = len(mc.audit())
    assert mc.jobs() == []
    assert mc.get(cube_id).version == 1


def test_validate_accepts_what_the_owner_may_do(mc: memcubed.Memcubed) -> None:
    cube_id = _private_cube(mc)
    records = len(mc.audit())
    for name in ("get", "update", "delete", "forget", "history", "get_version", "share", "revoke", "cache",
                 "consolidate", "audit", "get_principal", "create_api_key", "list_api_keys", "submit_job"):
        OPERATIONS.validate(mc.kernel, name, _payloads(cube_id)[name], "alice")
    assert len(mc.audit()) == records and mc.jobs() == []
    added = OPERATIONS.run(mc.kernel, "add", {"text": "through the registry"}, "alice")
    assert mc.as_principal("alice").get(added.id).text == "through the registry"


@pytest.mark.parametrize("model", ["local:/etc", "../x", "HuggingFaceTB/SmolLM2-360M-Instruct"])
def test_validate_refuses_unknown_model_ids(mc: memcubed.Memcubed, model: str) -> None:
    cube_id = _private_cube(mc)
    payloads = {"cache": {"cube_ids": [cube_id]}, "consolidate": {"cube_ids": [cube_id]},
                "recompile": {"cube_id": cube_id}, "generate": {"query": "hello"},
                "generate_with_adapters": {"query": "hello"},
                "chat": {"messages": [{"role": "user", "content": "hi"}]},
                "submit_job": {"kind": "cache", "params": {"cube_ids": [cube_id], "model": model}}}
    for name, payload in payloads.items():
        body = payload if name == "submit_job" else {**payload, "model": model}
        with pytest.raises(ValidationError) as caught:
            OPERATIONS.validate(mc.kernel, name, body, "alice")
        assert caught.value.details["allowed"] == ["local"], name


def test_validate_refuses_unknown_operations_and_bad_input(mc: memcubed.Memcubed) -> None:
    for name in ("nope", "", "_actor", "__init__"):
        with pytest.raises(ValidationError):
            OPERATIONS.validate(mc.kernel, name, {}, "alice")
    with pytest.raises(ValidationError):
        OPERATIONS.validate(mc.kernel, "add", {"text": "x", "unknown": 1}, "alice")
    with pytest.raises(ValidationError):
        OPERATIONS.validate(mc.kernel, "get", {"cube_id": "../etc"}, "alice")
    with pytest.raises(memcubed.UnknownPrincipal):
        OPERATIONS.validate(mc.kernel, "search", {"query": "x"}, "nobody")


def test_each_write_audits_under_the_declared_name(mc: memcubed.Memcubed) -> None:
    kernel = mc.kernel
    cube = kernel.call("add", {"text": "the kite nests in oak"}, principal="alice")
    key = kernel.call("create_api_key", {}, principal="alice")
    job = kernel.call("submit_job", {"kind": "cache", "params": {"cube_ids": [cube.id]}}, principal="alice")
    calls: list[tuple[str, dict[str, Any], str]] = [
        ("update", {"cube_id": cube.id, "change": {"text": "the kite nests in ash"}}, "alice"),
        ("share", {"cube_id": cube.id, "grant": {"principal": "bob"}}, "alice"),
        ("revoke", {"cube_id": cube.id, "grantee": "bob"}, "alice"),
        ("delete", {"cube_id": cube.id}, "alice"), ("forget", {"cube_id": cube.id}, "alice"),
        ("add_many", {"items": [{"text": "one"}, {"text": "two"}]}, "alice"),
        ("create_principal", {"name": "carol"}, "admin"), ("revoke_api_key", {"key_id": key.key_id}, "alice"),
        ("cancel_job", {"job_id": job.id}, "alice"),
    ]
    assert mc.audit()[-1].op == OPERATIONS["submit_job"].audit
    for name, payload, who in calls:
        before = len(mc.audit())
        kernel.call(name, payload, principal=who)
        assert {r.op for r in mc.audit()[before:]} == {OPERATIONS[name].audit}, name
    for name in ("get", "search", "list_cubes", "history", "audit", "list_jobs"):
        assert OPERATIONS[name].audit is None
    assert kernel.validate_call("search", {"query": "kite"}, principal="bob").model_dump()["query"] == "kite"
