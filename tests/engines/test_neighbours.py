"""Exchange scoring: the adjacent turns of the best hits share in their scores; it only reorders what it is given."""

from __future__ import annotations

from datetime import UTC, datetime

from memcubed.cube.model import MemCube, Source
from memcubed.engines.text.neighbours import exchange
from memcubed.schemas.ops import SearchHit

DAY = datetime(2023, 5, 1, tzinfo=UTC)


def _hit(name: str, score: float) -> SearchHit:
    cube = MemCube(id=name, namespace="n", owner="admin", created_at=DAY, updated_at=DAY, version=1, text=name,
                   source=Source(type="conversation", uri="chat:1", ref=name, occurred_at=DAY))
    return SearchHit(cube=cube, score=score, signals={})


def _names(hits: list[SearchHit]) -> list[str]:
    return [h.cube.id for h in hits]


def test_a_neighbour_of_the_best_hit_rises_over_a_lone_hit() -> None:
    hits = [_hit("question", 3.0), _hit("lone", 1.1), _hit("answer", 1.0), _hit("x", 0.0)]
    out = exchange(hits, {"question": [hits[2]]}, 0.5, mode="lift")
    assert _names(out)[:3] == ["question", "answer", "lone"]
    assert out[1].signals["exchange"].rank == 1 and out[1].score > 1.0


def test_a_neighbour_that_is_no_hit_enters_at_the_lowest_score_plus_its_share() -> None:
    hits = [_hit("question", 3.0), _hit("a", 1.0), _hit("b", 0.5), _hit("c", 0.0)]
    out = exchange(hits, {"question": [_hit("reply", 99.0)]}, 0.3, mode="lift")
    reply = next(h for h in out if h.cube.id == "reply")
    assert 0.0 < reply.score < 3.0  # its own score is not trusted: the floor plus the share
    assert set(_names(out)) == {"question", "a", "b", "c", "reply"}


def test_weight_zero_or_a_weak_hit_changes_nothing() -> None:
    hits = [_hit("a", 3.0), _hit("b", 2.0), _hit("c", 1.0), _hit("d", 0.0)]
    assert _names(exchange(hits, {"a": [hits[3]]}, 0.0, mode="lift")) == _names(hits)
    assert _names(exchange(hits, {"d": [hits[2]]}, 5.0, mode="lift")) == _names(hits)  # below the mean: no share
    assert _names(exchange(hits, {"unknown": [hits[3]]}, 5.0, mode="lift")) == _names(hits)
    assert _names(exchange(hits[:1], {"a": [_hit("z", 0)]}, 5.0, mode="lift")) == ["a"]


def test_a_turn_next_to_two_hits_takes_the_better_share_once() -> None:
    hits = [_hit("a", 3.0), _hit("b", 2.5), _hit("mid", 0.0), _hit("d", 0.0)]
    out = exchange(hits, {"a": [hits[2]], "b": [hits[2]]}, 0.5, mode="lift")
    mid = next(h for h in out if h.cube.id == "mid")
    assert mid.signals["exchange"].rank == 1
    assert len(out) == 4


def test_toward_moves_a_turn_part_way_to_its_better_neighbour_and_never_past_it() -> None:
    hits = [_hit("a", 10.0), _hit("b", 6.0), _hit("c", 5.0), _hit("d", 0.0)]
    out = {h.cube.id: h for h in exchange(hits, {"b": [hits[0], hits[2]], "a": [_hit("x", 99.0)]}, 0.3,
                                          mode="toward")}
    assert out["a"].score == 10.0 and "exchange" not in out["a"].signals  # a weaker neighbour lifts nothing
    assert abs(out["c"].score - 5.3) < 1e-9 and out["c"].signals["exchange"].rank == 2
    assert abs(out["x"].score - 3.0) < 1e-9  # enters at the floor, 0.3 of the way to its hit, below it
    lifted = {h.cube.id: h for h in exchange(hits, {"b": [hits[0], hits[2]]}, 0.3, mode="lift")}
    assert lifted["a"].score > 10.0  # the control: the default lift raises the best hit from a weaker one


def test_toward_keeps_a_dense_sessions_weaker_hit_above_a_lifted_non_hit() -> None:
    hits = [_hit("top", 10.0), _hit("gold", 4.0), _hit("y", 3.0), _hit("z", 0.0)]
    fresh = {"top": [_hit("user", 0.0)]}
    assert _names(exchange(hits, fresh, 1.0, mode="lift"))[1] == "user"  # the lift pushes the gold down
    assert _names(exchange(hits, fresh, 0.3, mode="toward"))[1] == "gold"


def test_toward_never_passes_the_better_hit_whatever_the_weight() -> None:
    hits = [_hit("a", 10.0), _hit("b", 6.0), _hit("c", 0.0)]
    for weight in (0.3, 1.0, 2.0, 100.0):
        out = exchange(hits, {"a": [hits[1]]}, weight, mode="toward")
        assert _names(out)[0] == "a" and out[0].score == 10.0
        assert {h.cube.id: h for h in out}["b"].score <= 10.0
