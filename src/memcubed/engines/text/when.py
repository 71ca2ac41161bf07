"""The time a question asks about: "in May 2023", "on 8 May 2023", "last week", "3 days ago".

``time_window`` turns the first such expression of a query into a half-open UTC interval of event time.
Absolute expressions need nothing else; relative ones ("yesterday", "last month") need the question's own
date (its anchor) and are ignored without one. Search ranks the memories whose event time falls in the
window first (see ``boost``); it never filters on it (the caller's ``true_at`` and ``occurred_*`` do).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

__all__ = ["time_window"]

_MONTHS = {name: n for n, names in enumerate(
    [("january", "jan"), ("february", "feb"), ("march", "mar"), ("april", "apr"), ("may",), ("june", "jun"),
     ("july", "jul"), ("august", "aug"), ("september", "sep", "sept"), ("october", "oct"),
     ("november", "nov"), ("december", "dec")], start=1) for name in names}
_MONTH = "(" + "|".join(sorted(_MONTHS, key=len, reverse=True)) + r")\.?"
_DAY_MONTH_YEAR = re.compile(rf"\b(\d{{1,2}})(?:st|nd|rd|th)?\s+(?:of\s+)?{_MONTH},?\s+(\d{{4}})\b")
_MONTH_DAY_YEAR = re.compile(rf"\b{_MONTH}\s+(\d{{1,2}})(?:st|nd|rd|th)?,?\s+(\d{{4}})\b")
_MONTH_YEAR = re.compile(rf"\b{_MONTH},?\s+(?:of\s+)?(\d{{4}})\b")
_YEAR = re.compile(r"\b(?:in|during|of|year)\s+(\d{4})\b")
_AGO = re.compile(r"\b(\d{1,3}|a|an|one|two|three|four|five|six)\s+(day|week|month|year)s?\s+ago\b")
_WORDS = {"a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6}


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


def time_window(query: str, anchor: datetime | None = None) -> tuple[datetime, datetime] | None:
    """The event-time interval ``query`` asks about, or None; relative expressions count from ``anchor``."""
    q = query.lower()
    if found := _DAY_MONTH_YEAR.search(q):
        return _day(int(found.group(3)), _MONTHS[found.group(2)], int(found.group(1)))
    if found := _MONTH_DAY_YEAR.search(q):
        return _day(int(found.group(3)), _MONTHS[found.group(1)], int(found.group(2)))
    if found := _MONTH_YEAR.search(q):
        return _month(int(found.group(2)), _MONTHS[found.group(1)])
    if found := _YEAR.search(q):
        return _year(int(found.group(1)))
    if anchor is None:
        return None
    today = anchor.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    day = timedelta(days=1)
    if found := _AGO.search(q):
        n = _WORDS.get(found.group(1)) or int(found.group(1))
        unit = found.group(2)
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
    return None
