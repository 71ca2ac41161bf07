"""The Protocol of content-addressed blob storage (tensor payloads); ``backends.base`` re-exports it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

__all__ = ["BlobStore"]


class BlobStore(Protocol):
    """Content-addressed storage for tensor payloads."""

    def put(self, data: bytes) -> str:
        """Store ``data`` and return its sha256 hex digest; storing existing content is a no-op."""
        ...

    def get(self, digest: str) -> bytes:
        """Return the bytes stored under ``digest``.

        Raises:
            NotFound: no blob has that digest.
            IntegrityError: the stored bytes no longer hash to ``digest``.
        """
        ...

    def delete(self, digest: str) -> None:
        """Remove a blob; deleting a missing blob does nothing."""
        ...

    def exists(self, digest: str) -> bool:
        """Return whether a blob with ``digest`` is stored."""
        ...

    def size(self, digest: str) -> int:
        """Return a blob's size in bytes without reading it.

        Raises:
            NotFound: no blob has that digest.
        """
        ...

    def iter_digests(self) -> Iterator[str]:
        """Yield the digest of every stored blob (used to copy a store), in digest order."""
        ...

    def iter_written(self) -> Iterator[tuple[str, float, int]]:
        """Yield ``(digest, written, size)`` for every stored blob in digest order: when it was last written
        or put again (seconds since the epoch; what garbage collection's grace period counts from) and its
        size in bytes. Quarantined blobs are not listed."""
        ...
