"""Content-addressed blob storage on the filesystem.

A blob whose bytes no longer hash to its name is moved aside into ``root/quarantine/`` (kept for
inspection, out of the digest namespace) when it is read or written again, so the next ``put`` of
the right bytes stores them afresh instead of the damage blocking that digest for good.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from memcubed.errors import IntegrityError, NotFound, ValidationError

__all__ = ["QUARANTINE", "FileBlobStore", "check_digest", "corrupt"]

QUARANTINE = "quarantine"
"""Where blobs that failed their hash check are moved (a folder under the root; a key prefix in a database)."""


def check_digest(digest: str) -> str:
    """Return ``digest`` if it is a lowercase sha256 hex digest.

    Raises:
        ValidationError: it is not (a path-like or truncated digest never reaches a backend).
    """
    if len(digest) != 64 or any(ch not in "0123456789abcdef" for ch in digest):
        raise ValidationError(f"malformed blob digest: {digest!r}", field="sha256")
    return digest


def corrupt(digest: str, data: bytes, *, quarantined: str) -> IntegrityError:
    """The error for a blob whose bytes no longer hash to ``digest`` (now moved to ``quarantined``)."""
    actual = hashlib.sha256(data).hexdigest()
    return IntegrityError(f"blob {digest} is corrupt (hashes to {actual}); moved aside to {quarantined}",
                          sha256=digest, actual=actual, quarantined=quarantined)


class FileBlobStore:
    """Blobs under ``root/ab/cdef…`` named by their sha256; writes are atomic (temp file + rename)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def _path(self, digest: str) -> Path:
        check_digest(digest)
        return self.root / digest[:2] / digest[2:]

    def _quarantine(self, path: Path, digest: str) -> Path:
        """Move a corrupt blob out of the digest namespace; return where it went."""
        folder = self.root / QUARANTINE
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        target = folder / f"{digest}.{time.time_ns()}"
        os.replace(path, target)
        return target

    def put(self, data: bytes) -> str:
        """Store ``data`` and return its sha256 hex digest; intact existing content is not rewritten,
        a corrupt copy under that digest is quarantined and replaced."""
        digest = hashlib.sha256(data).hexdigest()
        path = self._path(digest)
        try:
            if hashlib.sha256(path.read_bytes()).hexdigest() == digest:
                # A fresh put of old bytes restarts garbage collection's grace period (a job reusing them).
                os.utime(path)
                return digest
            self._quarantine(path, digest)
        except FileNotFoundError:
            pass
        # Owner-only folders (0700); mkstemp makes the files 0600.
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        path.parent.mkdir(mode=0o700, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return digest

    def get(self, digest: str) -> bytes:
        """Return the blob's bytes after checking their hash.

        Raises:
            NotFound: no blob has that digest.
            IntegrityError: the stored bytes no longer hash to ``digest``; the blob is quarantined
                (the digest then reads as missing until its right bytes are put again).
        """
        path = self._path(digest)
        try:
            data = path.read_bytes()
        except FileNotFoundError as exc:
            raise NotFound(f"blob {digest} not found", sha256=digest) from exc
        if hashlib.sha256(data).hexdigest() != digest:
            try:
                moved = str(self._quarantine(path, digest))
            except FileNotFoundError:  # another reader moved it first
                moved = str(self.root / QUARANTINE)
            raise corrupt(digest, data, quarantined=moved)
        return data

    def delete(self, digest: str) -> None:
        """Remove a blob; a missing blob is ignored."""
        self._path(digest).unlink(missing_ok=True)

    def exists(self, digest: str) -> bool:
        """Return whether the blob is stored."""
        return self._path(digest).exists()

    def size(self, digest: str) -> int:
        """Return the blob's size in bytes without reading it.

        Raises:
            NotFound: no blob has that digest.
        """
        try:
            return self._path(digest).stat().st_size
        except FileNotFoundError as exc:
            raise NotFound(f"blob {digest} not found", sha256=digest) from exc

    def iter_digests(self) -> Iterator[str]:
        """Yield the digest of every stored blob, in digest order."""
        if not self.root.is_dir():
            return
        for folder in sorted(p for p in self.root.iterdir() if p.is_dir() and len(p.name) == 2):
            for path in sorted(folder.iterdir()):
                if not path.name.startswith(".tmp-") and len(path.name) == 62:
                    yield folder.name + path.name

    def iter_written(self) -> Iterator[tuple[str, float, int]]:
        """Yield ``(digest, mtime, size)`` of every stored blob, in digest order (a blob gone meanwhile is skipped)."""
        for digest in self.iter_digests():
            try:
                info = self._path(digest).stat()
            except FileNotFoundError:
                continue
            yield digest, info.st_mtime, info.st_size
