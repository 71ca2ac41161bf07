"""The simulated workload of ``bench.scheduler``: Zipf reads of k-cube sets with popularity drift, replayed
through the scheduler engine (signals, policies, budgets, planner) exactly as the kernel runs it.

Workload (fixed seeds; the same for every policy): ``CUBES`` cubes of 40..200 tokens; ``QUERIES`` distinct
questions, each retrieving a fixed set of ``K`` cubes drawn by Zipf(``CUBE_S``) over the cubes (popular
cubes come back for many questions, as in retrieval); ``REQUESTS`` requests pick a question by
Zipf(``QUERY_S``) over a popularity ranking that is reshuffled for a quarter of the questions every
``DRIFT_EVERY`` requests. A request is served from KV up to the longest stored prefix of its set in
canonical order (what chat loads from the prefix tree); the rest is prefill. The scheduler ticks every
``TICK`` requests; what it decides to cache is stored at once (segment bytes = tokens x bytes per token,
content-addressed: a shared prefix is stored once, for every policy alike). ``Shape`` varies the seed, the
Zipf exponents and the drift rate.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from memcubed.engines.scheduler import (
    Budget,
    Budgets,
    Cost,
    CubeInfo,
    Derived,
    Ledger,
    PolicyConfig,
    Signals,
    View,
    get_policy,
    plan,
)
from memcubed.engines.scheduler.signals import REQUEST, SetKey
from memcubed.engines.scheduler.tree import activation_use
from memcubed.schemas.events import ACCESS, Event, LoggedEvent

CUBES = 400
QUERIES = 2000
K = 4
CUBE_S = 0.8
QUERY_S = 1.0
REQUESTS = 12_000
DRIFT_EVERY = 3000
TICK = 200
SECONDS_PER_REQUEST = 2.0
BYTES_PER_TOKEN = 46_080.0  # SmolLM2-135M fp32 KV (bench/results/kvcache.json)
SEED = 14


def _zipf(n: int, s: float) -> list[float]:
    weights = [1.0 / (rank + 1) ** s for rank in range(n)]
    total = sum(weights)
    return [w / total for w in weights]


@dataclass(frozen=True)
class Shape:
    """The workload's parameters (the defaults are the bench's normal configuration)."""

    seed: int = SEED
    cube_s: float = CUBE_S
    query_s: float = QUERY_S
    drift_every: int = DRIFT_EVERY

    def label(self) -> str:
        return f"seed {self.seed}, cube zipf {self.cube_s}, query zipf {self.query_s}, drift every {self.drift_every}"


@dataclass
class Workload:
    """Cubes (id → tokens), the question sets, and the request stream (question index per request).

    ``popularity`` is what generated the stream: (first request, probability of each question) for every
    stretch between drifts; ``bench.scheduler_oracle.expected_best`` chooses from it (a workload built by
    hand may leave it empty)."""

    tokens: dict[str, int]
    sets: list[SetKey]
    requests: list[int]
    popularity: list[tuple[int, list[float]]] = field(default_factory=list)

    @classmethod
    def make(cls, seed: int = SEED, shape: Shape | None = None) -> Workload:
        shape = shape or Shape(seed)
        rng = random.Random(shape.seed)
        ids = [f"{i:08x}-0000-7000-8000-{rng.getrandbits(48):012x}" for i in range(CUBES)]
        tokens = {cid: rng.randint(40, 200) for cid in ids}
        by_popularity = ids[:]
        rng.shuffle(by_popularity)  # popularity is unrelated to id (canonical) order
        cube_w = _zipf(CUBES, shape.cube_s)
        sets: list[SetKey] = []
        for _ in range(QUERIES):
            chosen: set[str] = set()
            while len(chosen) < K:
                chosen.add(rng.choices(by_popularity, cube_w)[0])
            sets.append(tuple(sorted(chosen)))
        ranking = list(range(QUERIES))
        rng.shuffle(ranking)
        query_w = _zipf(QUERIES, shape.query_s)
        requests: list[int] = []
        popularity: list[tuple[int, list[float]]] = []
        for i in range(REQUESTS):
            if i and i % shape.drift_every == 0:  # drift: a quarter of the ranks trade places
                moved = rng.sample(range(QUERIES), QUERIES // 4)
                picked = [ranking[j] for j in moved]
                rng.shuffle(picked)
                for j, q in zip(moved, picked, strict=True):
                    ranking[j] = q
            if i % shape.drift_every == 0:
                probability = [0.0] * QUERIES
                for rank, q in enumerate(ranking):
                    probability[q] = query_w[rank]
                popularity.append((i, probability))
            requests.append(ranking[rng.choices(range(QUERIES), query_w)[0]])
        return cls(tokens, sets, requests, popularity)

    @property
    def total_tokens(self) -> int:
        return sum(self.tokens.values())


@dataclass
class Outcome:
    """What one policy achieved over the stream."""

    prefill_tokens: int = 0
    saved_tokens: int = 0
    hits: int = 0
    full_hits: int = 0
    requests: int = 0
    bytes_samples: list[int] = field(default_factory=list)
    max_bytes: int = 0
    decisions: dict[str, int] = field(default_factory=dict)
    deferred: int = 0
    served: list[tuple[int, int]] = field(default_factory=list)  # (request index, tokens served) samples

    def summary(self) -> dict[str, Any]:
        mean_bytes = sum(self.bytes_samples) / len(self.bytes_samples) if self.bytes_samples else 0
        return {"prefill_tokens_saved": self.saved_tokens, "prefill_tokens": self.prefill_tokens,
                "saved_fraction": round(self.saved_tokens / max(1, self.prefill_tokens), 4),
                "hit_rate": round(self.hits / max(1, self.requests), 4),
                "full_hit_rate": round(self.full_hits / max(1, self.requests), 4),
                "mean_bytes_used": round(mean_bytes), "max_bytes_used": self.max_bytes,
                "decisions": dict(sorted(self.decisions.items())), "deferred": self.deferred}


def _digest(path: SetKey) -> str:
    return hashlib.sha256("/".join(path).encode()).hexdigest()


def simulate(work: Workload, policy_name: str | None, budget_bytes: int, *, half_life_s: float = 1800.0,
             tuning: dict[str, Any] | None = None) -> Outcome:
    """Replay ``work`` with ``policy_name`` (None: no scheduler) under an activation budget of ``budget_bytes``
    (``tuning`` overrides ``PolicyConfig`` fields, for experiments)."""
    config = PolicyConfig(**{"half_life_s": half_life_s, "bytes_per_token": BYTES_PER_TOKEN,
                             "memory_bytes_per_token": BYTES_PER_TOKEN, "max_candidates": 128, **(tuning or {})})
    cubes = {cid: CubeInfo(cid, "bench", tok, 0.5, 0.0) for cid, tok in work.tokens.items()}
    budgets = Budgets(store=Budget(activation_bytes=budget_bytes))
    policy = get_policy(policy_name) if policy_name else None
    signals = Signals()
    stored: dict[str, Derived] = {}
    sizes: dict[str, int] = {}
    out = Outcome()
    start = datetime(2026, 1, 1, tzinfo=UTC)
    seq = 0
    pending: list[LoggedEvent] = []
    paths: set[SetKey] = set()
    for i, q in enumerate(work.requests):
        key = work.sets[q]
        served = 0
        for n in range(len(key)):
            if key[: n + 1] not in paths:
                break
            served = n + 1
        total = sum(work.tokens[c] for c in key)
        saved = sum(work.tokens[c] for c in key[:served])
        out.requests += 1
        out.prefill_tokens += total
        out.saved_tokens += saved
        out.hits += served > 0
        out.full_hits += served == len(key)
        if i % 97 == 0:
            out.served.append((i, saved))
        at = start + timedelta(seconds=i * SECONDS_PER_REQUEST)
        for cid in key:
            seq += 1
            pending.append(LoggedEvent(seq, Event(ACCESS, "reader", at, cid, 1, {REQUEST: f"r{i}"})))
        if policy is None or (i + 1) % TICK:
            continue
        signals.fold(pending, half_life_s=half_life_s)
        pending = []
        view = View(signals.now, signals, cubes, sorted(stored.values(), key=lambda d: d.id), dict(sizes), config)
        ledger = Ledger(budgets)
        for ns, used in activation_use(view).items():
            ledger.charge(ns, Cost(activation_bytes=used))
        for decision in plan(policy, view, ledger, max_actions=64):
            p = decision.proposal
            if not decision.admitted:
                out.deferred += 1
                continue
            out.decisions[p.action] = out.decisions.get(p.action, 0) + 1
            if p.action in ("evict", "drop"):
                stored.pop(p.targets[0], None)
            elif p.action == "cache":
                segs = tuple(_digest(p.targets[: n + 1]) for n in range(len(p.targets)))
                for n, d in enumerate(segs):
                    sizes[d] = round(work.tokens[p.targets[n]] * BYTES_PER_TOKEN)
                stored_id = f"a{i}-{len(stored)}"
                stored[stored_id] = Derived(stored_id, "activation", "bench", "reader", p.targets, segs)
        paths = {d.sources[: n + 1] for d in stored.values() for n in range(len(d.sources))}
        used = activation_use(View(signals.now, signals, cubes, list(stored.values()), dict(sizes), config))
        now_bytes = sum(used.values())
        out.bytes_samples.append(now_bytes)
        out.max_bytes = max(out.max_bytes, now_bytes)
    return out
