"""Access statistics fold the same whatever order the accesses arrive in."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest

from memcubed.cube.model import CubeStats
from memcubed.kernel.stats import touched, touched_at

HOUR = 3600.0


def test_touched_at_is_touched_once_per_time() -> None:
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    times = [t0, t0 + timedelta(hours=1), t0 + timedelta(hours=3)]
    one_by_one = CubeStats()
    for at in times:
        one_by_one = touched(one_by_one, at, HOUR)
    assert touched_at(CubeStats(), times, HOUR) == one_by_one
    assert one_by_one.access_count == 3 and one_by_one.last_access == times[-1]
    assert one_by_one.hotness == pytest.approx(1 + 0.25 * (1 + 0.5))


def test_late_accesses_count_and_decay_without_moving_last_access() -> None:
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    times = [t0, t0 + timedelta(hours=2), t0 + timedelta(minutes=30), t0 + timedelta(hours=5)]
    results = [touched_at(CubeStats(), order, HOUR) for order in itertools.permutations(times)]
    for result in results:
        assert result.access_count == 4 and result.last_access == times[3]
        assert result.hotness == pytest.approx(results[0].hotness)
    prior = CubeStats(access_count=7, last_access=t0 + timedelta(hours=9), hotness=2.0)
    late = touched(prior, t0 + timedelta(hours=8), HOUR)
    assert (late.access_count, late.last_access, late.hotness) == (8, prior.last_access, pytest.approx(2.5))
