"""Scheduling policies: deterministic, pluggable (a Protocol and a registry by name).

Every policy chooses, from scratch each tick, which KV chains should be stored within the budgets, and
the difference to what is stored becomes its proposals: evictions first (they free room), then caches.
They differ only in how they rank what to store:

- ``cost_aware`` (the default): the chain that saves the most decayed prefill tokens per byte *on top
  of what is already chosen*, over every observed set that shares a prefix with it (so a hot shared
  prefix is stored once and serves many sets); it also consolidates important, stable, often-read facts
  and recompiles or drops stale derived cubes.
- ``lru``: the most recently read sets first; ``lfu``: the most often read first.
- ``lmcache``: LMCache-style cost-aware eviction: saved recompute tokens per byte times read count,
  aged by the half-life, each set on its own (no prefix sharing in the score).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from memcubed.engines.scheduler.budgets import Cost, Ledger
from memcubed.engines.scheduler.consolidation import consolidations, stale_adapters
from memcubed.engines.scheduler.signals import SetKey
from memcubed.engines.scheduler.tree import Tree, activation_use, common_prefix, existing_paths, prefixes
from memcubed.engines.scheduler.view import Proposal, View
from memcubed.engines.scheduler.workset import working_set_proposals
from memcubed.errors import ValidationError

__all__ = ["LFU", "LRU", "POLICIES", "CostAware", "LMCache", "Policy", "get_policy"]


class Policy(Protocol):
    """A scheduling policy: proposals for one tick, best first; pure and deterministic."""

    name: str

    def propose(self, view: View, ledger: Ledger) -> list[Proposal]:
        """What to do now, given ``view`` and the budgets' current use in ``ledger`` (not modified)."""
        ...


def _scratch(view: View, ledger: Ledger) -> Ledger:
    """``ledger`` as if no activation but the working sets were stored (each tick chooses the stored chains
    from scratch; working sets are replaced only by their own decisions, so their bytes stay charged)."""
    scratch = ledger.copy()
    kept = activation_use(view, working_sets_only=True)
    for ns, used in activation_use(view).items():
        scratch.charge(ns, Cost(activation_bytes=-(used - kept.get(ns, 0))))
    return scratch


class _Fill:
    """Chooses chains into a ``Tree`` under the budgets, then turns the choice into proposals."""

    def __init__(self, policy: str, view: View, ledger: Ledger, *, adaptive: bool = True) -> None:
        self.policy = policy
        self.adaptive = adaptive  # hotness at the chosen half-life (the baselines: the configured one)
        self.view = view
        self.ledger = ledger
        self.room = _scratch(view, ledger)
        self.tree = Tree(view, existing_paths(view))
        self.chosen: list[tuple[SetKey, float, dict[str, float]]] = []
        self.rejected: list[Proposal] = []
        for cube in view.derived:  # submitted, not built yet: already charged, kept; working sets stay too
            if cube.kind == "activation" and (cube.pending or (cube.working_set and not cube.stale)):
                self.tree.add(cube.sources)

    def offer(self, chain: SetKey, score: float, inputs: dict[str, float]) -> bool:
        """Choose ``chain`` if it fits the budgets; remember the best few that do not."""
        ns = self.view.namespace(chain)
        if ns is None:
            return False
        size, compile_tokens = self.tree.marginal(chain)
        cost = Cost(activation_bytes=size, compile_tokens=compile_tokens,
                    activation_memory_bytes=round(self.view.tokens(chain) * self.view.config.memory_bytes_per_token))
        reason = self.room.admit(ns, cost)
        if reason is not None:
            if len(self.rejected) < self.view.config.max_deferred:
                self.rejected.append(self._cache(chain, ns, score, cost, inputs))
            return False
        self.room.charge(ns, cost)
        self.tree.add(chain)
        self.chosen.append((chain, score, inputs))
        return True

    def _cache(self, chain: SetKey, ns: str, score: float, cost: Cost, inputs: dict[str, float]) -> Proposal:
        usage = self.view.signals.sets.get(chain)
        readers = tuple(usage.readers()) if usage else ()
        if not readers:  # a shared prefix: whoever read sets starting with it
            starts = sorted(k for k in self.view.signals.sets if k[: len(chain)] == chain)
            readers = tuple(dict.fromkeys(r for k in starts for r in self.view.signals.sets[k].readers()))
        return Proposal("cache", ns, chain, round(score, 9), cost,
                        {**inputs, "tokens": self.view.tokens(chain), "half_life_s": self._half_life()}, readers)

    def _half_life(self) -> float:
        """The half-life the hotness in these proposals was taken at."""
        return round(self.view.half_life_s if self.adaptive else self.view.config.half_life_s, 3)

    def proposals(self, after_evictions: list[Proposal] | None = None) -> list[Proposal]:
        """Evictions and drops of what was not chosen, then ``after_evictions`` (the working sets), then
        caches of what is new (then the deferred). Working sets are never evicted here."""
        view, tree = self.view, self.tree
        live = [c for c in view.derived if c.kind == "activation" and not c.pending and not c.working_set]
        kept = [c for c in live if not c.stale and tree.covers(c)]
        sets = [c for c in view.derived if c.kind == "activation" and c.working_set and not c.pending]
        kept_digests = {d for c in [*kept, *sets] for d in c.segments}
        kept_paths = {c.sources[: i + 1] for c in [*kept, *(s for s in sets if not s.stale)]
                      for i in range(len(c.sources))}
        kept_paths |= {p for w in after_evictions or () for p in prefixes([w.targets])}
        out: list[Proposal] = []
        stale_chains = {c.sources: c for c in live if c.stale}
        gone: set[str] = set()  # digests already freed by an earlier eviction (segments are shared)
        for cube in live:
            if cube in kept or (cube.stale and any(ch == cube.sources for ch, _, _ in self.chosen)):
                continue
            released = set(cube.segments) - kept_digests - gone
            gone |= released
            freed = sum(view.segment_bytes.get(d, 0) for d in released)
            hot = view.hot(cube.sources, adaptive=self.adaptive)
            out.append(Proposal("drop" if cube.stale else "evict", cube.namespace, (cube.id,), round(hot, 9),
                                Cost(activation_bytes=-freed),
                                {"hotness": round(hot, 6), "half_life_s": self._half_life(), "freed_bytes": freed},
                                (cube.owner,)))
        out.extend(after_evictions or ())
        placed = set(kept_paths)
        for chain, score, inputs in self.chosen:
            if chain in {c.sources for c in [*kept, *sets] if not c.stale}:
                continue
            fresh = [chain[: i + 1] for i in range(len(chain)) if chain[: i + 1] not in placed]
            placed.update(fresh)
            size = sum(tree.segment_bytes(p) for p in fresh)
            compile_tokens = sum(view.tokens(p[-1:]) for p in fresh if p not in kept_paths)
            ns = view.namespace(chain) or ""
            memory = round(view.tokens(chain) * view.config.memory_bytes_per_token)
            stale = stale_chains.get(chain)
            if stale is not None:
                released = set(stale.segments) - kept_digests - gone
                gone |= released
                freed = sum(view.segment_bytes.get(d, 0) for d in released)
                out.append(Proposal("recompile", ns, (stale.id,), round(score, 9),
                                    Cost(activation_bytes=size - freed, compile_tokens=compile_tokens,
                                         activation_memory_bytes=memory),
                                    {**inputs, "tokens": view.tokens(chain)}, (stale.owner,)))
                continue
            out.append(self._cache(chain, ns, score, Cost(activation_bytes=size, compile_tokens=compile_tokens,
                                                          activation_memory_bytes=memory), inputs))
        return out + self.rejected


def _candidates(view: View, *, adaptive: bool = True) -> list[SetKey]:
    """The hottest observed sets in one namespace (at most ``max_candidates``), ties by key; hot at the chosen
    half-life, or at the configured one (``adaptive=False``: the baselines, as they were measured)."""
    sets = [k for k in view.signals.sets if view.namespace(k) is not None]
    sets.sort(key=lambda k: (-view.hot(k, adaptive=adaptive), k))
    return sets[: view.config.max_candidates]


def _with_stored(view: View, keys: list[SetKey]) -> list[SetKey]:
    stored = [c.sources for c in view.derived if c.kind == "activation" and not c.pending and not c.working_set]
    return sorted(set(keys) | {k for k in stored if view.namespace(k) is not None})


class _Ranked:
    """A baseline: whole sets in a fixed order of preference, each taken if it fits."""

    name = "ranked"

    def rank(self, view: View, key: SetKey) -> tuple[float, dict[str, float]]:
        raise NotImplementedError

    def propose(self, view: View, ledger: Ledger) -> list[Proposal]:
        fill = _Fill(self.name, view, ledger, adaptive=False)
        scored = [(key, *self.rank(view, key)) for key in _with_stored(view, _candidates(view, adaptive=False))]
        scored.sort(key=lambda item: (-item[1], item[0]))
        sets = working_set_proposals(self.name, view, fill.tree, fill.room)
        for key, score, inputs in scored:
            if score > 0:
                fill.offer(key, score, inputs)
        return fill.proposals(sets)


class LRU(_Ranked):
    """Least recently used: the most recently read sets are stored."""

    name = "lru"

    def rank(self, view: View, key: SetKey) -> tuple[float, dict[str, float]]:
        usage = view.signals.sets.get(key)
        last = usage.last if usage and usage.last is not None else 0.0
        return last, {"last_access": last}


class LFU(_Ranked):
    """Least frequently used: the most often read sets are stored."""

    name = "lfu"

    def rank(self, view: View, key: SetKey) -> tuple[float, dict[str, float]]:
        usage = view.signals.sets.get(key)
        count = float(usage.count) if usage else 0.0
        return count, {"count": count}


class LMCache(_Ranked):
    """LMCache-style cost-aware: saved recompute tokens per byte x reads, aged by the half-life."""

    name = "lmcache"

    def rank(self, view: View, key: SetKey) -> tuple[float, dict[str, float]]:
        usage = view.signals.sets.get(key)
        if usage is None or usage.last is None:
            return 0.0, {}
        tokens = view.tokens(key)
        size = max(1.0, tokens * view.config.bytes_per_token)
        age = max(0.0, view.now - usage.last)
        score = usage.count * tokens / size * 0.5 ** (age / view.config.half_life_s)
        return score, {"count": usage.count, "tokens": tokens, "age_s": round(age, 3)}


class CostAware:
    """The default: prefix-sharing-aware saved prefill per byte; consolidates and recompiles too."""

    name = "cost_aware"

    def propose(self, view: View, ledger: Ledger) -> list[Proposal]:
        fill = _Fill(self.name, view, ledger)
        working = working_set_proposals(self.name, view, fill.tree, fill.room)
        sets = _candidates(view)
        # Candidates come from the hottest sets; their value counts every observed read they would serve.
        observed = sorted(k for k in view.signals.sets if view.namespace(k) is not None)
        by_first: dict[str, list[SetKey]] = {}
        for key in observed:
            by_first.setdefault(key[0], []).append(key)
        hot = {k: view.hot(k) for k in observed}
        stored = {c.sources for c in view.derived
                  if c.kind == "activation" and not c.pending and not c.stale and not c.working_set}
        pool = set(prefixes(sets)) | {k for k in stored if view.namespace(k) is not None}

        def score(chain: SetKey) -> tuple[float, float, int]:
            gain = sum(hot[t] * max(0, view.tokens(t[: common_prefix(chain, t)]) - fill.tree.served(t))
                       for t in by_first.get(chain[0], ()))
            size, _ = fill.tree.marginal(chain)
            bonus = 1 + view.config.keep_bonus if chain in stored else 1.0
            return gain / max(size, 1) * bonus, gain, size

        # Adding a chain changes the gains and sizes only of chains with the same first cube: rescore those.
        scores = {chain: score(chain) for chain in pool}
        while scores:
            chain = min(scores, key=lambda c: (-scores[c][0], c))
            ratio, gain, size = scores.pop(chain)
            if gain <= 0:
                break
            if fill.offer(chain, ratio, {"saved_tokens_rate": round(gain, 6), "bytes": size}):
                for other in [c for c in scores if c[0] == chain[0]]:
                    scores[other] = score(other)
        return [*fill.proposals(working), *consolidations(view), *stale_adapters(view)]


POLICIES: dict[str, Callable[[], Policy]] = {
    "cost_aware": CostAware, "lru": LRU, "lfu": LFU, "lmcache": LMCache,
}
"""The policies by name; register another by adding its factory."""


def get_policy(name: str) -> Policy:
    """The policy registered as ``name``.

    Raises:
        ValidationError: no policy of that name.
    """
    factory = POLICIES.get(name) if isinstance(name, str) else None
    if factory is None:
        raise ValidationError(f"unknown scheduler policy {name!r}; known: {sorted(POLICIES)}", field="policy")
    return factory()
