"""How a plaintext fact becomes training pairs and evaluation probes.

A **fact** is one plaintext cube version: its text is a *statement* ("Caroline is researching
adoption agencies this summer."), and the cube's ``meta["qa"]`` may add question/answer pairs
given by whoever stored it (``[{"question": "What are Caroline's plans for the summer?",
"answer": "researching adoption agencies"}]``).

Training pairs (the loss is taken on the answer tokens and the end-of-sequence token only):

* **continuation** pairs, one per ``LoRAConfig.statement_splits`` fraction: the statement's
  opening words (raw text, no chat template) → the rest of the statement. They store the text
  itself, so any later opening of it recalls its continuation;
* **question** pairs: each question rendered as a user turn in the model's chat template → the
  whole statement when it holds the answer span (``LoRAConfig.question_target``), else the span.

Evaluation probes (exact match: the normalised answer must appear in the normalised greedy
output; plus the answer's mean loss, teacher-forced):

* each question pair (a trained question: "does the model answer it with no context?");
* for a fact without questions, a **cloze** probe: the statement minus its last words (a cut the
  training never used) → those words.

``cloze(statement, answer)`` builds the held-out probe the benchmark uses: the statement up to the
answer span → the answer span.
"""

from __future__ import annotations

import math
import re
import string
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from memcubed.errors import ValidationError

__all__ = ["QA", "Example", "Fact", "cloze", "normalise", "probes", "qa_from_meta", "question", "recalled",
           "settled", "training_pairs"]

ExampleKind = Literal["continuation", "question", "cloze", "control", "rehearsal"]

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = str.maketrans("", "", string.punctuation)
_CLOZE_TAIL = 0.3  # a fact without questions is probed on its last 30% of words (at least one word)


@dataclass(frozen=True)
class QA:
    """A question about a fact and its answer span."""

    question: str
    answer: str


@dataclass(frozen=True)
class Fact:
    """One exact plaintext cube version to consolidate.

    Attributes:
        id: the cube id ("" for anonymous facts).
        version: the cube version.
        statement: the cube's text.
        qa: question/answer pairs about it (from ``meta["qa"]``).
    """

    id: str
    version: int
    statement: str
    qa: tuple[QA, ...] = ()


@dataclass(frozen=True)
class Example:
    """A prompt and the answer the model should produce after it (a training pair or a probe).

    Attributes:
        fact_id: the fact it comes from ("" for control probes).
        kind: continuation, question, cloze, control or rehearsal.
        prompt: what the model reads.
        answer: what it should produce.
        chat: the prompt is a user turn of the chat template (else raw text continued by the answer).
        reference: for a probe, the text whose loss is measured after the prompt when it is not the
            answer itself (the whole statement, which a model that knows the fact says in full).
    """

    fact_id: str
    kind: ExampleKind
    prompt: str
    answer: str
    chat: bool
    reference: str = ""


def qa_from_meta(meta: Mapping[str, Any]) -> tuple[QA, ...]:
    """Read a cube's optional ``meta["qa"]``: a list of ``{"question": str, "answer": str}``.

    Raises:
        ValidationError: the value is not such a list, or a question or answer is blank.
    """
    raw = meta.get("qa")
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise ValidationError("meta.qa must be a list of {question, answer} objects", field="meta.qa")
    pairs: list[QA] = []
    for item in raw:
        if not isinstance(item, Mapping) or set(item) != {"question", "answer"}:
            raise ValidationError("each meta.qa item must have exactly a question and an answer", field="meta.qa")
        question, answer = item["question"], item["answer"]
        if not isinstance(question, str) or not isinstance(answer, str) or not question.strip() \
                or not answer.strip():
            raise ValidationError("meta.qa questions and answers must be non-blank text", field="meta.qa")
        pairs.append(QA(question=question.strip(), answer=answer.strip()))
    return tuple(pairs)


def training_pairs(fact: Fact, splits: tuple[float, ...], *, question_target: str = "statement") -> list[Example]:
    """Return the pairs that teach ``fact``: continuations at ``splits``, then its questions.

    With ``question_target="statement"`` a question is answered by the whole statement when the
    statement holds the answer span, else by the span.
    """
    words = fact.statement.split()
    pairs: list[Example] = []
    for cut in sorted({_cut(len(words), fraction) for fraction in splits}):
        if 0 < cut < len(words):
            pairs.append(Example(fact.id, "continuation", " ".join(words[:cut]), " ".join(words[cut:]), chat=False))
    for qa in fact.qa:
        whole = question_target == "statement" and recalled(qa.answer, fact.statement)
        pairs.append(Example(fact.id, "question", qa.question, fact.statement if whole else qa.answer, chat=True))
    return pairs


def probes(fact: Fact) -> list[Example]:
    """Return the probes that check ``fact`` is recalled: its questions, or a cloze of its last words."""
    if fact.qa:
        return [question(fact.id, qa.question, qa.answer, fact.statement) for qa in fact.qa]
    words = fact.statement.split()
    if len(words) < 2:
        return []
    tail = max(1, math.ceil(len(words) * _CLOZE_TAIL))
    return [Example(fact.id, "cloze", " ".join(words[:-tail]), " ".join(words[-tail:]), chat=False)]


def question(fact_id: str, prompt: str, answer: str, statement: str = "") -> Example:
    """Return a question probe; its loss is measured on ``statement`` when that holds the answer."""
    reference = statement if statement and recalled(answer, statement) else ""
    return Example(fact_id, "question", prompt, answer, chat=True, reference=reference)


def cloze(fact_id: str, statement: str, answer: str) -> Example | None:
    """Return the probe "statement up to ``answer`` → ``answer``", or None when the answer is not in it verbatim."""
    at = statement.lower().find(answer.lower().strip())
    if at <= 0 or not answer.strip():
        return None
    prompt = statement[:at].rstrip()
    if not prompt:
        return None
    return Example(fact_id, "cloze", prompt, statement[at : at + len(answer.strip())], chat=False)


def normalise(text: str) -> str:
    """Lowercase, drop punctuation and articles, collapse whitespace (LoCoMo's answer normalisation)."""
    return " ".join(_ARTICLES.sub(" ", text.lower().translate(_PUNCT)).split())


def recalled(answer: str, generated: str) -> bool:
    """Whether the normalised ``answer`` appears in the normalised ``generated`` text."""
    target = normalise(answer)
    if not target:  # an answer made only of articles or punctuation ("A") is matched as a word
        target = " ".join(answer.lower().split())
        return bool(target) and f" {target} " in f" {' '.join(generated.lower().split())} "
    return f" {target} " in f" {normalise(generated)} "


def settled(answer: str, generated: str) -> bool:
    """Whether ``generated`` is recalled whatever text follows it: ``answer`` is already in it before its last
    whitespace. Normalising keeps every word that a whitespace ends, so any continuation of ``generated``
    is ``recalled`` too; a greedy probe can stop there with the same hit."""
    cut = max((i for i, ch in enumerate(generated) if ch.isspace()), default=-1)
    return cut > 0 and recalled(answer, generated[:cut])


def _cut(n_words: int, fraction: float) -> int:
    return max(1, round(n_words * fraction))
