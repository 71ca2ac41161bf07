"""Routes on the working set: set_working_set, working_set, clear_working_set (one kernel operation each)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from memcubed.interfaces.rest.auth import Caller, KernelDep
from memcubed.interfaces.rest.errors import ERROR_RESPONSES
from memcubed.kernel.registry import OPERATIONS
from memcubed.schemas.base import Name
from memcubed.schemas.workset import WorkingSet, WorkingSetInput, WorkingSetRef

__all__ = ["router"]

router = APIRouter(tags=["memory"], responses=ERROR_RESPONSES)

NamespaceQuery = Annotated[Name, Query(description="memory space")]


@router.post("/working-set", operation_id="set_working_set")
def set_working_set(body: WorkingSetInput, kernel: KernelDep, caller: Caller) -> WorkingSet:
    """Make memories (or the namespace's hottest, under budget) your working set: one exact KV prefix chat puts
    first; the previous one is archived."""
    result: WorkingSet = OPERATIONS["set_working_set"].execute(kernel, body, caller)
    return result


@router.get("/working-set", operation_id="working_set")
def working_set(kernel: KernelDep, caller: Caller, namespace: NamespaceQuery = "default") -> WorkingSet:
    """Your working set of a namespace and whether chat would serve it now."""
    result: WorkingSet = OPERATIONS["working_set"].execute(kernel, WorkingSetRef(namespace=namespace), caller)
    return result


@router.delete("/working-set", operation_id="clear_working_set")
def clear_working_set(kernel: KernelDep, caller: Caller, namespace: NamespaceQuery = "default") -> WorkingSet:
    """Drop your working set of a namespace (archived); chat retrieves as before."""
    result: WorkingSet = OPERATIONS["clear_working_set"].execute(kernel, WorkingSetRef(namespace=namespace), caller)
    return result
