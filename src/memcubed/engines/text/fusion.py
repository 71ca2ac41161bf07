"""Fusion of several best-first rankings (lexical, vector, expansions) into one, by each signal's confidence.

Each signal's raw scores are first put on a common scale over its own candidate list (``norm``):

- ``zscore``: standardised (mean 0, population sd 1); a candidate missing from the list takes its lowest z;
- ``minmax``: scaled to [0, 1]; a missing candidate takes 0;
- ``rank``: reciprocal rank ``1 / (rank_offset + rank)`` (RRF); a missing candidate takes 0.

A signal's weight is then multiplied by its *confidence* in this query, raised to ``confidence_power``: how far the
mean of its ``confidence_depth`` best scores stands above the rest of its list, in standard deviations. A peaked
list (a few candidates clearly ahead) is one whose top is worth trusting; a flat one (cosine similarities that
barely differ, or BM25 over common words only) says little, so the other signal decides. Power 0 turns it off.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

from memcubed.schemas.ops import SignalScore

__all__ = ["FusedHit", "confidence", "fuse_rankings", "normalise"]

Ranking = Sequence[tuple[str, float]]
NORMS = ("zscore", "minmax", "rank")


@dataclass(frozen=True)
class FusedHit:
    """One fused result: cube id, fused score and the signals that found it."""

    cube_id: str
    score: float
    signals: dict[str, SignalScore]


def normalise(ranking: Ranking, norm: str, *, rank_offset: float = 60.0) -> tuple[dict[str, float], float]:
    """The scores of ``ranking`` (best first) on ``norm``'s scale, and the value a missing candidate takes.

    Raises:
        ValueError: ``norm`` is not one of ``zscore``, ``minmax``, ``rank``.
    """
    if not ranking:
        return {}, 0.0
    values = [score for _, score in ranking]
    if norm == "zscore":
        mean = sum(values) / len(values)
        sd = math.sqrt(sum((v - mean) ** 2 for v in values) / len(values)) or 1.0
        scaled = {cid: (score - mean) / sd for cid, score in ranking}
        return scaled, min(scaled.values())
    if norm == "minmax":
        low, high = min(values), max(values)
        span = (high - low) or 1.0
        return {cid: (score - low) / span for cid, score in ranking}, 0.0
    if norm == "rank":
        out: dict[str, float] = {}
        for rank, (cid, _) in enumerate(ranking, start=1):
            out.setdefault(cid, 1.0 / (rank_offset + rank))
        return out, 0.0
    raise ValueError(f"norm must be one of {', '.join(NORMS)}, got {norm!r}")


def confidence(ranking: Ranking, depth: int) -> float:
    """How far the mean of the ``depth`` best scores of ``ranking`` stands above the mean of the whole list, in
    population standard deviations (0 for a list too short to tell, or all of one score)."""
    values = [score for _, score in ranking]
    if len(values) <= depth or depth < 1:
        return 0.0
    mean = sum(values) / len(values)
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / len(values))
    if sd == 0:
        return 0.0
    top = sorted(values, reverse=True)[:depth]
    return max(0.0, (sum(top) / depth - mean) / sd)


def fuse_rankings(rankings: Mapping[str, Ranking], weights: Mapping[str, float], k: int, *, norm: str = "zscore",
                  confidence_power: float = 0.0, confidence_depth: int = 5, rank_offset: float = 60.0,
                  confident: Collection[str] | None = None) -> list[FusedHit]:
    """Fuse named best-first rankings into the ``k`` best candidates by confidence-weighted normalised scores.

    A signal without a weight counts 0; an empty ranking is left out. With ``confidence_power`` p > 0 each weight
    is multiplied by ``confidence(ranking, confidence_depth) ** p`` (a signal with no confidence at all keeps a
    small share, so that a lone signal still ranks); with ``confident``, only the signals it names are so
    weighted (a second-stage ranking built from the first stage's best hits is peaked by construction). Each
    hit carries, per signal that found it, its rank and raw score. Ties break by id, so results are deterministic.

    Raises:
        ValueError: an unknown ``norm``.
    """
    scaled: dict[str, tuple[dict[str, float], float, float]] = {}
    # (rank, raw score) per candidate and signal; SignalScore models only for the ``k`` returned.
    signals: dict[str, dict[str, tuple[int, float]]] = {}
    for name, ranking in rankings.items():
        if not ranking:
            continue
        values, floor = normalise(ranking, norm, rank_offset=rank_offset)
        weight = weights.get(name, 0.0)
        if confidence_power > 0 and (confident is None or name in confident):
            weight *= max(confidence(ranking, confidence_depth), _MIN_CONFIDENCE) ** confidence_power
        scaled[name] = (values, floor, weight)
        for rank, (cube_id, raw) in enumerate(ranking, start=1):
            signals.setdefault(cube_id, {}).setdefault(name, (rank, raw))
    scores = {cid: sum(w * values.get(cid, floor) for values, floor, w in scaled.values()) for cid in signals}
    order = sorted(scores, key=lambda cid: (-scores[cid], cid))[:k]
    return [FusedHit(cube_id=cid, score=scores[cid],
                     signals={name: SignalScore(rank=rank, score=raw) for name, (rank, raw) in signals[cid].items()})
            for cid in order]


_MIN_CONFIDENCE = 0.05
