"""Routes of the LLM planner: propose_plan (a model proposes) and execute_plan (the kernel checks, then runs)."""

from __future__ import annotations

from fastapi import APIRouter

from memcubed.interfaces.rest.auth import Caller, KernelDep
from memcubed.interfaces.rest.errors import ERROR_RESPONSES
from memcubed.schemas.plan import ExecutePlanInput, PlanProposal, PlanReport, ProposePlanInput

__all__ = ["router"]

router = APIRouter(tags=["planner"], responses=ERROR_RESPONSES)


@router.post("/plans/propose", operation_id="propose_plan")
def propose_plan(body: ProposePlanInput, kernel: KernelDep, caller: Caller) -> PlanProposal:
    """Ask a configured language model for a plan from your recent events and ``goal``; nothing runs."""
    result: PlanProposal = kernel.call("propose_plan", body, principal=caller)
    return result


@router.post("/plans/execute", operation_id="execute_plan")
def execute_plan(body: ExecutePlanInput, kernel: KernelDep, caller: Caller) -> PlanReport:
    """Check every step against your rights and budgets, then run the valid ones (none with ``dry_run``).
    Administration is never planned over HTTP: those steps are rejected."""
    result: PlanReport = kernel.call("execute_plan", body, principal=caller)
    return result
