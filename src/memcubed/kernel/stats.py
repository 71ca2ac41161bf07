"""Access statistics: counts and an exponentially decayed hotness score."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from memcubed.cube.model import CubeStats

__all__ = ["touched", "touched_at"]


def touched(stats: CubeStats, at: datetime, half_life_s: float) -> CubeStats:
    """Return ``stats`` after one more access at ``at``: hotness halves every ``half_life_s`` seconds."""
    return touched_at(stats, (at,), half_life_s)


def touched_at(stats: CubeStats, times: Iterable[datetime], half_life_s: float) -> CubeStats:
    """Return ``stats`` after one access at each of ``times`` (``touched`` once per time, in order).

    An access older than the last one counted (buffered by another process and folded later) adds its
    own decayed weight and leaves ``last_access`` alone, so the result does not depend on fold order.
    """
    count, last, hotness = stats.access_count, stats.last_access, stats.hotness
    for at in times:
        count += 1
        if last is not None and at < last:
            hotness += 0.5 ** ((last - at).total_seconds() / half_life_s)
            continue
        if last is not None:
            hotness *= 0.5 ** ((at - last).total_seconds() / half_life_s)
        hotness, last = hotness + 1.0, at
    return CubeStats(access_count=count, last_access=last, hotness=hotness)
