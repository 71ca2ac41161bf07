"""The half-life the scheduler ranks by is learnt from the reads (``scheduler.halflife``): the one under which
the sets read next were most often among the hottest the cache holds. A drifting workload gets a short memory,
a stable one a long one; with no evidence the configured half-life stands; the baselines never move with it."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from memcubed.engines.scheduler import Budget, Budgets, CubeInfo, Ledger, PolicyConfig, Signals, View, get_policy
from memcubed.engines.scheduler.halflife import BASE, SPREAD, HalfLifeFit
from memcubed.engines.scheduler.signals import REQUEST
from memcubed.schemas.events import ACCESS, Event, LoggedEvent

T0 = datetime(2026, 1, 1, tzinfo=UTC)
HALF_LIFE = 100.0


def _events(sets: list[tuple[str, ...]], step_s: float) -> list[LoggedEvent]:
    out: list[LoggedEvent] = []
    for n, ids in enumerate(sets):
        for cid in ids:
            out.append(LoggedEvent(len(out) + 1, Event(ACCESS, "alice", T0 + timedelta(seconds=n * step_s), cid, 1,
                                                       {REQUEST: f"q{n}"})))
    return out


def _drifting(reads: int, every: int, seed: int) -> list[tuple[str, ...]]:
    """Reads of a few hot sets that are replaced by new ones every ``every`` reads."""
    rng = random.Random(seed)
    return [(f"c{n // every}-{rng.randrange(4)}",) for n in range(reads)]


def _stable(reads: int, seed: int) -> list[tuple[str, ...]]:
    """Reads drawn from one fixed, skewed popularity over 40 sets."""
    rng = random.Random(seed)
    weights = [1 / (i + 1) for i in range(40)]
    return [(f"s{rng.choices(range(40), weights)[0]}",) for _ in range(reads)]


def test_no_reads_and_a_tie_keep_the_configured_half_life() -> None:
    assert Signals().fit.choice(8) == BASE and SPREAD[BASE] == 1.0
    one = Signals()
    one.fold(_events([("a",)], 1.0), half_life_s=HALF_LIFE)  # never read before: a miss under every half-life
    assert all(one.fit.choice(n) == BASE for n in (1, 8, 5000))


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_drifting_workload_gets_a_shorter_memory_and_a_stable_one_a_longer(seed: int) -> None:
    drifting, stable = Signals(), Signals()
    # One read every 10 s: the hot sets change every 5 reads (half a configured half-life) ...
    drifting.fold(_events(_drifting(2000, 5, seed), 10.0), half_life_s=HALF_LIFE)
    # ... or never, over 200 configured half-lives.
    stable.fold(_events(_stable(2000, seed), 10.0), half_life_s=HALF_LIFE)
    assert SPREAD[drifting.fit.choice(4)] < 1.0 < SPREAD[stable.fit.choice(4)]


def test_the_choice_and_its_evidence_survive_a_round_trip_and_old_signals_still_load() -> None:
    signals = Signals()
    signals.fold(_events(_drifting(400, 5, 7), 10.0), half_life_s=HALF_LIFE)
    again = Signals.loads(signals.dumps())
    assert again == signals and again.fit.choice(4) == signals.fit.choice(4) != BASE
    # Signals saved before the spread: one hotness per usage and no fit.
    body = json.loads(signals.dumps())
    for _, usage in body["sets"]:
        usage["h"] = usage["h"][BASE]
    for usage in body["cubes"].values():
        usage["h"] = usage["h"][BASE]
    del body["fit"]
    old = Signals.loads(json.dumps(body))
    assert old.fit.choice(4) == BASE
    assert all(u.heat == (signals.sets[k].hotness,) * len(SPREAD) for k, u in old.sets.items())


@settings(max_examples=25, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 9), st.integers(0, 40)), min_size=1, max_size=80), st.integers(1, 30))
def test_the_orders_kept_read_by_read_are_the_orders_rebuilt_from_the_sets(reads: list[tuple[int, int]],
                                                                           max_sets: int) -> None:
    """Including reads out of time order and pruning: every rank is taken against the true order."""
    events = [LoggedEvent(n + 1, Event(ACCESS, "alice", T0 + timedelta(seconds=t * 7), f"c{c}", 1, {REQUEST: f"q{n}"}))
              for n, (c, t) in enumerate(reads)]
    signals = Signals()
    for start in range(0, len(events), 9):
        signals.fold(events[start:start + 9], half_life_s=HALF_LIFE, max_sets=max_sets)
        kept = signals.fit._order
        signals.fit.reset()
        rebuilt = signals.fit._orders(signals.sets, HALF_LIFE)
        assert kept is None or kept == rebuilt


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(1, 60), min_size=1, max_size=6), st.integers(0, 5))
def test_folding_page_by_page_gives_the_same_signals_as_one_fold(cuts: list[int], seed: int) -> None:
    events = _events(_drifting(120, 7, seed), 13.0)
    whole = Signals()
    whole.fold(events, half_life_s=HALF_LIFE)
    paged, start = Signals(), 0
    for cut in [*sorted({min(c, len(events)) for c in cuts}), len(events)]:
        paged.fold(events[start:cut], half_life_s=HALF_LIFE)  # one cube per read: any cut is between reads
        start = cut
    assert paged.dumps() == whole.dumps()


def test_the_baselines_rank_by_the_configured_half_life_whatever_the_choice() -> None:
    signals = Signals()
    signals.fold(_events(_drifting(600, 5, 3), 10.0), half_life_s=HALF_LIFE)
    assert signals.fit.choice(1) != BASE
    cubes = {c: CubeInfo(c, "ns", 50, 0.5, 0.0) for key in signals.sets for c in key}
    config = PolicyConfig(half_life_s=HALF_LIFE, bytes_per_token=10.0, memory_bytes_per_token=10.0, max_candidates=8)
    budgets = Budgets(store=Budget(activation_bytes=2000))
    neutral = Signals(signals.cursor, signals.now, signals.cubes, signals.sets, HalfLifeFit())
    for name in ("lru", "lfu", "lmcache"):
        chosen = [[(p.action, p.targets, p.score) for p in get_policy(name).propose(
            View(s.now, s, cubes, [], {}, config), Ledger(budgets))] for s in (signals, neutral)]
        assert chosen[0] == chosen[1] and chosen[0], name
    # The default does move with it, and says at which half-life it ranked.
    view = View(signals.now, signals, cubes, [], {}, config)
    default = get_policy("cost_aware").propose(view, Ledger(budgets))
    assert {p.inputs["half_life_s"] for p in default if p.action == "cache"} == {HALF_LIFE * SPREAD[view.choice]}
    assert view.choice != BASE
