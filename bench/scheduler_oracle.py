"""An offline upper bound for ``bench.scheduler_sim``: the prefill tokens a clairvoyant scheduler could save
under the same activation budget (Belady-style: it knows every future read).

In the simulation every policy may re-choose what is stored at each tick, at no cost (a cache is stored at
once, and no compile budget applies), and what is stored between two ticks is a prefix-closed set of KV
paths within the budget. So no policy saves more, over one interval between ticks, than the best
prefix-closed set of paths for *that interval's* reads: a knapsack over the interval's prefix tree (a path
may be stored only with its parent), solved exactly by dynamic programming over the tree in preorder. The
bound is the sum of those optima. Weights are rounded *down* to ``GRAIN`` tokens, which only relaxes the
problem, so the figure stays an upper bound (a little above the true optimum).
"""

from __future__ import annotations

import numpy as np

from bench.scheduler_sim import BYTES_PER_TOKEN, TICK, Workload
from memcubed.engines.scheduler.signals import SetKey

__all__ = ["GRAIN", "oracle_saved"]

GRAIN = 4
"""Tokens per weight unit of the knapsack (weights rounded down: the bound only loosens)."""


def _best(paths: list[SetKey], value: dict[SetKey, int], weight: dict[SetKey, int], room: int) -> float:
    """The most value of a prefix-closed subset of ``paths`` (sorted: preorder) with total weight <= room."""
    n = len(paths)
    skip_to = [n] * n  # the first index after each path's subtree
    stack: list[int] = []
    for i, path in enumerate(paths):
        while stack and paths[stack[-1]] != path[: len(paths[stack[-1]])]:
            skip_to[stack.pop()] = i
        stack.append(i)
    dp = np.zeros((n + 1, room + 1))
    for i in range(n - 1, -1, -1):
        w, v = weight[paths[i]], value[paths[i]]
        take = np.full(room + 1, -np.inf)
        if w <= room:
            take[w:] = dp[i + 1][: room + 1 - w] + v
        dp[i] = np.maximum(dp[skip_to[i]], take)
    return float(dp[0][room])


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
        total += _best(paths, value, weight, room)
    return round(total)
