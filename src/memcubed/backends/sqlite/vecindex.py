"""An in-process index of binary-quantised embeddings: vector candidates in about a millisecond at 100k.

sqlite-vec's KNN costs O(k) per chunk (≈ 13 ms for 100 candidates among 100k vectors here), so the
SQLite store takes its candidates from this index instead and keeps SQL for what must be exact:
the rights, filters and cosine rescoring of the candidates. Rights are applied during the scan,
not after: only cubes the principal owns or was granted (read from the ``acl`` table in the same
call) can become candidates.

The index follows the store, whichever process writes: triggers on ``cube_emb`` and ``cube_chunk`` append
the seq of every added, changed or removed embedding to ``vec_log``; each search first replays the log
entries it has not seen. A namespace is loaded from both tables on its first search; a long memory has
one code per window, and it is a candidate through the nearest of them.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from memcubed.backends.sqlite.changelog import log_span

__all__ = ["VECTOR_LOG_DDL", "BinaryVectorIndex"]


VECTOR_LOG_DDL = [
    "CREATE TABLE IF NOT EXISTS vec_log (id INTEGER PRIMARY KEY AUTOINCREMENT, seq INTEGER NOT NULL)",
    "CREATE TRIGGER IF NOT EXISTS cube_emb_added AFTER INSERT ON cube_emb"
    " BEGIN INSERT INTO vec_log (seq) VALUES (new.seq); END",
    "CREATE TRIGGER IF NOT EXISTS cube_emb_changed AFTER UPDATE ON cube_emb"
    " BEGIN INSERT INTO vec_log (seq) VALUES (new.seq); END",
    "CREATE TRIGGER IF NOT EXISTS cube_emb_removed AFTER DELETE ON cube_emb"
    " BEGIN INSERT INTO vec_log (seq) VALUES (old.seq); END",
    # A long memory's window vectors (cube_chunk) are codes of the same cube: their changes replay alike.
    "CREATE TRIGGER IF NOT EXISTS cube_chunk_added AFTER INSERT ON cube_chunk"
    " BEGIN INSERT INTO vec_log (seq) VALUES (new.seq); END",
    "CREATE TRIGGER IF NOT EXISTS cube_chunk_removed AFTER DELETE ON cube_chunk"
    " BEGIN INSERT INTO vec_log (seq) VALUES (old.seq); END",
]
"""Idempotent DDL of the change log the index replays (run wherever ``cube_emb`` exists)."""

Query = Callable[[str, Sequence[Any]], list[Any]]
"""Runs one SQL statement with parameters and returns its rows."""

_FAR = np.iinfo(np.int32).max


def binary_codes(embeddings: npt.NDArray[np.float32]) -> npt.NDArray[np.uint64]:
    """Sign bits of each row packed into 64-bit words, column-major: shape (words, rows)."""
    bits = np.packbits(embeddings > 0, axis=1)
    pad = (-bits.shape[1]) % 8
    if pad:
        bits = np.pad(bits, ((0, 0), (0, pad)))
    return np.ascontiguousarray(bits.view(np.uint64).T)


@dataclass
class _Space:
    """The codes of one namespace."""

    seqs: npt.NDArray[np.int64]
    owners: npt.NDArray[np.int32]
    words: npt.NDArray[np.uint64]


class BinaryVectorIndex:
    """Hamming top-k over the sign bits of every embedding of a namespace, rights applied during the scan."""

    def __init__(self, dim: int) -> None:
        self.dim = dim
        self._lock = threading.Lock()
        self._spaces: dict[str, _Space] = {}
        self._owner_ids: dict[str, int] = {}
        self._seen = 0

    def candidates(self, query: Query, vector: npt.NDArray[np.float32], *, namespace: str, principal: str,
                   is_admin: bool, k: int) -> list[int]:
        """Return the seqs of up to ``k`` cubes of ``namespace`` the principal may read, nearest first
        by Hamming distance of their sign bits to ``vector``'s."""
        with self._lock:
            self._replay(query)
            space = self._spaces.get(namespace) or self._load(query, namespace)
            if space.seqs.size == 0:
                return []
            code = binary_codes(np.asarray(vector, dtype=np.float32).reshape(1, -1))[:, 0]
            distance = np.bitwise_count(space.words[0] ^ code[0]).astype(np.int32)
            for word, part in zip(space.words[1:], code[1:], strict=True):
                distance += np.bitwise_count(word ^ part)
            if not is_admin:
                readable = space.owners == self._owner_ids.get(principal, -1)
                granted = [row[0] for row in query("SELECT cube_seq FROM acl WHERE principal = ?", (principal,))]
                if granted:
                    readable |= np.isin(space.seqs, np.asarray(granted, dtype=np.int64))
                distance[~readable] = _FAR
            # Rows, not cubes: a chunked cube has several, so take more rows and keep each cube's nearest.
            rows = min(2 * k, distance.size)
            nearest = np.argpartition(distance, rows - 1)[:rows] if rows < distance.size else np.arange(distance.size)
            nearest = nearest[np.argsort(distance[nearest], kind="stable")]
            found = dict.fromkeys(space.seqs[nearest[distance[nearest] < _FAR]].tolist())
            return list(found)[:k]

    def size(self, namespace: str) -> int:
        """The codes loaded for ``namespace`` (0 before its first search); a snapshot, not a count in the store."""
        space = self._spaces.get(namespace)
        return 0 if space is None else int(space.seqs.size)

    def warm(self, query: Query, namespace: str) -> None:
        """Load ``namespace``'s codes now (else its first search does)."""
        with self._lock:
            self._replay(query)
            if namespace not in self._spaces:
                self._load(query, namespace)

    def _owner(self, name: str) -> int:
        return self._owner_ids.setdefault(name, len(self._owner_ids))

    def _rows(self, query: Query, sql: str, params: Sequence[Any]) -> tuple[list[int], list[str], list[int],
                                                                              npt.NDArray[np.uint64]]:
        rows = query(sql, params)
        seqs = [int(r[0]) for r in rows]
        spaces = [str(r[1]) for r in rows]
        owners = [self._owner(str(r[2])) for r in rows]
        if rows and len(rows[0][3]) != 4 * self.dim:
            # The store switched embedders (its log then forces a reload): codes of the new dimension from now.
            self.dim = len(rows[0][3]) // 4
            self._spaces.clear()
        if rows:
            matrix = np.frombuffer(b"".join(r[3] for r in rows), dtype=np.float32).reshape(len(rows), self.dim)
            words = binary_codes(matrix)
        else:
            words = np.zeros(((self.dim + 63) // 64, 0), dtype=np.uint64)
        return seqs, spaces, owners, words

    def _load(self, query: Query, namespace: str) -> _Space:
        seqs, _, owners, words = self._rows(
            query, "SELECT c.seq, c.namespace, c.owner, e.emb FROM cubes c JOIN cube_emb e ON e.seq = c.seq"
                   " WHERE c.namespace = ? UNION ALL SELECT c.seq, c.namespace, c.owner, k.emb FROM cubes c"
                   " JOIN cube_chunk k ON k.seq = c.seq WHERE c.namespace = ? ORDER BY 1", (namespace, namespace))
        space = _Space(np.asarray(seqs, dtype=np.int64), np.asarray(owners, dtype=np.int32), words)
        self._spaces[namespace] = space
        return space

    def _replay(self, query: Query) -> None:
        """Apply the embeddings added, changed or removed since the last search, by any process."""
        head, low = log_span(query, "vec_log")
        if head == self._seen:
            return
        if not self._spaces or low > self._seen + 1:
            # Nothing loaded yet, or the entries after ours were trimmed: namespaces (re)load as they are now.
            self._spaces.clear()
            self._seen = head
            return
        touched = sorted({int(r[0]) for r in query("SELECT seq FROM vec_log WHERE id > ?", (self._seen,))})
        self._seen = head
        seqs, spaces, owners, words = self._rows(
            query, "SELECT c.seq, c.namespace, c.owner, e.emb FROM json_each(?) AS j CROSS JOIN cubes c"
                   " ON c.seq = j.value JOIN cube_emb e ON e.seq = c.seq UNION ALL"
                   " SELECT c.seq, c.namespace, c.owner, k.emb FROM json_each(?) AS j CROSS JOIN cubes c"
                   " ON c.seq = j.value JOIN cube_chunk k ON k.seq = c.seq", (json.dumps(touched),) * 2)
        gone = np.asarray(touched, dtype=np.int64)
        for name, space in self._spaces.items():
            keep = ~np.isin(space.seqs, gone)
            mine = [i for i, s in enumerate(spaces) if s == name]
            self._spaces[name] = _Space(
                np.concatenate([space.seqs[keep], np.asarray([seqs[i] for i in mine], dtype=np.int64)]),
                np.concatenate([space.owners[keep], np.asarray([owners[i] for i in mine], dtype=np.int32)]),
                np.concatenate([space.words[:, keep], words[:, mine]], axis=1),
            )
