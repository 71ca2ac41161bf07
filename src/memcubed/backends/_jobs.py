"""API keys and background jobs: the StorageBackend methods every SQL store shares (a base of ``SqlStore``).

Statements use ``?`` placeholders and read rows by column name, like ``backends._sql``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from memcubed.backends._common import (
    JOB_COLUMNS,
    canonical_json,
    format_ts,
    job_from_row,
    job_values,
    key_from_row,
)
from memcubed.backends._statements import SqlStatements
from memcubed.errors import AlreadyExists
from memcubed.schemas.jobs import JobRecord, JobState
from memcubed.schemas.server import ApiKeyRecord

__all__ = ["DEFAULT_LEASE", "SqlKeysAndJobs"]

DEFAULT_LEASE = timedelta(seconds=30)
"""A claim's lease when the caller names none (``settings.job_lease_s``'s default)."""


class SqlKeysAndJobs(SqlStatements):
    """The API-key and job methods of the StorageBackend Protocol, in SQL both dialects run."""

    _CLAIM_LOCK = ""
    """Appended to the claim's row pick: PostgreSQL adds ``FOR UPDATE SKIP LOCKED``."""

    # -- API keys -----------------------------------------------------------
    def insert_api_key(self, key: ApiKeyRecord) -> None:
        if self.get_api_key(key.key_id) is not None:
            raise AlreadyExists(f"API key {key.key_id!r} already exists", key_id=key.key_id)
        self._run("INSERT INTO api_keys (key_id, principal, secret_hash, label, created_at, revoked_at, expires_at,"
                   " scope) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                   (key.key_id, key.principal, key.secret_hash, key.label, format_ts(key.created_at),
                    None if key.revoked_at is None else format_ts(key.revoked_at),
                    None if key.expires_at is None else format_ts(key.expires_at), key.scope))

    def get_api_key(self, key_id: str) -> ApiKeyRecord | None:
        row = self._one("SELECT * FROM api_keys WHERE key_id = ?", (key_id,))
        return None if row is None else key_from_row(row)

    def list_api_keys(self, principal: str | None = None) -> list[ApiKeyRecord]:
        if principal is None:
            rows = self._all("SELECT * FROM api_keys ORDER BY created_at, key_id")
        else:
            rows = self._all("SELECT * FROM api_keys WHERE principal = ? ORDER BY created_at, key_id", (principal,))
        return [key_from_row(r) for r in rows]

    def revoke_api_key(self, key_id: str, at: datetime) -> None:
        self._run("UPDATE api_keys SET revoked_at = ? WHERE key_id = ? AND revoked_at IS NULL",
                   (format_ts(at), key_id))

    # -- jobs -----------------------------------------------------------------
    def insert_job(self, job: JobRecord) -> None:
        if self.load_job(job.id) is not None:
            raise AlreadyExists(f"job {job.id!r} already exists", job_id=job.id)
        self._run(f"INSERT INTO jobs ({', '.join(JOB_COLUMNS)}) VALUES ({', '.join('?' * len(JOB_COLUMNS))})",
                   job_values(job))

    def load_job(self, job_id: str) -> JobRecord | None:
        row = self._one("SELECT * FROM jobs WHERE id = ?", (job_id,))
        return None if row is None else job_from_row(row)

    def list_jobs(self, *, principal: str | None, state: JobState | None, limit: int, offset: int
                  ) -> list[JobRecord]:
        where: list[str] = ["1 = 1"]
        params: list[Any] = []
        if principal is not None:
            where, params = [*where, "principal = ?"], [*params, principal]
        if state is not None:
            where, params = [*where, "state = ?"], [*params, state.value]
        rows = self._all(f"SELECT * FROM jobs WHERE {' AND '.join(where)} ORDER BY seq DESC LIMIT ? OFFSET ?",
                         [*params, limit, offset])
        return [job_from_row(r) for r in rows]

    def claim_job(self, worker: str, at: datetime, kinds: Sequence[str], *, lease_until: datetime | None = None,
                  max_attempts: int | None = None) -> JobRecord | None:
        if not kinds:
            return None
        marks = ", ".join("?" * len(kinds))
        until = format_ts(lease_until if lease_until is not None else at + DEFAULT_LEASE)
        limit = 2**31 - 1 if max_attempts is None else max_attempts
        # One statement: SQLite's write lock, or PostgreSQL's row lock with SKIP LOCKED, makes the pick
        # and the update atomic across processes. A running job whose lease ran out is taken over.
        row = self._one(
            "UPDATE jobs SET state = 'running', worker = ?, started_at = ?, attempts = attempts + 1, lease_until = ?,"
            " heartbeat_at = ? WHERE seq = ("
            f" SELECT seq FROM jobs WHERE kind IN ({marks}) AND attempts < ? AND (state = 'queued'"
            " OR (state = 'running' AND lease_until < ?)) ORDER BY seq LIMIT 1"
            f"{self._CLAIM_LOCK}) RETURNING *",
            (worker, format_ts(at), until, format_ts(at), *kinds, limit, format_ts(at)))
        return None if row is None else job_from_row(row)

    def expire_jobs(self, at: datetime, max_attempts: int, *, exhausted: dict[str, Any],
                    cancelled: dict[str, Any]) -> list[JobRecord]:
        stamp = format_ts(at)
        gone = self._all("UPDATE jobs SET state = 'cancelled', finished_at = ?, error = ? WHERE state = 'running'"
                         " AND lease_until < ? AND cancel_requested = 1 RETURNING *",
                         (stamp, canonical_json(cancelled), stamp))
        gone += self._all("UPDATE jobs SET state = 'failed', finished_at = ?, error = ? WHERE state = 'running'"
                          " AND lease_until < ? AND attempts >= ? RETURNING *",
                          (stamp, canonical_json(exhausted), stamp, max_attempts))
        return [job_from_row(r) for r in gone]

    def renew_job_lease(self, job_id: str, worker: str, attempt: int, at: datetime, until: datetime
                        ) -> bool | None:
        row = self._one("UPDATE jobs SET lease_until = ?, heartbeat_at = ? WHERE id = ? AND worker = ? AND"
                        " attempts = ? AND state = 'running' RETURNING cancel_requested",
                        (format_ts(until), format_ts(at), job_id, worker, attempt))
        return None if row is None else bool(row["cancel_requested"])

    def release_job(self, job_id: str, worker: str, attempt: int, *, error: dict[str, Any] | None = None,
                    count: bool = True) -> bool:
        row = self._one("UPDATE jobs SET state = 'queued', worker = NULL, lease_until = NULL, error = ?,"
                        " attempts = attempts - ? WHERE id = ? AND worker = ? AND attempts = ? AND state = 'running'"
                        " RETURNING id", (None if error is None else canonical_json(error), 0 if count else 1,
                                          job_id, worker, attempt))
        return row is not None

    def report_job_progress(self, job_id: str, done: int, total: int) -> bool:
        row = self._one("UPDATE jobs SET done = ?, total = ? WHERE id = ? RETURNING cancel_requested",
                          (done, total, job_id))
        return bool(row and row["cancel_requested"])

    def request_job_cancel(self, job_id: str) -> None:
        self._run("UPDATE jobs SET cancel_requested = 1 WHERE id = ?", (job_id,))

    def finish_job(self, job_id: str, state: JobState, at: datetime, *,
                   result: dict[str, Any] | None = None, error: dict[str, Any] | None = None,
                   worker: str | None = None, attempt: int | None = None) -> bool:
        held = "" if worker is None else " AND worker = ? AND attempts = ? AND state = 'running'"
        row = self._one(f"UPDATE jobs SET state = ?, finished_at = ?, result = ?, error = ?, lease_until = NULL"
                        f" WHERE id = ?{held} RETURNING id",
                        (state.value, format_ts(at), None if result is None else canonical_json(result),
                         None if error is None else canonical_json(error), job_id,
                         *(() if worker is None else (worker, attempt))))
        return row is not None

    def set_job_result(self, job_id: str, worker: str, attempt: int, result: dict[str, Any]) -> bool:
        row = self._one("UPDATE jobs SET result = ? WHERE id = ? AND worker = ? AND attempts = ? RETURNING id",
                        (canonical_json(result), job_id, worker, attempt))
        return row is not None
