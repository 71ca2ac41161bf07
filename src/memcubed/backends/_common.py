"""Serialization and SQL building shared by every SQL backend (no driver code here)."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from memcubed.backends.base import SearchScope
from memcubed.cube.model import CubeStats, MemCube
from memcubed.errors import IntegrityError, ValidationError
from memcubed.schemas.events import Event, LoggedEvent
from memcubed.schemas.jobs import JobRecord
from memcubed.schemas.ops import AuditRecord, HistoryEntry, PrincipalPublic
from memcubed.schemas.server import ApiKeyRecord

__all__ = [
    "CUBE_COLUMNS",
    "JOB_COLUMNS",
    "audit_from_row",
    "audit_values",
    "best_per_cube",
    "canonical_json",
    "cube_doc",
    "cube_values",
    "entry_from_row",
    "event_from_row",
    "event_values",
    "format_ts",
    "job_from_row",
    "job_values",
    "key_from_row",
    "maybe_ts",
    "parse_ts",
    "parse_ts_strict",
    "principal_from_row",
    "principal_values",
    "scope_clause",
    "snapshot_json",
    "stats_from_row",
]

CUBE_COLUMNS = ("id", "kind", "namespace", "owner", "state", "version", "created_at", "updated_at", "occurred_at",
                "importance", "model", "text", "forgotten", "source_uri", "doc", "valid_from", "valid_to")
"""The ``cubes`` columns written from a MemCube (besides the access statistics), in ``cube_values`` order."""

_TS_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"
# Exactly what format_ts writes (ASCII digits, fixed width, trailing Z): datetime.fromisoformat reads it ~10x
# faster than strptime, but it also takes offsets, other widths and separators, so only this shape goes to it.
_STAMP = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]\.[0-9]{6}Z")


def format_ts(value: datetime) -> str:
    """Return a fixed-width UTC timestamp string that sorts like the time it names."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    try:
        utc = value.astimezone(UTC)
    except OverflowError:  # year 1 east of UTC, year 9999 west of it: no UTC instant to store
        raise ValidationError(f"time {value.isoformat()} is out of range in UTC", value=value.isoformat()) from None
    # strftime writes years below 1000 unpadded on some platforms: pad them, so every stamp has one width.
    return f"{utc.year:04d}" + utc.strftime(_TS_FORMAT[2:])


def parse_ts(value: str) -> datetime:
    """Inverse of :func:`format_ts`: the same value and the same ``ValueError`` as :func:`parse_ts_strict`."""
    if isinstance(value, str) and _STAMP.fullmatch(value):
        try:
            return datetime.fromisoformat(value)
        except ValueError:  # an impossible date (month 13, 31 April): the strict parser says so, in its words
            pass
    return parse_ts_strict(value)


def parse_ts_strict(value: str) -> datetime:
    """:func:`parse_ts` by ``strptime`` on the stored format alone (the reference the fast path must agree with)."""
    return datetime.strptime(value, _TS_FORMAT).replace(tzinfo=UTC)


def maybe_ts(value: datetime | None) -> str | None:
    """:func:`format_ts` that passes None through."""
    return None if value is None else format_ts(value)


def canonical_json(value: Any) -> str:
    """Deterministic JSON: sorted keys, no whitespace, UTF-8 kept as is."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def cube_doc(cube: MemCube) -> str:
    """The JSON column holding a cube's structured fields that are not queried by SQL."""
    return canonical_json(
        cube.model_dump(mode="json", include={"source", "derived_from", "tags", "payload", "segments", "acl_version",
                                              "meta"})
    )


def snapshot_json(cube: MemCube) -> str:
    """A version snapshot: every field but the payload text (kept apart so forget can purge it) and stats."""
    return canonical_json(cube.model_dump(mode="json", exclude={"text", "stats"}))


def stats_from_row(row: Any) -> CubeStats:
    """The access statistics columns of a ``cubes`` row."""
    return CubeStats(access_count=row["access_count"], hotness=row["hotness"],
                     last_access=parse_ts(row["last_access"]) if row["last_access"] else None)


def cube_values(cube: MemCube) -> tuple[Any, ...]:
    """The values of ``CUBE_COLUMNS`` for ``cube``."""
    return (cube.id, cube.kind.value, cube.namespace, cube.owner, cube.state.value, cube.version,
            format_ts(cube.created_at), format_ts(cube.updated_at), maybe_ts(cube.source.occurred_at),
            cube.importance, cube.model, cube.text, int(cube.forgotten), cube.source.uri, cube_doc(cube),
            maybe_ts(cube.valid_from), maybe_ts(cube.valid_to))


def principal_values(principal: PrincipalPublic) -> tuple[Any, ...]:
    """Values of the ``principals`` columns (name, kind, is_admin, created_at, disabled, deleted_at, trust)."""
    return (principal.name, principal.kind, int(principal.is_admin), format_ts(principal.created_at),
            int(principal.disabled), None if principal.deleted_at is None else format_ts(principal.deleted_at),
            principal.trust)


def principal_from_row(row: Any) -> PrincipalPublic:
    """Build a principal from a ``principals`` row."""
    return PrincipalPublic(name=row["name"], kind=row["kind"], is_admin=bool(row["is_admin"]),
                           created_at=parse_ts(row["created_at"]), disabled=bool(row["disabled"]),
                           deleted_at=None if row["deleted_at"] is None else parse_ts(row["deleted_at"]),
                           trust=row["trust"])


def audit_values(record: AuditRecord) -> tuple[Any, ...]:
    """Values of the ``audit`` columns (seq, at, principal, op, cube_id, version, details, prev_hash, hash)."""
    return (record.seq, format_ts(record.at), record.principal, record.op, record.cube_id, record.version,
            canonical_json(record.details), record.prev_hash, record.hash)


def audit_from_row(row: Any) -> AuditRecord:
    """Build an audit record from an ``audit`` row.

    Raises:
        IntegrityError: the row does not parse (it was written by something other than memcubed).
    """
    try:
        return AuditRecord(seq=row["seq"], at=parse_ts(row["at"]), principal=row["principal"], op=row["op"],
                           cube_id=row["cube_id"], version=row["version"], details=json.loads(row["details"]),
                           prev_hash=row["prev_hash"], hash=row["hash"])
    except ValueError as exc:  # a bad timestamp, JSON or type: the row was written by something else
        raise IntegrityError(f"audit record {row['seq']} is unreadable: {exc}", seq=row["seq"]) from exc


def entry_from_row(row: dict[str, Any]) -> HistoryEntry:
    """Build a HistoryEntry from a ``cube_versions`` row."""
    cube = MemCube.model_validate({**json.loads(row["snapshot"]), "text": row["text"]})
    return HistoryEntry(version=row["version"], op=row["op"], actor=row["actor"], at=parse_ts(row["at"]), cube=cube)


def event_values(event: Event) -> tuple[Any, ...]:
    """Values of the ``events`` columns after ``seq`` (at, kind, principal, cube_id, version, details)."""
    return (format_ts(event.at), event.kind, event.principal, event.cube_id, event.version,
            canonical_json(event.details))


def event_from_row(row: Any) -> LoggedEvent:
    """Build a logged event from an ``events`` row."""
    return LoggedEvent(seq=int(row["seq"]), event=Event(
        kind=row["kind"], principal=row["principal"], at=parse_ts(row["at"]), cube_id=row["cube_id"],
        version=row["version"], details=json.loads(row["details"])))


def scope_clause(scope: SearchScope, ph: str = "?") -> tuple[str, list[Any]]:
    """SQL condition on alias ``c`` (cubes) that enforces rights and filters of ``scope``.

    ``ph`` is the driver's placeholder. Rights are part of the query so a
    principal's results never include a cube it cannot read.
    """
    f = scope.filters
    parts = [f"c.namespace = {ph}"]
    params: list[Any] = [scope.namespace]
    if not scope.is_admin:
        parts.append(
            f"(c.owner = {ph} OR EXISTS (SELECT 1 FROM acl a WHERE a.cube_seq = c.seq AND a.principal = {ph}))"
        )
        params += [scope.principal, scope.principal]
    if f.states:
        parts.append(f"c.state IN ({', '.join([ph] * len(f.states))})")
        params += [s.value for s in f.states]
    if f.kinds:
        parts.append(f"c.kind IN ({', '.join([ph] * len(f.kinds))})")
        params += [k.value for k in f.kinds]
    if f.owner is not None:
        parts.append(f"c.owner = {ph}")
        params.append(f.owner)
    for tag in f.tags or []:
        parts.append(f"EXISTS (SELECT 1 FROM cube_tags t WHERE t.cube_seq = c.seq AND t.tag = {ph})")
        params.append(tag)
    for column, op, value in (
        ("c.created_at", ">=", f.created_after),
        ("c.created_at", "<", f.created_before),
        ("c.occurred_at", ">=", f.occurred_after),
        ("c.occurred_at", "<", f.occurred_before),
    ):
        if value is not None:
            parts.append(f"{column} {op} {ph}")
            params.append(format_ts(value))
    _temporal(f, ph, parts, params)
    return " AND ".join(parts), params


def _temporal(f: Any, ph: str, parts: list[str], params: list[Any]) -> None:
    """Bi-temporal filters: ``as_known_at`` (record time: stored by then) and ``true_at`` (event time: it
    held then). Under ``as_known_at`` the kernel checks ``valid_to`` on the version known then: a fact
    contradicted later was still open at that record time."""
    if f.as_known_at is not None:
        parts.append(f"c.created_at <= {ph}")
        params.append(format_ts(f.as_known_at))
    if f.true_at is not None:
        at = format_ts(f.true_at)
        began = "COALESCE(c.valid_from, c.occurred_at)"
        parts.append(f"({began} IS NULL OR {began} <= {ph})")
        params.append(at)
        if f.as_known_at is None:
            parts.append(f"(c.valid_to IS NULL OR c.valid_to > {ph})")
            params.append(at)


JOB_COLUMNS = ("id", "kind", "principal", "params", "state", "done", "total", "cancel_requested", "result",
               "error", "worker", "created_at", "started_at", "finished_at", "attempts", "lease_until",
               "heartbeat_at")
"""The ``jobs`` columns written by :func:`job_values`, in order."""


def job_values(job: JobRecord) -> tuple[Any, ...]:
    """A job as the values of :data:`JOB_COLUMNS`."""
    def ts(value: datetime | None) -> str | None:
        return None if value is None else format_ts(value)

    return (job.id, job.kind, job.principal, canonical_json(job.params), job.state.value, job.done, job.total,
            int(job.cancel_requested), None if job.result is None else canonical_json(job.result),
            None if job.error is None else canonical_json(job.error), job.worker, format_ts(job.created_at),
            ts(job.started_at), ts(job.finished_at), job.attempts, ts(job.lease_until), ts(job.heartbeat_at))


def job_from_row(row: dict[str, Any]) -> JobRecord:
    """Build a JobRecord from a ``jobs`` row (a mapping of column to value)."""
    def ts(value: str | None) -> datetime | None:
        return None if value is None else parse_ts(value)

    return JobRecord(
        id=row["id"], kind=row["kind"], principal=row["principal"], params=json.loads(row["params"]),
        state=row["state"], done=row["done"], total=row["total"], cancel_requested=bool(row["cancel_requested"]),
        result=None if row["result"] is None else json.loads(row["result"]),
        error=None if row["error"] is None else json.loads(row["error"]), worker=row["worker"],
        created_at=parse_ts(row["created_at"]), started_at=ts(row["started_at"]),
        finished_at=ts(row["finished_at"]), attempts=row["attempts"], lease_until=ts(row["lease_until"]),
        heartbeat_at=ts(row["heartbeat_at"]),
    )


def key_from_row(row: dict[str, Any]) -> ApiKeyRecord:
    """Build an ApiKeyRecord from an ``api_keys`` row."""
    return ApiKeyRecord(key_id=row["key_id"], principal=row["principal"], secret_hash=row["secret_hash"],
                        label=row["label"], created_at=parse_ts(row["created_at"]),
                        revoked_at=None if row["revoked_at"] is None else parse_ts(row["revoked_at"]),
                        expires_at=None if row["expires_at"] is None else parse_ts(row["expires_at"]),
                        scope=row["scope"])


def best_per_cube(scored: Sequence[tuple[str, float]], limit: int) -> list[tuple[str, float]]:
    """Each cube once with its best score (a long memory has a vector per window), best first, at most ``limit``."""
    best: dict[str, float] = {}
    for cube_id, score in scored:
        if score > best.get(cube_id, -math.inf):
            best[cube_id] = score
    return sorted(best.items(), key=lambda item: -item[1])[:limit]
