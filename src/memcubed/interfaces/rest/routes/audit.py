"""Routes on the audit log: audit (read) and verify_audit."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from memcubed.interfaces.rest.auth import Caller, KernelDep
from memcubed.interfaces.rest.errors import ERROR_RESPONSES
from memcubed.schemas.base import CubeId
from memcubed.schemas.ops import AuditRecord, AuditReport
from memcubed.schemas.server import Page

__all__ = ["router"]

router = APIRouter(tags=["audit"], responses=ERROR_RESPONSES)


@router.get("/audit", operation_id="audit")
def audit(kernel: KernelDep, caller: Caller,
          cube_id: Annotated[CubeId | None, Query(description="only this cube's records")] = None,
          after_seq: Annotated[int, Query(ge=0, le=2**62, description="records after this seq (the cursor)")] = 0,
          limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> Page[AuditRecord]:
    """Audit records in order: one cube's (whole for its administrators, else your own records on it), or
    all of them (administrators)."""
    records = kernel.audit_log(principal=caller, cube_id=cube_id, after_seq=after_seq, limit=limit)
    return Page(items=records, next=records[-1].seq if len(records) == limit else None)


@router.get("/audit/verify", operation_id="verify_audit")
def verify_audit(kernel: KernelDep, caller: Caller) -> AuditReport:
    """Check the whole hash chain (administrators)."""
    return kernel.verify_audit(principal=caller)
