"""Relative times in a memory's words, resolved against its event time (``engines/text/temporal.py``)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from memcubed.cube.model import MemCube, Source
from memcubed.engines.text import TextEngine, temporal
from memcubed.engines.text.config import TextConfig
from memcubed.engines.text.temporal import resolve

SATURDAY = datetime(2023, 7, 15, 13, 0, tzinfo=UTC)
WEDNESDAY = datetime(2023, 5, 17, 9, 30, tzinfo=UTC)


def _days(text: str, anchor: datetime = SATURDAY) -> list[tuple[date, date]]:
    return [(span.first, span.last) for span in resolve(text, anchor)]


def _d(month: int, day: int, year: int = 2023) -> date:
    return date(year, month, day)


@pytest.mark.parametrize(("text", "anchor", "expected"), [
    ("I went to a support group yesterday", SATURDAY, [(_d(7, 14), _d(7, 14))]),
    ("Last night was amazing", SATURDAY, [(_d(7, 14), _d(7, 14))]),
    ("the day before yesterday", SATURDAY, [(_d(7, 13), _d(7, 13))]),
    ("I'm off today, and tomorrow too", SATURDAY, [(_d(7, 15), _d(7, 15)), (_d(7, 16), _d(7, 16))]),
    ("two days ago", SATURDAY, [(_d(7, 13), _d(7, 13))]),
    ("I bought it 10 days ago", SATURDAY, [(_d(7, 5), _d(7, 5))]),
    ("a few days ago", SATURDAY, [(_d(7, 10), _d(7, 13))]),
    ("three weeks ago", SATURDAY, [(_d(6, 21), _d(6, 27))]),
    ("two months ago", SATURDAY, [(_d(5, 1), _d(5, 31))]),
    ("a year ago", SATURDAY, [(_d(1, 1, 2022), _d(12, 31, 2022))]),
    ("in two weeks from now", SATURDAY, [(_d(7, 26), _d(8, 1))]),
    ("Last Friday I went to the adoption meeting", SATURDAY, [(_d(7, 14), _d(7, 14))]),
    ("Last Fri I finished a pottery workshop", SATURDAY, [(_d(7, 14), _d(7, 14))]),
    ("next Friday", SATURDAY, [(_d(7, 21), _d(7, 21))]),
    ("this Friday", WEDNESDAY, [(_d(5, 19), _d(5, 19))]),
    ("last week", SATURDAY, [(_d(7, 3), _d(7, 9))]),
    ("this week", WEDNESDAY, [(_d(5, 15), _d(5, 21))]),
    ("next week", WEDNESDAY, [(_d(5, 22), _d(5, 28))]),
    ("last weekend I joined a mentorship program", datetime(2023, 7, 17, tzinfo=UTC), [(_d(7, 15), _d(7, 16))]),
    ("last weekend", SATURDAY, [(_d(7, 8), _d(7, 9))]),
    ("this weekend", WEDNESDAY, [(_d(5, 20), _d(5, 21))]),
    ("this weekend", SATURDAY, [(_d(7, 15), _d(7, 16))]),
    ("last month", SATURDAY, [(_d(6, 1), _d(6, 30))]),
    ("next month", datetime(2023, 12, 31, 23, 0, tzinfo=UTC), [(_d(1, 1, 2024), _d(1, 31, 2024))]),
    ("last year", SATURDAY, [(_d(1, 1, 2022), _d(12, 31, 2022))]),
    ("in March", SATURDAY, [(_d(3, 1), _d(3, 31))]),  # the nearest March: past
    ("in January", datetime(2023, 11, 2, tzinfo=UTC), [(_d(1, 1, 2024), _d(1, 31, 2024))]),  # coming
    ("last March", datetime(2023, 3, 20, tzinfo=UTC), [(_d(3, 1, 2022), _d(3, 31, 2022))]),
    ("next December", SATURDAY, [(_d(12, 1), _d(12, 31))]),
    ("last summer", SATURDAY, [(_d(6, 1, 2022), _d(8, 31, 2022))]),
    ("this summer", SATURDAY, [(_d(6, 1), _d(8, 31))]),
    ("next winter", SATURDAY, [(_d(12, 1), _d(2, 29, 2024))]),  # into a leap year's February
    ("on 8 May 2023", SATURDAY, [(_d(5, 8), _d(5, 8))]),
    ("May 8th, 2023", SATURDAY, [(_d(5, 8), _d(5, 8))]),
    ("in June 2023", SATURDAY, [(_d(6, 1), _d(6, 30))]),
])
def test_resolution(text: str, anchor: datetime, expected: list[tuple[date, date]]) -> None:
    assert _days(text, anchor) == expected


@pytest.mark.parametrize("text", [
    "this may be true",  # the modal verb, not the month
    "I have 2023 reasons",
    "the sun is out, I sat down",
    "I haven't seen her in two years",  # a duration, not a future
    "10000000 days ago",
    "5000 years ago",
    "我昨天去了公园",  # other scripts: nothing matches, nothing breaks
    "вчера я ходил в парк",
    "on 31 February 2023",
    "",
])
def test_no_time_is_invented(text: str) -> None:
    assert _days(text) == []


def test_nothing_without_an_event_time() -> None:
    assert resolve("yesterday", None) == []


def test_phrases_outside_the_calendar_are_skipped() -> None:
    assert resolve("yesterday", datetime(1, 1, 1, tzinfo=UTC)) == []
    assert resolve("tomorrow and next year", datetime(9999, 12, 31, tzinfo=UTC)) == []
    assert _days("a year ago, and yesterday", datetime(1, 6, 1, tzinfo=UTC)) == [(date(1, 5, 31), date(1, 5, 31))]


def test_month_ends_and_leap_days() -> None:
    assert _days("yesterday", datetime(2024, 3, 1, 8, tzinfo=UTC)) == [(date(2024, 2, 29), date(2024, 2, 29))]
    assert _days("yesterday", datetime(2023, 3, 1, 8, tzinfo=UTC)) == [(date(2023, 2, 28), date(2023, 2, 28))]
    assert _days("tomorrow", datetime(2023, 12, 31, 8, tzinfo=UTC)) == [(date(2024, 1, 1), date(2024, 1, 1))]
    assert _days("last month", datetime(2024, 3, 31, tzinfo=UTC)) == [(date(2024, 2, 1), date(2024, 2, 29))]
    assert _days("last month", datetime(2023, 1, 10, tzinfo=UTC)) == [(date(2022, 12, 1), date(2022, 12, 31))]


def test_days_are_counted_in_the_speakers_zone_across_a_clock_change() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    # 00:30 on 27 March 2023 in Berlin is still 26 March in UTC; the clocks went forward on the 26th.
    [span] = resolve("yesterday", datetime(2023, 3, 27, 0, 30, tzinfo=berlin))
    assert (span.first, span.words()) == (date(2023, 3, 26), ["26 march 2023"])
    assert span.start == datetime(2023, 3, 25, 23, 0, tzinfo=UTC)
    assert span.end - span.start == timedelta(hours=23)
    [autumn] = resolve("today", datetime(2023, 10, 29, 12, tzinfo=berlin))
    assert autumn.end - autumn.start == timedelta(hours=25)


@pytest.mark.parametrize(("text", "words"), [
    ("yesterday", ["14 july 2023"]),
    ("last weekend", ["8 july 2023", "9 july 2023"]),
    ("last week", ["3 july 2023", "july 2023"]),
    ("last month", ["june 2023"]),
    ("last summer", ["june 2022", "july 2022", "august 2022"]),
    ("last year", ["2022"]),
])
def test_words_name_dates_the_way_questions_do(text: str, words: list[str]) -> None:
    assert [w for span in resolve(text, SATURDAY) for w in span.words()] == words


def test_a_phrase_counts_once_and_long_texts_stay_bounded() -> None:
    assert len(resolve("the day before yesterday", SATURDAY)) == 1
    assert len(resolve("yesterday " * 10_000, SATURDAY)) == 8


def test_the_context_column_carries_the_resolved_dates_unless_turned_off() -> None:
    at = datetime(2023, 5, 8, 13, 56, tzinfo=UTC)
    cube = MemCube(id="c", namespace="n", owner="alice", created_at=at, updated_at=at, version=1,
                   text="I went there yesterday, and again the day before yesterday",
                   source=Source(type="conversation", occurred_at=at))
    assert TextEngine().context_for(cube, None) == "1:56 pm on 8 may, 2023 6 may 2023 7 may 2023"
    assert TextEngine(TextConfig(resolve_times=False)).context_for(cube, None) == "1:56 pm on 8 may, 2023"
    undated = cube.model_copy(update={"source": Source(type="conversation")})
    assert TextEngine().context_for(undated, None) == ""


def test_one_instant_in_two_zones_resolves_by_each_zones_own_day_cached_or_not() -> None:
    """``resolve`` is cached by text, the anchor's day and its zone: the same instant on another local day, or
    in another zone, never reuses a result, and a long text (not cached) resolves alike."""
    late = datetime(2023, 7, 15, 23, 30, tzinfo=UTC)
    paris = late.astimezone(ZoneInfo("Europe/Paris"))  # 16 July there
    for _ in range(2):  # the second round is served from the cache
        assert _days("yesterday", late) == [(_d(7, 14), _d(7, 14))]
        assert _days("yesterday", paris) == [(_d(7, 15), _d(7, 15))]
        utc_span, paris_span = resolve("yesterday", late)[0], resolve("yesterday", paris)[0]
        assert utc_span.start == datetime(2023, 7, 14, tzinfo=UTC)
        assert paris_span.start == datetime(2023, 7, 14, 22, tzinfo=UTC)  # midnight in Paris (CEST)
    long = "yesterday " + "and so on " * 300
    assert resolve(long, paris) == resolve("yesterday", paris)
    assert resolve("yesterday", paris) is not resolve("yesterday", paris)  # each caller gets its own list


def test_the_resolution_cache_holds_no_memory_text() -> None:
    secret = "my secret diagnosis came back yesterday"
    anchor = datetime(2023, 5, 8, 12, tzinfo=UTC)
    assert resolve(secret, anchor) == resolve(secret, anchor)  # the second answer comes from the cache
    assert temporal._cache and not any(secret in repr(item) for item in temporal._cache.items())
