"""Working sets as scheduler decisions, on the pure engine: members chosen from one principal's reads (whole
co-retrieved sets weighted up), rebuilt on staleness, hotness past the threshold or cadence, never evicted
by the cache policies, and their bytes counted against the budget."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from memcubed.engines.scheduler import (
    Budget,
    Budgets,
    Cost,
    CubeInfo,
    Derived,
    Ledger,
    PolicyConfig,
    Signals,
    View,
    get_policy,
    plan,
)
from memcubed.engines.scheduler.signals import REQUEST
from memcubed.engines.scheduler.tree import activation_use
from memcubed.engines.scheduler.view import WorkingSetScope
from memcubed.engines.scheduler.workset import select_members
from memcubed.schemas.events import ACCESS, Event, LoggedEvent

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _signals(reads: list[tuple[str, list[str]]]) -> Signals:
    events, seq = [], 0
    for n, (who, ids) in enumerate(reads):
        for cid in ids:
            seq += 1
            events.append(LoggedEvent(seq, Event(ACCESS, who, T0 + timedelta(seconds=n), cid, 1, {REQUEST: f"q{n}"})))
    signals = Signals()
    signals.fold(events, half_life_s=3600)
    return signals


def _view(signals: Signals, ids: str, *, derived: list[Derived] | None = None, sizes: dict[str, int] | None = None,
          scopes: list[WorkingSetScope] | None = None, **config: float) -> View:
    cubes = {c: CubeInfo(c, "ns", 10) for c in ids}
    tuned = replace(PolicyConfig(bytes_per_token=1.0, working_set_min_reads=1), **config)
    return View(signals.now, signals, cubes, derived or [], sizes or {}, tuned,
                scopes if scopes is not None else [WorkingSetScope("alice", "ns", tuple(ids))])


def _ledger(view: View, budget: Budget | None = None) -> Ledger:
    ledger = Ledger(Budgets(store=budget or Budget()))
    for ns, used in activation_use(view).items():
        ledger.charge(ns, Cost(activation_bytes=used))
    return ledger


def _sets(view: View, budget: Budget | None = None) -> list[tuple[tuple[str, ...], bool, str]]:
    decisions = plan(get_policy("cost_aware"), view, _ledger(view, budget))
    return [(d.proposal.targets, d.admitted, d.proposal.inputs["why"]) for d in decisions if d.action == "working_set"]


def test_a_set_read_together_beats_a_hotter_memory_read_with_others() -> None:
    # a and b are only ever read together; c is hotter but always read with x, which is no candidate (not
    # readable by alice now). Room for two: {a, b} serves whole reads, c only part of each.
    signals = _signals([("alice", ["a", "b"])] * 4 + [("alice", ["c", "x"])] * 5)
    scope = WorkingSetScope("alice", "ns", ("a", "b", "c"))
    view = _view(signals, "abcx", scopes=[scope], working_set_max_tokens=20)
    assert select_members(view, scope) == ["a", "b"]
    loner = replace(view, config=replace(view.config, working_set_complete_bonus=0.0))
    assert select_members(loner, scope) == ["c", "a"]  # without co-retrieval: per memory only
    assert "x" not in select_members(view, scope, max_tokens=1000)  # never a cube outside the candidates


def test_only_the_principals_own_reads_of_cubes_they_may_read_count() -> None:
    signals = _signals([("bob", ["x"])] * 9 + [("alice", ["a"])] * 3 + [("alice", ["x"])] * 3)
    view = _view(signals, "ax", scopes=[WorkingSetScope("alice", "ns", ("a",)), WorkingSetScope("bob", "ns", ("x",))])
    assert _sets(view) == [(("a",), True, "no working set yet"), (("x",), True, "no working set yet")]
    [alice, bob] = [d for d in plan(get_policy("cost_aware"), view, _ledger(view)) if d.action == "working_set"]
    assert alice.proposal.readers == ("alice",) and bob.proposal.readers == ("bob",)


def test_min_reads_keeps_a_memory_read_once_out() -> None:
    view = _view(_signals([("alice", ["a"])] * 3 + [("alice", ["b"])]), "ab", working_set_min_reads=3)
    assert _sets(view) == [(("a",), True, "no working set yet")]


def test_rebuilt_when_stale_or_unusable_kept_when_nothing_moved() -> None:
    signals = _signals([("alice", ["a"])] * 3)
    ws = Derived("ws1", "activation", "ns", "alice", ("a",), ("da",), working_set=True, built=signals.now)
    scope = WorkingSetScope("alice", "ns", ("a",), "ws1")
    view = _view(signals, "a", derived=[ws], sizes={"da": 10}, scopes=[scope])
    assert _sets(view) == []  # the same members, nothing to do
    stale = _view(signals, "a", derived=[replace(ws, stale=True)], sizes={"da": 10}, scopes=[scope])
    assert _sets(stale) == [(("a",), True, "not usable: a member changed")]
    revoked = _view(signals, "a", derived=[ws], sizes={"da": 10},
                    scopes=[replace(scope, usable=False, why="member b is no longer readable")])
    assert _sets(revoked) == [(("a",), True, "not usable: member b is no longer readable")]


def test_hotness_past_the_threshold_or_the_cadence_moves_it() -> None:
    signals = _signals([("alice", ["a"])] * 4 + [("alice", ["b"])] * 4)  # b read last: a hair hotter
    ws = Derived("ws1", "activation", "ns", "alice", ("a",), ("da",), working_set=True, built=signals.now)
    scope = WorkingSetScope("alice", "ns", ("a", "b"), "ws1")
    one = {"derived": [ws], "sizes": {"da": 10}, "scopes": [scope], "working_set_max_cubes": 1}
    assert _sets(_view(signals, "ab", **one)) == []  # not 25 % more valuable: kept
    assert _sets(_view(signals, "ab", **one, working_set_refresh=0.0)) == [(("b",), True, "members' hotness changed")]
    old = replace(ws, built=signals.now - 7200)
    assert _sets(_view(signals, "ab", **{**one, "derived": [old]})) == [(("b",), True, "cadence")]


def test_the_working_sets_bytes_count_and_it_is_never_evicted_for_a_cache() -> None:
    # alice's working set {a} holds 10 of 15 bytes; bob's hot set {b} (10 bytes) does not fit beside it.
    signals = _signals([("alice", ["a"])] * 3 + [("bob", ["b"])] * 9)
    ws = Derived("ws1", "activation", "ns", "alice", ("a",), ("da",), working_set=True, built=signals.now)
    view = _view(signals, "ab", derived=[ws], sizes={"da": 10},
                 scopes=[WorkingSetScope("alice", "ns", ("a",), "ws1")])
    decisions = plan(get_policy("cost_aware"), view, _ledger(view, Budget(activation_bytes=15)))
    assert [(d.action, d.proposal.targets, d.admitted) for d in decisions] == [("cache", ("b",), False)]
    assert "activation_bytes" in (decisions[0].reason or "")
    for policy in ("lru", "lfu", "lmcache"):
        assert not [d for d in plan(get_policy(policy), view, _ledger(view, Budget(activation_bytes=15)))
                    if d.action == "evict"]


def test_a_choice_over_the_budget_sheds_members_until_it_fits() -> None:
    signals = _signals([("alice", ["a"])] * 5 + [("alice", ["b"])] * 4 + [("alice", ["c"])] * 3)
    view = _view(signals, "abc")
    assert _sets(view, Budget(activation_bytes=25)) == [(("a", "b"), True, "no working set yet")]
