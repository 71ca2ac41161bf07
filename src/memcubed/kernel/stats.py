"""Access statistics: counts and an exponentially decayed hotness score."""

from __future__ import annotations

from datetime import datetime

from memcubed.cube.model import CubeStats

__all__ = ["touched"]


def touched(stats: CubeStats, at: datetime, half_life_s: float) -> CubeStats:
    """Return ``stats`` after one more access at ``at``: hotness halves every ``half_life_s`` seconds."""
    hotness = stats.hotness
    if stats.last_access is not None:
        elapsed = max(0.0, (at - stats.last_access).total_seconds())
        hotness *= 0.5 ** (elapsed / half_life_s)
    return CubeStats(access_count=stats.access_count + 1, last_access=at, hotness=hotness + 1.0)
