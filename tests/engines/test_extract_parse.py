"""The tolerant JSON parse of extraction answers: the first complete JSON value is the answer, text around
it is discarded and noted (by size only); a second JSON value, or no JSON value at all, refuses the answer."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from memcubed.engines.text.extract import InvalidOutput, parse_extraction, parse_resolution

KEYS = ["t1", "t2"]
ANSWER = json.dumps({"facts": [{"subject": "Anna", "statement": "Anna moved to Berlin.", "turn_ids": ["t1"]}]})


def _statements(reply: str, notes: list[str] | None = None) -> list[str]:
    return [f.statement for f in parse_extraction(reply, KEYS, notes=notes).facts]


@pytest.mark.parametrize(("reply", "note"), [
    (ANSWER, None),
    (f"```json\n{ANSWER}\n```", None),
    (f"{ANSWER}\nI hope this helps! Let me know.", "discarded 31 characters after the JSON answer"),
    (f"Here are the facts: {ANSWER}", "discarded 20 characters before the JSON answer"),
    (f"Sure. {ANSWER} Done.", "discarded 6 characters before and 5 characters after the JSON answer"),
    (f"```json\n{ANSWER}\n```\nmore words", "discarded 8 characters before and 14 characters after the JSON answer"),
])
def test_the_first_json_value_is_the_answer_and_what_was_discarded_is_noted(reply: str, note: str | None) -> None:
    notes: list[str] = []
    assert _statements(reply, notes) == ["Anna moved to Berlin."]
    assert notes == ([note] if note else [])


@pytest.mark.parametrize(("reply", "why"), [
    (ANSWER + "\n" + ANSWER, "two JSON values"),
    (ANSWER + ' [{"subject": "x"}]', "two JSON values"),
    ("Anna moved to Berlin.", "not JSON"),
    ('{"facts": [{"subject": "Anna", "statement": "Anna mov', "not JSON"),
    ("", "not JSON"),
    ('{"id": "t1", "speaker": "Anna", "text": "I moved"}\n{"id": "t2"}', "two JSON values"),  # SmolLM2's copy
    ('{"id": "t1", "speaker": "Anna", "text": "I moved"} and so on', "schema"),
    ("[]", "schema"),
    ('{"facts": [{"subject": "Anna", "statement": "x", "turn_ids": ["t9"]}]} trailing', "not shown"),
])
def test_anything_else_is_refused(reply: str, why: str) -> None:
    with pytest.raises(InvalidOutput, match=why):
        parse_extraction(reply, KEYS)


def test_a_note_never_quotes_the_discarded_text() -> None:
    notes: list[str] = []
    parse_extraction(ANSWER + " Anna's PIN is 4711", KEYS, notes=notes)
    assert notes == ["discarded 18 characters after the JSON answer"] and "4711" not in notes[0]


def test_the_resolver_answer_must_stand_alone() -> None:
    """A resolver answer may change a known fact, so it is not guessed from chatter (refused: the fact is added)."""
    assert parse_resolution('```json\n{"action": "update", "target": 1}\n```', 2).target == 1
    with pytest.raises(InvalidOutput, match="text around the JSON answer"):
        parse_resolution('{"action": "update", "target": 1} because it adds detail', 2)
    with pytest.raises(InvalidOutput, match="two JSON values"):
        parse_resolution('{"action": "add", "target": null} {"action": "noop", "target": 1}', 2)


@given(st.text(max_size=80).filter(lambda s: "{" not in s and "[" not in s))
def test_prose_without_json_never_parses(prose: str) -> None:
    with pytest.raises(InvalidOutput):
        parse_extraction(prose, KEYS)


@given(st.text(max_size=80).filter(lambda s: "{" not in s and "[" not in s))
def test_chatter_after_the_answer_never_changes_it(chatter: str) -> None:
    assert _statements(ANSWER + chatter) == ["Anna moved to Berlin."]
