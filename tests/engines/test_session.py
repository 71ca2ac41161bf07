"""Session-level scoring: grouping hits into sessions, lifting sessions several hits point to, spreading
hits over sessions or round-robin by session, and covering the best sessions by a session-level score; every
function only reorders what it is given."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from memcubed.cube.model import MemCube, Source
from memcubed.engines.text.session import SESSION_SCORES, aggregate, cover, fill, session_scores, sessions_of, spread
from memcubed.schemas.ops import SearchHit, SignalScore

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


def test_fill_gives_the_first_places_to_each_sessions_best_hit() -> None:
    hits = [_hit("a1", 5.0, day=1), _hit("a2", 4.9, day=1), _hit("a3", 4.8, day=1), _hit("b1", 2.0, day=4),
            _hit("b2", 1.9, day=4), _hit("c1", 1.0, day=7)]
    assert _names(fill(hits, GAP, 3)) == ["a1", "b1", "c1", "a2", "a3", "b2"]
    # Fewer sessions than places: the second round gives each session its next best, in the same order.
    assert _names(fill(hits, GAP, 5)) == ["a1", "b1", "c1", "a2", "b2", "a3"]
    assert _names(fill(hits, GAP, 0)) == _names(hits)  # the control: off keeps the order
    # Scores are not rewritten: the fill only reorders.
    assert {h.cube.id: h.score for h in fill(hits, GAP, 3)} == {h.cube.id: h.score for h in hits}
    assert fill([], GAP, 3) == [] and _names(fill(hits[:1], GAP, 3)) == ["a1"]


@given(st.lists(st.tuples(st.integers(0, 4), st.floats(-5, 5, allow_nan=False)), max_size=25),
       st.integers(0, 30))
def test_fill_is_a_reordering_whose_first_places_hold_distinct_sessions(rows: list[tuple[int, float]],
                                                                         slots: int) -> None:
    hits = sorted((_hit(f"h{i}", score, day=3 * day) for i, (day, score) in enumerate(rows)),
                  key=lambda h: -h.score)
    out = fill(hits, GAP, slots)
    assert sorted(_names(out)) == sorted(_names(hits))
    sessions = {h.cube.id: s for h, s in zip(hits, sessions_of(hits, GAP), strict=True)}
    distinct = len(set(sessions.values()))
    first = [sessions[h.cube.id] for h in out[: min(slots, distinct)]]
    assert len(set(first)) == len(first)  # one turn per session while sessions last
    assert _names(out[max(slots, 0):]) == [n for n in _names(hits) if n not in set(_names(out[:slots]))]
    # Within a session, the order of its hits is kept.
    for session in set(sessions.values()):
        mine = [h.cube.id for h in hits if sessions[h.cube.id] == session]
        assert [h.cube.id for h in out if sessions[h.cube.id] == session] == mine


def test_session_scores_best_top2_and_rrf() -> None:
    hits = [_hit("a1", 4.0, day=1), _hit("b1", 3.0, day=4), _hit("a2", 2.0, day=1), _hit("c1", -1.0, day=7)]
    groups = sessions_of(hits, GAP)
    a, b, c = groups[0], groups[1], groups[3]
    assert session_scores(hits, groups, "best") == {a: 4.0, b: 3.0, c: -1.0}
    # top2: a lone hit's second is the list's lowest score.
    assert session_scores(hits, groups, "top2") == {a: 3.0, b: 1.0, c: -1.0}
    rrf = session_scores(hits, groups, "rrf")
    assert rrf[a] == pytest.approx(1 / 61 + 1 / 63) and rrf[b] == pytest.approx(1 / 62)
    # lexsum and dense2 read the raw signals: a hit the dense index did not find counts 0 there.
    raw = [h.model_copy(update={"signals": signals}) for h, signals in zip(hits, [
        {"lexical": SignalScore(rank=1, score=9.0), "vector": SignalScore(rank=2, score=0.5)},
        {"lexical": SignalScore(rank=2, score=4.0), "vector": SignalScore(rank=1, score=0.7)},
        {"lexical": SignalScore(rank=3, score=2.0)}, {}], strict=True)]
    assert session_scores(raw, groups, "lexsum") == {a: 11.0, b: 4.0, c: 0.0}
    assert session_scores(raw, groups, "dense2") == {a: 0.25, b: 0.35, c: 0.0}
    with pytest.raises(ValueError, match="unknown session score"):
        session_scores(hits, groups, "mean")


def test_cover_brings_a_deep_sessions_best_turn_first() -> None:
    # Session "a" crowds the top; session "d" has two good turns deep in the list, session "b" one lone turn.
    hits = [_hit("a1", 5.0, day=1), _hit("a2", 4.9, day=1), _hit("a3", 4.8, day=1), _hit("b1", 4.0, day=4),
            _hit("d1", 3.9, day=9), _hit("d2", 3.8, day=9), _hit("c1", 0.0, day=7)]
    assert _names(cover(hits, GAP, 2, "top2")) == ["a1", "d1", "a2", "a3", "b1", "d2", "c1"]
    assert _names(cover(hits, GAP, 2, "best")) == ["a1", "b1", "a2", "a3", "d1", "d2", "c1"]
    assert _names(cover(hits, GAP, 3, "top2")) == ["a1", "b1", "d1", "a2", "a3", "d2", "c1"]
    assert _names(cover(hits, GAP, 0)) == _names(hits)  # the control: off keeps the order
    assert {h.cube.id: h.score for h in cover(hits, GAP, 3)} == {h.cube.id: h.score for h in hits}
    assert cover([], GAP, 3) == [] and _names(cover(hits[:1], GAP, 3)) == ["a1"]


@given(st.lists(st.tuples(st.integers(0, 5), st.floats(-5, 5, allow_nan=False)), max_size=25),
       st.integers(0, 8), st.sampled_from(SESSION_SCORES))
def test_cover_is_a_reordering_that_leads_with_distinct_sessions(rows: list[tuple[int, float]], wanted: int,
                                                                  how: str) -> None:
    hits = sorted((_hit(f"h{i}", score, day=3 * day) for i, (day, score) in enumerate(rows)), key=lambda h: -h.score)
    out = cover(hits, GAP, wanted, how)
    assert sorted(_names(out)) == sorted(_names(hits))  # a permutation: nothing added, nothing lost
    sessions = {h.cube.id: s for h, s in zip(hits, sessions_of(hits, GAP), strict=True)}
    lead = min(wanted, len(set(sessions.values()))) if len(hits) > 1 else 0
    assert len({sessions[h.cube.id] for h in out[:lead]}) == lead  # one turn per chosen session
    for h in out[:lead]:  # each is its session's best
        assert h.cube.id == next(x.cube.id for x in hits if sessions[x.cube.id] == sessions[h.cube.id])
    assert _names(out[lead:]) == [n for n in _names(hits) if n not in set(_names(out[:lead]))]
    for session in set(sessions.values()):  # within a session, its order is kept
        mine = [h.cube.id for h in hits if sessions[h.cube.id] == session]
        assert [h.cube.id for h in out if sessions[h.cube.id] == session] == mine
