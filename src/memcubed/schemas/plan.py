"""Schemas of the LLM planner: a plan of operation calls, its proposal, and the report of running it.

A plan is data a language model wrote: every step names a registry operation and its arguments, and the
kernel validates each one (schema, the acting principal's rights, existence, budgets, dependencies)
before any runs. The schemas are strict (unknown fields refused) and bounded, so an oversized or
malformed plan is refused before validation starts.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, Field, StringConstraints

from memcubed.schemas.base import Input

__all__ = [
    "MAX_PLAN_STEPS",
    "ExecutePlanInput",
    "Plan",
    "PlanProposal",
    "PlanReport",
    "PlanStep",
    "ProposePlanInput",
    "StepReport",
    "StepStatus",
]

MAX_PLAN_STEPS = 64
"""The most steps any plan may hold (``Settings.planner_max_steps``, the budget, is usually lower)."""

StepId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,32}$")]
"""A step's id inside its plan: 1 to 32 letters, digits, ``_`` or ``-``."""


class PlanStep(Input):
    """One proposed operation call.

    Attributes:
        id: unique within the plan (steps sharing an id are rejected); later steps name it in ``depends_on``.
        op: a registry operation name (``add``, ``share``, ``cache``…).
        args: that operation's input, as its schema takes it.
        depends_on: ids of *earlier* steps that must have run for this one to run.
        reason: why the model proposes it (shown, never executed).
    """

    id: StepId
    op: str = Field(min_length=1, max_length=64)
    args: dict[str, Any] = Field(default_factory=dict)
    depends_on: list[StepId] = Field(default_factory=list, max_length=MAX_PLAN_STEPS)
    reason: str = Field(default="", max_length=500)


class Plan(Input):
    """A proposed sequence of operation calls (at most ``MAX_PLAN_STEPS``)."""

    steps: list[PlanStep] = Field(max_length=MAX_PLAN_STEPS)
    summary: str = Field(default="", max_length=1000, description="what the plan is for, in one line")


class ProposePlanInput(Input):
    """Input of ``propose_plan``: an optional goal, and the configured model that proposes."""

    goal: str | None = Field(default=None, max_length=4000, description="what the plan should achieve; "
                             "without one the model works from recent events")
    model: str | None = Field(default=None, max_length=64, description="a model id the operator configured "
                              "(MEMCUBED_MODELS); the default model when omitted")


class ExecutePlanInput(Input):
    """Input of ``execute_plan``: the plan, and whether only to validate it."""

    plan: Plan
    dry_run: bool = Field(default=False, description="validate every step and report, running none")


class PlanProposal(BaseModel):
    """What ``propose_plan`` returns: the plan and what the model was shown.

    Attributes:
        plan: the plan the model proposed (not validated against rights yet: ``execute_plan`` does that).
        model: the name of the model that proposed it.
        operations: the operations the model was offered.
        events: how many recent events its context held.
        memories: how many memories (quoted) its context held.
    """

    plan: Plan
    model: str
    operations: list[str]
    events: int
    memories: int


class StepStatus(StrEnum):
    """What became of a step: ``ran``; ``valid`` (a dry run would have run it); ``rejected`` before
    anything ran; ``skipped`` because a dependency did not run; ``failed`` while running."""

    RAN = "ran"
    VALID = "valid"
    REJECTED = "rejected"
    SKIPPED = "skipped"
    FAILED = "failed"


class StepReport(BaseModel):
    """One step's outcome.

    Attributes:
        id: the step id.
        op: the operation it named.
        status: what became of it.
        reason: why it was rejected, skipped or failed (empty when it ran).
        code: the error code behind a rejection or failure (``not_found``, ``access_denied``, ``budget_exceeded``…).
        result_id: the id of what it returned (a cube, a job, a key), when it has one.
    """

    id: str
    op: str
    status: StepStatus
    reason: str = ""
    code: str | None = None
    result_id: str | None = None


class PlanReport(BaseModel):
    """What ``execute_plan`` returns: one report per step, in plan order.

    Attributes:
        dry_run: nothing was run, only validated.
        steps: the per-step reports.
    """

    dry_run: bool
    steps: list[StepReport]

    def count(self, status: StepStatus) -> int:
        """How many steps ended with ``status``."""
        return sum(1 for s in self.steps if s.status is status)
