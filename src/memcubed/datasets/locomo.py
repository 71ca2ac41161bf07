"""LoCoMo (Maharana et al., ACL 2024): very long multi-session conversations with QA over them.

Each turn becomes one plaintext memory (``"speaker: text"`` plus the image caption when
present, the session date as its event time); each question keeps its evidence turn ids.
The parser is defensive: malformed or unknown evidence ids are dropped and counted.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from memcubed.errors import NotFound, ValidationError

__all__ = ["CATEGORIES", "Conversation", "Question", "Turn", "load_locomo"]

CATEGORIES = {1: "multi-hop", 2: "temporal", 3: "open-domain", 4: "single-hop", 5: "adversarial"}
_EVIDENCE = re.compile(r"D(\d+):(\d+)")


@dataclass(frozen=True)
class Turn:
    """One utterance of a conversation."""

    dia_id: str
    speaker: str
    text: str
    session: int
    occurred_at: datetime | None

    @property
    def document(self) -> str:
        """The memory text: ``"speaker: text"``."""
        return f"{self.speaker}: {self.text}"


@dataclass(frozen=True)
class Question:
    """A question with its gold answer, evidence turn ids and category (1..5)."""

    question: str
    answer: str | None
    evidence: tuple[str, ...]
    category: int


@dataclass
class Conversation:
    """One LoCoMo sample: its turns, questions and what the parser had to drop."""

    sample_id: str
    turns: list[Turn]
    questions: list[Question]
    dropped_evidence: int = 0
    dropped_questions: int = 0
    by_id: dict[str, Turn] = field(default_factory=dict)

    def memories(self, namespace: str) -> list[dict[str, Any]]:
        """The turns as ``add_many`` items for ``namespace``."""
        return [
            {
                "text": turn.document,
                "namespace": namespace,
                "tags": [self.sample_id, f"session-{turn.session}"],
                "source": {"type": "conversation", "uri": f"locomo:{self.sample_id}", "ref": turn.dia_id,
                           "occurred_at": turn.occurred_at},
            }
            for turn in self.turns
        ]


def load_locomo(path: str | Path) -> list[Conversation]:
    """Parse a LoCoMo JSON file (a list of samples).

    Raises:
        NotFound: the file does not exist.
        ValidationError: the file is not LoCoMo-shaped JSON.
    """
    path = Path(path)
    if not path.is_file():
        raise NotFound(f"LoCoMo file {path} not found", path=str(path))
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        return [_conversation(sample) for sample in raw]
    except (ValueError, KeyError, TypeError) as exc:
        raise ValidationError(f"{path} is not a LoCoMo file: {exc}", path=str(path)) from exc


def _conversation(sample: dict[str, Any]) -> Conversation:
    conv = sample["conversation"]
    turns: list[Turn] = []
    session = 1
    while f"session_{session}" in conv:
        when = _parse_date(conv.get(f"session_{session}_date_time"))
        for raw in conv[f"session_{session}"]:
            text = str(raw["text"])
            if raw.get("blip_caption"):
                text += f" [image: {raw['blip_caption']}]"
            turns.append(Turn(dia_id=raw["dia_id"], speaker=raw["speaker"], text=text, session=session,
                              occurred_at=when))
        session += 1
    result = Conversation(sample_id=sample["sample_id"], turns=turns, questions=[])
    result.by_id = {t.dia_id: t for t in turns}
    for qa in sample["qa"]:
        evidence: list[str] = []
        for item in qa.get("evidence", []):
            found = [f"D{int(s)}:{int(t)}" for s, t in _EVIDENCE.findall(str(item))]
            kept = [e for e in found if e in result.by_id]
            result.dropped_evidence += (len(found) - len(kept)) + (0 if found else 1)
            evidence.extend(e for e in kept if e not in evidence)
        answer = qa.get("answer", qa.get("adversarial_answer"))
        question = Question(question=qa["question"], answer=None if answer is None else str(answer),
                            evidence=tuple(evidence), category=int(qa["category"]))
        if not evidence:
            result.dropped_questions += 1
        result.questions.append(question)
    return result


def _parse_date(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.strptime(value.strip(), "%I:%M %p on %d %B, %Y").replace(tzinfo=UTC)
    except ValueError:
        return None
