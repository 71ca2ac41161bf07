"""The tamper-evident audit log: append-only records, each hashing its predecessor's hash.

Hashes are HMAC-SHA256 under the store's audit key (``kernel.seal``), so rewriting a record means
recomputing keyed hashes, which someone with only database access cannot do; the signed head file
outside the store catches a truncated tail; and every cube-changing record carries a hash of the
cube as written (``details["content"]``), so a row edited in ``cubes`` or ``cube_versions`` no
longer matches its last audited state.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple

from memcubed.backends._common import canonical_json, format_ts
from memcubed.backends.base import StorageBackend
from memcubed.cube.model import MemCube
from memcubed.errors import IntegrityError
from memcubed.kernel.seal import KEYED_FROM, AuditSeal
from memcubed.schemas.ops import AuditRecord, AuditReport

__all__ = ["CONTENT", "GENESIS", "HEAD_KEY", "UNKEYED", "Entry", "acl_hash", "append", "append_many",
           "content_hash", "record_hash", "verify"]

GENESIS = "0" * 64
HEAD_KEY = "audit_head"  # "seq:hash" of the newest record, kept so truncation of the tail is detected
CONTENT = "content"  # details key: hashes of the cube version a record wrote (``content_hash``)
UNKEYED = AuditSeal(None)
"""The seal of a chain without a key (plain SHA-256), as stores made before the seal have."""


def record_hash(record: AuditRecord, seal: AuditSeal = UNKEYED, *, keyed: bool = True) -> str:
    """The record's hash: HMAC-SHA256 (plain SHA-256 without a key) of the previous hash followed by
    the canonical JSON of the record without its hash."""
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
    return seal.digest(record.prev_hash + canonical_json(body), keyed=keyed)


def content_hash(cube: MemCube, seal: AuditSeal = UNKEYED, *, keyed: bool = True) -> dict[str, str | None]:
    """Hashes of one cube version as written: its row (everything but access statistics, text and
    grants), its text apart (``forget`` legitimately erases the text of every version) and its grants
    apart (a share changes them without a new content version: ``acl_hash``).

    They are keyed like the chain, so the log of a forgotten short text does not let anyone confirm
    a guess at it."""
    row = cube.model_dump(mode="json", exclude={"stats", "text", "acl", "acl_version"})
    row["tags"] = sorted(row["tags"])  # stored as a set
    for name in ("valid_from", "valid_to"):  # versions written before these fields existed hash without them
        if row.get(name) is None:
            row.pop(name, None)
    text = None if cube.text is None else seal.digest("text|" + cube.text, keyed=keyed)
    return {"row": seal.digest("row|" + canonical_json(row), keyed=keyed), "text": text,
            **acl_hash(cube, seal, keyed=keyed)}


def acl_hash(cube: MemCube, seal: AuditSeal = UNKEYED, *, keyed: bool = True) -> dict[str, str | None]:
    """The hash of a cube's grants as written (``details["content"]`` of a share or revoke record)."""
    grants = sorted((g.model_dump(mode="json") for g in cube.acl), key=canonical_json)
    return {"acl": seal.digest("acl|" + canonical_json([cube.acl_version, grants]), keyed=keyed)}


def append(store: StorageBackend, *, at: datetime, principal: str, op: str, cube_id: str | None,
           version: int | None, details: dict[str, Any], seal: AuditSeal = UNKEYED) -> AuditRecord:
    """Chain a new record onto the log; call inside the operation's transaction."""
    return append_many(store, [Entry(at, principal, op, cube_id, version, details)], seal)[0]


class Entry(NamedTuple):
    """What one audit record says, before it is chained (``append_many``)."""

    at: datetime
    principal: str
    op: str
    cube_id: str | None
    version: int | None
    details: dict[str, Any]


def append_many(store: StorageBackend, entries: Sequence[Entry], seal: AuditSeal = UNKEYED) -> list[AuditRecord]:
    """Chain records onto the log in the order given, each hashing the one before, with one read of the head
    and one write of it (a batch of adds writes hundreds); call inside the operation's transaction."""
    if not entries:
        return []
    head = store.audit_head()
    seq, prev = (head[0] + 1, head[1]) if head else (1, GENESIS)
    keyed_from = _keyed_from(store)
    records: list[AuditRecord] = []
    for entry in entries:
        record = AuditRecord(seq=seq, at=entry.at, principal=entry.principal, op=entry.op, cube_id=entry.cube_id,
                             version=entry.version, details=entry.details, prev_hash=prev, hash="")
        record = record.model_copy(update={"hash": record_hash(record, seal, keyed=seq >= keyed_from)})
        records.append(record)
        seq, prev = seq + 1, record.hash
    store.append_audits(records)
    store.set_meta(HEAD_KEY, f"{records[-1].seq}:{records[-1].hash}")
    return records


def _keyed_from(store: StorageBackend) -> float:
    value = store.get_meta(KEYED_FROM)
    return float("inf") if value is None else int(value)


def verify(store: StorageBackend, seal: AuditSeal = UNKEYED) -> AuditReport:
    """Walk the whole chain; report every edited, deleted, inserted or reordered record, a tail cut
    below the signed head, and every cube whose stored rows differ from what its records say was written.

    A record too damaged to read (the backend raises ``IntegrityError``) is reported, not raised.
    """
    problems: list[str] = []
    notes: list[str] = []
    first_bad: int | None = None
    prev, expected_seq, count = GENESIS, 1, 0
    keyed_from = _keyed_from(store)

    def bad(seq: int, message: str) -> None:
        nonlocal first_bad
        problems.append(message)
        first_bad = seq if first_bad is None else min(first_bad, seq)

    last: AuditRecord | None = None
    hashes: dict[int, str] = {}
    written: dict[str, list[AuditRecord]] = {}  # cube id -> its records that carry a content hash
    try:
        for record in store.iter_audit():
            count += 1
            if record.seq != expected_seq:
                bad(record.seq, f"record {record.seq}: expected seq {expected_seq} (records missing or reordered)")
            if record.prev_hash != prev:
                bad(record.seq, f"record {record.seq}: prev_hash does not match the previous record")
            if record_hash(record, seal, keyed=record.seq >= keyed_from) != record.hash:
                bad(record.seq, f"record {record.seq}: content does not match its hash (edited)")
            if record.cube_id is not None and isinstance(record.details.get(CONTENT), dict):
                written.setdefault(record.cube_id, []).append(record)
            hashes[record.seq] = record.hash
            prev, expected_seq, last = record.hash, record.seq + 1, record
    except IntegrityError as exc:  # a record that no longer parses was edited; the walk cannot go on
        bad(int(exc.details.get("seq", expected_seq)), f"{exc.message} (edited); later records not checked")
    head = store.get_meta(HEAD_KEY)
    actual = f"{last.seq}:{last.hash}" if last else None
    if head != actual:
        bad(last.seq if last else 0, f"log head is {actual}, but the store recorded {head} (records removed)")
    _check_checkpoint(seal, hashes, keyed_from, bad)
    _check_cubes(store, seal, keyed_from, written, bad)
    if seal.key is None or keyed_from == float("inf"):
        notes.append("this chain has no key: plain SHA-256, so a rewrite that recomputes every hash is not detected")
    elif keyed_from > 1:
        notes.append(f"records 1..{int(keyed_from) - 1} predate the audit key (plain SHA-256 chain)")
    return AuditReport(ok=not problems, records=count, problems=problems, first_bad_seq=first_bad, notes=notes)


def _check_checkpoint(seal: AuditSeal, hashes: dict[int, str], keyed_from: float, bad: Any) -> None:
    """The signed head outside the store names a record that must still be in the log, unchanged."""
    if seal.key is None or seal.head_path is None or keyed_from == float("inf"):
        return
    try:
        checkpoint = seal.read_checkpoint()
    except IntegrityError as exc:
        bad(0, exc.message)
        return
    if checkpoint is None:
        bad(0, f"the signed audit head {seal.head_path} is missing")
        return
    seq, record_hash_, signed_from = checkpoint
    if signed_from != keyed_from:
        bad(0, f"the store says its chain is keyed from record {keyed_from}, the signed head says {signed_from}")
    if hashes.get(seq) != record_hash_:
        bad(min(seq, max(hashes, default=0) + 1),
            f"record {seq} named by the signed head is missing or changed (the log was cut or rewritten)")


def _check_cubes(store: StorageBackend, seal: AuditSeal, keyed_from: float, written: dict[str, list[AuditRecord]],
                 bad: Any) -> None:
    """Each audited version is stored as its record wrote it, and each cube's current row is its newest one."""
    for cube_id in store.iter_cube_ids():
        records = written.get(cube_id)
        cube = store.load_cube(cube_id)
        if not records or cube is None:
            continue  # a cube from before content hashes were recorded
        # ``forget`` erases the text of every version of the cube: a missing text is then expected.
        erased = cube.forgotten
        versions = [r for r in records if "row" in r.details[CONTENT]]  # share/revoke records hash grants only
        for record in versions:
            assert record.version is not None
            entry = store.load_version(cube_id, record.version)
            if entry is None:
                bad(record.seq, f"cube {cube_id} v{record.version}: the version record {record.seq} wrote is gone")
            elif not _matches(entry.cube, seal, record, erased=erased, keyed_from=keyed_from):
                bad(record.seq, f"cube {cube_id} v{record.version}: the stored version differs from what "
                                f"record {record.seq} wrote (edited outside memcubed)")
        newest = versions[-1] if versions else None
        if newest is not None and (cube.version != newest.version or
                                   not _matches(cube, seal, newest, erased=erased, keyed_from=keyed_from)):
            bad(newest.seq, f"cube {cube_id}: its current row differs from v{newest.version} as record "
                            f"{newest.seq} wrote it (edited outside memcubed)")
        grants = records[-1]
        if grants.details[CONTENT].get("acl") != acl_hash(cube, seal, keyed=grants.seq >= keyed_from)["acl"]:
            bad(grants.seq, f"cube {cube_id}: its grants differ from what record {grants.seq} wrote "
                            "(edited outside memcubed)")


def _matches(cube: MemCube, seal: AuditSeal, record: AuditRecord, *, erased: bool, keyed_from: float) -> bool:
    recorded = record.details[CONTENT]
    now = content_hash(cube, seal, keyed=record.seq >= keyed_from)
    return now["row"] == recorded.get("row") and (now["text"] == recorded.get("text") or
                                                  (erased and cube.text is None))
