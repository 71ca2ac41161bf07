"""Keys of the KV prefix tree: a segment is one cube's KV slice given the exact cubes before it.

A segment's key hashes the model fingerprint, the segment format and the ordered chain of
``(cube id, sha256 of the cube as rendered)`` up to and including its cube, so two cube sets that
share a prefix share those segments' keys (and so their storage and compute). The key names content,
not versions: a change that leaves what the model reads as it was (tags, importance, a share) never
invalidates its KV; a new text, owner or source does (``render_memory`` shows them).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Protocol

from memcubed.engines.kvcache.memory import CubeText, ordered
from memcubed.errors import ValidationError

__all__ = ["CubeText", "Link", "MemorySegmentIndex", "SegmentIndex", "chain_keys", "ordered", "segment_key"]

Link = tuple[str, str]
"""One step of a prefix-tree path: ``(cube id, sha256 of its rendered text)`` (``CubeText.link``)."""


def segment_key(fingerprint: str, chain: Sequence[Link], *, fmt: str) -> str:
    """Return the key of the segment for ``chain[-1]`` computed after ``chain[:-1]``.

    Args:
        fingerprint: the model fingerprint.
        chain: the links (``CubeText.link``) from the start of the prefix up to and including this
            segment's cube.
        fmt: the segment format (``KVCacheConfig.format_id()``).

    Raises:
        ValidationError: ``chain`` is empty.
    """
    if not chain:
        raise ValidationError("a segment key needs at least one cube", field="chain")
    body = {"fingerprint": fingerprint, "format": fmt,
            "chain": [list(link) for link in chain]}
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def chain_keys(fingerprint: str, chain: Sequence[Link], *, fmt: str) -> list[str]:
    """Return the key of every segment along ``chain`` (one per cube, in order)."""
    return [segment_key(fingerprint, chain[: i + 1], fmt=fmt) for i in range(len(chain))]


class SegmentIndex(Protocol):
    """Maps segment keys to the blob digests holding them (the kernel persists it; tests use memory)."""

    def get(self, key: str) -> str | None:
        """Return the blob digest stored for ``key``, or None."""
        ...

    def put(self, key: str, digest: str) -> None:
        """Record that segment ``key`` is stored in blob ``digest`` (replacing any earlier digest)."""
        ...


class MemorySegmentIndex:
    """A ``SegmentIndex`` in a dict, for tests and single-process use."""

    def __init__(self) -> None:
        self.entries: dict[str, str] = {}

    def get(self, key: str) -> str | None:
        """Return the digest recorded for ``key``, or None."""
        return self.entries.get(key)

    def put(self, key: str, digest: str) -> None:
        """Record ``key`` → ``digest``."""
        self.entries[key] = digest

    def __len__(self) -> int:
        return len(self.entries)
