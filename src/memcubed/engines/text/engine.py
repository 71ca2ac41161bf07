"""Plaintext retrieval: turn a query into an FTS expression and fuse lexical and vector rankings."""

from __future__ import annotations

import re
from dataclasses import dataclass

from memcubed.engines.text.config import TextConfig
from memcubed.engines.text.stopwords import STOPWORDS
from memcubed.schemas.ops import SignalScore

__all__ = ["FusedHit", "TextEngine"]

_TOKEN = re.compile(r"[^\W_]+", re.UNICODE)


@dataclass(frozen=True)
class FusedHit:
    """One fused result: cube id, fused score and the signals that found it."""

    cube_id: str
    score: float
    signals: dict[str, SignalScore]


class TextEngine:
    """Query building and rank fusion for hybrid search (pure computation, no I/O)."""

    def __init__(self, config: TextConfig | None = None) -> None:
        self.config = config or TextConfig()

    def build_match(self, query: str) -> str | None:
        """Return an FTS5 MATCH expression OR-ing the query's content words, or None if it has none."""
        tokens = [t.lower() for t in _TOKEN.findall(query)]
        terms = list(dict.fromkeys(t for t in tokens if t not in STOPWORDS)) or list(dict.fromkeys(tokens))
        if not terms:
            return None
        return " OR ".join('"' + t.replace('"', '""') + '"' for t in terms)

    def fuse(self, lexical: list[tuple[str, float]], vector: list[tuple[str, float]], k: int) -> list[FusedHit]:
        """Fuse two best-first rankings with weighted reciprocal rank fusion; ties break by id."""
        cfg = self.config
        scores: dict[str, float] = {}
        signals: dict[str, dict[str, SignalScore]] = {}
        for name, ranking, weight in (("lexical", lexical, cfg.lexical_weight), ("vector", vector, cfg.vector_weight)):
            for rank, (cube_id, raw) in enumerate(ranking, start=1):
                scores[cube_id] = scores.get(cube_id, 0.0) + weight / (cfg.rrf_k + rank)
                signals.setdefault(cube_id, {})[name] = SignalScore(rank=rank, score=raw)
        order = sorted(scores, key=lambda cid: (-scores[cid], cid))[:k]
        return [FusedHit(cube_id=cid, score=scores[cid], signals=signals[cid]) for cid in order]
