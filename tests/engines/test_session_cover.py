"""``session.cover``: sessions ranked by a session-level score over a deep candidate list, the best turn of each
of the best sessions moved first; ``session_scores``: the three session-level scores. Both only reorder."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from memcubed.engines.text.session import cover, session_scores, sessions_of
from tests.engines.test_session import GAP, _hit, _names


def test_session_scores_best_top2_and_rrf() -> None:
    hits = [_hit("a1", 4.0, day=1), _hit("b1", 3.0, day=4), _hit("a2", 2.0, day=1), _hit("c1", -1.0, day=7)]
    groups = sessions_of(hits, GAP)
    a, b, c = groups[0], groups[1], groups[3]
    assert session_scores(hits, groups, "best") == {a: 4.0, b: 3.0, c: -1.0}
    # top2: a lone hit's second is the list's lowest score.
    assert session_scores(hits, groups, "top2") == {a: 3.0, b: 1.0, c: -1.0}
    rrf = session_scores(hits, groups, "rrf")
    assert rrf[a] == pytest.approx(1 / 61 + 1 / 63) and rrf[b] == pytest.approx(1 / 62)
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
       st.integers(0, 8), st.sampled_from(["best", "top2", "rrf"]))
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
