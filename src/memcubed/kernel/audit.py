"""The tamper-evident audit log: append-only records, each hashing its predecessor's hash."""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

from memcubed.backends._common import canonical_json, format_ts
from memcubed.backends.base import StorageBackend
from memcubed.errors import IntegrityError
from memcubed.schemas.ops import AuditRecord, AuditReport

__all__ = ["GENESIS", "HEAD_KEY", "append", "record_hash", "verify"]

GENESIS = "0" * 64
HEAD_KEY = "audit_head"  # "seq:hash" of the newest record, kept so truncation of the tail is detected


def record_hash(record: AuditRecord) -> str:
    """sha256 of the previous hash followed by the canonical JSON of the record (without its hash)."""
    body = {
        "seq": record.seq,
        "at": format_ts(record.at),
        "principal": record.principal,
        "op": record.op,
        "cube_id": record.cube_id,
        "version": record.version,
        "details": record.details,
        "prev_hash": record.prev_hash,
    }
    return hashlib.sha256((record.prev_hash + canonical_json(body)).encode()).hexdigest()


def append(store: StorageBackend, *, at: datetime, principal: str, op: str, cube_id: str | None,
           version: int | None, details: dict[str, Any]) -> AuditRecord:
    """Chain a new record onto the log; call inside the operation's transaction."""
    head = store.audit_head()
    seq, prev = (head[0] + 1, head[1]) if head else (1, GENESIS)
    record = AuditRecord(seq=seq, at=at, principal=principal, op=op, cube_id=cube_id, version=version,
                         details=details, prev_hash=prev, hash="")
    record = record.model_copy(update={"hash": record_hash(record)})
    store.append_audit(record)
    store.set_meta(HEAD_KEY, f"{record.seq}:{record.hash}")
    return record


def verify(store: StorageBackend) -> AuditReport:
    """Walk the whole chain; report every edited, deleted, inserted or reordered record.

    A record too damaged to read (the backend raises ``IntegrityError``) is reported, not raised.
    """
    problems: list[str] = []
    first_bad: int | None = None
    prev, expected_seq, count = GENESIS, 1, 0

    def bad(seq: int, message: str) -> None:
        nonlocal first_bad
        problems.append(message)
        first_bad = seq if first_bad is None else min(first_bad, seq)

    last: AuditRecord | None = None
    try:
        for record in store.iter_audit():
            count += 1
            if record.seq != expected_seq:
                bad(record.seq, f"record {record.seq}: expected seq {expected_seq} (records missing or reordered)")
            if record.prev_hash != prev:
                bad(record.seq, f"record {record.seq}: prev_hash does not match the previous record")
            if record_hash(record) != record.hash:
                bad(record.seq, f"record {record.seq}: content does not match its hash (edited)")
            prev, expected_seq, last = record.hash, record.seq + 1, record
    except IntegrityError as exc:  # a record that no longer parses was edited; the walk cannot go on
        bad(int(exc.details.get("seq", expected_seq)), f"{exc.message} (edited); later records not checked")
    head = store.get_meta(HEAD_KEY)
    actual = f"{last.seq}:{last.hash}" if last else None
    if head != actual:
        bad(last.seq if last else 0, f"log head is {actual}, but the store recorded {head} (records removed)")
    return AuditReport(ok=not problems, records=count, problems=problems, first_bad_seq=first_bad)
