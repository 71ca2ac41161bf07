"""The scheduler engine on its own: signals fold the log by read, budgets refuse what does not fit, the
cost-aware policy exploits shared prefixes, and the planner never goes over a budget (property)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

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
from memcubed.errors import ValidationError
from memcubed.schemas.events import ACCESS, Event, LoggedEvent

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _reads(reads: list[tuple[str, list[str]]], *, start: int = 0, step_s: float = 1.0) -> list[LoggedEvent]:
    """Logged access events: each read (principal, cube ids) one request."""
    out: list[LoggedEvent] = []
    seq = start
    for n, (who, ids) in enumerate(reads):
        for cid in ids:
            seq += 1
            out.append(LoggedEvent(seq, Event(ACCESS, who, T0 + timedelta(seconds=n * step_s), cid, 1,
                                              {REQUEST: f"q{start}-{n}"})))
    return out


def test_signals_group_a_read_into_one_set_and_move_the_cursor() -> None:
    signals = Signals()
    events = _reads([("alice", ["b", "a"]), ("alice", ["a"]), ("bob", ["a", "b"])])
    assert signals.fold(events, half_life_s=60) == 5
    assert signals.cursor == 5
    assert signals.sets[("a", "b")].count == 2 and signals.sets[("a",)].count == 1
    assert signals.cubes["a"].count == 3
    assert signals.sets[("a", "b")].readers() == ["alice", "bob"]
    # Folding the same page again counts nothing twice; a round trip through JSON keeps everything.
    assert signals.fold(events, half_life_s=60) == 0
    assert Signals.loads(signals.dumps()) == signals


def test_hotness_halves_every_half_life() -> None:
    signals = Signals()
    signals.fold(_reads([("alice", ["a"])]), half_life_s=10)
    usage = signals.cubes["a"]
    assert usage.hot(usage.last + 10, 10) == pytest.approx(0.5)  # type: ignore[operator]
    assert usage.hot(usage.last + 30, 10) == pytest.approx(0.125)  # type: ignore[operator]


def test_a_cut_page_leaves_the_last_read_for_the_next_fold() -> None:
    events = _reads([("alice", ["a", "b"]), ("alice", ["c", "d"])])
    signals = Signals()
    signals.fold(events[:3], half_life_s=60, complete=False)  # the second read is cut after "c"
    assert signals.cursor == 2 and ("c",) not in signals.sets
    signals.fold(events[2:], half_life_s=60)
    assert signals.sets[("c", "d")].count == 1 and ("c",) not in signals.sets


def test_forget_drops_every_trace_of_a_cube() -> None:
    signals = Signals()
    signals.fold(_reads([("alice", ["a", "b"]), ("alice", ["b"])]), half_life_s=60)
    signals.forget(["a"])
    assert "a" not in signals.cubes and all("a" not in key for key in signals.sets)


def test_budgets_refuse_with_the_budget_named() -> None:
    ledger = Ledger(Budgets(store=Budget(activation_bytes=100), namespaces={"ns": Budget(compile_tokens_per_hour=5)}))
    assert ledger.admit("ns", Cost(activation_bytes=100)) is None
    assert "store activation_bytes" in (ledger.admit("ns", Cost(activation_bytes=101)) or "")
    assert "namespace 'ns' compile_tokens_per_hour" in (ledger.admit("ns", Cost(compile_tokens=6)) or "")
    assert ledger.admit("other", Cost(compile_tokens=6)) is None
    ledger.charge("ns", Cost(activation_bytes=150))  # over already (a lowered budget): freeing still fits
    assert ledger.admit("ns", Cost(activation_bytes=-10)) is None


@pytest.mark.parametrize("bad", [{"activation_bytes": -1}, {"adapter_slots": "many"}, {"unknown": 1},
                                 {"train_s_per_hour": True}])
def test_malformed_budgets_are_refused(bad: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        Budget.parse(bad)


def test_unknown_policy_is_refused() -> None:
    with pytest.raises(ValidationError):
        get_policy("../../etc")


def _view(signals: Signals, tokens: dict[str, int], derived: list[Derived] | None = None,
          sizes: dict[str, int] | None = None) -> View:
    cubes = {cid: CubeInfo(cid, "ns", tok) for cid, tok in tokens.items()}
    return View(signals.now, signals, cubes, derived or [], sizes or {}, PolicyConfig(bytes_per_token=1.0))


def _ledger(view: View, budget: Budget) -> Ledger:
    ledger = Ledger(Budgets(store=budget))
    for ns, used in activation_use(view).items():
        ledger.charge(ns, Cost(activation_bytes=used))
    return ledger


def test_cost_aware_stores_the_shared_prefix_that_serves_most() -> None:
    # Three sets share their first cube "a" (100 tokens); each tail is read less. Room for 150 tokens:
    # LRU stores the most recent whole set that fits; cost-aware stores "a" and serves all three.
    signals = Signals()
    signals.fold(_reads([("alice", ["a", "b"]), ("alice", ["a", "c"]), ("alice", ["a", "d"])] * 3),
                 half_life_s=3600)
    view = _view(signals, {"a": 100, "b": 100, "c": 100, "d": 100})
    budget = Budget(activation_bytes=150)
    chosen = [d for d in plan(get_policy("cost_aware"), view, _ledger(view, budget)) if d.admitted]
    assert [(d.action, d.proposal.targets) for d in chosen] == [("cache", ("a",))]
    assert chosen[0].proposal.readers == ("alice",)
    lru = [d for d in plan(get_policy("lru"), view, _ledger(view, budget)) if d.admitted]
    assert lru == []  # every whole set needs 200 tokens of KV


def test_evicts_what_is_no_longer_worth_its_bytes() -> None:
    signals = Signals()
    signals.fold(_reads([("alice", ["x"])] + [("alice", ["a"])] * 5, step_s=3600), half_life_s=600)
    old = Derived("act-x", "activation", "ns", "alice", ("x",), ("dx",))
    view = _view(signals, {"a": 10, "x": 10}, [old], {"dx": 10})
    decisions = plan(get_policy("cost_aware"), view, _ledger(view, Budget(activation_bytes=10)))
    assert [(d.action, d.proposal.targets, d.admitted) for d in decisions][:2] == [
        ("evict", ("act-x",), True), ("cache", ("a",), True)]
    assert decisions[0].proposal.readers == ("alice",)  # evicting acts for the activation's owner


def test_what_does_not_fit_is_deferred_with_its_reason() -> None:
    signals = Signals()
    signals.fold(_reads([("alice", ["a"])] * 3), half_life_s=3600)
    view = _view(signals, {"a": 50})
    decisions = plan(get_policy("cost_aware"), view, _ledger(view, Budget(activation_bytes=10)))
    assert [(d.action, d.admitted) for d in decisions] == [("cache", False)]
    assert "activation_bytes" in (decisions[0].reason or "")


_ids = st.sampled_from(["a", "b", "c", "d", "e", "f"])


@settings(max_examples=60, deadline=None)
@given(reads=st.lists(st.tuples(st.sampled_from(["alice", "bob"]), st.lists(_ids, min_size=1, max_size=4)),
                      min_size=1, max_size=30),
       tokens=st.lists(st.integers(1, 80), min_size=6, max_size=6),
       limit=st.integers(0, 300), compile_limit=st.integers(0, 300),
       stored=st.lists(st.lists(_ids, min_size=1, max_size=3), max_size=3),
       policy=st.sampled_from(["cost_aware", "lru", "lfu", "lmcache"]),
       working_sets=st.booleans(), first_is_working_set=st.booleans())
def test_the_planner_never_goes_over_a_budget(reads: list[tuple[str, list[str]]], tokens: list[int], limit: int,
                                              compile_limit: int, stored: list[list[str]], policy: str,
                                              working_sets: bool, first_is_working_set: bool) -> None:
    signals = Signals()
    signals.fold(_reads(reads, step_s=30), half_life_s=600)
    sizes: dict[str, int] = {}
    derived: list[Derived] = []
    token_of = dict(zip("abcdef", tokens, strict=True))
    for n, ids in enumerate(stored):
        chain = tuple(sorted(set(ids)))
        digests = tuple("/".join(chain[: i + 1]) for i in range(len(chain)))
        sizes.update({d: token_of[chain[i]] for i, d in enumerate(digests)})
        derived.append(Derived(f"act{n}", "activation", "ns", "alice", chain, digests,
                               working_set=working_sets and first_is_working_set and n == 0))
    view = _view(signals, token_of, derived, sizes)
    if working_sets:  # alice's and bob's working sets are chosen too, and their bytes counted
        current = "act0" if derived and derived[0].working_set else None
        view = replace(view, config=replace(view.config, working_set_min_reads=1, working_set_max_tokens=200),
                       working_sets=[WorkingSetScope("alice", "ns", tuple("abcdef"), current),
                                     WorkingSetScope("bob", "ns", tuple("abcdef"))])
    budget = Budget(activation_bytes=limit, compile_tokens_per_hour=compile_limit)
    ledger = _ledger(view, budget)
    start = ledger.total.activation_bytes
    decisions = plan(get_policy(policy), view, ledger)
    after = start + sum(d.proposal.cost.activation_bytes for d in decisions if d.admitted)
    compiled = sum(d.proposal.cost.compile_tokens for d in decisions if d.admitted)
    assert compiled <= compile_limit
    assert after <= max(limit, start)  # never more than the budget (or than already stored, if over)
    if any(d.admitted and d.proposal.cost.activation_bytes > 0 for d in decisions):
        assert after <= limit
    # What would really be stored: the kept activations' segments plus every new chain's (a segment once).
    gone = {d.proposal.targets[0] for d in decisions if d.admitted and d.action in ("evict", "drop")}
    paths = {c.sources[: i + 1] for c in derived if c.id not in gone for i in range(len(c.sources))}
    for d in decisions:
        if d.admitted and d.action in ("cache", "working_set"):
            paths |= {d.proposal.targets[: i + 1] for i in range(len(d.proposal.targets))}
    stored_bytes = sum(token_of[p[-1]] for p in paths)
    assert stored_bytes <= max(limit, start)
    for d in decisions:
        assert d.admitted or d.reason
        assert set(d.proposal.readers) <= {"alice", "bob"}
        if d.action in ("evict", "drop"):  # a working set is replaced only by its own decision
            assert not any(c.working_set for c in derived if c.id == d.proposal.targets[0])
