"""The simulated scheduler benchmark's bounds: the oracle is exact on small trees (brute force over every
prefix-closed choice within the budget) and never below what any policy saves on the same stream; the
expected-best choice is a feasible set the oracle bounds; no policy goes over the budget on a random
workload (property)."""

from __future__ import annotations

import itertools
import random

import pytest
from bench.scheduler_oracle import GRAIN, best_prefix_closed, expected_best, oracle_saved
from bench.scheduler_sim import BYTES_PER_TOKEN, Workload, simulate
from hypothesis import given, settings
from hypothesis import strategies as st

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


def _drawn(seed: int, requests: int) -> Workload:
    """A small workload drawn from a known distribution that drifts once, halfway."""
    work = _work(seed, 0)
    rng = random.Random(seed)
    first = [rng.random() for _ in work.sets]
    second = list(reversed(first))
    popularity = [(0, [w / sum(first) for w in first]), (requests // 2, [w / sum(second) for w in second])]
    reads = [rng.choices(range(len(work.sets)), p)[0] for start, p in popularity for _ in range(requests // 2)]
    return Workload(work.tokens, work.sets, reads, popularity)


def test_expected_best_needs_the_distribution() -> None:
    assert expected_best(_work(1, 40), round(200 * BYTES_PER_TOKEN)) is None


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_expected_best_is_a_choice_the_oracle_bounds(seed: int) -> None:
    work = _drawn(seed, 400)
    for budget_tokens in (0, 60, 200, 10_000):
        budget = round(budget_tokens * BYTES_PER_TOKEN)
        expected = expected_best(work, budget, tick=50)
        assert expected is not None
        assert 0 <= expected <= oracle_saved(work, budget, tick=50)
    everything = expected_best(work, round(10_000 * BYTES_PER_TOKEN), tick=50)  # room for every path
    assert everything == sum(work.tokens[c] for q in work.requests for c in work.sets[q])


def test_the_knapsack_choice_is_prefix_closed_and_fits() -> None:
    paths: list[SetKey] = [("a",), ("a", "b"), ("a", "b", "c"), ("d",), ("d", "e")]
    value = {("a",): 1.0, ("a", "b"): 1.0, ("a", "b", "c"): 50.0, ("d",): 10.0, ("d", "e"): 1.0}
    weight = {p: 2 for p in paths}
    best, chosen = best_prefix_closed(paths, value, weight, 6)
    assert chosen == {("a",), ("a", "b"), ("a", "b", "c")}  # the deep value pulls its parents in
    assert best == 52.0
    best, chosen = best_prefix_closed(paths, value, weight, 5)
    assert chosen == {("d",), ("a",)} or chosen == {("d",), ("d", "e")}
    assert sum(weight[p] for p in chosen) <= 5 and all(p[:-1] in chosen for p in chosen if len(p) > 1)


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000), budget_tokens=st.integers(0, 400),
       policy=st.sampled_from(["cost_aware", "lru", "lfu", "lmcache"]))
def test_no_policy_goes_over_the_budget_on_a_random_workload(seed: int, budget_tokens: int, policy: str) -> None:
    work = _drawn(seed, 600)
    budget = round(budget_tokens * BYTES_PER_TOKEN)
    out = simulate(work, policy, budget)
    assert out.max_bytes <= budget
    assert out.saved_tokens <= oracle_saved(work, budget)
