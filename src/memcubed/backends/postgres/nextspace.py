"""A re-embed's next vector space on PostgreSQL, built before the switch so that the switch only renames.

``cube_emb_next`` and ``cube_chunk_next`` (migration 17) mirror the stage (``vec_stage``) in the same
transactions: ``begin_stage`` empties them and types ``cube_emb_next.emb`` at the new dimension, every staged
batch is copied in, and unindexing a cube (an edit, a forget, a purge) deletes its rows there too. After the
job has staged everything, ``prepare_switch`` builds the HNSW index of ``cube_emb_next`` with ``CREATE INDEX
CONCURRENTLY``: readers keep searching ``cube_emb`` and writers keep writing meanwhile. The switch
transaction then adds the few cubes staged late (incremental inserts into the graph), swaps the two pairs of
tables by name and empties the old ones (``TRUNCATE``), so the ACCESS EXCLUSIVE lock readers wait behind is
held for a handful of catalog updates, not for a copy and a graph build.

The switch first reconciles the mirror with the stage (rows the stage lacks or holds otherwise are replaced),
so the vectors switched in are the stage's whatever wrote the mirror. A build killed midway leaves the store
on its old vectors, the mirror still consistent with the stage, and at worst an INVALID index, which the next
``prepare_switch`` drops and builds again. Index and constraint names other than the graph index's travel with
their tables (their names alternate between the pairs). Emptying the next space waits at most
``stage_lock_wait`` for its tables (another re-embed's concurrent build holds them), then raises Conflict.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from memcubed.backends._staging import SqlVectorStaging
from memcubed.errors import BackendUnavailable, Conflict

__all__ = ["NextVectorSpace"]

_INDEX = "cube_emb_next_hnsw"
_BUILD = f"INDEX {_INDEX} ON cube_emb_next USING hnsw (emb vector_cosine_ops)"
_SWAP = "DO $$ BEGIN " + "; ".join([
    # One lock statement, in the order every reader takes them (cube_emb first), so no reader deadlocks it.
    "LOCK TABLE cube_emb, cube_chunk, cube_emb_next, cube_chunk_next IN ACCESS EXCLUSIVE MODE",
    "ALTER TABLE cube_emb RENAME TO cube_emb_prev", "ALTER TABLE cube_emb_next RENAME TO cube_emb",
    "ALTER TABLE cube_emb_prev RENAME TO cube_emb_next",
    "ALTER TABLE cube_chunk RENAME TO cube_chunk_prev", "ALTER TABLE cube_chunk_next RENAME TO cube_chunk",
    "ALTER TABLE cube_chunk_prev RENAME TO cube_chunk_next",
    "DROP INDEX IF EXISTS cube_emb_hnsw", f"ALTER INDEX {_INDEX} RENAME TO cube_emb_hnsw",
]) + "; END $$"  # one statement, one round trip


class NextVectorSpace(SqlVectorStaging):
    """The staging methods the PostgreSQL store overrides (see the module docstring)."""

    _local: threading.local
    #: How long emptying the next space waits for its lock. These run under the store's write lock, and a
    #: concurrent index build of another re-embed holds the table for the whole build: every writer would wait.
    stage_lock_wait = "5s"

    def begin_stage(self, dim: int) -> None:
        with self._stage_lock():
            self._empty()
            self._run(f"ALTER TABLE cube_emb_next ALTER COLUMN emb TYPE vector({int(dim)})")

    def clear_stage(self) -> None:
        with self._stage_lock():
            self._empty()

    def _empty(self) -> None:
        # TRUNCATE, not DELETE: O(1), and after a swap these hold the whole old space.
        self._run(f"DROP INDEX IF EXISTS {_INDEX}")
        self._run("TRUNCATE vec_stage, cube_emb_next, cube_chunk_next")

    @contextmanager
    def _stage_lock(self) -> Iterator[None]:
        """Bound the wait for the next space's tables (inside a transaction); a timeout is a Conflict."""
        import psycopg

        before = None
        if getattr(self._local, "conn", None) is not None:
            before = self._all("SELECT current_setting('lock_timeout') AS v")[0]["v"]
            self._run("SELECT set_config('lock_timeout', ?, true)", (self.stage_lock_wait,))
        try:
            yield
        except BackendUnavailable as exc:
            if not isinstance(exc.__cause__, psycopg.errors.LockNotAvailable):
                raise
            raise Conflict("another re-embed is building the next vector space; try again once it is done",
                           field="embedder") from exc
        if before is not None:  # the rest of the transaction waits as it did before
            self._run("SELECT set_config('lock_timeout', ?, true)", (before,))

    def _staged(self, seqs: Sequence[int]) -> None:
        keys = (list(seqs),)
        self._run("DELETE FROM cube_emb_next WHERE seq = ANY(?::bigint[])", keys)
        self._run("DELETE FROM cube_chunk_next WHERE seq = ANY(?::bigint[])", keys)
        self._run("INSERT INTO cube_emb_next (seq, emb) SELECT seq, emb FROM vec_stage"
                  " WHERE seq = ANY(?::bigint[]) AND n = 0", keys)
        self._run("INSERT INTO cube_chunk_next (seq, n, emb) SELECT seq, n, emb FROM vec_stage"
                  " WHERE seq = ANY(?::bigint[]) AND n > 0", keys)

    def _next_index_valid(self) -> bool | None:
        """Whether the next space's graph index is usable; None when there is none."""
        rows = self._all("SELECT i.indisvalid AS ok FROM pg_index i WHERE i.indexrelid = to_regclass(?)", (_INDEX,))
        return bool(rows[0]["ok"]) if rows else None

    def prepare_switch(self) -> None:
        if self._next_index_valid():
            return
        if getattr(self._local, "conn", None) is not None:  # inside a transaction: a plain, locking build
            self._run(f"DROP INDEX IF EXISTS {_INDEX}")
            self._run(f"CREATE {_BUILD}")
            return
        # What an interrupted concurrent build left behind (INVALID) is dropped, then built again.
        self._run(f"DROP INDEX CONCURRENTLY IF EXISTS {_INDEX}")
        self._run(f"CREATE {_BUILD.replace('INDEX', 'INDEX CONCURRENTLY', 1)}")

    def _swap_vectors(self, dim: int) -> None:
        if not self._next_index_valid():  # prepare_switch was not called: build it here, before taking the locks
            self.prepare_switch()
        # switch_vectors checked that every cube with a vector has its staged vector. The mirror is made to hold
        # exactly the stage before the swap: a process on code older than migration 17 stages and unindexes
        # without touching it, so a forgotten cube's vector could otherwise switch in. Both are no-ops normally.
        for table, same in (("cube_emb_next", "s.n = 0"), ("cube_chunk_next", "s.n = m.n")):
            self._run(f"DELETE FROM {table} m WHERE NOT EXISTS (SELECT 1 FROM vec_stage s WHERE s.seq = m.seq"
                      f" AND {same} AND s.emb = m.emb)")
        self._run("INSERT INTO cube_emb_next (seq, emb) SELECT s.seq, s.emb FROM vec_stage s WHERE s.n = 0"
                  " AND NOT EXISTS (SELECT 1 FROM cube_emb_next m WHERE m.seq = s.seq)")
        self._run("INSERT INTO cube_chunk_next (seq, n, emb) SELECT s.seq, s.n, s.emb FROM vec_stage s WHERE s.n > 0"
                  " AND NOT EXISTS (SELECT 1 FROM cube_chunk_next m WHERE m.seq = s.seq AND m.n = s.n)")
        self._run(_SWAP)
        # The caller's clear_stage then empties the old space (now the *_next pair) and the stage.
