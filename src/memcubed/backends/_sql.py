"""What every SQL store does the same way: the queries both dialects share, and the migrations runner.

Queries here are written with ``?`` placeholders; a store whose driver wants another style rewrites
them in its ``_all``/``_run``/``_many``. Rows are read by column name, so any mapping row type works.
A backend subclasses ``SqlStore`` and adds what its dialect does differently: connections and
transactions, the full-text and vector indexes, and error translation.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any

from memcubed.backends._aliases import SqlAliases
from memcubed.backends._common import (
    CUBE_COLUMNS,
    audit_from_row,
    audit_values,
    cube_values,
    entry_from_row,
    event_from_row,
    event_values,
    format_ts,
    maybe_ts,
    principal_from_row,
    principal_values,
    snapshot_json,
    stats_from_row,
)
from memcubed.backends._cube_reads import SqlCubeReads
from memcubed.backends._decisions import SqlDecisions
from memcubed.backends._jobs import SqlKeysAndJobs
from memcubed.backends._staging import SqlVectorStaging
from memcubed.backends._statements import marks
from memcubed.backends.base import IndexEntry
from memcubed.cube.model import CubeStats, DerivedRef, MemCube
from memcubed.errors import AlreadyExists, ConfigurationError, NotFound
from memcubed.schemas.events import Event, LoggedEvent
from memcubed.schemas.ops import AuditRecord, HistoryEntry, PrincipalPublic

__all__ = ["SqlStore", "run_migrations"]

_DIGEST = re.compile(r"(?<![0-9a-f])[0-9a-f]{64}(?![0-9a-f])")

_AUDIT_COLUMNS = "seq, at, principal, op, cube_id, version, details, prev_hash, hash"
_NEWEST = 2**62  # a seq above every real one
_ROWS_PER_STATEMENT = 150  # multi-row statements stay under SQLite's oldest bound of 999 parameters


def run_migrations(migrations: Sequence[Sequence[str]], target: int, *, read_version: Callable[[], int],
                   locked: Callable[[], AbstractContextManager[None]], execute: Callable[[str], None],
                   write_version: Callable[[int], None]) -> int:
    """Bring a schema up to ``target``: one locked transaction per migration; return the version reached.

    Args:
        migrations: each migration's statements, oldest first; migration ``n`` is ``migrations[n - 1]``.
        read_version: the schema version recorded now (0 for an empty database).
        locked: a transaction that excludes every other migrating process.
        execute: runs one statement inside that transaction.
        write_version: records the new version inside that transaction.

    Raises:
        ConfigurationError: the database was written by a newer memcubed.
    """
    current = read_version()
    if current > len(migrations):
        raise ConfigurationError(
            f"store schema version {current} is newer than this memcubed supports ({len(migrations)})",
            schema_version=current,
        )
    while current < target:
        with locked():
            # Re-read inside the lock: another process may have migrated meanwhile.
            current = read_version()
            if current < target:
                for statement in migrations[current]:
                    execute(statement)
                write_version(current + 1)
                current += 1
    return current


class SqlStore(SqlCubeReads, SqlKeysAndJobs, SqlDecisions, SqlAliases, SqlVectorStaging):
    """The dialect-independent half of a SQL ``StorageBackend`` (see the module docstring)."""

    def warm(self, namespace: str) -> None:
        """No in-process indexes to load (a dialect that keeps some overrides this)."""

    def overlaps_searches(self, namespace: str) -> bool:
        """Yes: each query is a round trip to the server (a dialect ranking in process overrides this)."""
        return True

    # -- what a dialect provides ------------------------------------------------
    # ``_all``, ``_run`` and ``_many``, see SqlStatements; and:
    def _index(self, seq: int, cube: MemCube, index: IndexEntry) -> None:
        """Write the full-text and vector index entries of a cube."""
        raise NotImplementedError

    def _unindex(self, seq: int) -> None:
        """Remove every index entry of a cube."""
        raise NotImplementedError

    # -- meta -------------------------------------------------------------------
    def get_meta(self, key: str) -> str | None:
        row = self._one("SELECT value FROM meta WHERE key = ?", (key,))
        return None if row is None else str(row["value"])

    def set_meta(self, key: str, value: str) -> None:
        self._run("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                  (key, value))

    def list_meta(self) -> dict[str, str]:
        """Return every store-level setting."""
        return {r["key"]: r["value"] for r in self._all("SELECT key, value FROM meta ORDER BY key")}

    # -- principals -------------------------------------------------------------
    def get_principal(self, name: str) -> PrincipalPublic | None:
        row = self._one("SELECT * FROM principals WHERE name = ?", (name,))
        return None if row is None else principal_from_row(row)

    def insert_principal(self, principal: PrincipalPublic) -> None:
        if self.get_principal(principal.name) is not None:
            raise AlreadyExists(f"principal {principal.name!r} already exists", principal=principal.name)
        self._run("INSERT INTO principals (name, kind, is_admin, created_at, disabled, deleted_at, trust)"
                  " VALUES (?, ?, ?, ?, ?, ?, ?)", principal_values(principal))

    def update_principal(self, principal: PrincipalPublic) -> None:
        name, _, is_admin, _, disabled, deleted_at, trust = principal_values(principal)
        self._run("UPDATE principals SET is_admin = ?, disabled = ?, deleted_at = ?, trust = ? WHERE name = ?",
                  (is_admin, disabled, deleted_at, trust, name))

    def list_principals(self) -> list[PrincipalPublic]:
        return [principal_from_row(r) for r in self._all("SELECT * FROM principals ORDER BY name")]

    # -- cubes ------------------------------------------------------------------
    def iter_cube_ids(self) -> Iterator[str]:
        """Yield the id of every cube ever stored (deleted and forgotten ones too), oldest first."""
        after = 0
        while True:
            rows = self._all("SELECT seq, id FROM cubes WHERE seq > ? ORDER BY seq LIMIT 1000", (after,))
            if not rows:
                return
            yield from (r["id"] for r in rows)
            after = rows[-1]["seq"]

    def insert_cube(self, cube: MemCube, index: IndexEntry) -> None:
        if self._seq(cube.id) is not None:
            raise AlreadyExists(f"cube {cube.id} already exists", id=cube.id)
        stats = cube.stats
        columns = (*CUBE_COLUMNS, "access_count", "last_access", "hotness")
        row = self._one(
            f"INSERT INTO cubes ({', '.join(columns)}) VALUES ({marks(columns)}) RETURNING seq",
            (*cube_values(cube), stats.access_count, maybe_ts(stats.last_access), stats.hotness),
        )
        seq = int(row["seq"])
        if index.vector is not None:
            self._check_space()
        self._write_acl_and_tags(seq, cube)
        self._many("INSERT INTO cube_derivations (cube_seq, source_id, source_version) VALUES (?, ?, ?)",
                   [(seq, ref.id, ref.version) for ref in cube.derived_from])
        self._index(seq, cube, index)
        self._index_aliases(seq, cube)

    def replace_cube(self, cube: MemCube, *, reindex: IndexEntry | None = None) -> None:
        seq = self._seq(cube.id)
        if seq is None:
            raise NotFound(f"cube {cube.id} not found", id=cube.id)
        self._run(f"UPDATE cubes SET {', '.join(f'{c} = ?' for c in CUBE_COLUMNS)} WHERE seq = ?",
                  (*cube_values(cube), seq))
        self._run("DELETE FROM acl WHERE cube_seq = ?", (seq,))
        self._run("DELETE FROM cube_tags WHERE cube_seq = ?", (seq,))
        self._write_acl_and_tags(seq, cube)
        if reindex is not None:
            if reindex.vector is not None:
                self._check_space()
            self._unindex(seq)
            self._unindex_aliases(seq)
            self._index(seq, cube, reindex)
            self._index_aliases(seq, cube)

    def preceding(self, namespace: str, source_uri: str, *, before: str | None = None) -> MemCube | None:
        bound = self._seq(before) if before is not None else None
        row = self._one(
            "SELECT id FROM cubes WHERE namespace = ? AND source_uri = ? AND seq < ? AND state != 'deleted'"
            " ORDER BY seq DESC LIMIT 1",
            (namespace, source_uri, bound if bound is not None else _NEWEST),
        )
        return None if row is None else self.load_cube(row["id"])

    def following(self, namespace: str, source_uri: str, *, after: str) -> MemCube | None:
        bound = self._seq(after)
        row = self._one(
            "SELECT id FROM cubes WHERE namespace = ? AND source_uri = ? AND seq > ? AND state != 'deleted'"
            " ORDER BY seq LIMIT 1",
            (namespace, source_uri, bound if bound is not None else _NEWEST),
        )
        return None if row is None else self.load_cube(row["id"])

    def derived_from(self, source_id: str) -> list[str]:
        rows = self._all(
            "SELECT DISTINCT c.id FROM cube_derivations d JOIN cubes c ON c.seq = d.cube_seq"
            " WHERE d.source_id = ? ORDER BY c.id", (source_id,))
        return [r["id"] for r in rows]

    def add_derivations(self, cube_id: str, refs: Sequence[DerivedRef]) -> None:
        seq = self._seq(cube_id)
        if seq is None:
            raise NotFound(f"cube {cube_id} not found", id=cube_id)
        known = {(r["source_id"], int(r["source_version"])) for r in self._all(
            "SELECT source_id, source_version FROM cube_derivations WHERE cube_seq = ?", (seq,))}
        self._many("INSERT INTO cube_derivations (cube_seq, source_id, source_version) VALUES (?, ?, ?)",
                   [(seq, ref.id, ref.version) for ref in dict.fromkeys(refs) if (ref.id, ref.version) not in known])

    def owner_usage(self, owner: str, *, chars: bool = True) -> tuple[int, int]:
        size = "COALESCE(SUM(LENGTH(COALESCE(text, '')) + LENGTH(doc)), 0)" if chars else "0"
        row = self._one(f"SELECT COUNT(*) AS n, {size} AS chars FROM cubes WHERE owner = ? AND state != 'deleted'",
                        (owner,))
        return (int(row["n"]), int(row["chars"])) if row is not None else (0, 0)

    def blob_referenced(self, digest: str) -> bool:
        # Digests are 64 hex characters: a substring match on the JSON document cannot be a false hit.
        row = self._one("SELECT 1 AS hit FROM cubes WHERE forgotten = 0 AND doc LIKE ? LIMIT 1", (f"%{digest}%",))
        return row is not None

    def referenced_digests(self) -> set[str]:
        # The same rule as blob_referenced: any digest-shaped run in a live document (a user's meta can only
        # add false references, which keep a blob, never lose one).
        rows = self._all("SELECT doc FROM cubes WHERE forgotten = 0")
        return {d for r in rows for d in _DIGEST.findall(r["doc"])}

    def deleted_cube_ids(self, before: datetime) -> list[str]:
        # A deleted cube is never changed again but by undelete or forget: updated_at is when it was deleted.
        rows = self._all("SELECT id FROM cubes WHERE state = 'deleted' AND forgotten = 0 AND updated_at < ?"
                         " ORDER BY id", [format_ts(before)])
        return [str(r["id"]) for r in rows]

    def insert_version(self, entry: HistoryEntry) -> None:
        self.insert_versions([entry])

    def insert_versions(self, entries: Sequence[HistoryEntry]) -> None:
        keys = [(e.cube.id, e.version) for e in entries]
        repeated = next((key for key, n in Counter(keys).items() if n > 1), None)
        ids = sorted({cube_id for cube_id, _ in keys})
        versions = sorted({version for _, version in keys})  # by version too: not every version of a hot cube
        for some in _chunks([(v,) for v in versions], _ROWS_PER_STATEMENT):
            for chunk in _chunks([(cube_id,) for cube_id in ids], 5 * _ROWS_PER_STATEMENT):
                rows = self._all(f"SELECT cube_id, version FROM cube_versions WHERE cube_id IN ({marks(chunk)})"
                                 f" AND version IN ({marks(some)})", [*(i for (i,) in chunk), *(v for (v,) in some)])
                stored = {(r["cube_id"], int(r["version"])) for r in rows}
                repeated = repeated or next((key for key in keys if key in stored), None)
        if repeated is not None:
            raise AlreadyExists(f"version {repeated[1]} of {repeated[0]} exists", id=repeated[0])
        self._many(
            "INSERT INTO cube_versions (cube_id, version, op, actor, at, text, snapshot) VALUES (?, ?, ?, ?, ?, ?, ?)",
            [(e.cube.id, e.version, e.op, e.actor, format_ts(e.at), e.cube.text, snapshot_json(e.cube))
             for e in entries],
        )

    def load_version(self, cube_id: str, version: int) -> HistoryEntry | None:
        row = self._one("SELECT * FROM cube_versions WHERE cube_id = ? AND version = ?", (cube_id, version))
        return None if row is None else entry_from_row(dict(row))

    def load_version_as_of(self, cube_id: str, at: datetime) -> HistoryEntry | None:
        row = self._one("SELECT * FROM cube_versions WHERE cube_id = ? AND at <= ? ORDER BY version DESC LIMIT 1",
                        (cube_id, format_ts(at)))
        return None if row is None else entry_from_row(dict(row))

    def list_versions(self, cube_id: str, *, limit: int, offset: int) -> list[HistoryEntry]:
        rows = self._all("SELECT * FROM cube_versions WHERE cube_id = ? ORDER BY version LIMIT ? OFFSET ?",
                         (cube_id, limit, offset))
        return [entry_from_row(dict(r)) for r in rows]

    def purge_payloads(self, cube_id: str) -> None:
        seq = self._seq(cube_id)
        if seq is None:
            raise NotFound(f"cube {cube_id} not found", id=cube_id)
        self._unindex(seq)
        self._unindex_aliases(seq)
        self._run("UPDATE cubes SET text = NULL WHERE seq = ?", (seq,))
        self._run("UPDATE cube_versions SET text = NULL WHERE cube_id = ?", (cube_id,))

    def record_access(self, stats: dict[str, CubeStats]) -> None:
        # One statement per chunk, not one per cube: folding the event log writes hundreds at a time.
        rows = [(cube_id, s.access_count, maybe_ts(s.last_access), s.hotness) for cube_id, s in stats.items()]
        for chunk in _chunks(rows, _ROWS_PER_STATEMENT):
            values = ", ".join(["(?, CAST(? AS INTEGER), ?, CAST(? AS DOUBLE PRECISION))"] * len(chunk))
            self._run(f"UPDATE cubes SET access_count = v.column2, last_access = v.column3, hotness = v.column4"
                      f" FROM (VALUES {values}) AS v WHERE cubes.id = v.column1", [x for row in chunk for x in row])

    def load_stats(self, cube_ids: Sequence[str]) -> dict[str, CubeStats]:
        found: dict[str, CubeStats] = {}
        for chunk in _chunks([(cube_id,) for cube_id in cube_ids], 6 * _ROWS_PER_STATEMENT):
            rows = self._all(f"SELECT id, access_count, last_access, hotness FROM cubes WHERE id IN ({marks(chunk)})",
                             [cube_id for (cube_id,) in chunk])
            found.update((r["id"], stats_from_row(r)) for r in rows)
        return found

    # -- audit ------------------------------------------------------------------
    def audit_head(self) -> tuple[int, str] | None:
        row = self._one("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1")
        return None if row is None else (int(row["seq"]), str(row["hash"]))

    def append_audit(self, record: AuditRecord) -> None:
        self.append_audits([record])

    def append_audits(self, records: Sequence[AuditRecord]) -> None:
        self._many(f"INSERT INTO audit ({_AUDIT_COLUMNS}) VALUES ({marks(_AUDIT_COLUMNS.split(','))})",
                   [audit_values(record) for record in records])

    def iter_audit(self, *, cube_id: str | None = None, after_seq: int = 0) -> Iterator[AuditRecord]:
        where, params = "seq > ?", list[Any]([after_seq])
        if cube_id is not None:
            where, params = "seq > ? AND cube_id = ?", [after_seq, cube_id]
        while True:
            # In pages: a long log is never held in memory at once.
            rows = self._all(f"SELECT * FROM audit WHERE {where} ORDER BY seq LIMIT 1000", params)
            for row in rows:
                yield audit_from_row(row)
            if len(rows) < 1000:
                return
            params[0] = rows[-1]["seq"]

    # -- event log --------------------------------------------------------------
    def append_events(self, events: Sequence[Event]) -> int | None:
        last: int | None = None
        for chunk in _chunks([event_values(e) for e in events], _ROWS_PER_STATEMENT):
            rows = self._all("INSERT INTO events (at, kind, principal, cube_id, version, details) VALUES"
                             f" {', '.join(['(?, ?, ?, ?, ?, ?)'] * len(chunk))} RETURNING seq",
                             [x for row in chunk for x in row])
            last = max(int(r["seq"]) for r in rows)
        return last

    def read_events(self, *, after_seq: int = 0, limit: int = 1000, kinds: Sequence[str] | None = None
                    ) -> list[LoggedEvent]:
        where, params = "seq > ?", list[Any]([after_seq])
        if kinds is not None:
            if not kinds:
                return []
            where += f" AND kind IN ({marks(kinds)})"
            params += list(kinds)
        rows = self._all(f"SELECT * FROM events WHERE {where} ORDER BY seq LIMIT ?", [*params, limit])
        return [event_from_row(r) for r in rows]

    def trim_events(self, *, through_seq: int, before: datetime) -> int:
        rows = self._all("DELETE FROM events WHERE seq <= ? AND at < ? RETURNING seq", (through_seq, format_ts(before)))
        return len(rows)

    # -- helpers ----------------------------------------------------------------
    def _seq(self, cube_id: str) -> int | None:
        row = self._one("SELECT seq FROM cubes WHERE id = ?", (cube_id,))
        return None if row is None else int(row["seq"])

    def _write_acl_and_tags(self, seq: int, cube: MemCube) -> None:
        self._many('INSERT INTO acl (cube_seq, principal, "right", accepted) VALUES (?, ?, ?, ?)',
                   [(seq, g.principal, int(g.right), int(g.accepted)) for g in cube.acl])
        self._many("INSERT INTO cube_tags (cube_seq, tag) VALUES (?, ?)", [(seq, t) for t in cube.tags])


def _chunks(rows: list[tuple[Any, ...]], size: int) -> Iterator[list[tuple[Any, ...]]]:
    for start in range(0, len(rows), size):
        yield rows[start : start + size]

