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
