"""Session-level scoring: hits grouped into the sessions (exchanges) they belong to (pure, no I/O).

A *session* is a run of memories of one source whose event times lie within ``session_gap_s`` of each other
(memories without an event time or a source are each their own session). Two uses, both of which only
reorder the hits they are given (rights were applied before, inside the index queries):

- ``aggregate``: each hit gains, in standard deviations of the candidates' scores, ``weight`` times the
  reciprocal-rank mass of the *other* hits of its session, so a session that several good hits point to
  rises as a whole (a memory scored by its exchange, not alone);
- ``spread``: a hit loses ``penalty`` standard deviations for each better hit of its session, so that a
  question whose evidence lies in several sessions ("How many …", "What books has …") sees each of them within
  the first k rather than five turns of one;
- ``fill``: the first ``slots`` places go round-robin by session, the best hit of each session first (sessions
  in the order of their best hits), so that a count over five sessions can see all five in its first five;
- ``cover``: sessions ranked by a session-level score over a deep candidate list (``session_scores``: the mean of
  a session's best two hits, or the best alone) and the best hit of each of the first ``sessions`` of them moved
  into the first places, so that a count whose third session's best turn sits at rank 20 still sees it.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from datetime import datetime

from memcubed.schemas.ops import SearchHit

__all__ = ["SESSION_SCORES", "aggregate", "cover", "fill", "session_scores", "sessions_of", "spread"]

SESSION_SCORES = ("best", "top2", "rrf", "lexsum", "dense2")


def sessions_of(hits: Sequence[SearchHit], gap_s: float) -> list[int]:
    """A session number per hit (same number: same session), by source and event-time runs within ``gap_s``."""
    by_source: dict[str, list[tuple[datetime, int]]] = {}
    out = list(range(len(hits)))  # each its own session unless grouped below
    for i, hit in enumerate(hits):
        uri, when = hit.cube.source.uri, hit.cube.source.occurred_at
        if uri and when is not None:
            by_source.setdefault(f"{hit.cube.namespace}\x00{uri}", []).append((when, i))
    for members in by_source.values():
        members.sort()
        first, previous = members[0][1], members[0][0]
        for when, i in members:
            if (when - previous).total_seconds() > gap_s:
                first = i
            out[i] = first
            previous = when
    return out


def aggregate(hits: Sequence[SearchHit], gap_s: float, weight: float) -> list[SearchHit]:
    """``hits`` (best first) re-ranked by score plus ``weight`` standard deviations of the scores times the
    reciprocal-rank mass of the other hits of the same session; ties keep the given order."""
    if weight <= 0 or len(hits) < 2:
        return list(hits)
    sessions = sessions_of(hits, gap_s)
    mass: dict[int, float] = {}
    for rank, session in enumerate(sessions, start=1):
        mass[session] = mass.get(session, 0.0) + 1.0 / rank
    sd = statistics.pstdev(h.score for h in hits) or 1.0
    scored = [(h.score + weight * sd * (mass[s] - 1.0 / r), -r, h)
              for r, (h, s) in enumerate(zip(hits, sessions, strict=True), start=1)]
    scored.sort(key=lambda item: (-item[0], -item[1]))
    return [h.model_copy(update={"score": score}) for score, _, h in scored]


def spread(hits: Sequence[SearchHit], gap_s: float, penalty: float) -> list[SearchHit]:
    """``hits`` (best first) picked greedily by score less ``penalty`` standard deviations of the scores for each
    hit of the same session picked before it, so a second turn of one session must beat the best turn of
    another by that margin (``penalty`` 0 leaves the order as it is; ties keep the given order)."""
    if penalty <= 0 or len(hits) < 2:
        return list(hits)
    sessions = sessions_of(hits, gap_s)
    sd = statistics.pstdev(h.score for h in hits) or 1.0
    left = list(range(len(hits)))
    picked: dict[int, int] = {}
    out: list[SearchHit] = []
    while left:
        best = max(left, key=lambda i: (hits[i].score - penalty * sd * picked.get(sessions[i], 0), -i))
        left.remove(best)
        picked[sessions[best]] = picked.get(sessions[best], 0) + 1
        out.append(hits[best])
    return out


def fill(hits: Sequence[SearchHit], gap_s: float, slots: int) -> list[SearchHit]:
    """``hits`` (best first) with the first ``slots`` places filled round-robin by session: the best hit of each
    session in the order of those hits, then each session's second best, and so on; the hits left keep their
    order after them (``slots`` 0 leaves the order as it is)."""
    if slots <= 0 or len(hits) < 2:
        return list(hits)
    sessions = sessions_of(hits, gap_s)
    queues: dict[int, list[int]] = {}
    for i, session in enumerate(sessions):
        queues.setdefault(session, []).append(i)
    picked: list[int] = []
    while len(picked) < slots and any(queues.values()):
        for queue in queues.values():
            if queue and len(picked) < slots:
                picked.append(queue.pop(0))
    chosen = set(picked)
    return [hits[i] for i in picked] + [h for i, h in enumerate(hits) if i not in chosen]


def session_scores(hits: Sequence[SearchHit], sessions: Sequence[int], how: str) -> dict[int, float]:
    """A score per session of ``hits`` (best first; ``sessions`` from ``sessions_of``): ``best``, its best hit's
    score; ``top2``, the mean of its best two (a session with one hit counts the list's lowest score as its
    second); ``rrf``, the sum over its hits of ``1 / (60 + rank)``; ``lexsum``, the sum of its hits' raw lexical
    scores (about the BM25 of the session's candidate turns joined); ``dense2``, the mean of its best two raw
    cosine similarities (0 for a hit the dense index did not find)."""
    if how not in SESSION_SCORES:
        raise ValueError(f"unknown session score {how!r}")
    members: dict[int, list[tuple[int, SearchHit]]] = {}
    for rank, (hit, session) in enumerate(zip(hits, sessions, strict=True), start=1):
        members.setdefault(session, []).append((rank, hit))
    floor = min((h.score for h in hits), default=0.0)
    out: dict[int, float] = {}
    for session, rows in members.items():
        if how == "rrf":
            out[session] = sum(1.0 / (60 + rank) for rank, _ in rows)
        elif how == "lexsum":
            out[session] = sum(h.signals["lexical"].score for _, h in rows if "lexical" in h.signals)
        else:
            scores = sorted(((h.signals["vector"].score if "vector" in h.signals else 0.0) if how == "dense2"
                             else h.score for _, h in rows), reverse=True)
            second = scores[1] if len(scores) > 1 else (0.0 if how == "dense2" else floor)
            out[session] = scores[0] if how == "best" else (scores[0] + second) / 2
    return out


def cover(hits: Sequence[SearchHit], gap_s: float, sessions: int, how: str = "top2", margin: float = 0.0
          ) -> list[SearchHit]:
    """``hits`` (best first, a deep candidate list) with the best hit of each of the ``sessions`` best sessions
    by ``session_scores(how)`` placed first, in the order of those hits; the others keep their order after them
    (``sessions`` 0 leaves the order as it is; ties between sessions keep the order of their best hits). With
    ``margin`` above 0 a session is chosen only if its score lies within ``margin`` standard deviations (of the
    sessions' scores) of the best session's, so that a two-session question does not pull in weak third ones."""
    if sessions <= 0 or len(hits) < 2:
        return list(hits)
    groups = sessions_of(hits, gap_s)
    scores = session_scores(hits, groups, how)
    first: dict[int, int] = {}
    for i, session in enumerate(groups):
        first.setdefault(session, i)
    chosen = sorted(first, key=lambda s: (-scores[s], first[s]))[:sessions]
    if margin > 0 and chosen:
        floor = scores[chosen[0]] - margin * (statistics.pstdev(scores.values()) or 1.0)
        chosen = [s for s in chosen if scores[s] >= floor]
    picked = sorted(first[s] for s in chosen)
    taken = set(picked)
    return [hits[i] for i in picked] + [h for i, h in enumerate(hits) if i not in taken]
