"""A disk cache of document vectors for tuning runs: ``MEMCUBED_BENCH_EMBED_CACHE=<dir>`` makes retrieval
benchmarks embed each distinct (model, text) once across runs. Results say when it was on, because their
ingest times then exclude embedding; the committed results are measured without it."""

from __future__ import annotations

import hashlib
import os
import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt

from memcubed.backends.base import Embedder
from memcubed.composition import build_embedder

__all__ = ["CachedEmbedder", "bench_embedder"]


class CachedEmbedder:
    """``inner``'s vectors, read from (and added to) one SQLite file per model under ``folder``."""

    def __init__(self, inner: Embedder, folder: Path) -> None:
        self.name, self.dim, self._inner = inner.name, inner.dim, inner
        self.window_tokens = inner.window_tokens
        self.fingerprint = inner.fingerprint
        if callable(getattr(inner, "embed_queries", None)):  # queries embed for real: int8 or fp32 as set
            self.embed_queries = inner.embed_queries
            self.query_fingerprint = inner.query_fingerprint  # type: ignore[attr-defined]
            self.query_runtime_in_use = inner.query_runtime_in_use  # type: ignore[attr-defined]
        folder.mkdir(parents=True, exist_ok=True)
        slug = hashlib.sha256(inner.name.encode()).hexdigest()[:16]
        self._db = sqlite3.connect(folder / f"{slug}.sqlite", check_same_thread=False)
        self._db.execute("CREATE TABLE IF NOT EXISTS v (h TEXT PRIMARY KEY, b BLOB)")
        self._lock = threading.Lock()

    def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        """Cached vectors for ``texts``; the missing ones embedded by the inner model and stored."""
        keys = [hashlib.sha256(t.encode("utf-8", "surrogatepass")).hexdigest() for t in texts]
        out = np.zeros((len(texts), self.dim), np.float32)
        with self._lock:
            found: dict[str, bytes] = {}
            for start in range(0, len(keys), 500):
                chunk = keys[start:start + 500]
                marks = ",".join("?" * len(chunk))
                found.update(self._db.execute(f"SELECT h, b FROM v WHERE h IN ({marks})", chunk).fetchall())
            missing = [i for i, k in enumerate(keys) if k not in found]
            if missing:
                fresh = self._inner.embed([texts[i] for i in missing])
                self._db.executemany("INSERT OR REPLACE INTO v VALUES (?, ?)",
                                     [(keys[i], fresh[j].tobytes()) for j, i in enumerate(missing)])
                self._db.commit()
                out[missing] = fresh
            for i, k in enumerate(keys):
                if k in found:
                    out[i] = np.frombuffer(found[k], np.float32)
        return out


def bench_embedder(spec: str) -> Embedder | str:
    """The embedder a benchmark opens its stores with: ``spec``, cached on disk when the environment says so."""
    folder = os.environ.get("MEMCUBED_BENCH_EMBED_CACHE")
    inner = build_embedder(spec) if folder else None
    return CachedEmbedder(inner, Path(folder)) if inner is not None and folder else spec
