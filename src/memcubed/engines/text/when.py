"""The time a question asks about: "in May 2023", "on 8 May 2023", "the week before 9 June 2023", "last week",
"two months ago", "in June" (the last June by the question's date).

``time_window`` turns the first such expression of a query into a half-open UTC interval of event time.
Absolute expressions need nothing else; relative ones ("yesterday", "last month") need the question's own
date (its anchor) and are ignored without one. Search ranks the memories whose event time falls in the
window first (see ``boost``); it never filters on it (the caller's ``true_at`` and ``occurred_*`` do).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from memcubed.engines.text.temporal import MONTHS as _MONTHS
from memcubed.engines.text.temporal import NUMBER, number

__all__ = ["time_window"]

_MONTH = "(" + "|".join(sorted(_MONTHS, key=len, reverse=True)) + r")\.?"
_WEEKDAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
_AROUND = re.compile(rf"\b(?:the|last)\s+(day|week|weekend|month|{'|'.join(_WEEKDAYS)})\s+(before|after|of)\s+(.*)")
_SHIFTED = re.compile(rf"\b{NUMBER}\s+(day|week|month|year)s?\s+(before|after)\s+(.*)")
_BARE_MONTH = re.compile(r"\b(?:in|during|of)\s+(january|february|march|april|may|june|july|august|september"
                         r"|october|november|december)\b")
_DAY_MONTH_YEAR = re.compile(rf"\b(\d{{1,2}})(?:st|nd|rd|th)?\s+(?:of\s+)?{_MONTH},?\s+(\d{{4}})\b")
_MONTH_DAY_YEAR = re.compile(rf"\b{_MONTH}\s+(\d{{1,2}})(?:st|nd|rd|th)?,?\s+(\d{{4}})\b")
_MONTH_YEAR = re.compile(rf"\b{_MONTH},?\s+(?:of\s+)?(\d{{4}})\b")
_YEAR = re.compile(r"\b(?:in|during|of|year)\s+(\d{4})\b")
_AGO = re.compile(rf"\b{NUMBER}\s+(day|week|month|year)s?\s+ago\b")
_MAX_AGO_DAYS = 366 * 200


def _day(year: int, month: int, day: int) -> tuple[datetime, datetime] | None:
    try:
        start = datetime(year, month, day, tzinfo=UTC)
    except ValueError:
        return None
    return start, start + timedelta(days=1)


def _month(year: int, month: int) -> tuple[datetime, datetime]:
    start = datetime(year, month, 1, tzinfo=UTC)
    return start, datetime(year + month // 12, month % 12 + 1, 1, tzinfo=UTC)


def _months_back(anchor: datetime, n: int) -> tuple[datetime, datetime]:
    index = anchor.year * 12 + anchor.month - 1 - n
    return _month(index // 12, index % 12 + 1)


def _year(year: int) -> tuple[datetime, datetime] | None:
    return (datetime(year, 1, 1, tzinfo=UTC), datetime(year + 1, 1, 1, tzinfo=UTC)) if 1 <= year < 9999 else None


def _absolute(q: str) -> tuple[datetime, datetime] | None:
    if found := _DAY_MONTH_YEAR.search(q):
        return _day(int(found.group(3)), _MONTHS[found.group(2)], int(found.group(1)))
    if found := _MONTH_DAY_YEAR.search(q):
        return _day(int(found.group(3)), _MONTHS[found.group(1)], int(found.group(2)))
    if found := _MONTH_YEAR.search(q):
        return _month(int(found.group(2)), _MONTHS[found.group(1)])
    if found := _YEAR.search(q):
        return _year(int(found.group(1)))
    return None


def _around(unit: str, side: str, q: str) -> tuple[datetime, datetime] | None:
    """"the week before 9 June 2023": the unit next to (or, with "of", around) an absolute date."""
    named = _absolute(q)
    if named is None:
        return None
    day = timedelta(days=1)
    start, end = named
    if side == "of":
        return (start - 3 * day, end + 3 * day) if unit in ("week", "weekend") else named
    span = {"day": day, "week": 7 * day, "weekend": 7 * day, "month": 31 * day}.get(unit, 7 * day)
    return (start - span, start) if side == "before" else (end, end + span)


def _shifted(n: int, unit: str, side: str, q: str) -> tuple[datetime, datetime] | None:
    """"two weeks before 11 August 2023": that far from an absolute date, give or take a third of the shift."""
    named = _absolute(q)
    days = n * {"day": 1, "week": 7, "month": 30, "year": 365}[unit]
    if named is None or days > _MAX_AGO_DAYS:
        return None
    at = named[0] + timedelta(days=-days if side == "before" else days)
    give = timedelta(days=max(1, days // 3))
    return at - give, at + give + timedelta(days=1)


def time_window(query: str, anchor: datetime | None = None) -> tuple[datetime, datetime] | None:
    """The event-time interval ``query`` asks about, or None; relative expressions count from ``anchor``."""
    q = query.lower()
    try:
        found = _AROUND.search(q)
        if found and (window := _around(found.group(1), found.group(2), found.group(3))):
            return window
        found = _SHIFTED.search(q)
        if found and (window := _shifted(number(found.group(1)), found.group(2), found.group(3), found.group(4))):
            return window
        if window := _absolute(q):
            return window
        return _relative(q, anchor) if anchor is not None else None
    except (OverflowError, ValueError):
        return None  # a window outside the calendar


def _relative(q: str, anchor: datetime) -> tuple[datetime, datetime] | None:
    today = anchor.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    day = timedelta(days=1)
    if found := _AGO.search(q):
        n, unit = number(found.group(1)), found.group(2)
        if n * {"day": 1, "week": 7, "month": 31, "year": 366}[unit] > _MAX_AGO_DAYS:
            return None
        if unit == "day":
            return today - n * day - day, today - n * day + 2 * day
        if unit == "week":
            return today - (n + 1) * 7 * day, today - (n - 1) * 7 * day + day
        if unit == "month":
            return _months_back(today, n)
        return _year(today.year - n)
    relative = {
        "yesterday": (today - day, today), "today": (today, today + day), "tonight": (today, today + day),
        "last weekend": (today - 9 * day, today), "last week": (today - 14 * day, today),
        "this week": (today - 7 * day, today + day), "last month": _months_back(today, 1),
        "this month": _months_back(today, 0), "last year": _year(today.year - 1), "this year": _year(today.year),
        "recently": (today - 30 * day, today + day),
    }
    for phrase, window in relative.items():
        if re.search(rf"\b{phrase}\b", q):
            return window
    if found := re.search(rf"\blast\s+({'|'.join(_WEEKDAYS)})\b", q):
        back = (today.weekday() - _WEEKDAYS.index(found.group(1)) - 1) % 7 + 1
        return today - back * day - day, today - back * day + 2 * day
    if found := _BARE_MONTH.search(q):  # the last such month by the question's date
        month = _MONTHS[found.group(1)]
        return _month(today.year - (month > today.month), month)
    return None
