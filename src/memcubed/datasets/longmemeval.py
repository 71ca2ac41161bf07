"""LongMemEval (Wu et al., ICLR 2025), "S" variant: one question per record, each with its own haystack of
about 47 timestamped user–assistant sessions (~490 turns).

Each turn becomes one plaintext memory (``"role: content"``, the session date as its event time, the
session id and turn index as its source ref ``"<session>#<index>"``); each question keeps its gold
turns (``has_answer``) and answer sessions. The parser is defensive: a record of the wrong shape raises
``ValidationError`` naming the record.
"""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from memcubed.errors import NotFound, ValidationError

__all__ = ["Haystack", "LongMemTurn", "load_longmemeval"]

_DATE = "%Y/%m/%d (%a) %H:%M"


@dataclass(frozen=True)
class LongMemTurn:
    """One turn of a haystack session."""

    ref: str
    session_id: str
    role: str
    text: str
    occurred_at: datetime
    has_answer: bool

    @property
    def document(self) -> str:
        """The memory text: ``"role: content"``."""
        return f"{self.role}: {self.text}"


@dataclass(frozen=True)
class Haystack:
    """One LongMemEval question with its own history."""

    question_id: str
    question_type: str
    question: str
    answer: str
    question_date: datetime
    turns: tuple[LongMemTurn, ...]
    answer_sessions: frozenset[str]

    @property
    def abstention(self) -> bool:
        """Whether the right answer is that the history does not say (an ``_abs`` question)."""
        return self.question_id.endswith("_abs")

    @property
    def gold_turns(self) -> frozenset[str]:
        """Refs of the turns that hold the answer."""
        return frozenset(t.ref for t in self.turns if t.has_answer)

    def memories(self, namespace: str) -> list[dict[str, Any]]:
        """The turns as ``add_many`` items for ``namespace``."""
        return [
            {
                "text": turn.document,
                "namespace": namespace,
                "tags": [f"session-{turn.session_id}"],
                "source": {"type": "conversation", "uri": f"longmemeval:{self.question_id}", "ref": turn.ref,
                           "occurred_at": turn.occurred_at},
            }
            for turn in self.turns
            if turn.text.strip()
        ]


def load_longmemeval(path: str | Path) -> list[Haystack]:
    """Parse a LongMemEval JSON file (a list of records, gzipped when the name ends in ``.gz``).

    Raises:
        NotFound: the file does not exist.
        ValidationError: the file is not LongMemEval-shaped JSON.
    """
    path = Path(path)
    if not path.is_file():
        raise NotFound(f"LongMemEval file {path} not found", path=str(path))
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
        records = json.loads(raw.decode("utf-8"))
    except (OSError, ValueError) as exc:
        raise ValidationError(f"{path} is not a LongMemEval file: {exc}", path=str(path)) from exc
    if not isinstance(records, list):
        raise ValidationError(f"{path} is not a LongMemEval file: not a list of records", path=str(path))
    out: list[Haystack] = []
    for i, record in enumerate(records):
        try:
            out.append(_haystack(record))
        except (ValueError, KeyError, TypeError) as exc:
            raise ValidationError(f"{path}: record {i} is not a LongMemEval record: {exc}", path=str(path)) from exc
    return out


def _haystack(record: dict[str, Any]) -> Haystack:
    sessions, ids, dates = record["haystack_sessions"], record["haystack_session_ids"], record["haystack_dates"]
    if not len(sessions) == len(ids) == len(dates):
        raise ValueError("haystack sessions, ids and dates differ in length")
    turns: list[LongMemTurn] = []
    for session, session_id, date in zip(sessions, ids, dates, strict=True):
        when = _parse_date(date)
        for index, turn in enumerate(session):
            turns.append(LongMemTurn(ref=f"{session_id}#{index}", session_id=str(session_id), role=str(turn["role"]),
                                     text=str(turn["content"]), occurred_at=when,
                                     has_answer=bool(turn.get("has_answer", False))))
    return Haystack(question_id=str(record["question_id"]), question_type=str(record["question_type"]),
                    question=str(record["question"]), answer=str(record["answer"]),
                    question_date=_parse_date(record["question_date"]), turns=tuple(turns),
                    answer_sessions=frozenset(str(s) for s in record["answer_session_ids"]))


def _parse_date(value: str) -> datetime:
    return datetime.strptime(str(value).strip(), _DATE).replace(tzinfo=UTC)
