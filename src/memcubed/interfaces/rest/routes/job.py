"""Routes on background jobs: cache and reembed (submitted as jobs), job, list_jobs, cancel_job, and
collect_garbage."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from memcubed.interfaces.rest.auth import Caller, KernelDep
from memcubed.interfaces.rest.errors import ERROR_RESPONSES
from memcubed.schemas.gc import GcInput, GcReport
from memcubed.schemas.jobs import CacheJob, JobRecord, JobState
from memcubed.schemas.reembed import ReembedInput
from memcubed.schemas.server import Page

__all__ = ["router"]

router = APIRouter(tags=["jobs"], responses=ERROR_RESPONSES)

JobId = Annotated[str, Path(min_length=1, max_length=64, description="the job's id")]


@router.post("/cache", status_code=202, operation_id="cache")
def cache(body: CacheJob, kernel: KernelDep, caller: Caller) -> JobRecord:
    """Compile plaintext cubes into an activation cube (KV-cache) as a background job; poll ``/jobs/{id}``."""
    return kernel.submit_job({"kind": "cache", "params": body.model_dump()}, principal=caller)


@router.get("/jobs", operation_id="list_jobs")
def list_jobs(kernel: KernelDep, caller: Caller, state: JobState | None = None,
              limit: Annotated[int, Query(ge=1, le=1000)] = 50,
              offset: Annotated[int, Query(ge=0, le=2**31)] = 0) -> Page[JobRecord]:
    """Jobs newest first: your own, or everyone's for administrators."""
    jobs = kernel.list_jobs(principal=caller, state=state, limit=limit, offset=offset)
    return Page(items=jobs, next=offset + limit if len(jobs) == limit else None)


@router.get("/jobs/{job_id}", operation_id="job")
def job(job_id: JobId, kernel: KernelDep, caller: Caller) -> JobRecord:
    """One job with its progress (``done`` of ``total``), result or error."""
    return kernel.job(job_id, principal=caller)


@router.post("/jobs/{job_id}/cancel", operation_id="cancel_job")
def cancel_job(job_id: JobId, kernel: KernelDep, caller: Caller) -> JobRecord:
    """Cancel a job: a queued one never starts, a running one stops at its next progress report."""
    return kernel.cancel_job(job_id, principal=caller)


@router.post("/gc", operation_id="collect_garbage")
def collect_garbage(body: GcInput, kernel: KernelDep, caller: Caller) -> GcReport:
    """Purge deleted cubes past their retention, then remove tensor blobs no live cube uses, once older than
    the grace period (administrators); ``dry_run`` lists them instead."""
    return kernel.collect_garbage(principal=caller, dry_run=body.dry_run, grace_s=body.grace_s,
                                  retention_s=body.retention_s)


@router.post("/reembed", status_code=202, operation_id="reembed")
def reembed(body: ReembedInput, kernel: KernelDep, caller: Caller) -> JobRecord:
    """Move the store to another embedder as a background job (administrators); poll ``/jobs/{id}``. Search
    keeps the old vectors until the job switches, atomically, at its end."""
    return kernel.submit_job({"kind": "reembed", "params": body.model_dump()}, principal=caller)
