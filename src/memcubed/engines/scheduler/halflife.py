"""Which half-life to rank hotness by, learnt from the reads: the one under which the sets read next were most
often among the hottest few, as many as the cache holds.

The signals keep every set's hotness at several half-lives at once (``SPREAD``, multiples of the configured
one). Before a read is counted, ``HalfLifeFit.observe`` files, for each half-life, how many sets were hotter
than the one being read (its rank, in power-of-two buckets; a set never read before is a miss). The counts
fade over ``FIT_MEMORY`` configured half-lives, so the choice follows a workload that changes. A policy asks
``choice(capacity)`` with the number of sets its cache holds: the half-life whose top ``capacity`` would have
held the most of the reads is the one that ranks best where it matters. A workload whose hot sets drift fast
gets a short memory, a stable one a long memory, whatever the configured time scale; with no reads, or a
tie, the configured half-life stands.

Ranks are found by bisection in one sorted list of keys per half-life: under one half-life every set decays
at the same rate, so ``log2(heat) + last / half_life`` orders the sets the same way at any later time.
"""

from __future__ import annotations

import math
from bisect import bisect_right, insort
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from memcubed.engines.scheduler.signals import SetKey, Usage

__all__ = ["BASE", "BUCKETS", "FIT_MEMORY", "SPREAD", "HalfLifeFit"]

SPREAD = (0.25, 0.5, 1.0, 2.0)
"""The half-lives hotness is kept at, as multiples of the configured one."""
BASE = SPREAD.index(1.0)
"""The configured half-life's place in ``SPREAD`` (chosen on a tie)."""
FIT_MEMORY = 8.0
"""How many configured half-lives a read's evidence takes to fade by half."""
BUCKETS = 14
"""Rank buckets: rank 0, 1, 2–3, 4–7, … 2048–4095, and the last for 4096 and over or never read."""


def _key(usage: Usage, j: int, half_life_s: float) -> float:
    return math.log2(usage.heat[j]) + (usage.last or 0.0) / (half_life_s * SPREAD[j])


@dataclass
class HalfLifeFit:
    """Faded reads per rank bucket under each ``SPREAD`` half-life (see the module docstring).

    Attributes:
        hits: per half-life, per rank bucket, the faded count of reads whose set ranked there.
        last: the time of the latest read observed.
    """

    hits: tuple[tuple[float, ...], ...] = ((0.0,) * BUCKETS,) * len(SPREAD)
    last: float | None = None
    _order: list[list[float]] | None = field(default=None, repr=False, compare=False)
    _scale: float = field(default=0.0, repr=False, compare=False)

    def observe(self, sets: Mapping[SetKey, Usage], key: SetKey, at: float, half_life_s: float) -> None:
        """File where ``key`` ranked under each half-life just before its read at ``at`` is counted."""
        order = self._orders(sets, half_life_s)
        usage = sets.get(key)
        fade = 1.0 if self.last is None or at <= self.last else 0.5 ** ((at - self.last) / (half_life_s * FIT_MEMORY))
        rows = []
        for j, row in enumerate(self.hits):
            bucket = BUCKETS - 1
            if usage is not None and usage.last is not None:
                rank = len(order[j]) - bisect_right(order[j], _key(usage, j, half_life_s))
                bucket = min(rank.bit_length(), BUCKETS - 1)
            rows.append(tuple(h * fade + (1.0 if b == bucket else 0.0) for b, h in enumerate(row)))
        self.hits = tuple(rows)
        self.last = at if self.last is None else max(self.last, at)

    def keys(self, usage: Usage | None, half_life_s: float) -> tuple[float, ...] | None:
        """``usage``'s place in each order before it changes (None: not in them)."""
        if usage is None or usage.last is None or self._order is None:
            return None
        return tuple(_key(usage, j, half_life_s) for j in range(len(SPREAD)))

    def moved(self, before: tuple[float, ...] | None, usage: Usage, half_life_s: float) -> None:
        """A set's usage changed (its keys were ``before``): move it in the orders."""
        if self._order is None or self._scale != half_life_s:
            return
        for j, order in enumerate(self._order):
            if before is not None:
                del order[bisect_right(order, before[j]) - 1]
            insort(order, _key(usage, j, half_life_s))

    def reset(self) -> None:
        """The sets changed wholesale (pruned, forgotten): the orders are rebuilt on the next read."""
        self._order = None

    def choice(self, capacity: int) -> int:
        """The ``SPREAD`` place of the half-life under which most reads found their set among the
        ``capacity`` hottest (the configured one on a tie)."""
        top = [b for b in range(BUCKETS - 1) if 2 ** b <= max(1, capacity)]
        score = [round(sum(row[b] for b in top), 9) for row in self.hits]
        return max(range(len(SPREAD)), key=lambda j: (score[j], j == BASE, -j))

    def _orders(self, sets: Mapping[SetKey, Usage], half_life_s: float) -> list[list[float]]:
        if self._order is None or self._scale != half_life_s:
            self._order = [sorted(_key(u, j, half_life_s) for u in sets.values() if u.last is not None)
                           for j in range(len(SPREAD))]
            self._scale = half_life_s
        return self._order

    def to_json(self) -> dict[str, Any]:
        return {"hits": [list(row) for row in self.hits], "last": self.last}

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> HalfLifeFit:
        if not data:
            return cls()
        rows: Sequence[Sequence[float]] = data["hits"]
        return cls(tuple(tuple(float(h) for h in row) for row in rows),
                   None if data["last"] is None else float(data["last"]))
