"""Content-addressed blob storage on the filesystem."""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from memcubed.errors import IntegrityError, NotFound, ValidationError

__all__ = ["FileBlobStore", "check_digest"]


def check_digest(digest: str) -> str:
    """Return ``digest`` if it is a lowercase sha256 hex digest.

    Raises:
        ValidationError: it is not (a path-like or truncated digest never reaches a backend).
    """
    if len(digest) != 64 or any(ch not in "0123456789abcdef" for ch in digest):
        raise ValidationError(f"malformed blob digest: {digest!r}", field="sha256")
    return digest


class FileBlobStore:
    """Blobs under ``root/ab/cdef…`` named by their sha256; writes are atomic (temp file + rename)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def _path(self, digest: str) -> Path:
        check_digest(digest)
        return self.root / digest[:2] / digest[2:]

    def put(self, data: bytes) -> str:
        """Store ``data`` and return its sha256 hex digest; existing content is not rewritten."""
        digest = hashlib.sha256(data).hexdigest()
        path = self._path(digest)
        if path.exists():
            return digest
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
            IntegrityError: the stored bytes no longer hash to ``digest``.
        """
        path = self._path(digest)
        try:
            data = path.read_bytes()
        except FileNotFoundError as exc:
            raise NotFound(f"blob {digest} not found", sha256=digest) from exc
        actual = hashlib.sha256(data).hexdigest()
        if actual != digest:
            raise IntegrityError(f"blob {digest} is corrupt (hashes to {actual})", sha256=digest, actual=actual)
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
