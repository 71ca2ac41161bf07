"""A fact's time phrases named as absolute dates: "Alice moved to Berlin last month", said on 8 May 2023, is
"Alice moved to Berlin in April 2023", valid from 1 April 2023.

An extracted fact outlives the turn it came from: "last month" read a year later means another month. The
phrases are found and resolved by the retrieval side's table (``engines.text.temporal.resolve``, with years),
counted from the turn's event time; here they are only written back into the text and turned into the start
of the fact's validity. Only a phrase the turn itself says is used: a date the model made up is never
trusted. A small model often drops the phrase ("Caroline moved to Berlin."): when the fact names no date and
its turn names exactly one, that date is added at the end of the fact (with several, which one the fact
means is not known, and none is added). Without an event time nothing is resolved (the phrase stays, and
there is no interval). Phrases that already name their date ("on 8 May 2023", "in 2022") keep their words
and still give the validity.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from memcubed.engines.text.temporal import Span, resolve

__all__ = ["Dated", "date_words", "dated"]

_MONTH_NAMES = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
                "November", "December"]
_LEADING = re.compile(r"^(in|on|during|since|until|by)\s")
_YEAR = re.compile(r"\b\d{4}\b")


@dataclass(frozen=True)
class Dated:
    """A fact's text with its time phrases named absolutely, and the span its validity starts from (or None)."""

    text: str
    span: Span | None


def _day(day: date) -> str:
    return f"{day.day} {_MONTH_NAMES[day.month - 1]} {day.year}"


def date_words(first: date, last: date) -> tuple[str, str]:
    """The preposition and words naming the days ``first``..``last``: ("on", "7 May 2023"), ("in", "April
    2023"), ("in", "2022") or ("between", "1 May 2023 and 7 May 2023")."""
    if first == last:
        return "on", _day(first)
    if first == date(first.year, 1, 1) and last == date(first.year, 12, 31):
        return "in", str(first.year)
    if first.day == 1 and (last + timedelta(days=1)).day == 1 and (first.year, first.month) == (last.year, last.month):
        return "in", f"{_MONTH_NAMES[first.month - 1]} {first.year}"
    return "between", f"{_day(first)} and {_day(last)}"


def _named(span: Span) -> str:
    """The words to write instead of ``span.phrase``: its own leading preposition ("since March") is kept."""
    preposition, words = date_words(span.first, span.last)
    leading = _LEADING.match(span.phrase)
    return f"{leading.group(1) if leading else preposition} {words}"


def dated(text: str, said: str, anchor: datetime | None) -> Dated:
    """``text`` (a fact) with each relative time phrase that ``said`` (its turn's words) also holds written as
    an absolute date, counted from ``anchor`` (the turn's event time); the span of the first such phrase
    in the text gives the fact's validity. A fact naming none gets the date of its turn's only time phrase
    at its end; with no phrase, or several, in the turn, it stays as it is.

    Args:
        text: the fact's statement.
        said: the words of the turn the fact comes from: a phrase it does not hold is left alone.
        anchor: the turn's event time (timezone-aware); None resolves nothing.

    Returns:
        The rewritten text and the first span (None: no phrase resolved, the text unchanged).
    """
    if anchor is None:
        return Dated(text=text, span=None)
    heard = said.lower().replace("\u2019", "'")
    lowered = text.lower().replace("\u2019", "'")  # the same length as the text: positions carry over
    placed = sorted((lowered.find(s.phrase), s) for s in resolve(text, anchor, years=True)
                    if s.phrase in heard and lowered.find(s.phrase) >= 0)
    if not placed:
        told = resolve(said, anchor, years=True)
        return _appended(text, told[0]) if len(told) == 1 else Dated(text=text, span=None)
    out, at = [], 0
    for start, span in placed:
        if start < at:
            continue  # overlapping phrases: the first one wins
        end = start + len(span.phrase)
        out += [text[at:start], text[start:end] if _YEAR.search(span.phrase) else _named(span)]
        at = end
    out.append(text[at:])
    return Dated(text="".join(out), span=placed[0][1])


def _appended(text: str, span: Span) -> Dated:
    """``text`` with the date of ``span`` added at its end, before its closing punctuation."""
    body = text.rstrip()
    stop = body[-1] if body and body[-1] in ".!?" else ""
    return Dated(text=f"{body[:len(body) - len(stop)]} {_named(span)}{stop}", span=span)
