"""The scheduler owns the working set: a tick chooses each reader's members from the usage signals, builds it
through ``set_working_set`` as that principal (a job), explains the choice, and rebuilds it when a member
changes, is revoked, or hotness moves; it never names a cube its principal cannot read. A closed model (a
real echo upstream) keeps the jobs fast: its working set needs no KV."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

import memcubed
from memcubed.errors import MemcubedError
from memcubed.schemas.scheduler import DecisionRecord
from memcubed.settings import Settings
from memcubed.testing.backends import Backend
from memcubed.testing.conformance.fixtures import OpenMc, backend, open_mc, pg_cluster
from memcubed.testing.conformance.scheduler import _read  # the same reads drive both suites
from memcubed.testing.openai_server import EchoChat, serve_openai

__all__ = [
    "backend",
    "echo_url",
    "open_mc",
    "pg_cluster",
    "test_a_member_changed_or_revoked_rebuilds_the_working_set_without_it",
    "test_a_tick_builds_the_working_set_as_its_reader_and_explains_it",
    "test_another_principals_reads_never_shape_my_working_set",
    "test_hotness_moves_the_working_set_only_past_the_refresh_threshold",
    "wsched",
]

Opener = Callable[..., memcubed.Memcubed]


@pytest.fixture(scope="module")
def echo_url() -> Iterator[str]:
    with serve_openai(chat=EchoChat()) as url:
        yield url


@pytest.fixture
def wsched(open_mc: OpenMc, backend: Backend, echo_url: str) -> Opener:
    """A fresh lexical-only store with alice, bob and carol whose scheduler builds working sets for a closed
    model (``settings`` overrides)."""
    def _open(**overrides: Any) -> memcubed.Memcubed:
        settings = Settings(**{"models": {"echo": "openai:m"}, "default_model": "echo", "model_base_url": echo_url,
                               "scheduler_model": "echo", "scheduler_stable_s": 0, "auto_accept_shares": True,
                               **overrides})
        client = open_mc(backend.location(), embedder="none", settings=settings)
        for name in ("alice", "bob", "carol"):
            client.create_principal(name)
        return client
    return _open


def _tick(mc: memcubed.Memcubed) -> list[DecisionRecord]:
    """One tick, then every job it queued run to its end here."""
    decisions = [d for d in mc.scheduler_run().decisions if d.action == "working_set"]
    while mc.kernel.run_next_job(worker="test") is not None:
        pass
    return decisions


def test_a_tick_builds_the_working_set_as_its_reader_and_explains_it(wsched: Opener) -> None:
    mc = wsched()
    alice = mc.as_principal("alice")
    hot = [alice.add(f"the ferry to island {n} leaves at {n} o'clock").id for n in range(2)]
    cold = alice.add("a note read only once").id
    _read(mc, "alice", hot)
    _read(mc, "alice", [cold], times=1)
    planned = [d for d in mc.scheduler_plan().decisions if d.action == "working_set"]
    assert [(d.outcome, d.principal, d.targets) for d in planned] == [("planned", "alice", sorted(hot))]
    assert planned[0].inputs["why"] == "no working set yet" and planned[0].score > 0
    assert alice.working_set().cube is None  # the dry run built nothing
    [done] = _tick(mc)
    assert done.outcome == "done" and done.job_id is not None
    ws = alice.working_set()
    assert ws.members == sorted(hot) and ws.usable and ws.cube is not None
    assert mc.kernel.job(done.job_id, principal="alice").principal == "alice"  # built with alice's rights
    assert [d.id for d in alice.scheduler_log(action="working_set")] == [done.id]  # explained to her
    assert [r.op for r in mc.audit() if r.op == "scheduler.decision"]
    assert _tick(mc) == []  # nothing moved: kept as is
    assert alice.working_set().cube == ws.cube


def test_a_member_changed_or_revoked_rebuilds_the_working_set_without_it(wsched: Opener) -> None:
    mc = wsched()
    alice, bob = mc.as_principal("alice"), mc.as_principal("bob")
    mine = alice.add("alice's locker code is 4471").id
    shared = bob.add("bob's boat is moored at pier 3").id
    bob.share(shared, "alice")
    _read(mc, "alice", [mine, shared])
    _tick(mc)
    first = alice.working_set()
    assert first.members == sorted([mine, shared]) and first.usable
    alice.update(mine, text="alice's locker code is 9902")  # a member's text changed
    assert not alice.working_set().usable
    [refresh] = _tick(mc)
    assert refresh.inputs["why"].startswith("not usable") and refresh.outcome == "done"
    second = alice.working_set()
    assert second.usable and second.cube is not None and first.cube is not None
    assert second.cube.id != first.cube.id and second.members == first.members
    assert {r.id: r.version for r in second.cube.derived_from}[mine] == 2  # the new text
    bob.revoke(shared, "alice")  # a member no longer readable by her
    [again] = _tick(mc)
    assert again.targets == [mine] and "no longer readable" in again.inputs["why"]
    third = alice.working_set()
    assert third.members == [mine] and third.usable


def test_hotness_moves_the_working_set_only_past_the_refresh_threshold(wsched: Opener) -> None:
    mc = wsched(working_set_max_cubes=1)
    alice = mc.as_principal("alice")
    a, b = (alice.add(f"memory {n}: the kettle is in cupboard {n}").id for n in range(2))
    _read(mc, "alice", [a], times=4)
    _read(mc, "alice", [b], times=3)
    _tick(mc)
    assert alice.working_set().members == [a]
    _read(mc, "alice", [b], times=1)  # b is now as hot as a (a hair hotter): not enough to rebuild
    assert _tick(mc) == [] and alice.working_set().members == [a]
    _read(mc, "alice", [b], times=6)
    [moved] = _tick(mc)
    assert moved.inputs["why"] == "members' hotness changed" and moved.targets == [b]
    assert moved.inputs["value_after"] > moved.inputs["value_before"] * 1.25
    assert alice.working_set().members == [b]


def test_another_principals_reads_never_shape_my_working_set(wsched: Opener) -> None:
    mc = wsched()
    alice, bob = mc.as_principal("alice"), mc.as_principal("bob")
    private = bob.add("bob's private diary entry").id
    mine = alice.add("alice's shopping list: eggs and flour").id
    _read(mc, "bob", [private], times=5)
    _read(mc, "alice", [mine])
    for _ in range(3):  # hostile reads of bob's cube by alice are refused and never counted as hers
        with pytest.raises(MemcubedError):
            alice.get(private)
    mc.kernel.flush_events()
    decisions = _tick(mc)
    assert sorted((d.principal, tuple(d.targets)) for d in decisions) == [("alice", (mine,)), ("bob", (private,))]
    assert alice.working_set().members == [mine] and bob.working_set().members == [private]
    carol = mc.as_principal("carol")  # read nothing: no working set, no decision about her
    assert carol.working_set().cube is None and carol.scheduler_log() == []
