"""The planner: a policy's proposals admitted against the budgets, in order, as decisions.

Whatever the policy proposes, a decision whose cost would exceed a budget is not taken: it is returned
deferred, with the budget it would exceed as its reason; one the policy holds (``Proposal.hold``, a working
set backing off) is deferred with the policy's reason. Pure and deterministic.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from memcubed.engines.scheduler.budgets import Ledger
from memcubed.engines.scheduler.policies import Policy
from memcubed.engines.scheduler.view import Action, Proposal, View

__all__ = ["Decision", "plan"]


@dataclass(frozen=True)
class Decision:
    """A proposal with the planner's verdict.

    Attributes:
        policy: the policy that proposed it.
        proposal: what it proposed.
        admitted: whether it fits the budgets (else deferred).
        reason: why it was deferred (None when admitted).
        budget: use and limits of its namespace and the store when it was decided.
        clock: the event log's clock it was decided at (epoch seconds).
    """

    policy: str
    proposal: Proposal
    admitted: bool
    reason: str | None
    budget: dict[str, Any] = field(default_factory=dict)
    clock: float = 0.0

    @property
    def action(self) -> Action:
        return self.proposal.action

    def key(self) -> tuple[Any, ...]:
        """What makes two decisions the same decision (for replay comparisons)."""
        p = self.proposal
        return (self.policy, p.action, p.namespace, p.targets, p.score, self.admitted, self.reason)


def plan(policy: Policy, view: View, ledger: Ledger, *, max_actions: int = 16) -> list[Decision]:
    """Admit ``policy``'s proposals in order against ``ledger`` (which is charged with what is admitted).

    At most ``max_actions`` proposals that add something (cache, consolidate, recompile) are admitted per
    tick; later ones are deferred with that reason. Evictions and drops are always admitted (they free).

    A cache proposal's cost leaves out the prefix paths an earlier proposal of the same tick stores, so once
    one is deferred, every later addition that may need its paths (a cache sharing a prefix with it, or
    anything after a deferred recompile, whose chain is not in its targets) is deferred too: the budgets
    would otherwise be charged less than what is stored.
    """
    out: list[Decision] = []
    adding = 0
    deferred: list[tuple[str, ...]] = []
    blocked = False  # a recompile was deferred: no later addition's cost can be trusted this tick
    for proposal in policy.propose(view, ledger.copy()):
        state = ledger.state(proposal.namespace)
        frees = proposal.action in ("evict", "drop")
        reason = proposal.hold or (None if frees else ledger.admit(proposal.namespace, proposal.cost))
        if reason is None and not frees and adding >= max_actions:
            reason = f"at most {max_actions} additions per tick"
        if reason is None and not frees and (blocked or (proposal.action in ("cache", "working_set") and any(
                d[:1] == proposal.targets[:1] for d in deferred))):
            reason = "it shares a prefix with a deferred proposal of this tick"
        if reason is None:
            ledger.charge(proposal.namespace, proposal.cost)
            adding += 0 if frees else 1
        elif proposal.hold is not None:
            pass  # held by the policy: it reserved nothing and stores nothing this tick
        elif proposal.action in ("cache", "working_set"):
            deferred.append(proposal.targets)
        elif proposal.action == "recompile":
            blocked = True
        out.append(Decision(policy.name, proposal, reason is None, reason, state, view.now))
    return out
