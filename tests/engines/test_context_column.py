"""The context column keeps only the end of a long preceding turn (what the reply answers)."""

from __future__ import annotations

from datetime import UTC, datetime

from memcubed.cube.model import MemCube, Source
from memcubed.engines.text import TextEngine
from memcubed.engines.text.config import TextConfig

AT = datetime(2023, 5, 8, 13, 56, tzinfo=UTC)


def _cube(cube_id: str, text: str) -> MemCube:
    return MemCube(id=cube_id, namespace="n", owner="alice", created_at=AT, updated_at=AT, version=1, text=text,
                   source=Source(type="conversation"))


def test_a_long_preceding_turn_contributes_only_its_last_words() -> None:
    long = " ".join(f"w{i}" for i in range(500)) + " so which guitar should I buy?"
    reply = _cube("r", "the blue one")
    context = TextEngine(TextConfig(context_words=8)).context_for(reply, _cube("p", long))
    assert context == "w498 w499 so which guitar should I buy?"
    assert TextEngine(TextConfig(context_words=0)).context_for(reply, _cube("p", long)) == long


def test_a_short_preceding_turn_is_kept_whole_and_whitespace_is_not_rewritten() -> None:
    short = "Which  guitar\nshould I buy?"
    reply = _cube("r", "the blue one")
    assert TextEngine().context_for(reply, _cube("p", short)) == short
    assert TextConfig().context_words == 40
