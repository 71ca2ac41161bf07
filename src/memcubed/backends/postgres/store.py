"""The scale-out store: PostgreSQL with pgvector, reached through a psycopg 3 connection pool.

Several memcubed processes may share one database. The kernel reads a cube's version, checks the
caller's ``expected_version`` and writes the next version, and reads the audit head and appends to
it, inside one write transaction; SQLite serialises those with ``BEGIN IMMEDIATE``. Here every write
transaction first takes one transaction-scoped advisory lock, so write transactions run one at a
time across all processes while reads never wait. Under READ COMMITTED each statement after the lock
sees everything committed before it, so a loser of optimistic concurrency reads the winner's version
and gets ``VersionConflict``; a single lock taken first cannot deadlock.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np

from memcubed.backends._common import best_per_cube, event_values, maybe_ts, scope_clause, stats_from_row
from memcubed.backends._sql import SqlStore
from memcubed.backends.base import IndexEntry, SearchScope, Vector
from memcubed.backends.lexical import lexical_text
from memcubed.backends.postgres.driver import psycopg_module, qmark, translate_errors
from memcubed.backends.postgres.lexsearch import sql_ranked
from memcubed.backends.postgres.nextspace import NextVectorSpace
from memcubed.backends.postgres.schema import WRITE_LOCK, migrate, vector_ddl
from memcubed.cube.model import CubeStats, MemCube
from memcubed.errors import StoreNotFound
from memcubed.schemas.events import Event

__all__ = ["PostgresStore"]

class PostgresStore(NextVectorSpace, SqlStore):
    """A ``StorageBackend`` on a PostgreSQL database with the ``vector`` extension.

    Args:
        dsn: a libpq connection string or ``postgresql://`` URI.
        pool_size: the most connections this process opens.
        connect_timeout_s: how long to wait for the server (and for a free pooled connection).
        exact_vectors_up_to: namespaces up to this many cubes are scored exactly instead of through HNSW.
        create: create the schema in a database that has none; with False such a database is refused.

    Raises:
        StoreNotFound: the database holds no memcubed schema and ``create`` is False.
        DependencyMissing: the ``postgres`` extra is not installed.
        BackendUnavailable: the server cannot be reached.
        ConfigurationError: the database was written by a newer memcubed.
    """

    _CLAIM_LOCK = " FOR UPDATE SKIP LOCKED"
    _GRANTS = """coalesce(json_agg(json_build_array(g.principal, g."right", g.accepted)), '[]'::json)::text"""

    def __init__(self, dsn: str, *, pool_size: int = 8, connect_timeout_s: float = 10.0,
                 exact_vectors_up_to: int = 2_000, create: bool = True) -> None:
        psycopg = psycopg_module()
        from psycopg.rows import dict_row
        from psycopg_pool import ConnectionPool

        self.dsn = dsn
        self._exact_up_to = exact_vectors_up_to
        self._local = threading.local()
        self._timeout = connect_timeout_s
        with translate_errors():
            # Migrate on a connection of its own: pooled connections register the vector type, which
            # migration 1 creates.
            with psycopg.connect(dsn, autocommit=True, row_factory=dict_row,
                                 connect_timeout=max(1, int(connect_timeout_s))) as conn:
                if not create and conn.execute("SELECT to_regclass('schema_version') AS t").fetchone()["t"] is None:
                    raise StoreNotFound("the database holds no memcubed store (create one with `memcubed init`)")
                migrate(conn)
                self._vectors = conn.execute("SELECT to_regclass('cube_emb') IS NOT NULL AS ok").fetchone()["ok"]
            self._pool = ConnectionPool(dsn, min_size=1, max_size=max(2, pool_size), open=False,
                                        timeout=connect_timeout_s, configure=_configure, name="memcubed",
                                        kwargs={"autocommit": True, "row_factory": dict_row})
        try:
            with translate_errors():
                self._pool.open(wait=True, timeout=connect_timeout_s)
        except BaseException:
            self._pool.close()
            raise

    # -- connections and transactions ------------------------------------------
    @contextmanager
    def _connection(self) -> Iterator[Any]:
        """The thread's transaction connection, or a pooled one for a single autocommit statement."""
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            yield conn
            return
        with translate_errors(), self._pool.connection(timeout=self._timeout) as pooled:
            yield pooled

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Open a write transaction; nested calls become savepoints, an exception rolls back.

        The outermost one takes the store-wide write lock first (see the module docstring).
        """
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            with _passing(conn.transaction()):
                yield
            return
        with translate_errors(), self._pool.connection(timeout=self._timeout) as conn:
            self._local.conn = conn
            try:
                with _passing(conn.transaction()):
                    with translate_errors():
                        conn.execute("SELECT pg_advisory_xact_lock(%s)", (WRITE_LOCK,))
                    yield
            finally:
                self._local.conn = None

    def scrub(self) -> None:
        """``VACUUM`` the tables that held a forgotten cube's text and vectors.

        What this does and does not do (PostgreSQL 18): the forget's DELETEs and UPDATEs leave the old
        row versions as dead tuples; VACUUM removes them from the indexes (GIN full-text, HNSW) and
        prunes them from the heap pages. Probed on the bundled 18.6 server (forget, then a CHECKPOINT):
        the text was gone from the files of ``cubes``, ``cube_versions``, ``cube_fts`` and its GIN
        index (one copy in each without this VACUUM), but still in three WAL records. It is not a
        guarantee: a tuple still visible to an older open snapshot is kept until a later VACUUM
        (autovacuum), the WAL keeps its records until its segments are recycled, and base backups and
        replicas keep theirs. ``VACUUM FULL`` (an exclusive lock per table) and WAL/backup retention
        are the operator's tools beyond this.
        """
        if getattr(self._local, "conn", None) is not None:
            return
        tables = ("cubes, cube_versions, cube_fts, cube_chunk, cube_alias, vec_stage, cube_emb_next, cube_chunk_next"
                  + (", cube_emb" if self._vectors else ""))
        self._run(f"VACUUM {tables}")

    def close(self) -> None:
        """Close the pool and every connection in it."""
        self._pool.close()

    def _all(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        with self._connection() as conn, translate_errors():
            cursor = conn.execute(qmark(sql), params)
            return list(cursor.fetchall()) if cursor.description is not None else []

    def _run(self, sql: str, params: Sequence[Any] = ()) -> None:
        with self._connection() as conn, translate_errors():
            conn.execute(qmark(sql), params)

    def _many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if not rows:
            return
        with self._connection() as conn, translate_errors(), conn.cursor() as cursor:
            cursor.executemany(qmark(sql), rows)

    # -- event log and stats: arrays, one parameter per column (the shared multi-row statements cost
    # psycopg a parse of every placeholder, milliseconds per fold under the write lock) ---------------
    def append_events(self, events: Sequence[Event]) -> int | None:
        if not events:
            return None
        columns = list(zip(*(event_values(e) for e in events), strict=True))
        rows = self._all("INSERT INTO events (at, kind, principal, cube_id, version, details) SELECT * FROM"
                         " unnest(?::text[], ?::text[], ?::text[], ?::text[], ?::int[], ?::text[]) RETURNING seq",
                         [list(c) for c in columns])
        return max(int(r["seq"]) for r in rows)

    def record_access(self, stats: dict[str, CubeStats]) -> None:
        if not stats:
            return
        self._run("UPDATE cubes SET access_count = v.n, last_access = v.at, hotness = v.h FROM"
                  " unnest(?::text[], ?::int[], ?::text[], ?::float8[]) AS v(id, n, at, h) WHERE cubes.id = v.id",
                  (list(stats), [s.access_count for s in stats.values()],
                   [maybe_ts(s.last_access) for s in stats.values()], [s.hotness for s in stats.values()]))

    def load_stats(self, cube_ids: Sequence[str]) -> dict[str, CubeStats]:
        rows = self._all("SELECT id, access_count, last_access, hotness FROM cubes WHERE id = ANY(?::text[])",
                         (list(cube_ids),))
        return {r["id"]: stats_from_row(r) for r in rows}

    # -- indexes ----------------------------------------------------------------
    def configure_vectors(self, dim: int) -> None:
        with self.transaction():
            for statement in vector_ddl(dim):
                self._run(statement)
        self._vectors = True

    def set_context(self, cube_id: str, context: str) -> None:
        self._run("UPDATE cube_fts SET context = ? WHERE seq = (SELECT seq FROM cubes WHERE id = ?)",
                  (lexical_text(context), cube_id))

    def load_index_entry(self, cube_id: str) -> IndexEntry | None:
        """Return the lexical context and vector indexed for a cube, or None when it has no index entry."""
        row = self._one("SELECT f.context FROM cube_fts f JOIN cubes c ON c.seq = f.seq WHERE c.id = ?", (cube_id,))
        vector = None
        if self._vectors:
            # ``::vector`` drops the column's dimension from the result type: the driver prepares a statement
            # it runs often, and a prepared statement whose result type changed (a re-embed to another
            # dimension, switched on another connection) fails ("cached plan must not change result type").
            emb = self._one("SELECT e.emb::vector AS emb FROM cube_emb e JOIN cubes c ON c.seq = e.seq WHERE c.id = ?",
                            (cube_id,))
            vector = None if emb is None else _array(emb["emb"])
        if row is None and vector is None:
            return None
        chunks = tuple(_array(r["emb"]) for r in self._all(
            "SELECT k.emb::vector AS emb FROM cube_chunk k JOIN cubes c ON c.seq = k.seq WHERE c.id = ? ORDER BY k.n",
            (cube_id,)))
        return IndexEntry(context="" if row is None else row["context"], vector=vector, chunks=chunks)

    def _index(self, seq: int, cube: MemCube, index: IndexEntry) -> None:
        if cube.text is not None:
            self._run("INSERT INTO cube_fts (seq, text, context) VALUES (?, ?, ?)",
                      (seq, lexical_text(cube.text), lexical_text(index.context)))
        if index.vector is not None and self._vectors:
            self._run("INSERT INTO cube_emb (seq, emb) VALUES (?, ?)", (seq, np.asarray(index.vector, np.float32)))
            self._many("INSERT INTO cube_chunk (seq, n, emb) VALUES (?, ?, ?)",
                       [(seq, n, np.asarray(v, np.float32)) for n, v in enumerate(index.chunks, 1)])

    def _vector_value(self, vector: Any) -> Any:
        return np.asarray(vector, np.float32)

    def _unindex(self, seq: int) -> None:
        # A changed cube is embedded again: out of the stage (its triggers empty the mirror, ``nextspace``).
        self._run("DELETE FROM vec_stage WHERE seq = ?", (seq,))
        self._run("DELETE FROM cube_fts WHERE seq = ?", (seq,))
        if self._vectors:
            self._run("DELETE FROM cube_emb WHERE seq = ?", (seq,))
            self._run("DELETE FROM cube_chunk WHERE seq = ?", (seq,))

    # -- search -----------------------------------------------------------------
    def lexical_search(self, match: str, scope: SearchScope, limit: int, *, context_weight: float
                       ) -> list[tuple[str, float]]:
        """BM25 of ``backends.bm25`` over the namespace's statistics (kept in ``lex_ns_*``, see ``lexstats``),
        scored in the query; only the best ``limit`` rows come back (``lexsearch``)."""
        return sql_ranked(self._all, match, scope, limit, context_weight=context_weight)

    def term_counts(self, terms: Sequence[str], *, namespace: str) -> tuple[int, dict[str, int]]:
        return 0, {}  # the engine need not prune the match: lexsearch.sql_ranked prunes exactly by score bounds

    def vector_search(self, vector: Vector, scope: SearchScope, limit: int) -> list[tuple[str, float]]:
        if not self._vectors:
            return []
        self._check_space()
        q = np.asarray(vector, dtype=np.float32)
        where, params = scope_clause(scope)
        size = self._one("SELECT count(*) AS n FROM (SELECT 1 FROM cubes WHERE namespace = ? LIMIT ?) t",
                         (scope.namespace, self._exact_up_to + 1))["n"]
        if size <= self._exact_up_to:
            # Ordering by the similarity expression (not by `emb <=> q`) keeps the HNSW index out: exact.
            # A cube's score is its best vector's: the text's start, or any later window (GREATEST skips NULL).
            rows = self._all(
                f"SELECT c.id, GREATEST({_sim('e')}, (SELECT max({_sim('k')}) FROM cube_chunk k"
                " WHERE k.seq = c.seq)) AS sim FROM cubes c JOIN cube_emb e ON e.seq = c.seq"
                f" WHERE {where} ORDER BY sim DESC, c.seq LIMIT ?", [q, q, *params, limit])
            return [(r["id"], float(r["sim"])) for r in rows]
        with self._connection() as conn, translate_errors(), conn.transaction():
            # Iterative scans keep walking the graph until `limit` rows pass the rights and filters.
            conn.execute("SELECT set_config('hnsw.ef_search', %s, true),"
                         " set_config('hnsw.iterative_scan', 'strict_order', true)", (str(max(40, limit)),))
            rows = conn.execute(
                qmark("SELECT c.id, 1 - (e.emb <=> ?) AS sim FROM cube_emb e JOIN cubes c ON c.seq = e.seq"
                      f" WHERE {where} ORDER BY e.emb <=> ? LIMIT ?"), [q, *params, q, limit]).fetchall()
            # Window vectors of long memories: fewer rows, no graph index (their column has no fixed size).
            windows = conn.execute(
                qmark("SELECT c.id, 1 - (k.emb <=> ?) AS sim FROM cube_chunk k JOIN cubes c ON c.seq = k.seq"
                      f" WHERE {where} ORDER BY k.emb <=> ?, c.seq LIMIT ?"), [q, *params, q, limit]).fetchall()
        return best_per_cube([(r["id"], _finite(float(r["sim"]))) for r in [*rows, *windows]], limit)


def _sim(alias: str) -> str:
    """Cosine similarity of ``alias.emb`` to the query; pgvector's NaN for an all-zero vector (a static model's
    text of unknown words) becomes -1, so it ranks last instead of first (NaN sorts above every number)."""
    return f"coalesce(nullif(1 - ({alias}.emb <=> ?), 'NaN'::float8), -1)"


def _finite(sim: float) -> float:
    """``sim``, or -1 for the NaN of an all-zero vector (the graph scan already orders NaN distances last)."""
    return -1.0 if math.isnan(sim) else sim


def _array(value: Any) -> Vector:
    """A pgvector value as float32 numpy (pgvector's loader returns its own ``Vector`` type)."""
    return np.asarray(value.to_numpy() if hasattr(value, "to_numpy") else value, dtype=np.float32)


def _configure(conn: Any) -> None:
    """Prepare a new pooled connection: numpy arrays travel as pgvector values."""
    from pgvector.psycopg import register_vector

    register_vector(conn)


@contextmanager
def _passing(inner: Any) -> Iterator[None]:
    """Enter psycopg's transaction block, translating the driver's errors raised by BEGIN/COMMIT only."""
    with translate_errors():
        inner.__enter__()
    try:
        yield
    except BaseException as exc:
        with translate_errors():
            if not inner.__exit__(type(exc), exc, exc.__traceback__):
                raise
        return
    with translate_errors():
        inner.__exit__(None, None, None)

