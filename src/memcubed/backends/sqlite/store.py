"""The embedded store: one SQLite file in WAL mode (metadata, versions, ACL, audit, FTS5, sqlite-vec)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from memcubed.backends._common import (
    canonical_json,
    cube_doc,
    cube_from_row,
    entry_from_row,
    format_ts,
    parse_ts,
    scope_clause,
    snapshot_json,
)
from memcubed.backends.base import IndexEntry, SearchScope, Vector
from memcubed.backends.sqlite.driver import connect, sqlite_module
from memcubed.backends.sqlite.jobs import SqliteKeysAndJobs
from memcubed.backends.sqlite.schema import migrate, vector_tables
from memcubed.cube.model import CubeStats, MemCube
from memcubed.errors import (
    AlreadyExists,
    BackendUnavailable,
    IntegrityError,
    NotFound,
    StorageError,
    ValidationError,
)
from memcubed.schemas.ops import AuditRecord, HistoryEntry, PrincipalPublic

__all__ = ["SqliteStore"]

_CANDIDATES = 100  # binary-quantised candidates per vector query before exact rescoring (sqlite-vec top-k costs O(k))


class SqliteStore(SqliteKeysAndJobs):
    """A ``StorageBackend`` on one SQLite file; safe to share between threads and processes.

    Each thread gets its own connection; writers serialise through SQLite's
    write lock (``BEGIN IMMEDIATE`` with a busy timeout).
    """

    def __init__(self, path: str | Path, *, busy_timeout_ms: int = 30_000, exact_vectors_up_to: int = 2_000) -> None:
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._busy_timeout_ms = busy_timeout_ms
        # Namespaces this small are scored exactly: a full cosine scan costs no more than the candidates.
        self._exact_up_to = exact_vectors_up_to
        self._local = threading.local()
        self._all: list[Any] = []
        self._lock = threading.Lock()
        self._vectors = False
        try:
            with translate_errors():
                migrate(self._conn())
                self._vectors = self._has_table("cube_emb")
                if self._vectors:
                    self._load_vectors_everywhere()
        except BaseException:
            self.close()  # a refused file (newer schema, say) must not stay open behind the caller's back
            raise

    # -- connections and transactions ---------------------------------------
    def _conn(self) -> Any:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            with translate_errors():
                conn = connect(self.path, vectors=self._vectors, busy_timeout_ms=self._busy_timeout_ms)
            self._local.conn, self._local.depth = conn, 0
            with self._lock:
                self._all.append(conn)
        return conn

    def _load_vectors_everywhere(self) -> None:
        from memcubed.backends.sqlite.driver import load_vector_extension

        with self._lock:
            for conn in self._all:
                load_vector_extension(conn)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Open a write transaction; nested calls become savepoints, an exception rolls back."""
        conn = self._conn()
        depth = self._local.depth
        name = f"sp{depth}"
        with translate_errors():
            conn.execute("BEGIN IMMEDIATE" if depth == 0 else f"SAVEPOINT {name}")
        self._local.depth = depth + 1
        try:
            yield
        except BaseException:
            self._local.depth = depth
            with translate_errors():
                if depth == 0:
                    conn.execute("ROLLBACK")
                else:
                    conn.execute(f"ROLLBACK TO {name}")
                    conn.execute(f"RELEASE {name}")
            raise
        self._local.depth = depth
        with translate_errors():
            conn.execute("COMMIT" if depth == 0 else f"RELEASE {name}")

    def close(self) -> None:
        """Close every connection this store opened."""
        with self._lock:
            for conn in self._all:
                conn.close()
            self._all.clear()
        self._local = threading.local()

    def _exec(self, sql: str, params: Sequence[Any] = ()) -> Any:
        with translate_errors():
            return self._conn().execute(sql, params)

    def _has_table(self, name: str) -> bool:
        row = self._exec("SELECT 1 FROM sqlite_master WHERE name = ?", (name,)).fetchone()
        return row is not None

    # -- meta ---------------------------------------------------------------
    def get_meta(self, key: str) -> str | None:
        row = self._exec("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        self._exec("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = ?",
                   (key, value, value))

    def configure_vectors(self, dim: int) -> None:
        if not self._vectors:
            self._vectors = True
            self._load_vectors_everywhere()
        with self.transaction():
            for statement in vector_tables(dim):
                self._exec(statement)

    # -- principals ---------------------------------------------------------
    def get_principal(self, name: str) -> PrincipalPublic | None:
        row = self._exec("SELECT * FROM principals WHERE name = ?", (name,)).fetchone()
        return None if row is None else _principal(row)

    def insert_principal(self, principal: PrincipalPublic) -> None:
        if self.get_principal(principal.name) is not None:
            raise AlreadyExists(f"principal {principal.name!r} already exists", principal=principal.name)
        self._exec(
            "INSERT INTO principals (name, kind, is_admin, created_at, disabled) VALUES (?, ?, ?, ?, ?)",
            (principal.name, principal.kind, int(principal.is_admin), format_ts(principal.created_at),
             int(principal.disabled)),
        )

    def list_principals(self) -> list[PrincipalPublic]:
        return [_principal(r) for r in self._exec("SELECT * FROM principals ORDER BY name").fetchall()]

    # -- cubes --------------------------------------------------------------
    def load_cube(self, cube_id: str) -> MemCube | None:
        return self.load_cubes([cube_id]).get(cube_id)

    def load_cubes(self, cube_ids: Sequence[str]) -> dict[str, MemCube]:
        if not cube_ids:
            return {}
        marks = ", ".join("?" * len(cube_ids))
        rows = self._exec(f"SELECT * FROM cubes WHERE id IN ({marks})", list(cube_ids)).fetchall()
        grants: dict[int, list[dict[str, Any]]] = {}
        seqs = [r["seq"] for r in rows]
        if seqs:
            acl_sql = f'SELECT cube_seq, principal, "right" FROM acl WHERE cube_seq IN ({", ".join("?" * len(seqs))})'
            for g in self._exec(acl_sql, seqs).fetchall():
                grants.setdefault(g[0], []).append({"principal": g[1], "right": g[2]})
        return {r["id"]: cube_from_row(dict(r), sorted(grants.get(r["seq"], []), key=_by_principal)) for r in rows}

    def insert_cube(self, cube: MemCube, index: IndexEntry) -> None:
        if self._seq(cube.id) is not None:
            raise AlreadyExists(f"cube {cube.id} already exists", id=cube.id)
        cursor = self._exec(
            "INSERT INTO cubes (id, kind, namespace, owner, state, version, created_at, updated_at, occurred_at,"
            " importance, model, text, forgotten, source_uri, doc, access_count, last_access, hotness)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (*_row_values(cube), cube.stats.access_count,
             format_ts(cube.stats.last_access) if cube.stats.last_access else None, cube.stats.hotness),
        )
        seq = int(cursor.lastrowid)
        self._write_acl_and_tags(seq, cube)
        self._conn().executemany(
            "INSERT INTO cube_derivations (cube_seq, source_id, source_version) VALUES (?, ?, ?)",
            [(seq, ref.id, ref.version) for ref in cube.derived_from])
        self._index(seq, cube, index)

    def replace_cube(self, cube: MemCube, *, reindex: IndexEntry | None = None) -> None:
        seq = self._seq(cube.id)
        if seq is None:
            raise NotFound(f"cube {cube.id} not found", id=cube.id)
        self._exec(
            "UPDATE cubes SET id = ?, kind = ?, namespace = ?, owner = ?, state = ?, version = ?, created_at = ?,"
            " updated_at = ?, occurred_at = ?, importance = ?, model = ?, text = ?, forgotten = ?, source_uri = ?,"
            " doc = ? WHERE seq = ?",
            (*_row_values(cube), seq),
        )
        self._exec("DELETE FROM acl WHERE cube_seq = ?", (seq,))
        self._exec("DELETE FROM cube_tags WHERE cube_seq = ?", (seq,))
        self._write_acl_and_tags(seq, cube)
        if reindex is not None:
            self._unindex(seq)
            self._index(seq, cube, reindex)

    def preceding(self, namespace: str, source_uri: str, *, before: str | None = None) -> MemCube | None:
        bound = self._seq(before) if before is not None else None
        row = self._exec(
            "SELECT id FROM cubes WHERE namespace = ? AND source_uri = ? AND seq < ? AND state != 'deleted'"
            " ORDER BY seq DESC LIMIT 1",
            (namespace, source_uri, bound if bound is not None else 2**62),
        ).fetchone()
        return None if row is None else self.load_cube(row[0])

    def following(self, namespace: str, source_uri: str, *, after: str) -> MemCube | None:
        bound = self._seq(after)
        row = self._exec(
            "SELECT id FROM cubes WHERE namespace = ? AND source_uri = ? AND seq > ? AND state != 'deleted'"
            " ORDER BY seq LIMIT 1",
            (namespace, source_uri, bound if bound is not None else 2**62),
        ).fetchone()
        return None if row is None else self.load_cube(row[0])

    def derived_from(self, source_id: str) -> list[str]:
        rows = self._exec(
            "SELECT DISTINCT c.id FROM cube_derivations d JOIN cubes c ON c.seq = d.cube_seq"
            " WHERE d.source_id = ? ORDER BY c.id", (source_id,)).fetchall()
        return [r[0] for r in rows]

    def blob_referenced(self, digest: str) -> bool:
        # Digests are 64 hex characters: a substring match on the JSON document cannot be a false hit.
        row = self._exec("SELECT 1 FROM cubes WHERE forgotten = 0 AND instr(doc, ?) > 0 LIMIT 1", (digest,)).fetchone()
        return row is not None

    def set_context(self, cube_id: str, context: str) -> None:
        self._exec("UPDATE cube_fts SET context = ? WHERE rowid = (SELECT seq FROM cubes WHERE id = ?)",
                   (context, cube_id))

    def insert_version(self, entry: HistoryEntry) -> None:
        if self.load_version(entry.cube.id, entry.version) is not None:
            raise AlreadyExists(f"version {entry.version} of {entry.cube.id} exists", id=entry.cube.id)
        self._exec(
            "INSERT INTO cube_versions (cube_id, version, op, actor, at, text, snapshot) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (entry.cube.id, entry.version, entry.op, entry.actor, format_ts(entry.at), entry.cube.text,
             snapshot_json(entry.cube)),
        )

    def load_version(self, cube_id: str, version: int) -> HistoryEntry | None:
        row = self._exec("SELECT * FROM cube_versions WHERE cube_id = ? AND version = ?", (cube_id, version)).fetchone()
        return None if row is None else entry_from_row(dict(row))

    def load_version_as_of(self, cube_id: str, at: datetime) -> HistoryEntry | None:
        row = self._exec(
            "SELECT * FROM cube_versions WHERE cube_id = ? AND at <= ? ORDER BY version DESC LIMIT 1",
            (cube_id, format_ts(at)),
        ).fetchone()
        return None if row is None else entry_from_row(dict(row))

    def list_versions(self, cube_id: str, *, limit: int, offset: int) -> list[HistoryEntry]:
        rows = self._exec(
            "SELECT * FROM cube_versions WHERE cube_id = ? ORDER BY version LIMIT ? OFFSET ?", (cube_id, limit, offset)
        ).fetchall()
        return [entry_from_row(dict(r)) for r in rows]

    def purge_payloads(self, cube_id: str) -> None:
        seq = self._seq(cube_id)
        if seq is None:
            raise NotFound(f"cube {cube_id} not found", id=cube_id)
        self._unindex(seq)
        self._exec("UPDATE cubes SET text = NULL WHERE seq = ?", (seq,))
        self._exec("UPDATE cube_versions SET text = NULL WHERE cube_id = ?", (cube_id,))

    def record_access(self, stats: dict[str, CubeStats]) -> None:
        self._conn().executemany(
            "UPDATE cubes SET access_count = ?, last_access = ?, hotness = ? WHERE id = ?",
            [(s.access_count, format_ts(s.last_access) if s.last_access else None, s.hotness, cube_id)
             for cube_id, s in stats.items()],
        )

    # -- search -------------------------------------------------------------
    def lexical_search(self, match: str, scope: SearchScope, limit: int, *, context_weight: float
                       ) -> list[tuple[str, float]]:
        where, params = scope_clause(scope)
        rows = self._exec(
            # CROSS JOIN keeps the full-text index as the outer loop: the planner otherwise walks every
            # cube of the namespace and re-runs the MATCH per row (seconds per query at 100k cubes).
            "SELECT c.id, bm25(cube_fts, 1.0, ?) AS s FROM cube_fts CROSS JOIN cubes c ON c.seq = cube_fts.rowid"
            f" WHERE cube_fts MATCH ? AND {where} ORDER BY s, c.seq LIMIT ?",
            [float(context_weight), match, *params, limit],
        ).fetchall()
        return [(r[0], -float(r[1])) for r in rows]

    def term_counts(self, terms: Sequence[str]) -> tuple[int, dict[str, int]]:
        # Counting a term's doclist is cheap (no ranking): ~0.1 ms per term at 100k cubes.
        total = self._exec("SELECT max(seq) FROM cubes").fetchone()[0] or 0
        counts = {t: self._exec("SELECT count(*) FROM cube_fts WHERE cube_fts MATCH ?",
                                ('"' + t.replace('"', '""') + '"',)).fetchone()[0] for t in terms}
        return int(total), counts

    def vector_search(self, vector: Vector, scope: SearchScope, limit: int) -> list[tuple[str, float]]:
        if not self._vectors:
            return []
        blob = np.asarray(vector, dtype=np.float32).tobytes()
        where, params = scope_clause(scope)
        rescored = ("SELECT c.id, 1 - vec_distance_cosine(e.emb, ?) AS sim FROM {source} JOIN cube_emb e"
                    f" ON e.seq = c.seq WHERE {where} ORDER BY sim DESC, c.seq LIMIT ?")
        size = self._exec("SELECT count(*) FROM (SELECT 1 FROM cubes WHERE namespace = ? LIMIT ?)",
                          (scope.namespace, self._exact_up_to + 1)).fetchone()[0]
        if size <= self._exact_up_to:
            rows = self._exec(rescored.format(source="cubes c"), [blob, *params, limit]).fetchall()
            return [(r[0], float(r[1])) for r in rows]
        k = min(4096, max(_CANDIDATES, limit))
        # Candidates from the binary-quantised index, only among cubes the principal owns or was granted
        # (partition keys keep these scans small); then exact cosine over the candidates.
        knn = ("SELECT rowid FROM cube_vec"
               " WHERE embedding MATCH vec_quantize_binary(?) AND k = ? AND namespace = ?")
        queries: list[tuple[str, list[Any]]] = [(knn, [blob, k, scope.namespace])] if scope.is_admin else [
            (f"{knn} AND owner = ?", [blob, k, scope.namespace, scope.principal]),
            (f"{knn} AND rowid IN (SELECT cube_seq FROM acl WHERE principal = ?)",
             [blob, k, scope.namespace, scope.principal]),
        ]
        seqs = sorted({row[0] for sql, args in queries for row in self._exec(sql, args).fetchall()})
        # CROSS JOIN: drive the rescoring from the candidate list, never from a scan of the namespace.
        from_candidates = "json_each(?) AS j CROSS JOIN cubes c ON c.seq = j.value"
        rows = self._exec(rescored.format(source=from_candidates), [blob, json.dumps(seqs), *params, limit]).fetchall()
        if len(rows) < limit and len(seqs) >= k:
            # Filters removed candidates: score the filtered set exactly instead of returning too few.
            rows = self._exec(rescored.format(source="cubes c"), [blob, *params, limit]).fetchall()
        return [(r[0], float(r[1])) for r in rows]

    # -- audit --------------------------------------------------------------
    def audit_head(self) -> tuple[int, str] | None:
        row = self._exec("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
        return None if row is None else (int(row[0]), str(row[1]))

    def append_audit(self, record: AuditRecord) -> None:
        self._exec(
            "INSERT INTO audit (seq, at, principal, op, cube_id, version, details, prev_hash, hash)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (record.seq, format_ts(record.at), record.principal, record.op, record.cube_id, record.version,
             canonical_json(record.details), record.prev_hash, record.hash),
        )

    def iter_audit(self, *, cube_id: str | None = None, after_seq: int = 0) -> Iterator[AuditRecord]:
        sql = "SELECT * FROM audit WHERE seq > ?"
        params: list[Any] = [after_seq]
        if cube_id is not None:
            sql, params = sql + " AND cube_id = ?", [*params, cube_id]
        for row in self._exec(sql + " ORDER BY seq", params).fetchall():
            yield _audit(row)

    # -- helpers ------------------------------------------------------------
    def _seq(self, cube_id: str) -> int | None:
        row = self._exec("SELECT seq FROM cubes WHERE id = ?", (cube_id,)).fetchone()
        return None if row is None else int(row[0])

    def _write_acl_and_tags(self, seq: int, cube: MemCube) -> None:
        conn = self._conn()
        with translate_errors():
            conn.executemany('INSERT INTO acl (cube_seq, principal, "right") VALUES (?, ?, ?)',
                             [(seq, g.principal, int(g.right)) for g in cube.acl])
            conn.executemany("INSERT INTO cube_tags (cube_seq, tag) VALUES (?, ?)", [(seq, t) for t in cube.tags])

    def _index(self, seq: int, cube: MemCube, index: IndexEntry) -> None:
        if cube.text is not None:
            self._exec("INSERT INTO cube_fts (rowid, text, context) VALUES (?, ?, ?)", (seq, cube.text, index.context))
        if index.vector is not None and self._vectors:
            blob = np.asarray(index.vector, dtype=np.float32).tobytes()
            self._exec("INSERT INTO cube_vec (rowid, namespace, owner, embedding)"
                       " VALUES (?, ?, ?, vec_quantize_binary(?))", (seq, cube.namespace, cube.owner, blob))
            self._exec("INSERT INTO cube_emb (seq, emb) VALUES (?, ?)", (seq, blob))

    def _unindex(self, seq: int) -> None:
        self._exec("DELETE FROM cube_fts WHERE rowid = ?", (seq,))
        if self._vectors:
            self._exec("DELETE FROM cube_vec WHERE rowid = ?", (seq,))
            self._exec("DELETE FROM cube_emb WHERE seq = ?", (seq,))


@contextmanager
def translate_errors() -> Iterator[None]:
    """Turn SQLite driver errors into memcubed errors, chained with ``from``."""
    module = sqlite_module()
    try:
        yield
    except UnicodeEncodeError as exc:
        # A str the driver cannot encode (a lone surrogate in meta, say) is bad input, not a storage failure.
        raise ValidationError(f"a value is not valid Unicode: {exc.reason}") from exc
    except module.OperationalError as exc:
        if "locked" in str(exc) or "busy" in str(exc):
            raise BackendUnavailable(f"database is busy: {exc}") from exc
        raise StorageError(f"sqlite: {exc}") from exc
    except module.Error as exc:
        raise StorageError(f"sqlite: {exc}") from exc


def _row_values(cube: MemCube) -> tuple[Any, ...]:
    occurred = cube.source.occurred_at
    return (cube.id, cube.kind.value, cube.namespace, cube.owner, cube.state.value, cube.version,
            format_ts(cube.created_at), format_ts(cube.updated_at), format_ts(occurred) if occurred else None,
            cube.importance, cube.model, cube.text, int(cube.forgotten), cube.source.uri, cube_doc(cube))


def _by_principal(grant: dict[str, Any]) -> str:
    return str(grant["principal"])


def _principal(row: Any) -> PrincipalPublic:
    return PrincipalPublic(name=row["name"], kind=row["kind"], is_admin=bool(row["is_admin"]),
                           created_at=parse_ts(row["created_at"]), disabled=bool(row["disabled"]))


def _audit(row: Any) -> AuditRecord:
    import json

    try:
        return AuditRecord(seq=row["seq"], at=parse_ts(row["at"]), principal=row["principal"], op=row["op"],
                           cube_id=row["cube_id"], version=row["version"], details=json.loads(row["details"]),
                           prev_hash=row["prev_hash"], hash=row["hash"])
    except ValueError as exc:  # a bad timestamp, JSON or type: the row was written by something else
        raise IntegrityError(f"audit record {row['seq']} is unreadable: {exc}", seq=row["seq"]) from exc
