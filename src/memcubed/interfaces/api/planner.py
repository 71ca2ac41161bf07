"""The Python API's LLM planner methods (a base of ``Memcubed``)."""

from __future__ import annotations

from typing import Any

from memcubed.interfaces.api.base import ClientBase
from memcubed.kernel.plancheck import BudgetCheck
from memcubed.kernel.types import LanguageModel
from memcubed.schemas.plan import Plan, PlanProposal, PlanReport

__all__ = ["PlannerMethods"]


class PlannerMethods(ClientBase):
    """Plans proposed by a language model and executed through the kernel's checks."""

    def propose_plan(self, goal: str | None = None, *, model: str | None = None, lm: LanguageModel | None = None,
                     scope: str = "write") -> PlanProposal:
        """Ask a language model (``lm``, or the configured ``model``) for a plan towards ``goal`` from what you
        may see; nothing runs (see :meth:`execute_plan`). ``scope="admin"`` also offers administration."""
        self._checked("propose_plan", goal=goal, model=model)
        return self._open().propose_plan(goal, principal=self.principal, lm=lm or self._open().models.get(model),
                                         scope=scope)

    def execute_plan(self, plan: Plan | dict[str, Any], *, dry_run: bool = False,
                     budget: BudgetCheck | None = None, scope: str = "write") -> PlanReport:
        """Check every step of ``plan`` against your rights and budgets (``budget`` admits each step too), then
        run the valid ones (none with ``dry_run``); ``scope="admin"`` lets an administrator plan administration."""
        checked = self._checked("execute_plan", plan=plan, dry_run=dry_run)
        return self._open().execute_plan(checked.plan, principal=self.principal, dry_run=dry_run, budget=budget,
                                         scope=scope)
