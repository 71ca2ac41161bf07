"""Staged vectors in SQL both dialects run (``backends.staging``); each dialect swaps its own index."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from memcubed.backends._statements import SqlStatements
from memcubed.backends.staging import StagedRow
from memcubed.errors import ConfigurationError, Conflict

__all__ = ["SqlVectorStaging"]

_LIVE = "c.forgotten = 0 AND c.text IS NOT NULL"


class SqlVectorStaging(SqlStatements):
    """The staging methods of the StorageBackend Protocol over the ``vec_stage`` table."""

    _space: str | None = None

    def _vector_value(self, vector: Any) -> Any:
        """A vector as the dialect's driver binds it."""
        raise NotImplementedError

    def _swap_vectors(self, dim: int) -> None:
        """Replace the dialect's vector index by the staged rows (inside a write transaction)."""
        raise NotImplementedError

    def begin_stage(self, dim: int) -> None:
        self.clear_stage()

    def prepare_switch(self) -> None:
        """Nothing to build ahead here: the switch copies the stage in (SQLite's readers keep their snapshot)."""

    def expect_space(self, record: str | None) -> None:
        self._space = record

    def _check_space(self) -> None:
        """Refuse to use the vectors when the store was switched to another embedder since it was opened."""
        if self._space is None:
            return
        rows = self._all("SELECT value FROM meta WHERE key = 'embedder'")
        if not rows or rows[0]["value"] != self._space:
            raise ConfigurationError("this store was re-embedded with another embedder since it was opened here;"
                                     " open it again", reason="reembedded")

    def reembed_todo(self, after_seq: int, limit: int) -> list[tuple[int, str]]:
        rows = self._all(f"SELECT c.seq, c.text FROM cube_emb e JOIN cubes c ON c.seq = e.seq WHERE e.seq > ?"
                         f" AND {_LIVE} AND NOT EXISTS (SELECT 1 FROM vec_stage s WHERE s.seq = e.seq AND s.n = 0)"
                         " ORDER BY e.seq LIMIT ?", (after_seq, limit))
        return [(int(r["seq"]), str(r["text"])) for r in rows]

    def reembed_counts(self) -> tuple[int, int]:
        row = self._all(f"SELECT count(*) AS n, count(s.seq) AS staged FROM cube_emb e JOIN cubes c"
                        f" ON c.seq = e.seq LEFT JOIN vec_stage s ON s.seq = e.seq AND s.n = 0 WHERE {_LIVE}")[0]
        return int(row["n"]), int(row["staged"])

    def stage_vectors(self, rows: Sequence[StagedRow]) -> int:
        if not rows:
            return 0
        seqs = [seq for seq, *_ in rows]
        marks = ", ".join("?" * len(seqs))
        # The write lock is held: a text read here stays until commit, and a later change unstages the cube.
        current = {int(r["seq"]): r["text"] for r in self._all(
            f"SELECT c.seq, c.text FROM cubes c JOIN cube_emb e ON e.seq = c.seq WHERE c.seq IN ({marks})"
            f" AND {_LIVE}", seqs)}
        fresh = [row for row in rows if current.get(row[0]) == row[1]]
        if not fresh:
            return 0
        kept = [row[0] for row in fresh]
        self._run(f"DELETE FROM vec_stage WHERE seq IN ({', '.join('?' * len(kept))})", kept)
        self._many("INSERT INTO vec_stage (seq, n, emb) VALUES (?, ?, ?)",
                   [(seq, n, self._vector_value(v)) for seq, _, main, chunks in fresh
                    for n, v in enumerate((main, *chunks))])
        return len(fresh)

    def clear_stage(self) -> None:
        self._run("DELETE FROM vec_stage")

    def switch_vectors(self, dim: int) -> int:
        missing = self._all(f"SELECT count(*) AS n FROM cube_emb e JOIN cubes c ON c.seq = e.seq WHERE {_LIVE}"
                            " AND NOT EXISTS (SELECT 1 FROM vec_stage s WHERE s.seq = e.seq AND s.n = 0)")[0]["n"]
        if missing:
            raise Conflict(f"{missing} cubes have no staged vector yet; stage them first", missing=int(missing))
        # Staged rows of cubes that lost their vectors meanwhile (none: unindexing unstages) never switch in.
        self._run("DELETE FROM vec_stage WHERE NOT EXISTS (SELECT 1 FROM cube_emb e WHERE e.seq = vec_stage.seq)")
        count = int(self._all("SELECT count(*) AS n FROM vec_stage WHERE n = 0")[0]["n"])
        self._swap_vectors(dim)
        self.clear_stage()
        return count
