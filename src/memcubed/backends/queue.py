"""The job queue part of the ``StorageBackend`` Protocol: jobs, their claims, leases and ends."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Protocol

from memcubed.schemas.jobs import JobRecord, JobState

__all__ = ["JobQueue"]


class JobQueue(Protocol):
    """Background jobs in the store, claimed under leases by any number of workers (see ``kernel.lease``)."""

    def insert_job(self, job: JobRecord) -> None:
        """Queue a new job."""
        ...

    def load_job(self, job_id: str) -> JobRecord | None:
        """Return one job, or None."""
        ...

    def list_jobs(self, *, principal: str | None, state: JobState | None, limit: int, offset: int
                  ) -> list[JobRecord]:
        """Return jobs newest first, optionally of one principal and/or in one state."""
        ...

    def claim_job(self, worker: str, at: datetime, kinds: Sequence[str], *, lease_until: datetime | None = None,
                  max_attempts: int | None = None) -> JobRecord | None:
        """Move the oldest claimable job of one of ``kinds`` to running for ``worker`` and return it.

        Claimable: queued, or running with a lease that ran out before ``at`` (its worker died), and claimed
        fewer than ``max_attempts`` times. The claim counts an attempt and leases the job to ``worker`` until
        ``lease_until`` (``at`` + 30 s when None). Two workers, even in two processes, never claim the same job
        at once. None when nothing is claimable.
        """
        ...

    def expire_jobs(self, at: datetime, max_attempts: int, *, exhausted: dict[str, Any],
                    cancelled: dict[str, Any]) -> list[JobRecord]:
        """End the running jobs whose lease ran out before ``at`` and that may not be claimed again: those whose
        cancellation was requested (``cancelled``, with that error) and those claimed ``max_attempts`` times
        (``failed``, with ``exhausted``); return them as they are now. Call inside ``transaction()``."""
        ...

    def renew_job_lease(self, job_id: str, worker: str, attempt: int, at: datetime, until: datetime
                        ) -> bool | None:
        """Extend ``worker``'s lease on a running job (its ``attempt``-th claim) to ``until`` (a heartbeat at
        ``at``); return whether its cancellation was requested, or None when the worker no longer holds it
        (the lease ran out and another worker claimed the job, or the job ended)."""
        ...

    def release_job(self, job_id: str, worker: str, attempt: int, *, error: dict[str, Any] | None = None,
                    count: bool = True) -> bool:
        """Put a job ``worker`` holds back in the queue (recording ``error``, the reason, when given); with
        ``count=False`` the attempt is given back (a worker stopping cleanly). False when it did not hold it."""
        ...

    def report_job_progress(self, job_id: str, done: int, total: int) -> bool:
        """Record a running job's progress; return whether its cancellation was requested."""
        ...

    def request_job_cancel(self, job_id: str) -> None:
        """Ask the worker running a job to stop at its next progress report."""
        ...

    def finish_job(self, job_id: str, state: JobState, at: datetime, *,
                   result: dict[str, Any] | None = None, error: dict[str, Any] | None = None,
                   worker: str | None = None, attempt: int | None = None) -> bool:
        """Record how a job ended (``state`` is succeeded, failed or cancelled) and drop its lease; with
        ``worker``, only while that worker holds the job's ``attempt``-th claim. Return whether it was recorded."""
        ...

    def set_job_result(self, job_id: str, worker: str, attempt: int, result: dict[str, Any]) -> bool:
        """Replace the result of a job finished by ``worker``'s ``attempt``-th claim; False if it was not."""
        ...
