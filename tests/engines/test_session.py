"""Session-level scoring: grouping hits into sessions, lifting sessions several hits point to, and spreading
hits over sessions; every function only reorders what it is given."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from memcubed.cube.model import MemCube, Source
from memcubed.engines.text.session import aggregate, sessions_of, spread
from memcubed.schemas.ops import SearchHit

DAY = datetime(2023, 5, 1, tzinfo=UTC)
GAP = 6 * 3600.0


def _hit(name: str, score: float, *, uri: str | None = "chat:1", day: int | None = 0, namespace: str = "n"
         ) -> SearchHit:
    when = None if day is None else DAY + timedelta(days=day)
    cube = MemCube(id=name, namespace=namespace, owner="admin", created_at=DAY, updated_at=DAY, version=1, text=name,
                   source=Source(type="conversation", uri=uri, ref=name, occurred_at=when))
    return SearchHit(cube=cube, score=score, signals={})


def _names(hits: list[SearchHit]) -> list[str]:
    return [h.cube.text or "" for h in hits]


def test_sessions_are_runs_of_one_source_within_the_gap() -> None:
    hits = [_hit("a", 5, day=0), _hit("b", 4, day=3), _hit("c", 3, day=0), _hit("d", 2, uri="chat:2", day=0),
            _hit("e", 1, uri=None), _hit("f", 1, day=None), _hit("g", 1, day=0, namespace="m")]
    s = sessions_of(hits, GAP)
    assert s[0] == s[2]  # same source, same day
    assert len({s[0], s[1], s[3], s[4], s[5], s[6]}) == 6  # other day, other source, no source, no time, namespace


def test_aggregate_lifts_a_session_that_several_hits_point_to() -> None:
    hits = [_hit("lone", 3.0, day=9), _hit("pair-1", 2.9, day=1), _hit("pair-2", 2.0, day=1), _hit("x", 0.0, day=5)]
    assert _names(aggregate(hits, GAP, 1.0))[:2] == ["pair-1", "lone"]
    assert _names(aggregate(hits, GAP, 0.0)) == _names(hits)


def test_spread_lets_a_second_session_in_before_a_sessions_next_turn() -> None:
    hits = [_hit("a1", 3.0, day=1), _hit("a2", 2.9, day=1), _hit("a3", 2.8, day=1), _hit("b1", 2.5, day=4)]
    spread_out = _names(spread(hits, GAP, 3.0))  # sd 0.19: a second turn of "a" must lead "b1" by 0.57
    assert spread_out[:2] == ["a1", "b1"] and sorted(spread_out) == sorted(_names(hits))
    assert _names(spread(hits, GAP, 0.0)) == _names(hits)
    # A far better second turn of the same session keeps its place: the penalty is a margin, not a cap.
    strong = [_hit("a1", 10.0, day=1), _hit("a2", 9.0, day=1), _hit("b1", 0.0, day=4), _hit("c1", -1.0, day=7)]
    assert _names(spread(strong, GAP, 0.5))[:2] == ["a1", "a2"]


def test_degenerate_inputs() -> None:
    assert spread([], GAP, 1.0) == [] and aggregate([], GAP, 1.0) == []
    one = [_hit("a", 1.0)]
    assert _names(spread(one, GAP, 1.0)) == ["a"] and _names(aggregate(one, GAP, 1.0)) == ["a"]
    same = [_hit(str(i), 1.0, day=i) for i in range(5)]  # all scores equal: order kept, no division by zero
    assert _names(spread(same, GAP, 1.0)) == _names(same) == _names(aggregate(same, GAP, 1.0))
