"""Routes of the scheduler: scheduler_plan (dry run), scheduler_run (one tick) and scheduler_log."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from memcubed.interfaces.rest.auth import Caller, KernelDep
from memcubed.interfaces.rest.errors import ERROR_RESPONSES
from memcubed.schemas.scheduler import DecisionRecord, SchedulerTick, SchedulerTickInput
from memcubed.schemas.server import Page

__all__ = ["router"]

router = APIRouter(tags=["scheduler"], responses=ERROR_RESPONSES)


@router.post("/scheduler/plan", operation_id="scheduler_plan")
def scheduler_plan(body: SchedulerTickInput, kernel: KernelDep, caller: Caller) -> SchedulerTick:
    """Dry run: what the scheduler would decide next, with scores and budgets; writes nothing (administrators)."""
    return kernel.scheduler_plan(principal=caller, policy=body.policy)


@router.post("/scheduler/run", operation_id="scheduler_run")
def scheduler_run(body: SchedulerTickInput, kernel: KernelDep, caller: Caller) -> SchedulerTick:
    """One scheduler tick: decide, then submit, evict or defer within budgets (administrators)."""
    return kernel.scheduler_run(principal=caller, policy=body.policy)


@router.get("/scheduler/log", operation_id="scheduler_log")
def scheduler_log(kernel: KernelDep, caller: Caller,
                  after_seq: Annotated[int, Query(ge=0, le=2**62, description="decisions after this seq")] = 0,
                  limit: Annotated[int, Query(ge=1, le=1000)] = 100,
                  action: Annotated[str | None, Query(pattern=r"^(cache|evict|consolidate|recompile|drop)$")] = None,
                  ) -> Page[DecisionRecord]:
    """Scheduler decisions with their reasons, oldest first: about your cubes, or all (administrators)."""
    records = kernel.scheduler_log(principal=caller, after_seq=after_seq, limit=limit, action=action)
    return Page(items=records, next=records[-1].seq if len(records) == limit else None)
