"""Kernel operations on background jobs: submit, inspect, cancel, and run the next queued one.

Long work (compiling KV, training adapters) runs as a job, not inside a request: a caller
submits it, any worker process claims it from the store, progress is written back as it
advances, and a cancellation request stops it at its next progress report. What the job
does is the kernel operation it names, run as the submitting principal, so the operation's
own rights checks, versions and audit apply unchanged.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from memcubed.cube.ids import new_cube_id
from memcubed.errors import Cancelled, MemcubedError, NotFound, ValidationError
from memcubed.kernel.base import KernelBase, Progress, utcnow
from memcubed.kernel.events import Event
from memcubed.kernel.validation import parse
from memcubed.schemas.jobs import JobRecord, JobState, JobSubmit
from memcubed.schemas.ops import PrincipalPublic

__all__ = ["JobKind", "JobOps", "JobProgress"]


@dataclass(frozen=True)
class JobKind:
    """An operation that can run as a job.

    Attributes:
        params: the schema of its arguments.
        check: run at submit time with (params, submitter): raises what the operation itself would
            for bad input or missing rights, so a job that cannot run is never queued.
        run: runs it with (params, principal, progress) and returns a JSON-able result;
            ``progress`` raises Cancelled once cancellation is requested.
    """

    params: type[BaseModel]
    check: Callable[[Any, PrincipalPublic], None]
    run: Callable[[Any, str, Progress], dict[str, Any]]


class JobProgress:
    """A job's progress callback: writes (done, total) to the store at most every ``interval_s`` seconds
    and raises :class:`Cancelled` once the job's cancellation has been requested."""

    def __init__(self, kernel: KernelBase, job_id: str, *, interval_s: float = 0.2) -> None:
        self._kernel = kernel
        self._job_id = job_id
        self._interval_s = interval_s
        self._last = float("-inf")

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        if now - self._last < self._interval_s and done < total:
            return
        self._last = now
        with self._kernel.store.transaction():
            cancel = self._kernel.store.report_job_progress(self._job_id, done, total)
        if cancel:
            raise Cancelled(f"job {self._job_id} was cancelled", job_id=self._job_id)

    def cancelled(self) -> bool:
        """Whether cancellation was requested (for work without progress steps to report)."""
        job = self._kernel.store.load_job(self._job_id)
        return bool(job and job.cancel_requested)


class JobOps(KernelBase):
    """Background jobs, stored so that any worker process can run them and any client can watch."""

    def job_kinds(self) -> dict[str, JobKind]:
        """The operations that can run as jobs, by name (``Kernel`` lists them)."""
        return {}

    def submit_job(self, request: JobSubmit | Mapping[str, Any], *, principal: str) -> JobRecord:
        """Queue long work to run in the background as ``principal``.

        Raises:
            ValidationError: unknown kind or bad params.
            AccessDenied / NotFound: the principal could not run the operation itself.
        """
        actor = self._actor(principal)
        req = parse(JobSubmit, dict(request) if isinstance(request, Mapping) else request)
        kind = self.job_kinds().get(req.kind)
        if kind is None:
            raise ValidationError(f"unknown job kind {req.kind!r}; known: {sorted(self.job_kinds())}", field="kind")
        params = parse(kind.params, req.params)
        kind.check(params, actor)
        job = JobRecord(id=new_cube_id(), kind=req.kind, principal=actor.name,
                        params=params.model_dump(mode="json"), created_at=utcnow())
        with self._write() as pending:
            self.store.insert_job(job)
            self._audit(pending, actor.name, "job.submit", None, None, {"job": job.id, "kind": job.kind})
        return job

    def job(self, job_id: str, *, principal: str) -> JobRecord:
        """Return a job with its progress: the submitter's own, or any for an admin.

        Raises:
            NotFound: no such job (or one the principal may not see).
        """
        return self._job(job_id, self._actor(principal))

    def list_jobs(self, *, principal: str, state: JobState | str | None = None, limit: int = 50,
                  offset: int = 0) -> list[JobRecord]:
        """Return jobs newest first: the principal's own, or everyone's for an admin."""
        actor = self._actor(principal)
        if not 1 <= limit <= 1000 or offset < 0:
            raise ValidationError("limit must be 1..1000 and offset >= 0", field="limit")
        try:
            wanted = None if state is None else JobState(state)
        except ValueError:
            raise ValidationError(f"unknown job state {state!r}", field="state") from None
        return self.store.list_jobs(principal=None if actor.is_admin else actor.name, state=wanted,
                                    limit=limit, offset=offset)

    def cancel_job(self, job_id: str, *, principal: str) -> JobRecord:
        """Cancel a job: a queued one never starts; a running one stops at its next progress report
        and keeps nothing it was writing. Cancelling a finished job changes nothing."""
        actor = self._actor(principal)
        with self._write() as pending:
            job = self._job(job_id, actor)
            if job.state is JobState.QUEUED:
                self.store.finish_job(job.id, JobState.CANCELLED, utcnow(),
                                      error=Cancelled("cancelled before it started").to_dict())
            elif job.state is JobState.RUNNING:
                self.store.request_job_cancel(job.id)
            else:
                return job
            self._audit(pending, actor.name, "job.cancel", None, None, {"job": job.id, "state": job.state.value})
        return self._job(job_id, actor)

    def run_next_job(self, *, worker: str, kinds: Sequence[str] | None = None) -> JobRecord | None:
        """Claim the oldest queued job (of ``kinds``, or any this kernel knows), run it here, and return
        it finished; None when nothing is queued. The operation's failure is recorded on the job, not raised."""
        known = self.job_kinds()
        wanted = [k for k in (known if kinds is None else kinds) if k in known]
        with self.store.transaction():
            job = self.store.claim_job(worker, utcnow(), wanted)
        if job is None:
            return None
        kind = known[job.kind]
        progress = JobProgress(self, job.id)
        state, result, error = JobState.SUCCEEDED, None, None
        try:
            progress(0, 0)  # a cancellation requested while it was being claimed
            result = kind.run(kind.params.model_validate(job.params), job.principal, progress)
        except Cancelled as exc:
            state, error = JobState.CANCELLED, exc.to_dict()
        except MemcubedError as exc:
            state, error = JobState.FAILED, exc.to_dict()
        except Exception as exc:  # a bug or a library failure: keep the worker alive, record it on the job
            state, error = JobState.FAILED, {"code": "internal_error", "message": repr(exc), "details": {}}
        ended = Event(kind=f"job.{state.value}", principal=job.principal, at=utcnow(), cube_id=None, version=None,
                      details={"job": job.id, "kind": job.kind})
        with self.store.transaction():
            self.store.finish_job(job.id, state, ended.at, result=result, error=error)
            self.store.append_events([ended])
        finished = self.store.load_job(job.id)
        assert finished is not None
        self.events.emit(ended)
        return finished

    def _job(self, job_id: str, actor: PrincipalPublic) -> JobRecord:
        if not isinstance(job_id, str) or not job_id:
            raise ValidationError("job id must be a non-empty string", field="job_id")
        job = self.store.load_job(job_id)
        if job is None or not (actor.is_admin or job.principal == actor.name):
            raise NotFound(f"job {job_id} not found", job_id=job_id)
        return job

