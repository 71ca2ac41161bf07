"""The working-set backoff on the pure engine: the wait doubles per failure in a row and is bounded, a held build
is deferred with its reason and reserves no budget (the caches after it are admitted as if it were not there), and
the same inputs give the same decisions."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from memcubed.engines.scheduler import Budget, Budgets, CubeInfo, Ledger, PolicyConfig, Signals, View, get_policy
from memcubed.engines.scheduler import plan as plan_ticks
from memcubed.engines.scheduler.signals import REQUEST
from memcubed.engines.scheduler.view import WorkingSetScope
from memcubed.engines.scheduler.workset import backoff_until
from memcubed.schemas.events import ACCESS, Event, LoggedEvent

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _view(failures: int, failed_at: float | None, **config: float) -> View:
    events = [LoggedEvent(n + 1, Event(ACCESS, "alice", T0 + timedelta(seconds=n), cid, 1, {REQUEST: f"q{n}"}))
              for n, cid in enumerate(["a", "b", "a", "b", "a", "b"])]
    signals = Signals()
    signals.fold(events, half_life_s=3600)
    tuned = replace(PolicyConfig(bytes_per_token=1.0, working_set_min_reads=1), **config)
    scope = WorkingSetScope("alice", "ns", ("a", "b"), failures=failures, failed_at=failed_at)
    return View(signals.now, signals, {c: CubeInfo(c, "ns", 10) for c in "ab"}, [], {}, tuned, [scope])


def _decisions(view: View) -> list[tuple[str, bool, str | None]]:
    ledger = Ledger(Budgets(store=Budget()))
    return [(d.action, d.admitted, d.reason) for d in plan_ticks(get_policy("cost_aware"), view, ledger)
            if d.action == "working_set"]


def test_the_wait_doubles_per_failure_and_is_bounded() -> None:
    now = _view(0, None).now
    assert backoff_until(_view(0, None), _view(0, None).working_sets[0]) is None
    waits = [backoff_until(v, v.working_sets[0]) for v in (_view(k, now) for k in (1, 2, 3, 4))]
    assert [w - now for w in waits if w is not None] == [60.0, 120.0, 240.0, 480.0]
    huge = _view(500, now, working_set_backoff_max_s=900.0)
    assert backoff_until(huge, huge.working_sets[0]) == now + 900.0  # bounded, and no overflow at 500 failures


def test_a_held_build_is_deferred_with_why_and_reserves_nothing() -> None:
    now = _view(0, None).now
    [(action, admitted, reason)] = _decisions(_view(3, now - 10))
    assert action == "working_set" and not admitted
    assert reason is not None and reason.startswith("backing off: 3 failures in a row, next try after 2026-01-01T")
    assert _decisions(_view(3, now - 10)) == _decisions(_view(3, now - 10))  # deterministic
    [(_, admitted, reason)] = _decisions(_view(3, now - 240))  # its wait (240 s) is over: tried again
    assert admitted and reason is None
    # Held, it charges no budget: what is charged is what the admitted decisions cost, and it is not one of them.
    for failed_at, held in ((now, True), (now - 60, False)):
        ledger = Ledger(Budgets(store=Budget()))
        decisions = plan_ticks(get_policy("cost_aware"), _view(1, failed_at), ledger)
        admitted = [d for d in decisions if d.admitted]
        assert ledger.total.compile_tokens_hour == sum(d.proposal.cost.compile_tokens for d in admitted)
        assert any(d.action == "working_set" for d in admitted) is not held
