"""Content-addressed tensor blobs inside the PostgreSQL database, shared by every server using it."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator

from memcubed.backends.blobs import QUARANTINE, check_digest, corrupt
from memcubed.backends.postgres.store import PostgresStore
from memcubed.errors import NotFound

__all__ = ["PostgresBlobStore"]


class PostgresBlobStore:
    """A ``BlobStore`` on the ``blobs`` table of a ``PostgresStore``'s database.

    Inside a write transaction of the store, blob writes join that transaction (a rolled-back
    operation leaves no orphan blob); outside one, each call commits on its own. A row whose bytes
    fail their hash is renamed ``quarantine/<digest>/<microseconds>`` (kept, out of the digest namespace).
    """

    def __init__(self, store: PostgresStore) -> None:
        self._store = store

    def _quarantine(self, digest: str, *, only_if_corrupt: bool) -> str:
        moved = f"{QUARANTINE}/{digest}/{time.time_ns() // 1000}"
        check = " AND encode(sha256(data), 'hex') <> digest" if only_if_corrupt else ""
        self._store._run(f"UPDATE blobs SET digest = ? WHERE digest = ?{check}", (moved, digest))
        return moved

    def put(self, data: bytes) -> str:
        """Store ``data`` and return its sha256 hex digest; intact existing content is not rewritten,
        a corrupt row under that digest is quarantined and replaced."""
        digest = hashlib.sha256(data).hexdigest()
        self._quarantine(digest, only_if_corrupt=True)
        # A fresh put of old bytes restarts garbage collection's grace period (a job reusing them).
        self._store._run("INSERT INTO blobs (digest, size, data, written_at) VALUES (?, ?, ?, ?) ON CONFLICT (digest)"
                         " DO UPDATE SET written_at = EXCLUDED.written_at", (digest, len(data), data, time.time()))
        return digest

    def get(self, digest: str) -> bytes:
        """Return the blob's bytes after checking their hash.

        Raises:
            NotFound: no blob has that digest.
            IntegrityError: the stored bytes no longer hash to ``digest``; the row is quarantined
                (the digest then reads as missing until its right bytes are put again).
        """
        row = self._store._one("SELECT data FROM blobs WHERE digest = ?", (check_digest(digest),))
        if row is None:
            raise NotFound(f"blob {digest} not found", sha256=digest)
        data = bytes(row["data"])
        if hashlib.sha256(data).hexdigest() != digest:
            raise corrupt(digest, data, quarantined=self._quarantine(digest, only_if_corrupt=False))
        return data

    def delete(self, digest: str) -> None:
        """Remove a blob; a missing blob is ignored."""
        self._store._run("DELETE FROM blobs WHERE digest = ?", (check_digest(digest),))

    def exists(self, digest: str) -> bool:
        """Return whether the blob is stored."""
        return self._store._one("SELECT 1 AS hit FROM blobs WHERE digest = ?", (check_digest(digest),)) is not None

    def size(self, digest: str) -> int:
        """Return the blob's size in bytes without reading it.

        Raises:
            NotFound: no blob has that digest.
        """
        row = self._store._one("SELECT size FROM blobs WHERE digest = ?", (check_digest(digest),))
        if row is None:
            raise NotFound(f"blob {digest} not found", sha256=digest)
        return int(row["size"])

    def iter_digests(self) -> Iterator[str]:
        """Yield the digest of every stored blob, in digest order."""
        rows = self._store._all("SELECT digest FROM blobs WHERE digest NOT LIKE ? ORDER BY digest",
                                (f"{QUARANTINE}/%",))
        yield from (r["digest"] for r in rows)

    def iter_written(self) -> Iterator[tuple[str, float, int]]:
        """Yield ``(digest, written_at, size)`` of every stored blob, in digest order."""
        rows = self._store._all("SELECT digest, written_at, size FROM blobs WHERE digest NOT LIKE ? ORDER BY digest",
                                (f"{QUARANTINE}/%",))
        yield from ((r["digest"], float(r["written_at"]), int(r["size"])) for r in rows)
