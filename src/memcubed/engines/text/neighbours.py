"""Exchange scoring: a turn shares in the score of the turns next to it (pure, no I/O).

A question and its answer are adjacent turns of one exchange, and often only one of them shares the question's
words: "What does Melanie say running has been great for?" finds Caroline's "how's the running going?", while
the answer is Melanie's reply, "great for my mental health". Most LoCoMo misses at k = 10 that are not
vocabulary gaps sit right next to a top-10 hit (NOTES.md, ``vocab``). ``exchange`` lifts each adjacent turn of
the best hits by ``weight`` times its hit's standard score; unlike ``neighbour_hits`` (which places every
neighbour right after its hit), a neighbour still has to beat the hits between on score. It only reorders the
hits and neighbours it is given: the kernel passes only neighbours the searcher may read.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from typing import Literal

from memcubed.schemas.ops import SearchHit, SignalScore

__all__ = ["exchange"]


def exchange(hits: Sequence[SearchHit], neighbours: Mapping[str, Sequence[SearchHit]],
             weight: float, mode: Literal["lift", "toward"]) -> list[SearchHit]:
    """``hits`` (best first) and the ``neighbours`` of some of them (hit id → adjacent turns as hits), re-ranked:
    each neighbour gains ``weight`` standard deviations of the hits' scores times the standard score of its best
    adjacent hit (above the mean only); a neighbour that is no hit enters at the lowest hit score. Each lifted
    turn carries an ``exchange`` signal (rank: its hit's position, score: the gain). Ties keep the given order;
    ``weight`` 0 or fewer than two hits leave the list as it is.

    ``mode="toward"``: a turn instead moves ``weight`` of the way toward its best adjacent hit's score, only when
    that hit scores higher: it never passes that hit, the best hit never moves, and a turn already beating its
    neighbours is not lifted past the hits between (the lift no longer crowds a dense answer session's weaker
    gold turn out of the top k: NOTES.md, session 7, ``prefqual``; the default since)."""
    if weight <= 0 or len(hits) < 2:
        return list(hits)
    if mode == "toward":
        return _toward(hits, neighbours, weight)
    scores = [h.score for h in hits]
    mean, sd = statistics.fmean(scores), statistics.pstdev(scores) or 1.0
    floor = min(scores)
    position = {h.cube.id: i for i, h in enumerate(hits)}
    pool: dict[str, SearchHit] = {h.cube.id: h for h in hits}
    gain: dict[str, tuple[float, int]] = {}
    for hit_id, adjacent in neighbours.items():
        if hit_id not in position:
            continue
        lift = weight * max(0.0, (pool[hit_id].score - mean) / sd) * sd
        for turn in adjacent:
            pool.setdefault(turn.cube.id, turn.model_copy(update={"score": floor, "signals": {}}))
            if lift > gain.get(turn.cube.id, (0.0, 0))[0]:
                gain[turn.cube.id] = (lift, position[hit_id] + 1)
    return _lifted(pool, gain)


def _toward(hits: Sequence[SearchHit], neighbours: Mapping[str, Sequence[SearchHit]],
            weight: float) -> list[SearchHit]:
    floor = min(h.score for h in hits)
    position = {h.cube.id: i for i, h in enumerate(hits)}
    pool: dict[str, SearchHit] = {h.cube.id: h for h in hits}
    best: dict[str, tuple[float, int]] = {}
    for hit_id, adjacent in neighbours.items():
        if hit_id not in position:
            continue
        for turn in adjacent:
            pool.setdefault(turn.cube.id, turn.model_copy(update={"score": floor, "signals": {}}))
            if pool[hit_id].score > best.get(turn.cube.id, (float("-inf"), 0))[0]:
                best[turn.cube.id] = (pool[hit_id].score, position[hit_id] + 1)
    gain = {cid: (min(weight, 1.0) * (better - pool[cid].score), rank)  # a weight above 1 would pass the better hit
            for cid, (better, rank) in best.items() if better > pool[cid].score}
    return _lifted(pool, gain)


def _lifted(pool: dict[str, SearchHit], gain: Mapping[str, tuple[float, int]]) -> list[SearchHit]:
    """The pool's hits, each raised by its positive gain (with an ``exchange`` signal), best first; ties keep the
    pool's order."""
    order = {cid: i for i, cid in enumerate(pool)}
    out: list[tuple[float, int, SearchHit]] = []
    for cid, hit in pool.items():
        lift, rank = gain.get(cid, (0.0, 0))
        if lift > 0:
            signals = {**hit.signals, "exchange": SignalScore(rank=rank, score=lift)}
            hit = hit.model_copy(update={"score": hit.score + lift, "signals": signals})
        out.append((hit.score, order[cid], hit))
    out.sort(key=lambda item: (-item[0], item[1]))
    return [hit for _, _, hit in out]
