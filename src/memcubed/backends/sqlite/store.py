"""The embedded store: one SQLite file in WAL mode (metadata, versions, ACL, audit, FTS5, sqlite-vec)."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import numpy as np

from memcubed.backends._common import scope_clause
from memcubed.backends._sql import SqlStore
from memcubed.backends.base import IndexEntry, SearchScope, Vector
from memcubed.backends.lexical import lexical_text
from memcubed.backends.sqlite.driver import connect, sqlite_module
from memcubed.backends.sqlite.lexindex import LexicalIndex, plain_terms
from memcubed.backends.sqlite.lexrank import rank_matches
from memcubed.backends.sqlite.schema import migrate, vector_tables
from memcubed.backends.sqlite.vecindex import VECTOR_LOG_DDL, BinaryVectorIndex
from memcubed.cube.model import MemCube
from memcubed.errors import AlreadyExists, BackendUnavailable, StorageError, StoreNotFound, ValidationError

__all__ = ["SqliteStore"]

_CANDIDATES = 100  # binary-quantised candidates per vector query before exact rescoring
_LEXICAL_DEPTH = 4  # matches ranked before rights and filters, per result asked for
_OVERLAP_FROM = 50_000  # vectors in a namespace from which a hybrid search runs its two queries in two threads
_LOG_KEEP = 100_000  # change-log entries kept for the in-process indexes of other processes
_LOG_TRIM_EVERY = 1_000


class SqliteStore(SqlStore):
    """A ``StorageBackend`` on one SQLite file; safe to share between threads and processes.

    Each thread gets its own connection; writers serialise through SQLite's
    write lock (``BEGIN IMMEDIATE`` with a busy timeout).

    Args:
        create: make a new store when ``path`` does not exist (its folder must). A new file is
            readable by its owner only (0600); SQLite gives its WAL and shared-memory files the same mode.

    Raises:
        StoreNotFound: ``path`` does not exist and ``create`` is False, or its folder does not exist.
        ConfigurationError: the file was written by a newer memcubed.
    """

    def __init__(self, path: str | Path, *, busy_timeout_ms: int = 30_000, exact_vectors_up_to: int = 2_000,
                 lexical_index: bool = True, create: bool = True) -> None:
        self.path = str(path)
        if self.path != ":memory:":
            _ensure_file(Path(self.path), create=create)
        self._busy_timeout_ms = busy_timeout_ms
        # Namespaces this small are scored exactly: a full cosine scan costs no more than the candidates.
        self._exact_up_to = exact_vectors_up_to
        self._local = threading.local()
        self._conns: list[Any] = []
        self._lock = threading.Lock()
        self._vectors = False
        self._vindex: BinaryVectorIndex | None = None
        # Lexical ranking in process (exactly bm25(), see lexindex); False ranks every query in FTS5.
        self._lindex = LexicalIndex(background=True) if lexical_index else None
        try:
            with translate_errors():
                migrate(self._conn())
                self._vectors = self._has_table("cube_emb")
                if self._vectors:
                    self._load_vectors_everywhere()
                    self._ensure_vector_log()
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
                self._conns.append(conn)
        return conn

    def _load_vectors_everywhere(self) -> None:
        from memcubed.backends.sqlite.driver import load_vector_extension

        with self._lock:
            for conn in self._conns:
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

    def scrub(self) -> None:
        """Copy the WAL into the main file and truncate it to zero bytes, so that no page image written
        before an erasure stays on disk (the main file's pages were zeroed by ``secure_delete``).

        Waits (up to the busy timeout) for readers of older snapshots; if one outlasts it the WAL keeps
        its frames until the next checkpoint that completes.
        """
        if getattr(self._local, "depth", 0):
            return
        self._exec("PRAGMA wal_checkpoint(TRUNCATE)")

    def close(self) -> None:
        """Close every connection this store opened (once a background index load has stopped)."""
        if self._lindex is not None:
            self._lindex.close(self._interrupt)
        with self._lock:
            for conn in self._conns:
                conn.close()
            self._conns.clear()
        self._local = threading.local()

    def _interrupt(self) -> None:
        """Abort the SQL running on any of this store's connections (thread-safe)."""
        with self._lock:
            for conn in self._conns:
                conn.interrupt()

    def _exec(self, sql: str, params: Sequence[Any] = ()) -> Any:
        with translate_errors():
            return self._conn().execute(sql, params)

    def _all(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        with translate_errors():
            return list(self._conn().execute(sql, params).fetchall())

    def _run(self, sql: str, params: Sequence[Any] = ()) -> None:
        self._exec(sql, params)

    def _many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        with translate_errors():
            self._conn().executemany(sql, rows)

    def _has_table(self, name: str) -> bool:
        row = self._exec("SELECT 1 FROM sqlite_master WHERE name = ?", (name,)).fetchone()
        return row is not None

    def configure_vectors(self, dim: int) -> None:
        if not self._vectors:
            self._vectors = True
            self._load_vectors_everywhere()
        with self.transaction():
            for statement in vector_tables(dim):
                self._exec(statement)
        self._ensure_vector_log()

    def _ensure_vector_log(self) -> None:
        """Create the embedding change log the in-process vector index replays (idempotent)."""
        with self.transaction():
            for statement in VECTOR_LOG_DDL:
                self._exec(statement)

    def set_context(self, cube_id: str, context: str) -> None:
        self._exec("UPDATE cube_fts SET context = ? WHERE rowid = (SELECT seq FROM cubes WHERE id = ?)",
                   (lexical_text(context), cube_id))
        self._log_text_change("SELECT seq FROM cubes WHERE id = ?", (cube_id,))

    def load_index_entry(self, cube_id: str) -> IndexEntry | None:
        """Return the lexical context and vector indexed for a cube, or None when it has no index entry."""
        row = self._one("SELECT f.context FROM cube_fts f JOIN cubes c ON c.seq = f.rowid WHERE c.id = ?", (cube_id,))
        vector = None
        if self._vectors:
            emb = self._one("SELECT e.emb FROM cube_emb e JOIN cubes c ON c.seq = e.seq WHERE c.id = ?", (cube_id,))
            vector = None if emb is None else np.frombuffer(emb["emb"], dtype=np.float32).copy()
        if row is None and vector is None:
            return None
        chunks = tuple(np.frombuffer(r["emb"], dtype=np.float32).copy() for r in self._all(
            "SELECT k.emb FROM cube_chunk k JOIN cubes c ON c.seq = k.seq WHERE c.id = ? ORDER BY k.n", (cube_id,)))
        return IndexEntry(context="" if row is None else row["context"], vector=vector, chunks=chunks)

    # -- search -------------------------------------------------------------
    def lexical_search(self, match: str, scope: SearchScope, limit: int, *, context_weight: float
                       ) -> list[tuple[str, float]]:
        where, params = scope_clause(scope)
        depth = _LEXICAL_DEPTH * limit
        ranked = self._ranked(match, scope, depth, context_weight)
        if ranked is not None:
            # The best `depth` matches the principal may read, by score alone (best first, ties by seq); then
            # rights and filters exactly, on those: when at least `limit` of them pass they are the best `limit`
            # that pass. The best `limit` are checked first, the rest only if some failed (usually all pass,
            # and each checked row is a lookup in `cubes`).
            candidates, more = ranked
            kept: list[tuple[str, float]] = []
            for part in (candidates[:limit], candidates[limit:]):
                if len(kept) >= limit or not part:
                    break
                ids = dict(self._exec(f"SELECT c.seq, c.id FROM json_each(?) AS j CROSS JOIN cubes c"
                                      f" ON c.seq = j.value WHERE {where}",
                                      [json.dumps([seq for seq, _ in part]), *params]).fetchall())
                kept += [(ids[seq], score) for seq, score in part if seq in ids]
            if len(kept) >= limit or not more:
                return kept[:limit]
        # Every match that passes rights and filters (deeper matches may pass), ranked from FTS5's data
        # with the same BM25 and namespace statistics as the index.
        return rank_matches(self._all, match, where, params, namespace=scope.namespace, limit=limit,
                            context_weight=context_weight)

    def _ranked(self, match: str, scope: SearchScope, depth: int, context_weight: float
                ) -> tuple[list[tuple[int, float]], bool] | None:
        """The best ``depth`` readable (seq, score) matches by score alone and whether there are more, from
        the in-process index; None when it cannot answer (not loaded, or not a plain OR of words)."""
        words = plain_terms(match)
        if self._lindex is None or words is None:
            return None
        return self._lindex.search(self._all, words, namespace=scope.namespace, principal=scope.principal,
                                   is_admin=scope.is_admin, context_weight=context_weight, depth=depth)

    def term_counts(self, terms: Sequence[str], *, namespace: str) -> tuple[int, dict[str, int]]:
        if self._lindex is not None:
            return 0, {}  # every match is ranked in process, cheaply: nothing to prune
        # Counting a term's doclist in the namespace is cheap (no ranking); other namespaces never count.
        total = self._exec("SELECT count(*) FROM cubes c CROSS JOIN cube_fts f ON f.rowid = c.seq"
                           " WHERE c.namespace = ?", (namespace,)).fetchone()[0] or 0
        counts = {t: self._exec("SELECT count(*) FROM cube_fts CROSS JOIN cubes c ON c.seq = cube_fts.rowid"
                                " WHERE cube_fts MATCH ? AND c.namespace = ?",
                                ('"' + t.replace('"', '""') + '"', namespace)).fetchone()[0] for t in terms}
        return int(total), counts

    def vector_search(self, vector: Vector, scope: SearchScope, limit: int) -> list[tuple[str, float]]:
        if not self._vectors:
            return []
        self._check_space()
        blob = np.asarray(vector, dtype=np.float32).tobytes()
        where, params = scope_clause(scope)
        # A cube's score is its best vector's: the text's start, or any later window of a long text.
        # coalesce: the cosine of an all-zero vector is NULL (a static model's text of unknown words); it ranks last.
        rescored = ("SELECT c.id, max(coalesce(1 - vec_distance_cosine(e.emb, ?1), -1), coalesce((SELECT max(1 -"
                    " vec_distance_cosine(k.emb, ?1)) FROM cube_chunk k WHERE k.seq = c.seq), -2)) AS sim"
                    f" FROM {{source}} JOIN cube_emb e ON e.seq = c.seq WHERE {where} ORDER BY sim DESC, c.seq LIMIT ?")
        size = self._exec("SELECT count(*) FROM (SELECT 1 FROM cubes WHERE namespace = ? LIMIT ?)",
                          (scope.namespace, self._exact_up_to + 1)).fetchone()[0]
        if size <= self._exact_up_to:
            rows = self._exec(rescored.format(source="cubes c"), [blob, *params, limit]).fetchall()
            return [(r[0], float(r[1])) for r in rows]
        k = min(4096, max(_CANDIDATES, limit))
        # Candidates by Hamming distance of sign bits, only among cubes the principal owns or was
        # granted (the in-process index follows every process's writes); then exact cosine over them.
        seqs = sorted(self._binary_index().candidates(
            self._all, np.asarray(vector, dtype=np.float32), namespace=scope.namespace,
            principal=scope.principal, is_admin=scope.is_admin, k=k))
        # CROSS JOIN: drive the rescoring from the candidate list, never from a scan of the namespace.
        from_candidates = "json_each(?) AS j CROSS JOIN cubes c ON c.seq = j.value"
        rows = self._exec(rescored.format(source=from_candidates), [blob, json.dumps(seqs), *params, limit]).fetchall()
        if len(rows) < limit and len(seqs) >= k:
            # Filters removed candidates: score the filtered set exactly instead of returning too few.
            rows = self._exec(rescored.format(source="cubes c"), [blob, *params, limit]).fetchall()
        return [(r[0], float(r[1])) for r in rows]

    def overlaps_searches(self, namespace: str) -> bool:
        """Only for a namespace of at least ``_OVERLAP_FROM`` vectors: below, both in-process indexes answer in a
        few GIL-holding milliseconds and the thread costs more than it overlaps (same-run A/B, NOTES lat3: 10k
        serial index ×0.49; 100k serial ×1.08, numpy's large loops releasing the GIL)."""
        return self._vindex is not None and self._vindex.size(namespace) >= _OVERLAP_FROM

    def warm(self, namespace: str) -> None:
        """Load the lexical index (every namespace) and the vector codes of ``namespace`` now."""
        if self._lindex is not None:
            self._lindex.load(self._all)
        if self._vectors:
            self._binary_index().warm(self._all, namespace)

    # -- helpers ------------------------------------------------------------
    def _binary_index(self) -> BinaryVectorIndex:
        if self._vindex is None:
            with self._lock:
                if self._vindex is None:
                    row = self._exec("SELECT length(emb) FROM cube_emb LIMIT 1").fetchone()
                    dim = int(row[0]) // 4 if row else 0
                    self._vindex = BinaryVectorIndex(dim)
        return self._vindex

    def _index(self, seq: int, cube: MemCube, index: IndexEntry) -> None:
        if cube.text is not None:
            self._exec("INSERT INTO cube_fts (rowid, text, context) VALUES (?, ?, ?)",
                       (seq, lexical_text(cube.text), lexical_text(index.context)))
            self._log_text_change("VALUES (?)", (seq,))
        if index.vector is not None and self._vectors:
            blob = np.asarray(index.vector, dtype=np.float32).tobytes()
            self._exec("INSERT INTO cube_vec (rowid, namespace, owner, embedding)"
                       " VALUES (?, ?, ?, vec_quantize_binary(?))", (seq, cube.namespace, cube.owner, blob))
            self._exec("INSERT INTO cube_emb (seq, emb) VALUES (?, ?)", (seq, blob))
            self._many("INSERT INTO cube_chunk (seq, n, emb) VALUES (?, ?, ?)",
                       [(seq, n, np.asarray(v, dtype=np.float32).tobytes()) for n, v in enumerate(index.chunks, 1)])

    def _vector_value(self, vector: Any) -> bytes:
        return np.asarray(vector, dtype=np.float32).tobytes()

    def _swap_vectors(self, dim: int) -> None:
        # vec0 fixes its dimension at creation: a new table. The triggers log every removed and added row.
        self._exec("DROP TABLE IF EXISTS cube_vec")
        self._exec("DELETE FROM cube_chunk")
        self._exec("DELETE FROM cube_emb")
        for statement in vector_tables(dim):
            self._exec(statement)
        self._exec("INSERT INTO cube_emb (seq, emb) SELECT seq, emb FROM vec_stage WHERE n = 0")
        self._exec("INSERT INTO cube_chunk (seq, n, emb) SELECT seq, n, emb FROM vec_stage WHERE n > 0")
        self._exec("INSERT INTO cube_vec (rowid, namespace, owner, embedding) SELECT c.seq, c.namespace, c.owner,"
                   " vec_quantize_binary(e.emb) FROM cube_emb e JOIN cubes c ON c.seq = e.seq")
        # Every reader's in-process index reloads (a gap in the log), at the new dimension.
        self._exec("DELETE FROM vec_log")
        self._exec("INSERT INTO vec_log (seq) VALUES (0)")

    def _log_text_change(self, rows: str, params: Sequence[Any]) -> None:
        """Append the seq(s) ``rows`` gives to ``fts_log``; every ``_LOG_TRIM_EVERY`` entries, drop what lies
        more than ``_LOG_KEEP`` entries back in both change logs (a reader that far behind reloads)."""
        head = self._exec(f"INSERT INTO fts_log (seq) {rows}", params).lastrowid
        if head and head % _LOG_TRIM_EVERY == 0:
            self._exec("DELETE FROM fts_log WHERE id <= ?", (head - _LOG_KEEP,))
            if self._vectors:
                self._exec("DELETE FROM vec_log WHERE id <= (SELECT max(id) FROM vec_log) - ?", (_LOG_KEEP,))

    def _unindex(self, seq: int) -> None:
        self._exec("DELETE FROM vec_stage WHERE seq = ?", (seq,))  # a changed cube is embedded again
        self._exec("DELETE FROM cube_fts WHERE rowid = ?", (seq,))
        self._log_text_change("VALUES (?)", (seq,))
        if self._vectors:
            self._exec("DELETE FROM cube_vec WHERE rowid = ?", (seq,))
            self._exec("DELETE FROM cube_emb WHERE seq = ?", (seq,))
            self._exec("DELETE FROM cube_chunk WHERE seq = ?", (seq,))


def _ensure_file(path: Path, *, create: bool) -> None:
    """Make sure the store file exists: created empty with mode 0600 when allowed, else ``StoreNotFound``."""
    if path.exists():
        return
    if not create:
        raise StoreNotFound(f"no store at {path} (create one with `memcubed init`, or check --db)", path=str(path))
    if not path.parent.is_dir():
        raise StoreNotFound(f"the folder {path.parent} does not exist (it is never created implicitly)",
                            path=str(path))
    with suppress(FileExistsError):  # another process created it first
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))


@contextmanager
def translate_errors() -> Iterator[None]:
    """Turn SQLite driver errors into memcubed errors, chained with ``from``."""
    module = sqlite_module()
    try:
        yield
    except UnicodeEncodeError as exc:
        # A str the driver cannot encode (a lone surrogate in meta, say) is bad input, not a storage failure.
        raise ValidationError(f"a value is not valid Unicode: {exc.reason}") from exc
    except OverflowError as exc:  # an int beyond SQLite's 64 bits: bad input too
        raise ValidationError(f"a number is too large to store: {exc}") from exc
    except module.IntegrityError as exc:
        if "UNIQUE" in str(exc):
            raise AlreadyExists(f"sqlite: {exc}") from exc
        raise StorageError(f"sqlite: {exc}") from exc
    except module.OperationalError as exc:
        if "locked" in str(exc) or "busy" in str(exc):
            raise BackendUnavailable(f"database is busy: {exc}") from exc
        raise StorageError(f"sqlite: {exc}") from exc
    except module.Error as exc:
        raise StorageError(f"sqlite: {exc}") from exc
