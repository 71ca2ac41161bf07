"""Paired comparison of two systems over the same questions: the mean difference and its bootstrap interval.

What counts as noise in ``bench/embedders.py``: a difference whose 95 % paired bootstrap interval (resampling
questions, 10,000 draws, fixed seed) contains zero. Two runs over the same questions differ only by system,
so resampling the questions measures how much a figure would move on another draw of questions like these.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["paired_difference"]


def paired_difference(base: Sequence[float], other: Sequence[float], *, draws: int = 10_000,
                      seed: int = 16) -> dict[str, Any]:
    """``other - base`` in points (×100): the mean, its 95 % bootstrap interval, and wins/losses/ties.

    Raises:
        ValueError: the two lists differ in length or are empty.
    """
    a, b = np.asarray(base, dtype=np.float64), np.asarray(other, dtype=np.float64)
    if a.shape != b.shape or a.size == 0:
        raise ValueError(f"paired lists must be non-empty and equal in length, got {a.size} and {b.size}")
    diff = 100 * (b - a)
    picks = np.random.default_rng(seed).integers(0, diff.size, size=(draws, diff.size))
    means = diff[picks].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return {"n": int(diff.size), "mean": round(float(diff.mean()), 2), "ci95": [round(float(low), 2),
            round(float(high), 2)], "better": int((diff > 0).sum()), "worse": int((diff < 0).sum()),
            "within_noise_or_better": bool(high >= 0)}
