"""Schemas of the scheduler: its decisions as recorded, and the inputs of its operations."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from memcubed.schemas.base import Input

__all__ = ["DecisionRecord", "SchedulerLogInput", "SchedulerTick", "SchedulerTickInput"]

Outcome = Literal["planned", "done", "deferred", "failed"]


class DecisionRecord(BaseModel):
    """One scheduler decision with its explanation.

    Attributes:
        seq: its position in the decision log (0 for a dry run's).
        id: its id (also the audit record's ``decision``).
        at: when it was decided (wall clock).
        clock: the event log's clock it was decided at (epoch seconds): what replays compare.
        policy: the policy that proposed it.
        action: cache | evict | consolidate | recompile | drop | working_set.
        namespace: where it acts.
        principal: who it acts for (None when nobody whose reads made it hot may read every target).
        targets: cache/consolidate: the source cube ids; evict/recompile/drop: the derived cube id;
            working_set: the members chosen.
        score: the policy's score.
        inputs: the signals behind the score.
        cost: what it adds to the budgets (negative frees).
        budget: use and limits of its namespace and the store when it was decided.
        outcome: planned (dry run) | done | deferred (``reason``) | failed (``reason``).
        reason: why it was deferred or failed.
        job_id: the job it submitted (cache, consolidate, recompile).
        result: what executing it returned (the archived cube's id and state, ...).
    """

    seq: int = 0
    id: str
    at: datetime
    clock: float
    policy: str
    action: str
    namespace: str
    principal: str | None = None
    targets: list[str] = Field(default_factory=list)
    score: float = 0.0
    inputs: dict[str, Any] = Field(default_factory=dict)
    cost: dict[str, Any] = Field(default_factory=dict)
    budget: dict[str, Any] = Field(default_factory=dict)
    outcome: Outcome = "planned"
    reason: str | None = None
    job_id: str | None = None
    result: dict[str, Any] = Field(default_factory=dict)


class SchedulerTick(BaseModel):
    """What one scheduler tick (or its dry run) decided.

    Attributes:
        policy: the policy that decided.
        clock: the event log's clock (epoch seconds of the latest access event folded).
        events: access events folded by this tick.
        decisions: its decisions, in the order they were taken.
    """

    policy: str
    clock: float
    events: int = 0
    decisions: list[DecisionRecord] = Field(default_factory=list)


class SchedulerTickInput(Input):
    """Input of ``scheduler_plan`` and ``scheduler_run``."""

    policy: Literal["cost_aware", "lru", "lfu", "lmcache"] | None = Field(
        default=None, description="the policy; the configured one when omitted")


class SchedulerLogInput(Input):
    """Input of ``scheduler_log``: a page of decisions, oldest first."""

    after_seq: int = Field(default=0, ge=0, le=2**62, description="only decisions after this seq")
    limit: int = Field(default=100, ge=1, le=1000, description="at most this many")
    action: str | None = Field(default=None, pattern=r"^(cache|evict|consolidate|recompile|drop|working_set)$",
                               description="only decisions of this action")
