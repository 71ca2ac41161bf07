"""The simulated scheduler benchmark's oracle is an upper bound: exact on small trees (brute force over
every prefix-closed choice within the budget) and never below what any policy saves on the same stream."""

from __future__ import annotations

import itertools
import random

import pytest
from bench.scheduler_oracle import GRAIN, oracle_saved
from bench.scheduler_sim import BYTES_PER_TOKEN, Workload, simulate

from memcubed.engines.scheduler.signals import SetKey


def _work(seed: int, requests: int) -> Workload:
    rng = random.Random(seed)
    ids = [f"c{i}" for i in range(6)]
    tokens = {c: GRAIN * rng.randint(10, 50) for c in ids}
    sets = [tuple(sorted(rng.sample(ids, rng.randint(1, 3)))) for _ in range(8)]
    return Workload(tokens, sets, [rng.randrange(len(sets)) for _ in range(requests)])


def _brute(work: Workload, budget_tokens: int) -> int:
    """The best prefix-closed choice of paths for the whole stream read as one interval."""
    reads = [work.sets[q] for q in work.requests]
    paths = sorted({k[: n + 1] for k in reads for n in range(len(k))})
    best = 0
    for r in range(len(paths) + 1):
        for chosen in itertools.combinations(paths, r):
            picked: set[SetKey] = set(chosen)
            if any(p[:-1] and p[:-1] not in picked for p in picked):
                continue
            if sum(work.tokens[p[-1]] for p in picked) > budget_tokens:
                continue
            best = max(best, sum(work.tokens[p[-1]] for k in reads for n, p in
                                 enumerate(k[: i + 1] for i in range(len(k))) if all(k[: j + 1] in picked
                                                                                      for j in range(n + 1))))
    return best


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_exact_on_small_trees(seed: int) -> None:
    work = _work(seed, 12)
    for budget_tokens in (0, 40, 120, 400):
        bound = oracle_saved(work, round(budget_tokens * BYTES_PER_TOKEN), tick=len(work.requests))
        assert bound == _brute(work, budget_tokens)


@pytest.mark.parametrize("policy", ["cost_aware", "lru", "lfu", "lmcache"])
def test_no_policy_beats_it(policy: str) -> None:
    work = _work(7, 1200)
    for budget_tokens in (60, 200):
        budget = round(budget_tokens * BYTES_PER_TOKEN)
        assert simulate(work, policy, budget).saved_tokens <= oracle_saved(work, budget)
