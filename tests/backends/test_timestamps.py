"""Stored timestamps: ``parse_ts`` reads ``format_ts``'s fixed-width stamps through ``datetime.fromisoformat``
and must agree with the strict ``strptime`` parser on every input, well-formed or not."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from memcubed.backends._common import audit_from_row, format_ts, parse_ts, parse_ts_strict
from memcubed.errors import IntegrityError

_ZONES = st.builds(lambda minutes: timezone(timedelta(minutes=minutes)), st.integers(-23 * 60, 23 * 60))
_TIMES = st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=_ZONES)
_STAMP_CHARS = "0123456789-T:.Z +xz\u0663\n"  # the stamp's own characters, and near misses (an Arabic-Indic 3)


def _outcome(parse: Callable[[str], datetime], value: object) -> tuple[str, object]:
    try:
        return "value", parse(value)  # type: ignore[arg-type]
    except Exception as exc:  # the error itself is what is compared
        return type(exc).__name__, str(exc)


@given(_TIMES)
def test_a_stored_stamp_reads_back_as_the_instant_it_names(when: datetime) -> None:
    stamp = format_ts(when)
    assert len(stamp) == 27 and stamp.endswith("Z")
    parsed = parse_ts(stamp)
    assert parsed == when and parsed.tzinfo is UTC
    assert parsed == parse_ts_strict(stamp) and parsed.tzinfo is parse_ts_strict(stamp).tzinfo


@st.composite
def _mangled(draw: st.DrawFn) -> str:
    """A stored stamp with a few characters replaced, inserted or deleted."""
    chars = list(format_ts(draw(_TIMES)))
    for _ in range(draw(st.integers(1, 3))):
        at = draw(st.integers(0, len(chars)))
        how = draw(st.sampled_from(("replace", "insert", "delete")))
        char = draw(st.sampled_from(_STAMP_CHARS))
        if how == "insert" or at == len(chars):
            chars.insert(at, char)
        elif how == "replace":
            chars[at] = char
        else:
            del chars[at]
    return "".join(chars)


@given(st.one_of(_mangled(), st.text(alphabet=_STAMP_CHARS, max_size=30), st.text(max_size=30)))
@example("2026-13-03T10:14:10.123456Z")  # month 13
@example("2026-02-30T10:14:10.123456Z")  # 30 February
@example("2026-12-03T24:00:00.000000Z")
@example("2026-12-03T10:14:60.000000Z")  # strptime's %S takes 60; the datetime does not
@example("0000-12-03T10:14:10.123456Z")  # year 0
@example("2026-12-03 10:14:10.123456Z")  # fromisoformat takes any separator
@example("2026-12-03T10:14:10,123456Z")
@example("2026-12-03T10:14:10.123456+00:00")  # an offset
@example("2026-12-03T10:14:10.123Z")  # another width
@example("2026-12-03T10:14:10.123456")
@example("2026-12-03T10:14:10.123456Z\n")
@example("2026-12-0\u0663T10:14:10.123456Z")  # a non-ASCII digit
def test_the_fast_path_agrees_with_the_strict_parser_on_any_text(value: str) -> None:
    assert _outcome(parse_ts, value) == _outcome(parse_ts_strict, value)


@pytest.mark.parametrize("value", [None, b"2026-12-03T10:14:10.123456Z", 20261203])
def test_a_value_that_is_no_text_fails_as_the_strict_parser_does(value: object) -> None:
    assert _outcome(parse_ts, value) == _outcome(parse_ts_strict, value)
    assert _outcome(parse_ts, value)[0] == "TypeError"


@pytest.mark.parametrize("stamp", ["2026-13-03T10:14:10.123456Z", "2026-12-03T10:14:10.123456+00:00", "yesterday"])
def test_a_malformed_stamp_in_a_stored_row_is_an_integrity_error(stamp: str) -> None:
    row = {"seq": 7, "at": stamp, "principal": "alice", "op": "add", "cube_id": "c1", "version": 1,
           "details": "{}", "prev_hash": "0" * 64, "hash": "1" * 64}
    with pytest.raises(IntegrityError, match="audit record 7 is unreadable"):
        audit_from_row(row)


def test_a_good_row_still_reads() -> None:
    at = datetime(2026, 12, 3, 10, 14, 10, 123456, tzinfo=UTC)
    row = {"seq": 7, "at": format_ts(at), "principal": "alice", "op": "add", "cube_id": "c1", "version": 1,
           "details": "{}", "prev_hash": "0" * 64, "hash": "1" * 64}
    assert audit_from_row(row).at == at
