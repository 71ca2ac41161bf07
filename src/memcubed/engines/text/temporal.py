"""Times a memory names in its own words, resolved against its event time: "yesterday", "last week", "two days
ago", "next Friday", "this weekend", "in March", "8 May 2023".

A memory saying "I went there yesterday" on 8 May 2023 is about 7 May 2023, and a question naming that date
should find it. ``resolve`` turns each time phrase of a text into a ``Span`` of calendar days, counted in the
event time's own time zone (so "yesterday" said at 00:30 in Berlin is the Berlin yesterday, 23 hours long on
the day the clocks go forward). ``Span.words`` writes a span the way questions name dates ("7 may 2023",
"may 2023"); the index adds them to the memory's context column, and the time-window ranking of search
(``kernel.reads``) compares the spans with the window a question asks about. Everything is a fixed table of
patterns: deterministic, no language model. Phrases that resolve outside the calendar (year 1 minus a day,
"10000000 days ago") are ignored, as are numbers too large to be meant.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo

__all__ = ["MONTHS", "NUMBER", "Span", "number", "resolve"]

MONTHS = {name: n for n, names in enumerate(
    [("january", "jan"), ("february", "feb"), ("march", "mar"), ("april", "apr"), ("may",), ("june", "jun"),
     ("july", "jul"), ("august", "aug"), ("september", "sep", "sept"), ("october", "oct"),
     ("november", "nov"), ("december", "dec")], start=1) for name in names}
_MONTH = "(" + "|".join(sorted(MONTHS, key=len, reverse=True)) + r")\.?"
_FULL_MONTH = "(" + "|".join(n for n in MONTHS if len(n) > 3 or n == "may") + ")"
_WEEKDAYS = {name: i for i, names in enumerate(
    [("monday", "mon"), ("tuesday", "tues", "tue"), ("wednesday", "wed"), ("thursday", "thurs", "thur", "thu"),
     ("friday", "fri"), ("saturday", "sat"), ("sunday", "sun")]) for name in names}
_WEEKDAY = "(" + "|".join(sorted(_WEEKDAYS, key=len, reverse=True)) + r")\.?"
_NUMBER_WORDS = {
    "a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
    "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15,
    "sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19, "twenty": 20, "thirty": 30,
    "a couple of": 2, "a couple": 2, "couple of": 2, "a few": 3, "few": 3,
}
NUMBER = "(" + "|".join(sorted(_NUMBER_WORDS, key=len, reverse=True)) + r"|\d{1,4})"
"""A count as people write it: digits (at most four) or a number word ("two", "a couple of")."""
# Longest meant offsets per unit; anything beyond is taken for a figure of speech or noise.
_MAX_DAYS = 366 * 200
_UNIT_DAYS = {"day": 1, "week": 7, "month": 31, "year": 366}
_SEASONS = {"spring": (3, 5), "summer": (6, 8), "fall": (9, 11), "autumn": (9, 11), "winter": (12, 2)}


def number(text: str) -> int:
    """The count ``text`` names (a match of ``NUMBER``)."""
    return _NUMBER_WORDS.get(text) or int(text)


@dataclass(frozen=True)
class Span:
    """A resolved time: calendar days ``first``..``last`` (inclusive) in the event's zone, as a UTC interval."""

    phrase: str
    first: date
    last: date
    start: datetime
    end: datetime

    def words(self) -> list[str]:
        """The span as questions name it: each day ("7 may 2023") of a span of at most three days, else its
        first day, each month it touches ("may 2023") and, for a year, the year."""
        if (self.last - self.first).days < 3:
            return [_day_words(self.first + timedelta(days=i)) for i in range((self.last - self.first).days + 1)]
        out = [] if self.first.day == 1 else [_day_words(self.first)]
        if (self.last - self.first).days >= 360:
            return out + [str(y) for y in range(self.first.year, self.last.year + 1)]
        index, stop = self.first.year * 12 + self.first.month - 1, self.last.year * 12 + self.last.month - 1
        for i in range(index, stop + 1):
            out.append(f"{_MONTH_NAMES[i % 12]} {i // 12}")
        return out


_MONTH_NAMES = ["january", "february", "march", "april", "may", "june", "july", "august", "september",
                "october", "november", "december"]


def _day_words(day: date) -> str:
    return f"{day.day} {_MONTH_NAMES[day.month - 1]} {day.year}"


Days = tuple[date, date]
_Rule = Callable[[re.Match[str], date], Days | None]


def _shift(today: date, days: int) -> Days:
    day = today + timedelta(days=days)
    return day, day


def _month(year: int, month: int) -> Days:
    index = year * 12 + month  # the next month, zero-based
    return date(year, month, 1), date(index // 12, index % 12 + 1, 1) - timedelta(days=1)


def _months_from(today: date, n: int) -> Days:
    index = today.year * 12 + today.month - 1 + n
    return _month(index // 12, index % 12 + 1)


def _week(today: date, weeks: int) -> Days:
    monday = today - timedelta(days=today.weekday()) + timedelta(weeks=weeks)
    return monday, monday + timedelta(days=6)


def _weekend(today: date, which: int) -> Days:
    """The weekend before (-1), of (0) or after (+1) ``today``; on a weekday "this" and "next" weekend are both
    the coming one, "last weekend" the one just past."""
    on_weekend = today.weekday() >= 5
    saturday = today + timedelta(days=5 - today.weekday())  # this weekend's (past on a Sunday)
    if which < 0 or (which > 0 and on_weekend):
        saturday += timedelta(weeks=which)
    return saturday, saturday + timedelta(days=1)


def _ago(match: re.Match[str], today: date, sign: int) -> Days | None:
    n, unit = number(match.group(1)), match.group(2)
    if n * _UNIT_DAYS[unit] > _MAX_DAYS:
        return None
    fuzzy = match.group(1).endswith("few")  # "a few days ago": two to five days
    if unit == "day":
        if fuzzy:
            lo, hi = sorted((sign * 2, sign * 5))
            return today + timedelta(days=lo), today + timedelta(days=hi)
        return _shift(today, sign * n)
    if unit == "week":
        centre = today + timedelta(weeks=sign * n)
        return centre - timedelta(days=3), centre + timedelta(days=3)
    if unit == "month":
        return _months_from(today, sign * n)
    year = today.year + sign * n
    return date(year, 1, 1), date(year, 12, 31)


def _relative_unit(match: re.Match[str], today: date) -> Days | None:
    which = {"last": -1, "past": -1, "previous": -1, "this": 0, "next": 1, "coming": 1}[match.group(1)]
    unit = match.group(2)
    if unit == "week":
        return _week(today, which)
    if unit == "weekend":
        return _weekend(today, which)
    if unit == "month":
        return _months_from(today, which)
    return date(today.year + which, 1, 1), date(today.year + which, 12, 31)


def _relative_weekday(match: re.Match[str], today: date) -> Days | None:
    which, target = match.group(1), _WEEKDAYS[match.group(2)]
    if which == "this" and len(match.group(2)) <= 3:
        return None  # "this sun", "this wed…": too often no day
    if which == "last":  # the most recent one strictly before today
        return _shift(today, -((today.weekday() - target - 1) % 7 + 1))
    if which == "next":  # the first one strictly after today
        return _shift(today, (target - today.weekday() - 1) % 7 + 1)
    return _shift(today, target - today.weekday())  # "this friday": the one of this week


def _relative_month(match: re.Match[str], today: date) -> Days | None:
    which, month = match.group(1), MONTHS[match.group(2)]
    if which == "last":
        return _month(today.year - (month >= today.month), month)
    if which == "next":
        return _month(today.year + (month <= today.month), month)
    if which == "this":  # "this may be" is no month
        return None if month == 5 else _month(today.year, month)
    # "in march": the nearest march, coming (up to six months ahead) or past
    if (month - today.month) % 12 <= 6:
        return _month(today.year + (month < today.month), month)
    return _month(today.year - (month > today.month), month)


def _season(match: re.Match[str], today: date) -> Days | None:
    lo, hi = _SEASONS[match.group(2)]
    # Each year's season starts in that year; winter runs into the next one.
    seasons = [(date(y, lo, 1), _month(y + (lo > hi), hi)[1]) for y in range(today.year - 2, today.year + 2)]
    which = match.group(1)
    if which in ("last", "past"):
        return max((s for s in seasons if s[1] < today), default=None)
    if which == "next":
        return min((s for s in seasons if s[0] > today), default=None)
    # "this summer": the one under way, else the nearest
    return min(seasons, key=lambda s: 0 if s[0] <= today <= s[1] else min(abs((s[0] - today).days),
                                                                          abs((s[1] - today).days)))


def _absolute_day(day: int, month: int, year: int) -> Days | None:
    try:
        found = date(year, month, day)
    except ValueError:
        return None
    return found, found


_RULES: list[tuple[re.Pattern[str], _Rule]] = [
    (re.compile(rf"\b(\d{{1,2}})(?:st|nd|rd|th)?\s+(?:of\s+)?{_MONTH},?\s+(\d{{4}})\b"),
     lambda m, _: _absolute_day(int(m.group(1)), MONTHS[m.group(2)], int(m.group(3)))),
    (re.compile(rf"\b{_MONTH}\s+(\d{{1,2}})(?:st|nd|rd|th)?,?\s+(\d{{4}})\b"),
     lambda m, _: _absolute_day(int(m.group(2)), MONTHS[m.group(1)], int(m.group(3)))),
    (re.compile(rf"\b{_FULL_MONTH},?\s+(?:of\s+)?(\d{{4}})\b"),
     lambda m, _: _month(int(m.group(2)), MONTHS[m.group(1)]) if int(m.group(2)) >= 1 else None),
    (re.compile(r"\bthe day before yesterday\b"), lambda _, t: _shift(t, -2)),
    (re.compile(r"\bthe day after tomorrow\b"), lambda _, t: _shift(t, 2)),
    (re.compile(r"\b(?:yesterday|last night)\b"), lambda _, t: _shift(t, -1)),
    (re.compile(r"\b(?:today|tonight|this (?:morning|afternoon|evening))\b"), lambda _, t: _shift(t, 0)),
    (re.compile(r"\btomorrow\b"), lambda _, t: _shift(t, 1)),
    (re.compile(r"\bthe other day\b"), lambda _, t: (t - timedelta(days=6), t - timedelta(days=1))),
    (re.compile(rf"\b{NUMBER}\s+(day|week|month|year)s?\s+ago\b"), lambda m, t: _ago(m, t, -1)),
    # Not "in two weeks": "I haven't seen her in two years" is as common as a future.
    (re.compile(rf"\b{NUMBER}\s+(day|week|month|year)s?\s+from now\b"), lambda m, t: _ago(m, t, 1)),
    (re.compile(rf"\b(last|this|next)\s+{_WEEKDAY}\b"), _relative_weekday),
    (re.compile(rf"\b(last|this|next|in|on|during|since|until|by)\s+{_FULL_MONTH}\b(?!\s*,?\s*\d)"), _relative_month),
    (re.compile(r"\b(last|past|this|next)\s+(spring|summer|fall|autumn|winter)\b"), _season),
    (re.compile(r"\b(last|past|previous|this|next|coming)\s+(week|weekend|month|year)\b"), _relative_unit),
]
_YEAR_RULE: tuple[re.Pattern[str], _Rule] = (
    re.compile(r"\b(?:in|during|since|until|by)\s+(\d{4})\b(?!\s*(?:am|pm|hours|people|words))"),
    lambda m, _: (date(int(m.group(1)), 1, 1), date(int(m.group(1)), 12, 31)) if int(m.group(1)) >= 1 else None)
""""in 2022": the whole year. Only when asked for (``resolve(..., years=True)``): the index's context column and
the time-window ranking do without it, and a year's own digits are already in the text."""
_WITH_YEARS = [*_RULES[:3], _YEAR_RULE, *_RULES[3:]]
_MAX_SPANS = 8  # a long memory's context stays small


def resolve(text: str, anchor: datetime | None, *, years: bool = False) -> list[Span]:
    """The time phrases of ``text`` as spans, counted from ``anchor`` (the memory's event time), in order of
    the table (absolute dates first), at most ``_MAX_SPANS``; none without an anchor.

    Relative phrases need the anchor; a phrase resolving outside the calendar is skipped. With ``years``, a
    year after a preposition ("in 2022") is a span too.
    """
    if anchor is None or not text:
        return []
    zone = anchor.tzinfo or UTC  # days are the speaker's: counted in the event time's own zone
    if years:
        return _resolve(text, anchor.date(), zone, _WITH_YEARS)
    if len(text) <= _CACHED_CHARS:  # a search resolves each candidate's text: the same memories come back often
        try:
            return list(_resolved(text, anchor.date(), zone))
        except TypeError:  # a tzinfo that cannot be a cache key
            pass
    return _resolve(text, anchor.date(), zone)


_CACHED_CHARS = 2_000


_CACHE_SIZE = 8192
_cache: dict[tuple[bytes, date, tzinfo], tuple[Span, ...]] = {}


def _resolved(text: str, today: date, zone: tzinfo) -> tuple[Span, ...]:
    """``_resolve``, cached by a digest of the text (the cache never holds a memory's text, so a forgotten memory
    does not outlive ``forget`` here) with the day and zone; emptied when full."""
    key = (hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest(), today, zone)
    found = _cache.get(key)
    if found is None:
        found = tuple(_resolve(text, today, zone))
        if len(_cache) >= _CACHE_SIZE:
            _cache.clear()
        _cache[key] = found
    return found


def _resolve(text: str, today: date, zone: tzinfo, rules: list[tuple[re.Pattern[str], _Rule]] = _RULES) -> list[Span]:
    """``resolve``'s work: it depends on the anchor's day and zone alone."""
    rest = text.lower().replace("’", "'")
    spans: list[Span] = []
    for pattern, rule in rules:
        for match in pattern.finditer(rest):
            try:
                days = rule(match, today)
                if days is None:
                    continue
                first, last = days
                start = datetime.combine(first, time(), tzinfo=zone).astimezone(UTC)
                end = datetime.combine(last + timedelta(days=1), time(), tzinfo=zone).astimezone(UTC)
            except (OverflowError, ValueError):
                continue  # before year 1 or after 9999
            spans.append(Span(phrase=match.group(0), first=first, last=last, start=start, end=end))
            if len(spans) >= _MAX_SPANS:
                return spans
        # A phrase is used once: "the day before yesterday" is not also "yesterday".
        rest = pattern.sub(lambda m: " " * len(m.group(0)), rest)
    return spans
