"""The time a question names, as an event-time window (absolute always, relative from the question's date)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from memcubed.engines.text.when import time_window

ASKED = datetime(2023, 5, 17, 15, 30, tzinfo=UTC)  # a Wednesday


def _d(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


@pytest.mark.parametrize(("query", "window"), [
    ("What did Caroline do in May 2023?", (_d(2023, 5, 1), _d(2023, 6, 1))),
    ("what happened on 8 May, 2023", (_d(2023, 5, 8), _d(2023, 5, 9))),
    ("what happened on May 8th, 2023", (_d(2023, 5, 8), _d(2023, 5, 9))),
    ("plans for December 2023", (_d(2023, 12, 1), _d(2024, 1, 1))),
    ("where did she travel in 2022", (_d(2022, 1, 1), _d(2023, 1, 1))),
    ("what did I say yesterday", (_d(2023, 5, 16), _d(2023, 5, 17))),
    ("what did we do last week", (_d(2023, 5, 3), _d(2023, 5, 17))),
    ("the film from last month", (_d(2023, 4, 1), _d(2023, 5, 1))),
    ("what did I buy 3 days ago", (_d(2023, 5, 13), _d(2023, 5, 16))),
    ("a year ago", (_d(2022, 1, 1), _d(2023, 1, 1))),
    ("what is my cat called", None),
    ("I have 2023 reasons", None),
    ("on 31 February 2023", None),
])
def test_windows(query: str, window: tuple[datetime, datetime] | None) -> None:
    assert time_window(query, ASKED) == window


def test_relative_times_need_the_questions_date() -> None:
    assert time_window("what did we do last week") is None
    assert time_window("what did we do in May 2023") == (_d(2023, 5, 1), _d(2023, 6, 1))


@pytest.mark.parametrize(("query", "window"), [
    ("what did I do the week before 9 June 2023", (_d(2023, 6, 2), _d(2023, 6, 9))),
    ("the day after 8 May 2023", (_d(2023, 5, 9), _d(2023, 5, 10))),
    ("the weekend of 15 July 2023", (_d(2023, 7, 12), _d(2023, 7, 19))),
    ("what did I buy two months ago", (_d(2023, 3, 1), _d(2023, 4, 1))),
    ("twelve days ago", (_d(2023, 5, 4), _d(2023, 5, 7))),
    ("where was I last Friday", (_d(2023, 5, 11), _d(2023, 5, 14))),
    ("what did we cook in June", (_d(2022, 6, 1), _d(2022, 7, 1))),  # the last June by the question's date
    ("what did we cook in March", (_d(2023, 3, 1), _d(2023, 4, 1))),
])
def test_more_windows(query: str, window: tuple[datetime, datetime]) -> None:
    assert time_window(query, ASKED) == window


@pytest.mark.parametrize("query", ["10000000 days ago", "99999 years ago", "what happened 9999 years ago",
                                   "昨天发生了什么", "the week before", "the week before the party"])
def test_hostile_or_vague_questions_name_no_window(query: str) -> None:
    assert time_window(query, ASKED) is None


def test_windows_outside_the_calendar_are_none() -> None:
    assert time_window("what did I do yesterday", datetime(1, 1, 1, tzinfo=UTC)) is None
    assert time_window("the day after 31 December 9999", ASKED) is None
    assert time_window("in June", None) is None  # a month without a year needs the question's date


@pytest.mark.parametrize(("query", "window"), [
    ("the puppy she got two weeks before August 11, 2023", (_d(2023, 7, 24), _d(2023, 8, 2))),
    ("3 days after 8 May 2023", (_d(2023, 5, 10), _d(2023, 5, 13))),
    ("What did Maria do last weekend before April 10, 2023?", (_d(2023, 4, 3), _d(2023, 4, 10))),
])
def test_shifts_from_a_named_date(query: str, window: tuple[datetime, datetime]) -> None:
    assert time_window(query, ASKED) == window
