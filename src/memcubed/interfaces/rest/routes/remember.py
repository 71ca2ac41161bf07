"""Routes of conversation memory: remember (turns in, memories out) and extract (facts from stored turns)."""

from __future__ import annotations

from fastapi import APIRouter

from memcubed.interfaces.rest.auth import Caller, KernelDep
from memcubed.interfaces.rest.errors import ERROR_RESPONSES
from memcubed.kernel.registry import OPERATIONS
from memcubed.schemas.remember import ExtractInput, RememberInput, RememberResult

__all__ = ["router"]

router = APIRouter(tags=["memory"], responses=ERROR_RESPONSES)


@router.post("/remember", operation_id="remember")
def remember(body: RememberInput, kernel: KernelDep, caller: Caller) -> RememberResult:
    """Store conversation turns as your memories; facts are extracted and resolved when an extractor is set."""
    result: RememberResult = OPERATIONS["remember"].execute(kernel, body, caller)
    return result


@router.post("/extract", operation_id="extract")
def extract(body: ExtractInput, kernel: KernelDep, caller: Caller) -> RememberResult:
    """Extract and resolve facts from your remembered turns (retries a failed extraction)."""
    result: RememberResult = OPERATIONS["extract"].execute(kernel, body, caller)
    return result
