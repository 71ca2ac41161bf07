"""Ranking hits by the time a question names and the order it asks for (``engines/text/chronology.py``)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from memcubed.cube.model import MemCube, Source
from memcubed.engines.text.chronology import asks_when, closeness, ordinal_cue, rank_by_time, times_of
from memcubed.engines.text.config import TextConfig
from memcubed.schemas.ops import SearchHit, SignalScore

MAY = (datetime(2023, 5, 1, tzinfo=UTC), datetime(2023, 6, 1, tzinfo=UTC))


def _hit(name: str, score: float, at: datetime | None, text: str = "something happened") -> SearchHit:
    now = datetime(2024, 1, 1, tzinfo=UTC)
    cube = MemCube(id=name, namespace="n", owner="alice", created_at=now, updated_at=now, version=1, text=text,
                   source=Source(type="conversation", occurred_at=at))
    return SearchHit(cube=cube, score=score, signals={"lexical": SignalScore(rank=1, score=score)})


def _ids(hits: list[SearchHit]) -> list[str]:
    return [h.cube.id for h in hits]


@pytest.mark.parametrize(("query", "cue"), [
    ("When did I first meet Sam?", "earliest"),
    ("What was the earliest trip I took?", "earliest"),
    ("What is my current highest score?", "latest"),
    ("Where do I live now?", "latest"),
    ("the most recent book I read", "latest"),
    ("What is my cat called?", None),
    ("What did I do first, and what do I do now?", None),  # both: no order to prefer
])
def test_ordinal_cues(query: str, cue: str | None) -> None:
    assert ordinal_cue(query) == cue


def test_a_memory_is_about_its_event_time_and_the_times_it_names() -> None:
    hit = _hit("a", 1.0, datetime(2023, 6, 10, 12, tzinfo=UTC), "I was in Paris last month")
    times = times_of(hit.cube)
    assert times[0] == (hit.cube.source.occurred_at, hit.cube.source.occurred_at)
    assert times[1] == MAY
    assert closeness(times, MAY, 0.5) == 1.0  # said in June, about May
    assert times_of(_hit("b", 1.0, None, "yesterday").cube) == []


def test_closeness_decays_over_the_slack() -> None:
    just_after = [(MAY[1] + timedelta(days=3), MAY[1] + timedelta(days=3))]
    assert 0 < closeness(just_after, MAY, 0.5) < 1
    assert closeness(just_after, MAY, 0.0) == 0.0
    assert closeness([(MAY[1], MAY[1])], MAY, 0.0) == 0.0  # the window is half-open
    assert closeness([(MAY[0], MAY[0])], MAY, 0.0) == 1.0
    assert closeness([(MAY[1] + timedelta(days=60),) * 2], MAY, 0.5) == 0.0


def _hits() -> list[SearchHit]:
    return [_hit("june", 3.0, datetime(2023, 6, 20, tzinfo=UTC)),
            _hit("april", 2.9, datetime(2023, 4, 2, tzinfo=UTC)),
            _hit("may", 2.5, datetime(2023, 5, 10, tzinfo=UTC)),
            _hit("said-in-june", 1.0, datetime(2023, 6, 2, tzinfo=UTC), "we moved last month"),
            _hit("undated", 0.5, None)]


def test_modes_boost_first_filter_off() -> None:
    boosted = rank_by_time(_hits(), MAY, None, TextConfig(time_boost=1.0))
    assert _ids(boosted)[0] == "may" and "when" in boosted[0].signals
    assert len(boosted) == 5 and boosted[0].score > 3.0
    first = rank_by_time(_hits(), MAY, None, TextConfig(time_mode="first"))
    assert _ids(first) == ["may", "said-in-june", "june", "april", "undated"]
    filtered = rank_by_time(_hits(), MAY, None, TextConfig(time_mode="filter"))
    assert _ids(filtered) == ["may", "said-in-june"]
    assert _ids(rank_by_time(_hits(), MAY, None, TextConfig(time_mode="off"))) == _ids(_hits())


def test_a_small_boost_does_not_bury_a_much_better_hit() -> None:
    hits = [_hit("strong", 10.0, datetime(2023, 8, 1, tzinfo=UTC))] + [
        _hit(f"weak{i}", 0.0, datetime(2023, 5, 3, tzinfo=UTC)) for i in range(5)]
    assert _ids(rank_by_time(hits, MAY, None, TextConfig(time_boost=0.5)))[0] == "strong"


def test_ordinal_boost_prefers_the_time_asked_for() -> None:
    hits = [_hit("old", 1.0, datetime(2023, 1, 1, tzinfo=UTC)), _hit("new", 1.0, datetime(2023, 9, 1, tzinfo=UTC))]
    config = TextConfig(ordinal_boost=1.0)
    assert _ids(rank_by_time(hits, None, "latest", config)) == ["new", "old"]
    assert _ids(rank_by_time(hits, None, "earliest", config)) == ["old", "new"]
    assert _ids(rank_by_time(hits, None, "latest", TextConfig())) == ["old", "new"]  # off by default


def test_ties_keep_the_given_order_and_empty_is_empty() -> None:
    hits = [_hit("b", 1.0, datetime(2023, 5, 2, tzinfo=UTC)), _hit("a", 1.0, datetime(2023, 5, 3, tzinfo=UTC))]
    assert _ids(rank_by_time(hits, MAY, None, TextConfig())) == ["b", "a"]
    assert rank_by_time([], MAY, None, TextConfig()) == []


@pytest.mark.parametrize(("query", "asks"), [
    ("When did Caroline go to the support group?", True),
    ("what date did I move?", True),
    ("How many days before the fest did I run?", True),
    ("Where did I go when it rained?", False),  # "when" not asked
    ("What is my cat called?", False),
])
def test_questions_asking_a_time(query: str, asks: bool) -> None:
    assert asks_when(query) is asks


def test_a_when_question_lifts_hits_that_name_a_time() -> None:
    at = datetime(2023, 5, 8, tzinfo=UTC)
    hits = [_hit("plain", 1.2, at, "the support group was powerful"),
            _hit("dated", 1.0, at, "I went to the support group yesterday"), _hit("other", 0.0, at)]
    assert _ids(rank_by_time(hits, None, None, TextConfig(dated_boost=0.5), when=True))[0] == "dated"
    assert _ids(rank_by_time(hits, None, None, TextConfig(dated_boost=0.5), when=False))[0] == "plain"
    assert _ids(rank_by_time(hits, None, None, TextConfig(dated_boost=0), when=True))[0] == "plain"
