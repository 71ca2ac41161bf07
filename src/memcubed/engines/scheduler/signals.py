"""Usage signals from the event log: per cube and per co-retrieved set, folded incrementally.

A *co-retrieved set* is the cubes one read returned together: the kernel tags every access event of one
read with the same request id (``details["req"]``); events without one count as a set of their own cube.
Sets are keyed by their cube ids in canonical order (sorted: the order every KV prefix uses), so a set's
key is also the path of its KV chain in the prefix tree.

Hotness is kept at several half-lives at once (``halflife.SPREAD``); which of them a policy ranks by is
learnt from the reads (``halflife.HalfLifeFit``).

Pure and deterministic: time is the events' own, never the clock, so the same log gives the same signals.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from memcubed.engines.scheduler.halflife import BASE, SPREAD, HalfLifeFit
from memcubed.schemas.events import LoggedEvent

__all__ = ["BASE", "REQUEST", "SPREAD", "SetKey", "Signals", "Usage", "decayed", "estimate_tokens"]

REQUEST = "req"
"""Access event detail: the id of the read that returned the cube (shared by the cubes it returned together)."""

SetKey = tuple[str, ...]
"""A co-retrieved set: its cube ids in canonical (sorted) order."""

_MAX_PRINCIPALS = 8  # readers remembered per cube or set (the most frequent ones)



def decayed(hotness: float, last: float | None, now: float, half_life_s: float) -> float:
    """``hotness`` recorded at ``last`` as it stands at ``now`` (halving every ``half_life_s`` seconds)."""
    if last is None or now <= last:
        return hotness
    return float(hotness * 0.5 ** ((now - last) / half_life_s))


def estimate_tokens(text: str) -> int:
    """A deterministic token estimate of ``text``: one token per 4 UTF-8 bytes, at least one.

    The kernel scales it by the tokenizer's own counts once activation cubes exist (see ``token_scale``)."""
    return max(1, math.ceil(len(text.encode("utf-8")) / 4))


@dataclass
class Usage:
    """Reads of one cube or one co-retrieved set.

    Attributes:
        count: reads counted.
        last: time of the last read (epoch seconds).
        heat: decayed read count as of ``last`` at each ``SPREAD`` half-life (+1 per read).
        principals: reads per principal (the most frequent few).
    """

    count: int = 0
    last: float | None = None
    heat: tuple[float, ...] = (0.0,) * len(SPREAD)
    principals: dict[str, int] = field(default_factory=dict)

    @property
    def hotness(self) -> float:
        """Decayed read count as of ``last`` at the configured half-life."""
        return self.heat[BASE]

    def touch(self, at: float, principal: str, half_life_s: float) -> None:
        """Count one read by ``principal`` at ``at`` (an older read adds its decayed weight, like cube stats)."""
        self.count += 1
        pairs = zip(self.heat, SPREAD, strict=True)
        if self.last is not None and at < self.last:
            self.heat = tuple(h + 0.5 ** ((self.last - at) / (half_life_s * m)) for h, m in pairs)
        else:
            self.heat = tuple(decayed(h, self.last, at, half_life_s * m) + 1.0 for h, m in pairs)
            self.last = at
        self.principals[principal] = self.principals.get(principal, 0) + 1
        if len(self.principals) > _MAX_PRINCIPALS:
            ranked = sorted(self.principals.items(), key=lambda kv: (-kv[1], kv[0]))[:_MAX_PRINCIPALS]
            self.principals = dict(ranked)

    def hot(self, now: float, half_life_s: float, choice: int = BASE) -> float:
        """Hotness as of ``now`` at the ``SPREAD[choice]`` multiple of the configured ``half_life_s``."""
        return decayed(self.heat[choice], self.last, now, half_life_s * SPREAD[choice])

    def merged(self, other: Usage, half_life_s: float) -> Usage:
        """The reads of both (the hotness of each carried to the later one's last read)."""
        if self.last is None or other.last is None:
            return other if self.last is None else self
        last = max(self.last, other.last)
        heat = tuple(self.hot(last, half_life_s, j) + other.hot(last, half_life_s, j) for j in range(len(SPREAD)))
        return Usage(self.count + other.count, last, heat,
                     {p: self.principals.get(p, 0) + other.principals.get(p, 0)
                      for p in sorted({*self.principals, *other.principals})})

    def readers(self) -> list[str]:
        """The principals whose reads made this hot, most reads first (ties by name)."""
        return [p for p, _ in sorted(self.principals.items(), key=lambda kv: (-kv[1], kv[0]))]

    def to_json(self) -> dict[str, Any]:
        return {"c": self.count, "l": self.last, "h": list(self.heat), "p": self.principals}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Usage:
        heat = data["h"]  # one number: saved before the spread, taken as the hotness at every half-life
        return cls(count=int(data["c"]), last=None if data["l"] is None else float(data["l"]),
                   heat=tuple(float(h) for h in heat) if isinstance(heat, list) else (float(heat),) * len(SPREAD),
                   principals={str(k): int(v) for k, v in data["p"].items()})


@dataclass
class Signals:
    """Everything folded so far: usage per cube and per set, the log cursor and the log's own clock.

    Attributes:
        cursor: the seq of the last event folded.
        now: the time of the latest event folded (epoch seconds; 0 before any).
        cubes: usage per cube id.
        sets: usage per co-retrieved set.
        fit: where the sets read ranked under each half-life (``halflife.HalfLifeFit``).
    """

    cursor: int = 0
    now: float = 0.0
    cubes: dict[str, Usage] = field(default_factory=dict)
    sets: dict[SetKey, Usage] = field(default_factory=dict)
    fit: HalfLifeFit = field(default_factory=HalfLifeFit)

    def fold(self, events: Sequence[LoggedEvent], *, half_life_s: float, max_sets: int = 4096,
             complete: bool = True) -> int:
        """Fold access events past ``cursor`` (in log order) and move the cursor; return the events folded.

        With ``complete=False`` (a page cut at its limit) the last read's events may continue on the next
        page: they are left for the next call (unless the whole page is that one read).
        Keeps at most ``max_sets`` sets, the hottest (ties by key).
        """
        fresh = [e for e in events if e.seq > self.cursor and e.event.cube_id is not None]
        if not complete and fresh:
            tail = _request(fresh[-1])
            cut = len(fresh)
            while cut > 0 and _request(fresh[cut - 1]) == tail:
                cut -= 1
            if cut > 0:
                fresh = fresh[:cut]
        for group in _reads(fresh):
            at = max(e.event.at.timestamp() for e in group)
            principal = group[0].event.principal
            ids = sorted({str(e.event.cube_id) for e in group})
            for cube_id in ids:
                self.cubes.setdefault(cube_id, Usage()).touch(at, principal, half_life_s)
            key = tuple(ids)
            self.fit.observe(self.sets, key, at, half_life_s)
            before = self.fit.keys(self.sets.get(key), half_life_s)
            usage = self.sets.setdefault(key, Usage())
            usage.touch(at, principal, half_life_s)
            self.fit.moved(before, usage, half_life_s)
            self.now = max(self.now, at)
        if fresh:
            self.cursor = fresh[-1].seq
        elif events and complete:
            self.cursor = max(self.cursor, events[-1].seq)
        self._prune(max_sets, half_life_s)
        return len(fresh)

    def forget(self, cube_ids: Iterable[str]) -> None:
        """Drop every signal about ``cube_ids`` (forgotten or deleted cubes)."""
        gone = set(cube_ids)
        for cube_id in gone:
            self.cubes.pop(cube_id, None)
        self.sets = {k: u for k, u in self.sets.items() if not gone.intersection(k)}
        self.fit.reset()

    def _prune(self, max_sets: int, half_life_s: float) -> None:
        if len(self.sets) <= max_sets:
            return
        ranked = sorted(self.sets.items(), key=lambda kv: (-kv[1].hot(self.now, half_life_s), kv[0]))
        self.sets = dict(ranked[:max_sets])
        self.fit.reset()

    def dumps(self) -> str:
        """The signals as canonical JSON (stored in store meta by the kernel)."""
        body = {"cursor": self.cursor, "now": self.now,
                "cubes": {k: u.to_json() for k, u in sorted(self.cubes.items())},
                "sets": [[list(k), u.to_json()] for k, u in sorted(self.sets.items())],
                "fit": self.fit.to_json()}
        return json.dumps(body, sort_keys=True, separators=(",", ":"))

    @classmethod
    def loads(cls, text: str | None) -> Signals:
        """Signals from ``dumps`` output (empty signals for None)."""
        if not text:
            return cls()
        body = json.loads(text)
        return cls(cursor=int(body["cursor"]), now=float(body["now"]),
                   cubes={k: Usage.from_json(u) for k, u in body["cubes"].items()},
                   sets={tuple(k): Usage.from_json(u) for k, u in body["sets"]},
                   fit=HalfLifeFit.from_json(body.get("fit")))


def _request(logged: LoggedEvent) -> tuple[str, str]:
    """The read an access event belongs to: its request id, or its own seq when it carries none."""
    req = logged.event.details.get(REQUEST)
    return (logged.event.principal, str(req)) if isinstance(req, str) and req else ("", f"#{logged.seq}")


def _reads(events: Sequence[LoggedEvent]) -> list[list[LoggedEvent]]:
    """Events grouped by read: consecutive events with one request id (one read records them together)."""
    groups: list[list[LoggedEvent]] = []
    for logged in events:
        if groups and _request(groups[-1][-1]) == _request(logged):
            groups[-1].append(logged)
        else:
            groups.append([logged])
    return groups
