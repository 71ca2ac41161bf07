"""A re-embed's next vector space on PostgreSQL, built before the switch so that the switch only renames.

``cube_emb_next`` and ``cube_chunk_next`` (migration 17) mirror the stage (``vec_stage``). The database keeps
the mirror (migration 18): statement triggers on ``vec_stage`` copy every inserted row into it and delete
every deleted one, so whichever process writes the stage (a re-embed's batch, an edit or a forget unstaging a
cube, a process still on code older than the mirror) the mirror holds exactly the stage, and the switch has
nothing to reconcile. ``begin_stage`` empties both and types ``cube_emb_next.emb`` at the new dimension.
After the job has staged everything, ``prepare_switch`` builds the HNSW index of ``cube_emb_next`` with
``CREATE INDEX CONCURRENTLY``: readers keep searching ``cube_emb`` and writers keep writing meanwhile. The
switch transaction then swaps the two pairs of tables by name (the few cubes staged late went into the graph
as incremental inserts) and empties the old ones (``TRUNCATE``), so the ACCESS EXCLUSIVE lock readers wait
behind is held for a handful of catalog updates, not for a copy and a graph build.

A build killed midway leaves the store on its old vectors and at worst an INVALID index, which the next
``prepare_switch`` drops and builds again. Index and constraint names other than the graph index's travel with
their tables (their names alternate between the pairs). Emptying the next space and the swap wait at most
``stage_lock_wait`` for its tables (another re-embed's concurrent build holds them), then raise Conflict.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from memcubed.backends._staging import SqlVectorStaging
from memcubed.errors import BackendUnavailable, Conflict

__all__ = ["MIRROR_MIGRATION", "NextVectorSpace"]

# Transition tables allow one event per trigger: one function and trigger for each of insert and delete
# (the stage is never updated in place: a restaged cube is deleted and inserted again).
_ON_STAGE_ADDED = """CREATE OR REPLACE FUNCTION memcubed_stage_mirror_add() RETURNS trigger
    LANGUAGE plpgsql AS $$ BEGIN
    INSERT INTO cube_emb_next (seq, emb) SELECT seq, emb FROM added WHERE n = 0
        ON CONFLICT (seq) DO UPDATE SET emb = excluded.emb;
    INSERT INTO cube_chunk_next (seq, n, emb) SELECT seq, n, emb FROM added WHERE n > 0
        ON CONFLICT (seq, n) DO UPDATE SET emb = excluded.emb;
    RETURN NULL; END $$"""
_ON_STAGE_REMOVED = """CREATE OR REPLACE FUNCTION memcubed_stage_mirror_remove() RETURNS trigger
    LANGUAGE plpgsql AS $$ BEGIN
    DELETE FROM cube_emb_next m USING removed r WHERE r.n = 0 AND m.seq = r.seq;
    DELETE FROM cube_chunk_next m USING removed r WHERE r.n > 0 AND m.seq = r.seq AND m.n = r.n;
    RETURN NULL; END $$"""
_ON_STAGE_CHANGED = """CREATE OR REPLACE FUNCTION memcubed_stage_mirror_refuse() RETURNS trigger
    LANGUAGE plpgsql AS $$ BEGIN
    RAISE EXCEPTION 'vec_stage rows are deleted and inserted again, never updated'; END $$"""
MIRROR_MIGRATION = [  # idempotent, as every migration is
    _ON_STAGE_ADDED,
    _ON_STAGE_REMOVED,
    _ON_STAGE_CHANGED,
    "DROP TRIGGER IF EXISTS vec_stage_added ON vec_stage",
    "CREATE TRIGGER vec_stage_added AFTER INSERT ON vec_stage REFERENCING NEW TABLE AS added"
    " FOR EACH STATEMENT EXECUTE FUNCTION memcubed_stage_mirror_add()",
    "DROP TRIGGER IF EXISTS vec_stage_removed ON vec_stage",
    "CREATE TRIGGER vec_stage_removed AFTER DELETE ON vec_stage REFERENCING OLD TABLE AS removed"
    " FOR EACH STATEMENT EXECUTE FUNCTION memcubed_stage_mirror_remove()",
    "DROP TRIGGER IF EXISTS vec_stage_changed ON vec_stage",
    "CREATE TRIGGER vec_stage_changed BEFORE UPDATE ON vec_stage"
    " FOR EACH ROW EXECUTE FUNCTION memcubed_stage_mirror_refuse()",
    # A stage written before the triggers may differ from its mirror: both are dropped, the job stages again.
    "TRUNCATE vec_stage, cube_emb_next, cube_chunk_next",
    "UPDATE meta SET value = '' WHERE key = 'embedder.staging'",
]
"""PostgreSQL migration 18: the database keeps the next space equal to the stage."""

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
            raise Conflict("another re-embed is building the next vector space (or a long transaction holds its"
                           " tables); try again once it is done", field="embedder") from exc
        if before is not None:  # the rest of the transaction waits as it did before
            self._run("SELECT set_config('lock_timeout', ?, true)", (before,))

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
        # switch_vectors checked that every cube with a vector has its staged vector, and the triggers keep the
        # next space equal to the stage: the swap only renames, after a bounded wait for the four tables.
        with self._stage_lock():
            self._run(_SWAP)
        # The caller's clear_stage then empties the old space (now the *_next pair) and the stage.
