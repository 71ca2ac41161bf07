"""Hostile property: whatever was read by whom, shared, revoked, deleted or forgotten, a scheduler tick acts
only for a principal who may read every target now, never targets a deleted or forgotten cube, never
plans more KV than the budget allows, and a principal's working set (built by the jobs the tick queued)
never includes a cube they cannot read."""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import memcubed
from memcubed.cube.model import CubeState, Right
from memcubed.errors import MemcubedError
from memcubed.kernel import acl
from memcubed.settings import Settings
from memcubed.testing.openai_server import EchoChat, serve_openai

PEOPLE = ("alice", "bob", "carol")

_index = st.integers(0, 4)
_who = st.sampled_from(PEOPLE)


@pytest.fixture(scope="module")
def echo_url() -> Iterator[str]:
    """A closed model for the working-set jobs (no KV to compile, so each example stays quick)."""
    with serve_openai(chat=EchoChat()) as url:
        yield url


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(owners=st.lists(_who, min_size=5, max_size=5),
       shares=st.lists(st.tuples(_index, _who), max_size=4),
       reads=st.lists(st.tuples(_who, st.lists(_index, min_size=1, max_size=3)), min_size=1, max_size=12),
       revokes=st.lists(st.tuples(_index, _who), max_size=3),
       forgets=st.lists(_index, max_size=2), deletes=st.lists(_index, max_size=2),
       budget=st.sampled_from([0, 2_000_000, 20_000_000, None]))
def test_a_tick_never_acts_beyond_what_its_principal_may_read(
        owners: list[str], shares: list[tuple[int, str]], reads: list[tuple[str, list[int]]],
        revokes: list[tuple[int, str]], forgets: list[int], deletes: list[int], budget: int | None,
        echo_url: str) -> None:
    with tempfile.TemporaryDirectory() as folder:
        budgets = {} if budget is None else {"activation_bytes": float(budget)}
        mc = memcubed.open(Path(folder) / "s.db", embedder="none",
                           settings=Settings(auto_accept_shares=True, scheduler_budgets=budgets,
                                             models={"echo": "openai:m"}, default_model="echo",
                                             model_base_url=echo_url, scheduler_model="echo",
                                             scheduler_working_set_min_reads=1))
        try:
            _scenario(mc, owners, shares, reads, revokes, forgets, deletes, budget)
        finally:
            mc.close()


def _scenario(mc: memcubed.Memcubed, owners: list[str], shares: list[tuple[int, str]],
              reads: list[tuple[str, list[int]]], revokes: list[tuple[int, str]], forgets: list[int],
              deletes: list[int], budget: int | None) -> None:
    for name in PEOPLE:
        mc.create_principal(name)
    ids = [mc.as_principal(owner).add(f"memory {n} of {owner}: " + "word " * (5 + 7 * n)).id
           for n, owner in enumerate(owners)]
    for n, grantee in shares:
        if grantee != owners[n]:
            mc.as_principal(owners[n]).share(ids[n], grantee)
    for who, picked in reads * 2:
        for n in picked:
            with contextlib.suppress(MemcubedError):  # a hostile read of another's cube: refused, uncounted
                mc.as_principal(who).get(ids[n])
    for n, grantee in revokes:
        if grantee != owners[n]:
            mc.as_principal(owners[n]).revoke(ids[n], grantee)
    for n in deletes:
        stored = mc.kernel.store.load_cube(ids[n])
        if stored is not None and stored.state is CubeState.ACTIVE:
            mc.as_principal(owners[n]).delete(ids[n])
    for n in dict.fromkeys(forgets):
        mc.as_principal(owners[n]).forget(ids[n])
    mc.kernel.flush_events()
    kernel = mc.kernel
    for tick in (mc.scheduler_plan(), mc.scheduler_run()):
        added = 0
        for d in tick.decisions:
            if d.outcome in ("planned", "done"):
                assert d.principal is not None
                actor = kernel.store.get_principal(d.principal)
                assert actor is not None
                for target in d.targets:
                    cube = kernel._load(target, actor, Right.READ)  # raises if the principal may not read it
                    assert not cube.forgotten and cube.state is CubeState.ACTIVE
                if d.action in ("cache", "working_set"):
                    added += int(d.cost["activation_bytes"])
                if d.action == "working_set":  # the principal's own, of cubes they trust
                    assert d.principal in PEOPLE and all(acl.trusted(kernel._load(t, actor, Right.READ), actor)
                                                         for t in d.targets)
            else:
                assert d.reason
        if budget is not None:
            assert added <= budget
    while kernel.run_next_job(worker="test") is not None:  # build what the tick queued
        pass
    for name in PEOPLE:  # as built: every member readable and trusted by its principal
        ws, actor = mc.as_principal(name).working_set(), kernel.store.get_principal(name)
        assert actor is not None and (ws.cube is None or ws.cube.owner == name)
        for member in ws.members:
            assert acl.trusted(kernel._load(member, actor, Right.READ), actor)
    for n, grantee in shares[:1]:
        if grantee != owners[n]:
            with contextlib.suppress(MemcubedError):
                mc.as_principal(owners[n]).revoke(ids[n], grantee)
    for name in PEOPLE:
        ws = mc.as_principal(name).working_set()
        actor = kernel.store.get_principal(name)
        assert actor is not None
        if ws.usable:  # what chat would serve: every member readable and trusted by its principal now
            for member in ws.members:
                assert acl.trusted(kernel._load(member, actor, Right.READ), actor)
        assert ws.cube is None or ws.cube.owner == name
