"""What a policy sees (``View``) and what it proposes (``Proposal``): plain data, built by the kernel."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal

from memcubed.engines.scheduler.budgets import Cost
from memcubed.engines.scheduler.signals import BASE, SPREAD, SetKey, Signals, Usage

__all__ = ["Action", "CubeInfo", "Derived", "PolicyConfig", "Proposal", "View", "WorkingSetScope"]

Action = Literal["cache", "evict", "consolidate", "recompile", "drop", "working_set"]
"""cache: compile a set's KV chain; evict: archive an activation cube (its KV goes, sources stay);
consolidate: train an adapter on facts; recompile: build a stale derived cube again; drop: archive a stale one;
working_set: (re)build a principal's working set of a namespace from the members in ``targets``."""


@dataclass(frozen=True)
class CubeInfo:
    """A live plaintext cube a policy may act on.

    Attributes:
        id: its id.
        namespace: its namespace.
        tokens: the prefill tokens its KV segment holds (estimated, scaled to the tokenizer's counts).
        importance: its importance (0..1).
        updated: when its content last changed (epoch seconds).
    """

    id: str
    namespace: str
    tokens: int
    importance: float = 0.5
    updated: float = 0.0


@dataclass(frozen=True)
class Derived:
    """A live derived cube: an activation cube (KV) or a parameter cube (adapter).

    Attributes:
        id: its id.
        kind: ``activation`` or ``parameter``.
        namespace: its namespace.
        owner: the principal that owns it (who evicting or recompiling it acts for).
        sources: its source cube ids in canonical order (for an activation: its KV chain's path).
        segments: its KV segment blob digests, in chain order (activation cubes).
        stale: a source changed since it was built.
        pending: not built yet: a job the scheduler submitted is queued or running.
        working_set: it is a principal's working set (``owner``'s, of ``namespace``): only working-set
            decisions replace it; cache policies never evict it, and its bytes stay charged.
        built: when it was built (epoch seconds; a working set's refresh cadence counts from it).
    """

    id: str
    kind: Literal["activation", "parameter"]
    namespace: str
    owner: str
    sources: SetKey
    segments: tuple[str, ...] = ()
    stale: bool = False
    pending: bool = False
    working_set: bool = False
    built: float = 0.0


@dataclass(frozen=True)
class PolicyConfig:
    """Tuning shared by every policy (a field per knob; see ``Settings.scheduler_*``).

    Attributes:
        half_life_s: hotness half-life.
        bytes_per_token: KV bytes one token occupies on disk (measured from the store's activation cubes).
        memory_bytes_per_token: KV bytes one token occupies when loaded (float32).
        train_s_per_fact: estimated training seconds per consolidated fact.
        consolidate_min_reads: reads a fact needs before it is consolidated.
        consolidate_min_importance: importance a fact needs before it is consolidated.
        stable_s: seconds a fact must have gone unchanged before it is consolidated.
        max_facts: most facts in one adapter.
        max_candidates: hottest sets considered for caching per tick.
        keep_bonus: score bonus of what is already cached (hysteresis against churn).
        max_deferred: best candidates that did not fit, recorded as deferred per tick.
        working_set_max_tokens: largest working set, in (estimated) tokens.
        working_set_max_cubes: most members of one working set.
        working_set_min_reads: reads by its principal a memory needs before the scheduler makes it a member.
        working_set_refresh: relative gain in value a new choice of members needs before it replaces the
            working set (hysteresis: small changes in hotness do not rebuild it).
        working_set_cadence_s: after this long, any better choice replaces it.
        working_set_complete_bonus: extra weight of a co-retrieved set that the working set holds whole
            (a read of it needs no extra prefill at all).
        working_set_backoff_s, working_set_backoff_max_s: after ``k`` working-set builds of one
            (principal, namespace) failed in a row, the next is tried no sooner than
            ``min(max, base * 2 ** (k - 1))`` seconds of the event clock after the last failure.
    """

    half_life_s: float = 3600.0
    bytes_per_token: float = 46_080.0
    memory_bytes_per_token: float = 46_080.0
    train_s_per_fact: float = 30.0
    consolidate_min_reads: int = 5
    consolidate_min_importance: float = 0.7
    stable_s: float = 3600.0
    max_facts: int = 16
    max_candidates: int = 128
    keep_bonus: float = 0.1
    max_deferred: int = 3
    working_set_max_tokens: int = 1024
    working_set_max_cubes: int = 64
    working_set_min_reads: int = 3
    working_set_refresh: float = 0.25
    working_set_cadence_s: float = 3600.0
    working_set_complete_bonus: float = 0.5
    working_set_backoff_s: float = 60.0
    working_set_backoff_max_s: float = 3600.0


@dataclass(frozen=True)
class WorkingSetScope:
    """A (principal, namespace) whose working set the scheduler chooses.

    Attributes:
        principal: whose working set.
        namespace: of which namespace.
        candidates: the live plaintext cubes of the namespace this principal may read and trusts now (the
            kernel checks rights; a policy chooses members only from these).
        current: the working set's cube id (None when there is none).
        usable: whether chat would serve the current one now.
        why: why it is not usable (None when it is, or there is none).
        failures: its working-set builds that failed in a row, newest last (submit refused or job failed).
        failed_at: the event clock of the last of them (None when none failed).
    """

    principal: str
    namespace: str
    candidates: tuple[str, ...]
    current: str | None = None
    usable: bool = True
    why: str | None = None
    failures: int = 0
    failed_at: float | None = None


@dataclass(frozen=True)
class View:
    """The state a policy decides on.

    Attributes:
        now: the event log's clock (the latest event folded), epoch seconds.
        signals: usage per cube and per set.
        cubes: the live plaintext cubes by id.
        derived: the live derived cubes, by id order.
        segment_bytes: the size of each stored KV segment blob of ``derived``.
        config: policy tuning.
        working_sets: the working sets to choose, in (principal, namespace) order.
    """

    now: float
    signals: Signals
    cubes: Mapping[str, CubeInfo]
    derived: Sequence[Derived]
    segment_bytes: Mapping[str, int] = field(default_factory=dict)
    config: PolicyConfig = field(default_factory=PolicyConfig)
    working_sets: Sequence[WorkingSetScope] = ()

    @cached_property
    def choice(self) -> int:
        """The ``SPREAD`` place of the half-life hotness is ranked by: the one under which the most reads found
        their set among as many of the hottest as the cache holds now (``HalfLifeFit.choice``)."""
        held = sum(1 for c in self.derived if c.kind == "activation" and not c.pending and not c.working_set)
        return self.signals.fit.choice(held)

    @property
    def half_life_s(self) -> float:
        """The half-life hotness is ranked by (see ``choice``)."""
        return self.config.half_life_s * SPREAD[self.choice]

    def heat(self, usage: Usage | None, *, adaptive: bool = True) -> float:
        """``usage``'s hotness now at the chosen half-life, or at the configured one (0 for None)."""
        choice = self.choice if adaptive else BASE
        return 0.0 if usage is None else usage.hot(self.now, self.config.half_life_s, choice)

    def hot(self, key: SetKey, *, adaptive: bool = True) -> float:
        """The hotness of the co-retrieved set ``key`` now (see ``heat``)."""
        return self.heat(self.signals.sets.get(key), adaptive=adaptive)

    def tokens(self, ids: Sequence[str]) -> int:
        return sum(self.cubes[c].tokens for c in ids if c in self.cubes)

    def namespace(self, key: SetKey) -> str | None:
        """The one namespace of a set's live cubes; None when a cube is gone or they span several."""
        spaces = {self.cubes[c].namespace for c in key if c in self.cubes}
        return spaces.pop() if len(spaces) == 1 and all(c in self.cubes for c in key) else None


@dataclass(frozen=True)
class Proposal:
    """A decision a policy proposes; the planner admits it against the budgets or defers it.

    Attributes:
        action: what to do.
        namespace: where.
        targets: cache/consolidate: the source cube ids; evict/recompile/drop: the derived cube's id.
        score: the policy's score (higher went first).
        cost: what it adds to the budgets (negative frees).
        inputs: the signals the score came from.
        readers: who it may act for, in preference order (the principals whose reads made it hot; the
            derived cube's owner for evict/recompile/drop).
        hold: why the policy itself holds it back now (the planner defers it with this reason, charging
            nothing); None: admit it against the budgets.
    """

    action: Action
    namespace: str
    targets: tuple[str, ...]
    score: float
    cost: Cost
    inputs: dict[str, Any]
    readers: tuple[str, ...]
    hold: str | None = None
