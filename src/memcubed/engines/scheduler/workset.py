"""Working sets as scheduler decisions: which memories form a principal's working set of a namespace, and
when it is rebuilt. Pure and deterministic, like every policy.

The members come from the same usage signals every policy ranks by: a memory's decayed reads *by the
working set's principal*, plus a bonus for each co-retrieved set the choice would hold whole (a read of
it then needs no extra prefill at all), taken greedily by value per token under the token, member and
activation budgets. Only the cubes the kernel found readable and trusted by the principal now are
candidates, so a working set never names a cube its principal cannot read.

A working set is rebuilt when there is none yet, when it is no longer usable (a member changed, was
deleted, forgotten or is no longer readable), when the new choice is worth ``working_set_refresh`` more
than the current members, or, after ``working_set_cadence_s``, when the choice differs at all.

A (principal, namespace) whose builds keep failing (a refused submit or a failed job, counted from the
durable decision and job history by the kernel) backs off exponentially on the event clock: the rebuild
is proposed held, and recorded deferred with "backing off: ...", until ``backoff_until``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

from memcubed.engines.scheduler.budgets import Cost, Ledger
from memcubed.engines.scheduler.signals import SetKey
from memcubed.engines.scheduler.tree import Tree
from memcubed.engines.scheduler.view import Derived, Proposal, View, WorkingSetScope

__all__ = ["backoff_until", "select_members", "working_set_proposals", "working_set_value"]


def _share(count: int, principals: Mapping[str, int], hot: float, principal: str) -> float:
    return hot * principals.get(principal, 0) / max(count, 1)


def _cube_hot(view: View, cube_id: str, principal: str) -> float:
    usage = view.signals.cubes.get(cube_id)
    if usage is None:
        return 0.0
    return _share(usage.count, usage.principals, view.heat(usage), principal)


def _reads(view: View, cube_id: str, principal: str) -> int:
    usage = view.signals.cubes.get(cube_id)
    return 0 if usage is None else usage.principals.get(principal, 0)


def _sets_of(view: View, principal: str, allowed: set[str]) -> list[tuple[SetKey, float]]:
    """The co-retrieved sets ``principal`` read, within ``allowed``, with their decayed reads by them."""
    out = []
    for key, usage in sorted(view.signals.sets.items()):
        if principal in usage.principals and set(key) <= allowed:
            out.append((key, _share(usage.count, usage.principals, view.heat(usage), principal)))
    return out


def working_set_value(view: View, scope: WorkingSetScope, members: set[str]) -> float:
    """What ``members`` are worth to ``scope``'s principal: decayed prefill tokens they would serve per
    unit of time (their reads by the principal times their tokens, whole co-retrieved sets weighted up)."""
    allowed = set(scope.candidates)
    value = sum(_cube_hot(view, c, scope.principal) * view.tokens([c]) for c in sorted(members & allowed))
    bonus = view.config.working_set_complete_bonus
    for key, hot in _sets_of(view, scope.principal, allowed):
        if set(key) <= members:
            value += bonus * hot * view.tokens(key)
    return value


def select_members(view: View, scope: WorkingSetScope, *, tokens: Mapping[str, int] | None = None,
                   max_tokens: int | None = None, min_reads: int | None = None) -> list[str]:
    """The members ``scope``'s principal's working set should have now, best first.

    Greedy by value per token (ties by id), over single memories and the missing members of each
    co-retrieved set taken together: their decayed reads by the principal times their tokens, plus
    ``working_set_complete_bonus`` times the decayed prefill tokens of every co-retrieved set the option
    completes. ``tokens`` overrides the view's estimate (the kernel passes the tokenizer's exact counts);
    ``max_tokens`` / ``min_reads`` override the config's.
    """
    config = view.config
    limit = config.working_set_max_tokens if max_tokens is None else max_tokens
    need = config.working_set_min_reads if min_reads is None else min_reads

    def size(cube_id: str) -> int:
        return max(1, tokens[cube_id] if tokens is not None and cube_id in tokens else view.tokens([cube_id]))

    pool = [c for c in sorted(set(scope.candidates)) if c in view.cubes and _reads(view, c, scope.principal) >= need
            and _cube_hot(view, c, scope.principal) > 0]
    sets = [(key, hot, sum(size(c) for c in key)) for key, hot in _sets_of(view, scope.principal, set(pool))]
    chosen: list[str] = []
    room = limit
    while pool:
        taken = set(chosen)
        # Options: one memory, or the missing members of a co-retrieved set (taken whole, its read is
        # served with no extra prefill: a pair read together can beat a hotter memory read with others).
        options = {(c,) for c in pool} | {tuple(sorted(set(key) - taken)) for key, _, _ in sets if set(key) - taken}
        best: tuple[float, tuple[str, ...]] | None = None
        for option in sorted(options):
            cost = sum(size(c) for c in option)
            if cost > room or len(chosen) + len(option) > config.working_set_max_cubes:
                continue
            done = taken | set(option)
            completes = sum(hot * tokens_of for key, hot, tokens_of in sets
                            if set(key) <= done and not set(key) <= taken)
            gain = (sum(_cube_hot(view, c, scope.principal) * size(c) for c in option)
                    + config.working_set_complete_bonus * completes)
            rank = (-gain / cost, option)
            if best is None or rank < best:
                best = rank
        if best is None:
            break
        chosen.extend(best[1])
        pool = [c for c in pool if c not in best[1]]
        room -= sum(size(c) for c in best[1])
    return chosen


def _why(view: View, scope: WorkingSetScope, current: Derived | None, members: tuple[str, ...]
         ) -> tuple[str, dict[str, float]] | None:
    """Why the working set should be rebuilt with ``members`` now (None: keep it)."""
    if current is None:
        return "no working set yet", {}
    if current.stale or not scope.usable:
        return f"not usable: {scope.why or 'a member changed'}", {}
    if tuple(sorted(members)) == current.sources:
        return None
    old = working_set_value(view, scope, set(current.sources))
    new = working_set_value(view, scope, set(members))
    inputs = {"value_before": round(old, 6), "value_after": round(new, 6)}
    if new > old * (1 + view.config.working_set_refresh):
        return "members' hotness changed", inputs
    if view.now - current.built >= view.config.working_set_cadence_s:
        return "cadence", inputs
    return None


def backoff_until(view: View, scope: WorkingSetScope) -> float | None:
    """The event clock before which ``scope``'s next build is not tried (None: no failure to back off from):
    ``working_set_backoff_s`` doubled per failure in a row after the first, at most ``working_set_backoff_max_s``."""
    if scope.failures <= 0 or scope.failed_at is None:
        return None
    config = view.config
    delay = min(config.working_set_backoff_max_s, config.working_set_backoff_s * 2.0 ** min(scope.failures - 1, 40))
    return scope.failed_at + delay


def _held(view: View, scope: WorkingSetScope) -> str | None:
    retry = backoff_until(view, scope)
    if retry is None or view.now >= retry:
        return None
    when = datetime.fromtimestamp(retry, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    runs = "failure" if scope.failures == 1 else "failures"
    return f"backing off: {scope.failures} {runs} in a row, next try after {when}"


def working_set_proposals(policy: str, view: View, tree: Tree, room: Ledger) -> list[Proposal]:
    """One proposal per working set to (re)build now, its cost reserved in ``room`` and its chain placed in
    ``tree`` (so the caches chosen after it are charged on top of it).

    A choice that does not fit the activation budget loses its least valuable members until it fits.
    """
    out: list[Proposal] = []
    for scope in view.working_sets:
        mine = [c for c in view.derived if c.working_set and c.owner == scope.principal
                and c.namespace == scope.namespace]
        if any(c.pending for c in mine):
            continue  # one is being built
        current = next((c for c in mine if c.id == scope.current), None)
        members = select_members(view, scope)
        while members:
            chain = tuple(sorted(members))
            size, compile_tokens = tree.marginal(chain)
            cost = Cost(activation_bytes=size, compile_tokens=compile_tokens,
                        activation_memory_bytes=round(view.tokens(chain) * view.config.memory_bytes_per_token))
            if room.admit(scope.namespace, cost) is None:
                break
            members = members[:-1]
        if not members:
            continue
        why = _why(view, scope, current, tuple(members))
        if why is None:
            continue
        reason, inputs = why
        hold = _held(view, scope)
        if scope.failures:
            inputs = {**inputs, "failures": scope.failures, "retry_at": backoff_until(view, scope) or 0.0}
        if hold is None:  # a held build reserves nothing: it is not built this tick
            room.charge(scope.namespace, cost)
            tree.add(chain)
        value = working_set_value(view, scope, set(members))
        out.append(Proposal("working_set", scope.namespace, chain, round(value, 9), cost,
                            {**inputs, "why": reason, "tokens": view.tokens(chain), "members": len(chain),
                             "replaces": scope.current}, (scope.principal,), hold))
    return out
