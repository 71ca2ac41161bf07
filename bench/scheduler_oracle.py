"""An offline upper bound for ``bench.scheduler_sim``: the prefill tokens a clairvoyant scheduler could save
under the same activation budget (Belady-style: it knows every future read).

In the simulation every policy may re-choose what is stored at each tick, at no cost (a cache is stored at
once, and no compile budget applies), and what is stored between two ticks is a prefix-closed set of KV
paths within the budget. So no policy saves more, over one interval between ticks, than the best
prefix-closed set of paths for *that interval's* reads: a knapsack over the interval's prefix tree (a path
may be stored only with its parent), solved exactly by dynamic programming over the tree in preorder. The
bound is the sum of those optima. Weights are rounded *down* to ``GRAIN`` tokens, which only relaxes the
problem, so the figure stays an upper bound (a little above the true optimum).

That bound knows the *draws*. ``expected_best`` knows only the *distribution* that generated them (each
question's probability, drift included, at every moment): per interval it stores the prefix-closed set
with the most expected saved tokens (the same knapsack on expected reads, weights rounded *up*, so the set
fits the budget) and scores it on the interval's real reads. No policy that learns from past reads can
expect to beat it: it is the ceiling for any non-clairvoyant policy, up to the luck of the draws.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from bench.scheduler_sim import BYTES_PER_TOKEN, TICK, Workload
from memcubed.engines.scheduler.signals import SetKey

__all__ = ["GRAIN", "best_prefix_closed", "expected_best", "oracle_saved"]

GRAIN = 4
"""Tokens per weight unit of the knapsack (weights rounded down: the bound only loosens)."""


def best_prefix_closed(paths: list[SetKey], value: Mapping[SetKey, float], weight: Mapping[SetKey, int], room: int
          ) -> tuple[float, set[SetKey]]:
    """The most value of a prefix-closed subset of ``paths`` (sorted: preorder) with total weight <= room,
    and that subset."""
    n = len(paths)
    skip_to = [n] * n  # the first index after each path's subtree
    stack: list[int] = []
    for i, path in enumerate(paths):
        while stack and paths[stack[-1]] != path[: len(paths[stack[-1]])]:
            skip_to[stack.pop()] = i
        stack.append(i)
    dp = np.zeros((n + 1, room + 1))
    took = np.zeros((n, room + 1), dtype=bool)
    for i in range(n - 1, -1, -1):
        w, v = weight[paths[i]], value[paths[i]]
        take = np.full(room + 1, -np.inf)
        if w <= room:
            take[w:] = dp[i + 1][: room + 1 - w] + v
        took[i] = take > dp[skip_to[i]]
        dp[i] = np.maximum(dp[skip_to[i]], take)
    chosen: set[SetKey] = set()
    i, left = 0, room
    while i < n:
        if took[i][left]:
            chosen.add(paths[i])
            left -= weight[paths[i]]
            i += 1
        else:
            i = skip_to[i]
    return float(dp[0][room]), chosen


def _saved(work: Workload, requests: Sequence[int], stored: set[SetKey]) -> int:
    """Prefill tokens ``stored`` serves to ``requests`` (each up to the longest stored prefix of its set)."""
    total = 0
    for q in requests:
        key = work.sets[q]
        for n in range(len(key)):
            if key[: n + 1] not in stored:
                break
            total += work.tokens[key[n]]
    return total


def oracle_saved(work: Workload, budget_bytes: int, *, tick: int = TICK) -> int:
    """An upper bound on the prefill tokens any tick-based policy saves on ``work`` within ``budget_bytes``."""
    room = int(budget_bytes // BYTES_PER_TOKEN) // GRAIN
    total = 0.0
    for start in range(0, len(work.requests), tick):
        reads: dict[SetKey, int] = {}
        for q in work.requests[start : start + tick]:
            key = work.sets[q]
            for n in range(len(key)):
                reads[key[: n + 1]] = reads.get(key[: n + 1], 0) + 1
        paths = sorted(reads)
        value = {p: reads[p] * work.tokens[p[-1]] for p in paths}
        weight = {p: work.tokens[p[-1]] // GRAIN for p in paths}
        total += best_prefix_closed(paths, value, weight, room)[0]
    return round(total)


def expected_best(work: Workload, budget_bytes: int, *, tick: int = TICK) -> int | None:
    """The tokens saved on ``work``'s reads by the set with the most *expected* saves per interval (chosen
    from ``work.popularity``, the distribution the reads were drawn from); None without one."""
    if not work.popularity:
        return None
    room = int(budget_bytes // BYTES_PER_TOKEN) // GRAIN
    starts = [first for first, _ in work.popularity]
    total = 0
    for start in range(0, len(work.requests), tick):
        end = min(start + tick, len(work.requests))
        value: dict[SetKey, float] = {}
        for first, probability in work.popularity:  # the stretches of the interval, by their requests
            share = min(end, _next(starts, first, len(work.requests))) - max(start, first)
            if share <= 0:
                continue
            for q, p in enumerate(probability):
                key = work.sets[q]
                for n in range(len(key)):
                    value[key[: n + 1]] = value.get(key[: n + 1], 0.0) + share * p * work.tokens[key[n]]
        paths = sorted(value)
        weight = {p: -(-work.tokens[p[-1]] // GRAIN) for p in paths}  # rounded up: the choice fits
        _, chosen = best_prefix_closed(paths, value, weight, room)
        total += _saved(work, work.requests[start:end], chosen)
    return total


def _next(starts: list[int], first: int, end: int) -> int:
    later = [s for s in starts if s > first]
    return later[0] if later else end
