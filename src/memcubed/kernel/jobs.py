"""Kernel operations on background jobs: submit, inspect, cancel, and run the next queued one.

Long work (compiling KV, training adapters) runs as a job, not inside a request: a caller
submits it, any worker process claims it from the store, progress is written back as it
advances, and a cancellation request stops it at its next progress report. What the job
does is the kernel operation it names, run as the submitting principal, so the operation's
own rights checks, versions and audit apply unchanged.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from pydantic import BaseModel

from memcubed.cube.ids import new_cube_id
from memcubed.errors import (
    AttemptsExhausted,
    BackendUnavailable,
    Cancelled,
    Conflict,
    LeaseLost,
    MemcubedError,
    NotFound,
    ValidationError,
)
from memcubed.kernel.base import KernelBase, Progress, utcnow
from memcubed.kernel.events import Event
from memcubed.kernel.lease import Heartbeats, JobLease, holding
from memcubed.kernel.validation import parse
from memcubed.schemas.jobs import JobRecord, JobState, JobSubmit
from memcubed.schemas.ops import PrincipalPublic

__all__ = ["JobKind", "JobOps", "JobProgress", "ProgressReport"]

log = logging.getLogger(__name__)

ProgressReport = Callable[[JobRecord, int, int], None]
"""Called by a worker with (job, done, total) as a job's progress is recorded."""

_TRANSIENT = (BackendUnavailable, Conflict)
"""Failures worth another attempt: the store was unreachable, or the state changed under the job."""


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
    """A job's progress callback: writes (done, total) to the store at most every ``interval_s`` seconds,
    renewing the job's lease as it does; raises :class:`Cancelled` once the job's cancellation has been
    requested and :class:`LeaseLost` once its worker no longer holds it (or is stopping)."""

    def __init__(self, kernel: KernelBase, job_id: str, *, interval_s: float = 0.2, lease: JobLease | None = None,
                 report: ProgressReport | None = None) -> None:
        self._kernel = kernel
        self._job_id = job_id
        self._interval_s = interval_s
        self._lease = lease
        self._report = report
        self._last = float("-inf")

    def __call__(self, done: int, total: int) -> None:
        self._raise_if_stopped()
        now = time.monotonic()
        if now - self._last < self._interval_s and done < total:
            return
        self._last = now
        store = self._kernel.store
        with store.transaction():
            held = self._lease is None or self._lease.renew(store)
            cancel = held and store.report_job_progress(self._job_id, done, total)
        self._raise_if_stopped()
        if cancel:
            raise Cancelled(f"job {self._job_id} was cancelled", job_id=self._job_id)
        if self._report is not None and self._lease is not None:
            with holding(None):  # the worker's callback: what it writes is not the job's output
                self._report(self._lease.job, done, total)

    def cancelled(self) -> bool:
        """Whether the work should stop now: cancellation was requested, or the lease is lost or being given
        back (for work without progress steps to report)."""
        lease = self._lease
        if lease is not None and (lease.lost.is_set() or lease.stop.is_set() or lease.cancel.is_set()):
            return True
        job = self._kernel.store.load_job(self._job_id)
        return bool(job and job.cancel_requested)

    def _raise_if_stopped(self) -> None:
        lease = self._lease
        if lease is None:
            return
        if lease.lost.is_set() or lease.stop.is_set():
            why = "is stopping" if lease.stop.is_set() and not lease.lost.is_set() else "lost its lease"
            raise LeaseLost(f"job {self._job_id}: worker {lease.worker} {why}", job_id=self._job_id,
                            worker=lease.worker, attempt=lease.attempt)
        if lease.cancel.is_set():
            raise Cancelled(f"job {self._job_id} was cancelled", job_id=self._job_id)


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
        with self._write() as pending:
            return self._queue_job(pending, request, actor)

    def _queue_job(self, pending: list[Event], request: JobSubmit | Mapping[str, Any], actor: PrincipalPublic,
                   **audit_details: Any) -> JobRecord:
        """Check and queue a job inside the caller's write transaction (so it commits with the caller's other
        writes, or not at all); ``audit_details`` join its ``job.submit`` record."""
        req = parse(JobSubmit, dict(request) if isinstance(request, Mapping) else request)
        kind = self.job_kinds().get(req.kind)
        if kind is None:
            raise ValidationError(f"unknown job kind {req.kind!r}; known: {sorted(self.job_kinds())}", field="kind")
        params = parse(kind.params, req.params)
        kind.check(params, actor)
        job = JobRecord(id=new_cube_id(), kind=req.kind, principal=actor.name,
                        params=params.model_dump(mode="json"), created_at=utcnow())
        self.store.insert_job(job)
        self._audit(pending, actor.name, "job.submit", None, None,
                    {"job": job.id, "kind": job.kind, **audit_details})
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

    def run_next_job(self, *, worker: str, kinds: Sequence[str] | None = None, stop: threading.Event | None = None,
                     report: ProgressReport | None = None) -> JobRecord | None:
        """Claim the oldest claimable job (of ``kinds``, or any this kernel knows), run it here under a lease,
        and return it as it ended; None when nothing is claimable. The operation's failure is recorded on the
        job, not raised.

        Claimable means queued, or running with a lease that ran out (its worker died): the claim counts an
        attempt, and a job claimed ``settings.job_max_attempts`` times whose lease runs out again fails with
        ``attempts_exhausted``. While it runs, the lease is renewed by every progress report and by a heartbeat
        thread; the output commits only while this worker still holds it (see ``kernel.lease``), otherwise it
        is discarded and the job is left to its new holder.

        Retries: a transient failure (``BackendUnavailable``, or a ``Conflict`` such as a source that changed
        while an adapter trained) puts the job back in the queue for another attempt, up to the same bound;
        every other error (validation, rights, not found, a bug) is final: running it again would fail again.

        Args:
            worker: this worker's name, recorded on the claim (unique per worker).
            kinds: job kinds to take (all the kernel knows when None).
            stop: set it to give the running job back at its next progress report (a clean shutdown): it is
                queued again without counting the attempt.
            report: called with (job, done, total) as progress is recorded.
        """
        known = self.job_kinds()
        wanted = [k for k in (known if kinds is None else kinds) if k in known]
        lease_s, limit = self.settings.job_lease_s, self.settings.job_max_attempts
        now = utcnow()
        with self._write() as pending:
            ended = self.store.expire_jobs(now, limit, exhausted=AttemptsExhausted(
                f"the job's worker stopped renewing its lease (died) on its last allowed attempt ({limit} of {limit})",
                attempts=limit,
                reason="lease_expired").to_dict(), cancelled=Cancelled("cancelled; its worker stopped").to_dict())
            pending.extend(_ended(job, job.state) for job in ended)
            job = self.store.claim_job(worker, now, wanted, lease_until=now + timedelta(seconds=lease_s),
                                       max_attempts=limit) if wanted else None
        if job is None:
            return None
        kind = known[job.kind]
        lease = JobLease(job, worker, lease_s, stop=stop or threading.Event())
        progress = JobProgress(self, job.id, lease=lease, report=report)
        result: dict[str, Any] | None = None
        failure: BaseException | None = None
        try:
            with self._job_heartbeats().beating(lease), holding(lease):
                progress(0, 0)  # a cancellation requested while it was being claimed
                result = kind.run(kind.params.model_validate(job.params), job.principal, progress)
        except Exception as exc:  # recorded on the job (a bug or a library failure too: the worker lives on)
            failure = exc
        return self._settle(lease, result, failure)

    def _settle(self, lease: JobLease, result: dict[str, Any] | None, failure: BaseException | None) -> JobRecord:
        """Record how a job's attempt ended, if this worker still holds it; return the job as it is now."""
        job, now = lease.job, utcnow()
        if lease.committed:  # succeeded with its output; the full result replaces the preliminary one
            if failure is not None:
                # It committed what it wrote (e.g. an extraction's failure record and its queued retry), then
                # failed: the job ends failed with that error, and is not run again (its output stands).
                failed: dict[str, Any] = failure.to_dict() if isinstance(failure, MemcubedError) else {
                    "code": "internal_error", "message": repr(failure), "details": {}}
                with self._write() as pending:
                    self.store.finish_job(job.id, JobState.FAILED, now, error=failed)
                    pending.append(_ended(job, JobState.FAILED, attempt=lease.attempt))
            elif result is not None:
                self.store.set_job_result(job.id, lease.worker, lease.attempt, result)
            return self._reload(job.id)
        if lease.lost.is_set():
            log.warning("job %s: worker %s lost its lease; output discarded", job.id, lease.worker)
            return self._reload(job.id)
        if lease.stop.is_set() and (failure is None or isinstance(failure, (LeaseLost, Cancelled))):
            with self.store.transaction():
                self.store.release_job(job.id, lease.worker, lease.attempt, count=False)
            return self._reload(job.id)
        state, error = JobState.SUCCEEDED, None
        if isinstance(failure, Cancelled):
            state, error = JobState.CANCELLED, failure.to_dict()
        elif isinstance(failure, _TRANSIENT) and not isinstance(failure, (LeaseLost, AttemptsExhausted)):
            if lease.attempt < self.settings.job_max_attempts:
                with self.store.transaction():
                    self.store.release_job(job.id, lease.worker, lease.attempt, error=failure.to_dict())
                return self._reload(job.id)
            state, error = JobState.FAILED, AttemptsExhausted(
                f"the job failed on each of its {lease.attempt} attempts: {failure.message}",
                attempts=lease.attempt, reason=failure.code, last_error=failure.to_dict()).to_dict()
        elif isinstance(failure, MemcubedError):
            state, error = JobState.FAILED, failure.to_dict()
        elif failure is not None:
            state, error = JobState.FAILED, {"code": "internal_error", "message": repr(failure), "details": {}}
        with self._write() as pending:
            if self.store.finish_job(job.id, state, now, result=result if state is JobState.SUCCEEDED else None,
                                     error=error, worker=lease.worker, attempt=lease.attempt):
                pending.append(_ended(job, state, attempt=lease.attempt))
        return self._reload(job.id)

    def _reload(self, job_id: str) -> JobRecord:
        job = self.store.load_job(job_id)
        assert job is not None
        return job

    def _job_heartbeats(self) -> Heartbeats:
        beats: Heartbeats | None = getattr(self, "_heartbeats", None)
        if beats is None:
            beats = self._heartbeats = Heartbeats(self.store, self.settings.job_lease_s / 3)
        return beats

    def _job(self, job_id: str, actor: PrincipalPublic) -> JobRecord:
        if not isinstance(job_id, str) or not job_id:
            raise ValidationError("job id must be a non-empty string", field="job_id")
        job = self.store.load_job(job_id)
        if job is None or not (actor.is_admin or job.principal == actor.name):
            raise NotFound(f"job {job_id} not found", job_id=job_id)
        return job



def _ended(job: JobRecord, state: JobState, *, attempt: int | None = None) -> Event:
    """The event of a job's end (``job.succeeded``, ``job.failed``, ``job.cancelled``)."""
    return Event(kind=f"job.{state.value}", principal=job.principal, at=utcnow(), cube_id=None, version=None,
                 details={"job": job.id, "kind": job.kind, "attempt": job.attempts if attempt is None else attempt})
