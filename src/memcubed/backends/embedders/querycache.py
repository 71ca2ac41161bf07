"""A bounded LRU cache of query vectors: a repeated query (a chat turn's retrieval, a paginated UI, an
agent's retries) skips the model entirely. Keyed by the embedder's fingerprint (its weights, not its name:
a model rewritten in place, or a store re-embedded to another model, never reuses a vector of the old
space) and dimension and the exact text, so two embedders or two texts never share a vector."""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

import numpy as np

from memcubed.backends.base import Embedder, Vector

__all__ = ["QUERY_CACHE", "TERM_CACHE", "QueryVectorCache", "query_vector"]


class QueryVectorCache:
    """Least-recently-used map from (embedder fingerprint, dim, text) to a read-only vector.

    Args:
        capacity: vectors kept; the least recently used one is dropped beyond it (0 disables caching).
        queries: embed through the embedder's query path (``embed_queries``, keyed by ``query_fingerprint``)
            when it has one; else, and for ``False``, through ``embed``.
    """

    def __init__(self, capacity: int = 2048, *, queries: bool = False) -> None:
        self.capacity = capacity
        self.queries = queries
        self._rows: OrderedDict[tuple[str, int, str], Vector] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._rows)

    def vector(self, embedder: Embedder, text: str) -> Vector:
        """Return ``text``'s vector from ``embedder``, embedding it only when it is not cached.

        Raises:
            BackendUnavailable: the embedder could not embed it (nothing is cached then).
        """
        key = (_space(embedder, self.queries), int(embedder.dim), text)
        with self._lock:
            found = self._rows.get(key)
            if found is not None:
                self._rows.move_to_end(key)
                self.hits += 1
                return found
            self.misses += 1
        row = np.array(self._embed(embedder, [text])[0], dtype=np.float32)
        row.setflags(write=False)  # shared between callers: nobody may change another's vector
        if self.capacity > 0:
            with self._lock:
                self._rows[key] = row
                self._rows.move_to_end(key)
                while len(self._rows) > self.capacity:
                    self._rows.popitem(last=False)
        return row

    def vectors(self, embedder: Embedder, texts: list[str]) -> list[Vector]:
        """The vectors of ``texts`` (in order), the uncached ones embedded in one batch.

        Raises:
            BackendUnavailable: the embedder could not embed them (nothing is cached then).
        """
        space, dim = _space(embedder, self.queries), int(embedder.dim)
        out: dict[str, Vector] = {}
        with self._lock:
            for text in texts:
                found = self._rows.get((space, dim, text))
                if found is not None:
                    self._rows.move_to_end((space, dim, text))
                    out[text] = found
            self.hits += len(out)
        missing = list(dict.fromkeys(t for t in texts if t not in out))
        if missing:
            fresh = np.array(self._embed(embedder, missing), dtype=np.float32)
            fresh.setflags(write=False)
            with self._lock:
                self.misses += len(missing)
                for text, row in zip(missing, fresh, strict=True):
                    out[text] = row
                    if self.capacity > 0:
                        self._rows[(space, dim, text)] = row
                while len(self._rows) > self.capacity:
                    self._rows.popitem(last=False)
        return [out[t] for t in texts]

    def _embed(self, embedder: Embedder, texts: list[str]) -> Any:
        method = getattr(embedder, "embed_queries", None) if self.queries else None
        return method(texts) if callable(method) else embedder.embed(texts)

    def clear(self) -> None:
        """Drop every cached vector."""
        with self._lock:
            self._rows.clear()


def _space(embedder: Embedder, queries: bool = False) -> str:
    """The embedder's query fingerprint (``queries`` and it has an ``embed_queries``) or fingerprint; its
    name for one written before fingerprints (a caller's own class)."""
    if queries and callable(getattr(embedder, "embed_queries", None)):
        query_space = getattr(embedder, "query_fingerprint", None)
        if isinstance(query_space, str) and query_space:
            return f"query:{query_space}"
    fingerprint = getattr(embedder, "fingerprint", None)
    return fingerprint if isinstance(fingerprint, str) and fingerprint else f"name:{embedder.name}"


QUERY_CACHE = QueryVectorCache(queries=True)
"""The process-wide cache the kernel embeds queries through."""

TERM_CACHE = QueryVectorCache(capacity=50_000)
"""The process-wide cache of single words' vectors (the vocabulary stage, ``engines/text/vocab.py``): a word's
vector depends on the word and the model only, so namespaces share it."""


def query_vector(embedder: Embedder, text: str) -> Vector:
    """``text``'s query vector from ``embedder`` through the process-wide cache."""
    return QUERY_CACHE.vector(embedder, text)
