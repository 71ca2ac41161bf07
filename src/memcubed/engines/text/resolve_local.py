"""Resolution a small local model can do: each known fact against the new one, four fixed answers scored.

Where no LLM is configured to answer the resolver prompt, the open extractor model chooses for each known
candidate (the nearest ones, as the LLM path sees them) among four one-word answers by their likelihood:
``same`` (no-op), ``more`` (update), ``changed`` (contradict), ``other`` (add). Nothing is generated, so
nothing needs parsing: the answer is always one of the options. The candidate the model finds most related
(the lowest probability of ``other``, among the four) is the target, with its most likely answer; when
that answer is ``other``, the new fact is added. Calibration by the prompt's answer for a content-free pair
(:func:`content_free`) is available but off: on the hand-labelled pairs (``bench/resolve_local.py``) it
made every answer ``more``. The exact and embedding no-op checks run before this, in the kernel, without a
model.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass

from memcubed.backends.models.base import KVLanguageModel
from memcubed.engines.text.extract_local import content_stems
from memcubed.engines.text.slots import PromptScorer, scorer_for
from memcubed.schemas.remember import Resolution

__all__ = ["LABELS", "MIN_OVERLAP", "Choice", "calibrated", "content_free", "decide", "label_probabilities",
           "overlap", "resolve_by_likelihood"]

PROMPT = "resolve_slots"
LABELS = {"same": "noop", "more": "update", "changed": "contradict", "other": "add"}
MAX_FACT_CHARS = 400
MIN_OVERLAP = 0.1
"""Known facts sharing less of their content words with the new one than this (Jaccard) are ``other`` without
asking the model: it almost never answers ``other`` itself (hand-labelled pairs: 1 of 10 unrelated pairs).
0.1 was chosen on the even-indexed pairs (70 % right vs 45 % without) and held on the odd ones (55 % vs 30 %)."""


@dataclass(frozen=True)
class Choice:
    """The resolution chosen and, per known fact, each answer's probability (among the four)."""

    resolution: Resolution
    probabilities: list[dict[str, float]]



def _pair(known: str, new: str) -> str:
    return (f"Known: {json.dumps(known[:MAX_FACT_CHARS], ensure_ascii=False)}\n"
            f"New: {json.dumps(new[:MAX_FACT_CHARS], ensure_ascii=False)}")


def _probabilities(scorer: PromptScorer, known: str, new: str) -> dict[str, float]:
    state = scorer.query([{"role": "user", "content": _pair(known, new)}])
    scores = dict(zip(LABELS, scorer.option_logprobs(state, list(LABELS)), strict=True))
    top = max(scores.values())
    total = sum(math.exp(s - top) for s in scores.values())
    return {label: math.exp(s - top) / total for label, s in scores.items()}


def overlap(statement: str, known: str) -> float:
    """The Jaccard share of content words (:func:`content_stems`) two facts have in common, their first word
    (the subject, in slot facts) aside."""
    subject = content_stems(statement.split()[0]) if statement.split() else set()
    a, b = content_stems(statement) - subject, content_stems(known) - subject
    return len(a & b) / len(a | b) if a | b else 0.0


def label_probabilities(lm: KVLanguageModel, statement: str, known: Sequence[str], *,
                        min_overlap: float = 0.0) -> list[dict[str, float]]:
    """Per known fact, the model's probability of each answer (among the four), uncalibrated; a known fact
    sharing less than ``min_overlap`` of its words is ``other`` for certain, without a model call."""
    scorer = scorer_for(lm, PROMPT)
    unrelated = {label: float(label == "other") for label in LABELS}
    return [_probabilities(scorer, text, statement) if overlap(statement, text) >= min_overlap else dict(unrelated)
            for text in known]


def content_free(lm: KVLanguageModel) -> dict[str, float]:
    """The answers' probabilities for an empty pair: the prompt's own leaning, whatever the facts say.

    Few worked examples make a small model favour some answers (the last example's, the most frequent);
    dividing by this prior ("calibrate before use", Zhao et al. 2021) is meant to remove that leaning
    without fitting anything to labelled data (measured here: it did not help, see the module docstring).
    """
    scorer = scorer_for(lm, PROMPT)
    if scorer.prior is None:
        scorer.prior = _probabilities(scorer, "", "")
    return scorer.prior


def calibrated(probabilities: dict[str, float], prior: dict[str, float]) -> dict[str, float]:
    """``probabilities`` divided by ``prior`` and renormalised."""
    raw = {label: p / max(prior[label], 1e-9) for label, p in probabilities.items()}
    total = sum(raw.values())
    return {label: value / total for label, value in raw.items()}


def decide(probabilities: Sequence[dict[str, float]]) -> Resolution:
    """The resolution for per-known-fact answer probabilities: the most related known fact (the least
    likely ``other``) with its most likely answer; ``other`` there means add.

    Raises:
        ValueError: no known fact.
    """
    if not probabilities:
        raise ValueError("resolution needs at least one known fact")
    best = min(range(len(probabilities)), key=lambda i: (probabilities[i]["other"], i))
    label = max(LABELS, key=lambda name: probabilities[best][name])
    action = LABELS[label]
    return Resolution.model_validate({"action": action, "target": None if action == "add" else best + 1})


def resolve_by_likelihood(lm: KVLanguageModel, statement: str, known: Sequence[str], *,
                          calibrate: bool = False, min_overlap: float = MIN_OVERLAP) -> Choice:
    """Choose add / update / contradict / no-op for ``statement`` against ``known`` facts (numbered from 1).

    Args:
        calibrate: divide by the prompt's content-free prior (:func:`content_free`) before choosing.
        min_overlap: known facts sharing fewer words are ``other`` without a model call (:data:`MIN_OVERLAP`).

    Raises:
        ValueError: ``known`` is empty.
        BackendUnavailable: the model fails.
    """
    if not known:
        raise ValueError("resolution needs at least one known fact")
    probabilities = label_probabilities(lm, statement, known, min_overlap=min_overlap)
    if calibrate:
        prior = content_free(lm)
        probabilities = [calibrated(p, prior) for p in probabilities]
    return Choice(resolution=decide(probabilities), probabilities=probabilities)
