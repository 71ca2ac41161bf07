"""Access statistics: counts and an exponentially decayed hotness score."""

from __future__ import annotations

from datetime import datetime

from memcubed.cube.model import CubeStats

__all__ = ["touched"]


def touched(stats: CubeStats, at: datetime, half_life_s: float) -> CubeStats:
    """Return ``stats`` after one more access at ``at``: hotness halves every ``half_life_s`` seconds.

    An access older than ``stats.last_access`` (buffered by another process and folded later) adds its
    own decayed weight and leaves ``last_access`` alone, so the result does not depend on fold order.
    """
    if stats.last_access is not None and at < stats.last_access:
        late = 0.5 ** ((stats.last_access - at).total_seconds() / half_life_s)
        return CubeStats(access_count=stats.access_count + 1, last_access=stats.last_access,
                         hotness=stats.hotness + late)
    hotness = stats.hotness
    if stats.last_access is not None:
        hotness *= 0.5 ** ((at - stats.last_access).total_seconds() / half_life_s)
    return CubeStats(access_count=stats.access_count + 1, last_access=at, hotness=hotness + 1.0)
