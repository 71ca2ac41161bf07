"""The LongMemEval loader: a record becomes memories with gold turns, and bad files are refused typed."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from bench.retrieval_longmemeval import score

from memcubed.datasets.longmemeval import load_longmemeval
from memcubed.errors import NotFound, ValidationError


def _record(**over: object) -> dict[str, object]:
    record: dict[str, object] = {
        "question_id": "q1_abs", "question_type": "single-session-user", "question": "Where do I work?",
        "answer": "at the bakery", "question_date": "2023/05/30 (Tue) 10:00",
        "haystack_session_ids": ["s1", "s2"], "haystack_dates": ["2023/05/21 (Sun) 19:50", "2023/05/22 (Mon) 08:00"],
        "haystack_sessions": [[{"role": "user", "content": "I work at the bakery", "has_answer": True},
                               {"role": "assistant", "content": "Nice!"}],
                              [{"role": "user", "content": "   "}]],
        "answer_session_ids": ["s1"],
    }
    record.update(over)
    return record


def test_a_record_becomes_memories_and_scores(tmp_path: Path) -> None:
    path = tmp_path / "lme.json.gz"
    path.write_bytes(gzip.compress(json.dumps([_record()]).encode()))
    (hay,) = load_longmemeval(path)
    assert hay.abstention and hay.gold_turns == {"s1#0"}
    memories = hay.memories("ns")
    assert [m["text"] for m in memories] == ["user: I work at the bakery", "assistant: Nice!"]  # blank turn left out
    assert memories[0]["source"]["occurred_at"].isoformat() == "2023-05-21T19:50:00+00:00"
    assert score(hay, ["s1#1", "s1#0"])["turn_r@5"] == 1.0
    assert score(hay, ["s2#0"]) == {"turn_r@5": 0.0, "sess_all@5": 0.0, "sess_any@5": 0.0,
                                    "turn_r@10": 0.0, "sess_all@10": 0.0, "sess_any@10": 0.0}


@pytest.mark.parametrize("body", [b"not json", b'{"a": 1}', json.dumps([_record(haystack_dates=["x", "y"])]).encode(),
                                  json.dumps([_record(haystack_session_ids=["s1"])]).encode(),
                                  json.dumps([{"question_id": "q"}]).encode()])
def test_a_malformed_file_is_refused_typed(tmp_path: Path, body: bytes) -> None:
    path = tmp_path / "bad.json"
    path.write_bytes(body)
    with pytest.raises(ValidationError):
        load_longmemeval(path)


def test_a_missing_file_is_not_found(tmp_path: Path) -> None:
    with pytest.raises(NotFound):
        load_longmemeval(tmp_path / "absent.json.gz")
