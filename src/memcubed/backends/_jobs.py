"""API keys and background jobs: the StorageBackend methods every SQL store shares (a base of ``SqlStore``).

Statements use ``?`` placeholders and read rows by column name, like ``backends._sql``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from memcubed.backends._common import (
    JOB_COLUMNS,
    canonical_json,
    format_ts,
    job_from_row,
    job_values,
    key_from_row,
)
from memcubed.errors import AlreadyExists
from memcubed.schemas.jobs import JobRecord, JobState
from memcubed.schemas.server import ApiKeyRecord

__all__ = ["SqlKeysAndJobs"]


class SqlKeysAndJobs:
    """The API-key and job methods of the StorageBackend Protocol, in SQL both dialects run."""

    _CLAIM_LOCK = ""
    """Appended to the claim's row pick: PostgreSQL adds ``FOR UPDATE SKIP LOCKED``."""

    def _all(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        raise NotImplementedError  # provided by the store

    def _run(self, sql: str, params: Sequence[Any] = ()) -> None:
        raise NotImplementedError  # provided by the store

    def _one(self, sql: str, params: Sequence[Any] = ()) -> Any:
        rows = self._all(sql, params)
        return rows[0] if rows else None

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

    def claim_job(self, worker: str, at: datetime, kinds: Sequence[str]) -> JobRecord | None:
        if not kinds:
            return None
        marks = ", ".join("?" * len(kinds))
        # One statement: SQLite's write lock, or PostgreSQL's row lock with SKIP LOCKED, makes the pick
        # and the update atomic across processes.
        row = self._one(
            "UPDATE jobs SET state = 'running', worker = ?, started_at = ? WHERE seq = ("
            f" SELECT seq FROM jobs WHERE state = 'queued' AND kind IN ({marks}) ORDER BY seq LIMIT 1"
            f"{self._CLAIM_LOCK}) RETURNING *", (worker, format_ts(at), *kinds))
        return None if row is None else job_from_row(row)

    def report_job_progress(self, job_id: str, done: int, total: int) -> bool:
        row = self._one("UPDATE jobs SET done = ?, total = ? WHERE id = ? RETURNING cancel_requested",
                          (done, total, job_id))
        return bool(row and row["cancel_requested"])

    def request_job_cancel(self, job_id: str) -> None:
        self._run("UPDATE jobs SET cancel_requested = 1 WHERE id = ?", (job_id,))

    def finish_job(self, job_id: str, state: JobState, at: datetime, *,
                   result: dict[str, Any] | None = None, error: dict[str, Any] | None = None) -> None:
        self._run("UPDATE jobs SET state = ?, finished_at = ?, result = ?, error = ? WHERE id = ?",
                   (state.value, format_ts(at), None if result is None else canonical_json(result),
                    None if error is None else canonical_json(error), job_id))
