"""Conformance: the scheduler on every backend: reads carry request ids, a tick acts for the readers whose
reads made cubes hot (never for one who cannot read them), budgets defer, a dry run writes nothing, every
decision is logged and audited, and the same event log gives the same decisions (replay)."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

import memcubed
from memcubed.errors import AccessDenied, Conflict, NotFound, ValidationError
from memcubed.kernel.scheduler import TICK_LEASE
from memcubed.kernel.scheduler_state import SIGNALS
from memcubed.schemas.events import ACCESS, Event
from memcubed.schemas.scheduler import DecisionRecord
from memcubed.settings import Settings
from memcubed.testing.backends import Backend
from memcubed.testing.conformance.fixtures import OpenMc, backend, open_mc, pg_cluster

__all__ = [
    "backend",
    "open_mc",
    "pg_cluster",
    "sched",
    "test_a_dry_run_writes_nothing",
    "test_a_read_records_one_request_id_for_the_cubes_it_returned",
    "test_a_tick_acts_for_the_reader_and_explains_itself",
    "test_admit_checks_rights_and_budgets",
    "test_forgotten_and_revoked_cubes_are_never_targets",
    "test_hot_cubes_of_another_principal_act_for_them",
    "test_one_tick_at_a_time",
    "test_only_administrators_run_the_scheduler",
    "test_over_budget_is_deferred_with_its_reason",
    "test_replaying_one_event_log_gives_the_same_decisions",
    "test_trimming_keeps_what_the_scheduler_has_not_read",
]

Opener = Callable[..., memcubed.Memcubed]


@pytest.fixture
def sched(open_mc: OpenMc, backend: Backend) -> Opener:
    """Opens a fresh lexical-only store with alice, bob and carol (``settings`` overrides the scheduler's;
    working sets are off unless asked for: these tests are about the cache policies' own decisions)."""
    def _open(**overrides: Any) -> memcubed.Memcubed:
        client = open_mc(backend.location(), embedder="none",
                         settings=Settings(scheduler_stable_s=0, **{"scheduler_working_sets": False, **overrides}))
        for name in ("alice", "bob", "carol"):
            client.create_principal(name)
        return client
    return _open


def _read(mc: memcubed.Memcubed, who: str, cube_ids: list[str], times: int = 3) -> None:
    for _ in range(times):
        for cube_id in cube_ids:
            mc.as_principal(who).get(cube_id)
    mc.kernel.flush_events()


def _counts(mc: memcubed.Memcubed) -> tuple[int, int, int, str | None]:
    return (len(mc.scheduler_log(limit=1000)), len(mc.jobs(limit=1000)), len(mc.audit()),
            mc.kernel.store.get_meta(SIGNALS))


def test_a_read_records_one_request_id_for_the_cubes_it_returned(sched: Opener) -> None:
    mc = sched()
    alice = mc.as_principal("alice")
    for text in ("the heron fishes at dawn", "the heron nests in reeds", "the heron is grey"):
        alice.add(text)
    assert len(alice.search("heron", k=3).hits) == 3
    mc.kernel.flush_events()
    events = [e.event for e in mc.kernel.store.read_events(kinds=(ACCESS,))]
    assert len(events) == 3 and len({e.details["req"] for e in events}) == 1
    alice.search("heron", k=3)
    mc.kernel.flush_events()
    assert len({e.event.details["req"] for e in mc.kernel.store.read_events(kinds=(ACCESS,))}) == 2


def test_a_tick_acts_for_the_reader_and_explains_itself(sched: Opener) -> None:
    mc = sched()
    cube = mc.as_principal("alice").add("alice keeps the spare key under the blue pot")
    _read(mc, "alice", [cube.id])
    tick = mc.scheduler_run()
    done = [d for d in tick.decisions if d.outcome == "done"]
    assert [(d.action, d.targets, d.principal) for d in done] == [("cache", [cube.id], "alice")]
    assert done[0].seq > 0 and done[0].inputs["tokens"] > 0 and done[0].budget["store"]
    job = mc.job(done[0].job_id or "")
    assert job.kind == "cache" and job.principal == "alice" and job.params["cube_ids"] == [cube.id]
    audit = [r for r in mc.audit() if r.op == "scheduler.decision"]
    assert [r.details["decision"] for r in audit] == [done[0].id]
    assert [d.id for d in mc.as_principal("alice").scheduler_log()] == [done[0].id]
    assert mc.as_principal("bob").scheduler_log() == []
    # The submitted job is pending work: the next tick neither repeats it nor counts it twice.
    assert [d for d in mc.scheduler_run().decisions if d.outcome == "done"] == []


def test_a_dry_run_writes_nothing(sched: Opener) -> None:
    mc = sched()
    cube = mc.as_principal("alice").add("the ferry leaves at nine")
    _read(mc, "alice", [cube.id])
    before = _counts(mc)
    planned = mc.scheduler_plan()
    assert [(d.action, d.outcome, d.principal) for d in planned.decisions] == [("cache", "planned", "alice")]
    assert _counts(mc) == before
    assert [d.targets for d in mc.scheduler_run().decisions] == [d.targets for d in planned.decisions]


def test_over_budget_is_deferred_with_its_reason(sched: Opener) -> None:
    mc = sched(scheduler_budgets={"activation_bytes": 1000})
    cube = mc.as_principal("alice").add("a memory much larger than a thousand bytes of KV " * 3)
    _read(mc, "alice", [cube.id])
    tick = mc.scheduler_run()
    assert [(d.action, d.outcome) for d in tick.decisions] == [("cache", "deferred")]
    assert "activation_bytes" in (tick.decisions[0].reason or "")
    assert mc.jobs() == [] and not [r for r in mc.audit() if r.op == "scheduler.decision"]
    assert mc.scheduler_log()[0].outcome == "deferred"


def test_hot_cubes_of_another_principal_act_for_them(sched: Opener) -> None:
    mc = sched()
    secret = mc.as_principal("alice").add("alice's vault code is 4417")
    _read(mc, "alice", [secret.id])
    decisions = mc.scheduler_run().decisions
    assert {d.principal for d in decisions} == {"alice"}
    assert [j.principal for j in mc.jobs()] == ["alice"]
    assert mc.as_principal("bob").scheduler_log() == []
    with pytest.raises(NotFound):  # bob's jobs view shows nothing of alice's either
        mc.as_principal("bob").job(mc.jobs()[0].id)


def test_forgotten_and_revoked_cubes_are_never_targets(sched: Opener) -> None:
    mc = sched(auto_accept_shares=True)
    alice, carol = mc.as_principal("alice"), mc.as_principal("carol")
    shared = alice.add("the shared shopping list: eggs, rye bread")
    alice.share(shared.id, "bob")
    _read(mc, "bob", [shared.id])
    alice.revoke(shared.id, "bob")  # bob's reads made it hot; bob may no longer read it
    gone = carol.add("carol's old address, to be forgotten")
    _read(mc, "carol", [gone.id])
    carol.forget(gone.id)
    tick = mc.scheduler_run()
    assert all(gone.id not in d.targets for d in tick.decisions)
    assert [(d.targets, d.outcome, d.principal, d.reason) for d in tick.decisions] == [
        ([shared.id], "deferred", None, "no principal whose reads made it hot may read every target")]
    assert mc.jobs() == []
    signals = mc.kernel.store.get_meta(SIGNALS) or ""
    assert gone.id not in signals and shared.id in signals
    assert mc.as_principal("bob").scheduler_log() == []  # a decision that acts for nobody, about alice's cube
    assert [d.targets for d in alice.scheduler_log()] == [[shared.id]]


def test_only_administrators_run_the_scheduler(sched: Opener) -> None:
    mc = sched()
    alice = mc.as_principal("alice")
    for call in (alice.scheduler_run, alice.scheduler_plan):
        with pytest.raises(AccessDenied):
            call()
    assert [r.op for r in mc.audit()][-2:] == ["denied", "denied"]
    with pytest.raises(ValidationError):
        mc.scheduler_run(policy="rm -rf")
    with pytest.raises(ValidationError):
        alice.scheduler_log(limit=10_000)


def test_admit_checks_rights_and_budgets(sched: Opener) -> None:
    mc = sched(scheduler_budgets={"activation_bytes": 10_000_000, "adapter_slots": 0})
    kernel = mc.kernel
    small = mc.as_principal("alice").add("short")
    big = mc.as_principal("alice").add("long text " * 400)
    assert kernel.scheduler_admit("cache", {"cube_ids": [small.id]}, principal="alice") is None
    assert "activation_bytes" in (kernel.scheduler_admit("cache", {"cube_ids": [big.id]}, principal="alice") or "")
    reason = kernel.scheduler_admit("submit_job", {"kind": "consolidate", "params": {"cube_ids": [small.id]}},
                                    principal="alice")
    assert "adapter_slots" in (reason or "")
    assert kernel.scheduler_admit("archive", {"cube_id": small.id}, principal="alice") is None
    with pytest.raises(NotFound):
        kernel.scheduler_admit("cache", {"cube_ids": [small.id]}, principal="bob")
    with pytest.raises(ValidationError):
        kernel.scheduler_admit("cache", {"cube_ids": ["not-an-id"]}, principal="alice")


def _replay(mc: memcubed.Memcubed, ids: list[str]) -> list[tuple[Any, ...]]:
    """Feed a fixed event log (reads of fixed sets at fixed times), then dry-run every policy."""
    t0 = datetime(2026, 3, 1, tzinfo=UTC)
    reads = [[0, 1], [0, 1], [0, 2], [3], [0, 1], [2, 3], [3], [3], [0, 2, 3]]
    events = [Event(ACCESS, "alice" if n % 3 else "bob", t0 + timedelta(minutes=n), ids[i], 1, {"req": f"r{n}"})
              for n, read in enumerate(reads) for i in read]
    with mc.kernel.store.transaction():
        mc.kernel.store.append_events(events)
    out: list[tuple[Any, ...]] = []
    for policy in ("cost_aware", "lru", "lfu", "lmcache"):
        out += [_key(d) for d in mc.scheduler_plan(policy=policy).decisions]
    out += [_key(d) for d in mc.scheduler_run().decisions]
    return out


def _key(d: DecisionRecord) -> tuple[Any, ...]:
    return (d.policy, d.action, d.targets, d.score, d.principal, d.outcome, d.reason, d.clock, d.cost, d.inputs)


def test_replaying_one_event_log_gives_the_same_decisions(sched: Opener) -> None:
    runs = []
    for _ in range(2):
        mc = sched(scheduler_budgets={"activation_bytes": 20_000_000}, scheduler_working_sets=True)
        ids = []
        for n in range(4):
            cube_id = f"0190a000-0000-7000-8000-00000000000{n}"
            owner = mc.as_principal("alice" if n != 3 else "bob")
            ids.append(owner.add(f"memory number {n}: " + "word " * (20 * (n + 1)), id=cube_id).id)
        mc.as_principal("bob").share(ids[3], "alice")
        runs.append(_replay(mc, ids))
    assert runs[0] == runs[1] and len(runs[0]) > 4
    assert any(key[1] == "working_set" for key in runs[0])  # the working sets' decisions replay too


def test_trimming_keeps_what_the_scheduler_has_not_read(open_mc: OpenMc, backend: Backend) -> None:
    where = backend.location()
    quick = Settings(events_retention_s=1e-6, events_flush_interval_s=3600, scheduler_stable_s=0,
                     scheduler_working_sets=False)
    mc = open_mc(where, embedder="none", settings=quick)
    mc.create_principal("alice")
    cube = mc.as_principal("alice").add("the tide turns at four")
    assert mc.scheduler_run().decisions == []  # a scheduler has run: from now on its cursor holds the log
    mc.close()
    mc = open_mc(where, embedder="none", settings=quick)  # a fresh process: its first flush trims
    mc.as_principal("alice").get(cube.id)
    mc.kernel.flush_events()  # folded into stats and past retention, but not yet read by the scheduler
    assert [(d.action, d.targets) for d in mc.scheduler_run().decisions] == [("cache", [cube.id])]


def test_one_tick_at_a_time(sched: Opener) -> None:
    mc = sched()
    cube = mc.as_principal("alice").add("the boat is moored at pier 3")
    _read(mc, "alice", [cube.id])
    store = mc.kernel.store
    with store.transaction():  # another process's tick holds the lease
        store.set_meta(TICK_LEASE, f"other {time.time() + 300:.3f}")
    with pytest.raises(Conflict):
        mc.scheduler_run()
    assert mc.scheduler_log() == [] and mc.jobs() == []
    with store.transaction():  # it died: its lease expired
        store.set_meta(TICK_LEASE, f"other {time.time() - 1:.3f}")
    assert [d.outcome for d in mc.scheduler_run().decisions] == ["done"]
    assert store.get_meta(TICK_LEASE) == ""
