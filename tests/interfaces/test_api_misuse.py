"""Misusing the Python API (None, wrong types, negative limits, strings for datetimes, a closed client) gets a
typed ``MemcubedError`` with the JSON error body, never a plain ``TypeError``/``AttributeError``, and writes
nothing; MCP argument errors come back as the same JSON error body, not pydantic's text."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client

import memcubed
from memcubed import ClientClosed, MemcubedError, ValidationError
from memcubed.interfaces.mcp import build_mcp_server

Call = Callable[[memcubed.Memcubed, str], object]


@pytest.fixture
def mc(tmp_path: Path) -> Iterator[memcubed.Memcubed]:
    with memcubed.open(tmp_path / "misuse.db", embedder="none") as client:
        client.create_principal("alice")
        yield client


MISUSE: list[tuple[str, Call]] = [
    ("add_many(None)", lambda mc, cid: mc.add_many(None)),  # type: ignore[arg-type]
    ("add_many(a string)", lambda mc, cid: mc.add_many("text")),  # type: ignore[arg-type]
    ("add_many(a dict)", lambda mc, cid: mc.add_many({"text": "x"})),  # type: ignore[arg-type]
    ("add_many([None])", lambda mc, cid: mc.add_many([None])),  # type: ignore[list-item]
    ("add(None)", lambda mc, cid: mc.add(None)),  # type: ignore[arg-type]
    ("add(tags=a string)", lambda mc, cid: mc.add("x", tags="a")),
    ("get(None)", lambda mc, cid: mc.get(None)),  # type: ignore[arg-type]
    ("get(an int)", lambda mc, cid: mc.get(42)),  # type: ignore[arg-type]
    ("get(as_of='yesterday')", lambda mc, cid: mc.get(cid, as_of="yesterday")),  # type: ignore[arg-type]
    ("get(as_of=an ISO string)", lambda mc, cid: mc.get(cid, as_of="2024-01-01T00:00:00Z")),  # type: ignore[arg-type]
    ("get(as_of=a number)", lambda mc, cid: mc.get(cid, as_of=1700000000)),  # type: ignore[arg-type]
    ("update(no change)", lambda mc, cid: mc.update(cid)),
    ("update(None id)", lambda mc, cid: mc.update(None, text="x")),  # type: ignore[arg-type]
    ("delete(expected_version=-1)", lambda mc, cid: mc.delete(cid, expected_version=-1)),
    ("history(limit=-1)", lambda mc, cid: mc.history(cid, limit=-1)),
    ("history(offset=-5)", lambda mc, cid: mc.history(cid, offset=-5)),
    ("history(limit='10')", lambda mc, cid: mc.history(cid, limit=[10])),  # type: ignore[arg-type]
    ("get_version(0)", lambda mc, cid: mc.get_version(cid, 0)),
    ("get_version('one')", lambda mc, cid: mc.get_version(cid, "one")),  # type: ignore[arg-type]
    ("audit(limit=-1)", lambda mc, cid: mc.audit(limit=-1)),
    ("audit(limit=0)", lambda mc, cid: mc.audit(limit=0)),
    ("audit(after_seq=-1)", lambda mc, cid: mc.audit(after_seq=-1)),
    ("audit(cube_id=an int)", lambda mc, cid: mc.audit(cube_id=7)),  # type: ignore[arg-type]
    ("search(None)", lambda mc, cid: mc.search(None)),  # type: ignore[arg-type]
    ("search(k=-1)", lambda mc, cid: mc.search("x", k=-1)),
    ("search(filters=a list)", lambda mc, cid: mc.search("x", filters=["a"])),  # type: ignore[arg-type]
    ("list_cubes(limit=-1)", lambda mc, cid: mc.list_cubes(limit=-1)),
    ("share(right='god')", lambda mc, cid: mc.share(cid, "alice", "god")),
    ("share(None principal)", lambda mc, cid: mc.share(cid, None)),  # type: ignore[arg-type]
    ("revoke(None)", lambda mc, cid: mc.revoke(cid, None)),  # type: ignore[arg-type]
    ("list_principals(limit=-1)", lambda mc, cid: mc.list_principals(limit=-1)),
    ("list_api_keys(limit=0)", lambda mc, cid: mc.list_api_keys(limit=0)),
    ("revoke_api_key(None)", lambda mc, cid: mc.revoke_api_key(None)),  # type: ignore[arg-type]
    ("job(None)", lambda mc, cid: mc.job(None)),  # type: ignore[arg-type]
    ("list_jobs(state='bogus')", lambda mc, cid: mc.list_jobs(state="bogus")),
    ("run_jobs(limit=-1)", lambda mc, cid: mc.run_jobs(limit=-1)),
    ("chat(None)", lambda mc, cid: mc.chat(None)),  # type: ignore[arg-type]
    ("chat(k=-1)", lambda mc, cid: mc.chat("hi", k=-1)),
    ("cache(a string)", lambda mc, cid: mc.cache(cid)),
    ("generate(max_new_tokens=0)", lambda mc, cid: mc.generate("q", max_new_tokens=0)),
    ("generate_with_adapters(None)", lambda mc, cid: mc.generate_with_adapters("q", None)),  # type: ignore[arg-type]
    ("consolidate([])", lambda mc, cid: mc.consolidate([])),
    ("archive(None)", lambda mc, cid: mc.archive(None)),  # type: ignore[arg-type]
    ("create_principal(None)", lambda mc, cid: mc.create_principal(None)),  # type: ignore[arg-type]
]


@pytest.mark.parametrize(("case", "call"), MISUSE, ids=[c[0] for c in MISUSE])
def test_misuse_gets_a_typed_error_and_writes_nothing(mc: memcubed.Memcubed, case: str, call: Call) -> None:
    cube = mc.add("the one memory")
    before = (mc.kernel.store.load_cube(cube.id), len(mc.audit()))
    with pytest.raises(MemcubedError) as info:
        call(mc, cube.id)
    assert isinstance(info.value, ValidationError), f"{case}: {info.value!r}"
    body = json.loads(json.dumps({"error": info.value.to_dict()}))
    assert body["error"]["code"] == "validation_error"
    assert (mc.kernel.store.load_cube(cube.id), len(mc.audit())) == before


def test_audit_limit_is_honoured(mc: memcubed.Memcubed) -> None:
    for i in range(3):
        mc.add(f"memory {i}")
    assert len(mc.audit(limit=2)) == 2


CLOSED: list[tuple[str, Call]] = [
    ("add", lambda mc, cid: mc.add("after close")),
    ("get", lambda mc, cid: mc.get(cid)),
    ("search", lambda mc, cid: mc.search("memory")),
    ("list_cubes", lambda mc, cid: mc.list_cubes()),
    ("history", lambda mc, cid: mc.history(cid)),
    ("audit", lambda mc, cid: mc.audit()),
    ("create_api_key", lambda mc, cid: mc.create_api_key()),
    ("run_jobs", lambda mc, cid: mc.run_jobs()),
]


@pytest.mark.parametrize(("case", "call"), CLOSED, ids=[c[0] for c in CLOSED])
def test_a_closed_client_stays_closed(tmp_path: Path, case: str, call: Call) -> None:
    mc = memcubed.open(tmp_path / "closed.db", embedder="none")
    cube_id = mc.add("the one memory").id
    other = mc.as_principal("admin")
    mc.close()
    mc.close()  # closing again does nothing
    for client in (mc, other):  # the other client shares the closed store
        with pytest.raises(ClientClosed) as info:
            call(client, cube_id)
        assert info.value.to_dict()["code"] == "client_closed"


def test_closing_a_derived_client_leaves_the_store_open(mc: memcubed.Memcubed) -> None:
    alice = mc.as_principal("alice")
    alice.close()
    with pytest.raises(ClientClosed):
        alice.add("after close")
    assert mc.add("the store is still open").version == 1


def test_mcp_argument_errors_are_the_json_error_body(mc: memcubed.Memcubed) -> None:
    server = build_mcp_server(mc.kernel, lambda _ctx: "alice")
    calls: list[tuple[str, dict[str, Any]]] = [
        ("add", {"cube": {"text": 42}}),
        ("add", {}),
        ("get", {"cube_id": "not-an-id"}),
        ("history", {"cube_id": "0190a0a0-0000-7000-8000-000000000000", "limit": -1}),
        ("audit", {"request": {"limit": -1}}),
        ("search", {"request": {"query": "x", "k": "many"}}),
    ]

    async def main() -> list[dict[str, Any]]:
        bodies = []
        async with Client(server) as client:
            for name, arguments in calls:
                result = await client.call_tool(name, arguments)
                assert result.is_error
                text = result.content[0].text
                assert "pydantic" not in text and "errors.pydantic.dev" not in text
                bodies.append(json.loads(text[text.index("{"):]))
        return bodies

    for body in anyio.run(main):
        assert body["error"]["code"] == "validation_error"
        assert body["error"]["details"]["errors"]
