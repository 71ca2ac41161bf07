"""Fingerprints of embedding models: what a store records so that it never mixes two vector spaces.

A fingerprint is ``sha256:<hex>`` over what decides a model's vectors: its weight and tokenizer files
(hashed once per process per file version), or, for a model that is derived (a distilled static table),
its recipe and the fingerprint of its source. Two embedders with one fingerprint give the same vectors.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterable
from pathlib import Path

from memcubed.errors import BackendUnavailable

__all__ = ["file_digest", "files_fingerprint", "text_fingerprint"]

_DIGESTS: dict[tuple[str, int, int], str] = {}
_LOCK = threading.Lock()


def file_digest(path: Path) -> str:
    """The sha256 hex digest of ``path``'s bytes, memoised per (path, size, modification time).

    Raises:
        BackendUnavailable: the file cannot be read.
    """
    try:
        stat = path.stat()
        key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
        with _LOCK:
            found = _DIGESTS.get(key)
        if found is not None:
            return found
        digest = hashlib.sha256()
        with path.open("rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
    except OSError as exc:
        raise BackendUnavailable(f"cannot read model file {path}: {exc}") from exc
    with _LOCK:
        _DIGESTS[key] = digest.hexdigest()
    return digest.hexdigest()


def text_fingerprint(*parts: str) -> str:
    """A fingerprint of ``parts`` (a recipe, a remote model's name), order-sensitive and unambiguous."""
    digest = hashlib.sha256()
    for part in parts:
        encoded = part.encode("utf-8", "surrogatepass")
        digest.update(len(encoded).to_bytes(8, "big") + encoded)
    return f"sha256:{digest.hexdigest()}"


def files_fingerprint(folder: Path, names: Iterable[str], *extra: str) -> str:
    """A fingerprint of the files ``names`` that exist in ``folder`` (by content, not path) and ``extra``.

    Raises:
        BackendUnavailable: none of the files exists, or one cannot be read.
    """
    present = [name for name in names if (folder / name).is_file()]
    if not present:
        raise BackendUnavailable(f"no model files to fingerprint in {folder}")
    return text_fingerprint(*(f"{name}={file_digest(folder / name)}" for name in present), *extra)
