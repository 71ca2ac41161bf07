"""Ranking hits by time: the window a question names ("in May 2023", "last week") and the order it asks for
("the first time", "most recent", "currently").

A hit's times are its event time (``valid_from``, else ``source.occurred_at``) and the spans its own text
names, resolved against that event time (``engines.text.temporal``): a memory saying "last month" on
10 June 2023 is of May 2023 too. With the default ``time_mode`` a hit of the window gains a boost in standard
deviations of the candidates' scores (scale-free, whatever the fusion's scores are), decaying to zero over the
slack beyond the window's ends, so a near miss of the question's dates still ranks and nothing relevant is
lost; ``first`` and ``filter`` are the hard variants it was measured against (bench/temporal.py). These
functions only reorder the hits they are given: rights were applied before, inside the index queries.
"""

from __future__ import annotations

import re
import statistics
from datetime import datetime, timedelta
from typing import Literal

from memcubed.cube.model import MemCube
from memcubed.engines.text.config import TextConfig
from memcubed.engines.text.temporal import resolve
from memcubed.schemas.ops import SearchHit, SignalScore

__all__ = ["Ordinal", "asks_when", "closeness", "ordinal_cue", "rank_by_time", "times_of"]

Ordinal = Literal["earliest", "latest"]
Window = tuple[datetime, datetime]

_EARLIEST = re.compile(r"\b(?:first|earliest|initially|originally|to begin with|at the start)\b")
_LATEST = re.compile(r"\b(?:most recent(?:ly)?|latest|last time|currently|current|now|these days|lately"
                     r"|recently|newest|up to date)\b")
_WHEN = re.compile(r"^\W*when\b|\bwhat (?:date|day|month|year|time)\b|\bhow long ago\b"
                   r"|\bwhich (?:date|day|month|year)\b|\bhow many (?:days|weeks|months|years)\b")
_DAY = timedelta(days=1)


def asks_when(query: str) -> bool:
    """Whether ``query`` asks for a time ("When did…", "what date…", "how many days before…")."""
    return bool(_WHEN.search(query.lower()))


def ordinal_cue(query: str) -> Ordinal | None:
    """Whether ``query`` asks for the earliest or the latest occurrence, or neither (or both)."""
    q = query.lower()
    earliest, latest = bool(_EARLIEST.search(q)), bool(_LATEST.search(q))
    if earliest == latest:
        return None
    return "earliest" if earliest else "latest"


def times_of(cube: MemCube) -> list[Window]:
    """The event-time intervals ``cube`` is about: its event time (a point) and the spans its text names."""
    at = cube.valid_from or cube.source.occurred_at
    out: list[Window] = [(at, at)] if at is not None else []
    out.extend((span.start, span.end) for span in resolve(cube.text or "", cube.source.occurred_at))
    return out


def closeness(times: list[Window], window: Window, slack: float) -> float:
    """1 when one of ``times`` meets ``window`` (a point inside the half-open window, or an overlapping span),
    falling linearly to 0 at ``slack`` × the window's length (at least a day) beyond its ends."""
    start, end = window
    reach = max(_DAY, (end - start) * slack).total_seconds()
    best = 0.0
    for lo, hi in times:
        inside = start <= lo < end if lo == hi else lo < end and hi > start
        if inside:
            return 1.0
        gap = (start - hi if hi <= start else lo - end).total_seconds()
        best = max(best, 1.0 - gap / reach) if slack > 0 else best
    return best


def rank_by_time(hits: list[SearchHit], window: Window | None, cue: Ordinal | None,
                 config: TextConfig, *, when: bool = False) -> list[SearchHit]:
    """``hits`` (best first) reordered by ``window`` and ``cue`` as ``config`` says; hits of the window carry a
    ``when`` signal (score: closeness, 1 inside) and their score includes any boost. A question asking ``when``
    lifts the hits whose own words name a time by ``config.dated_boost``.

    Ties keep the given order, so the result is deterministic.
    """
    timed = window is not None and config.time_mode != "off"
    if not hits or not (timed or (cue and config.ordinal_boost) or (when and config.dated_boost)):
        return hits
    times = [times_of(hit.cube) for hit in hits]
    near = [closeness(t, window, config.time_slack) if window and config.time_mode != "off" else 0.0 for t in times]
    if window is not None and config.time_mode in ("first", "filter"):
        inside = [i for i, c in enumerate(near) if c == 1.0]
        rest = [] if config.time_mode == "filter" else [i for i, c in enumerate(near) if c < 1.0]
        return [_mark(hits[i], near[i], rank, hits[i].score) for rank, i in enumerate(inside + rest, start=1)]
    scores = [hit.score for hit in hits]
    unit = statistics.pstdev(scores) if len(scores) > 1 else 0.0
    unit = unit or 1.0
    bonus = [config.time_boost * unit * c for c in near]
    if cue is not None and config.ordinal_boost:
        for i, place in enumerate(_places(times, cue)):
            bonus[i] += config.ordinal_boost * unit * place
    if when and config.dated_boost:
        for i, hit in enumerate(hits):
            point = (hit.cube.valid_from or hit.cube.source.occurred_at) is not None
            bonus[i] += config.dated_boost * unit * (len(times[i]) > point)  # names a time of its own
    order = sorted(range(len(hits)), key=lambda i: -(scores[i] + bonus[i]))
    return [_mark(hits[i], near[i], rank, scores[i] + bonus[i]) for rank, i in enumerate(order, start=1)]


def _places(times: list[list[Window]], cue: Ordinal) -> list[float]:
    """Each hit's place in time among the hits with an event time, 1 for the one the cue asks for, 0 for the
    other end (and for hits without a time)."""
    starts = [t[0][0] if t else None for t in times]
    known = sorted({s for s in starts if s is not None}, reverse=cue == "latest")
    if len(known) < 2:
        return [0.0] * len(times)
    position = {s: 1.0 - i / (len(known) - 1) for i, s in enumerate(known)}
    return [position[s] if s is not None else 0.0 for s in starts]


def _mark(hit: SearchHit, near: float, rank: int, score: float) -> SearchHit:
    signals = {**hit.signals, "when": SignalScore(rank=rank, score=near)} if near > 0 else hit.signals
    return hit.model_copy(update={"signals": signals, "score": score})
