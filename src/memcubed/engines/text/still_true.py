"""Whether a known fact still holds after a new one, scored by a small open model: the contradiction signal.

The four-answer resolver (:mod:`resolve_local`) tells related facts from unrelated ones, but its ``changed``
and ``more`` are about equally likely on every related pair. These signals ask only the question a
contradiction turns on, "is the known fact still true, given the new one?", in two ways:

- :func:`still_log_odds`: the chat prompt ``resolve_still`` answers ``yes`` or ``no``; the log-odds of
  ``no``, averaged over both layouts of the pair (known fact first, new fact first), so that neither
  position's pull decides;
- :func:`cloze_shift`: plain text, no instruction: how much likelier the known fact is after
  "<new fact> It is no longer true that" than after "<new fact> It is still true that"; with
  ``unconditioned``, less the same shift without the new fact (the known fact's likelihood conditioned on
  the new one against unconditioned: what the phrases do to it alone is taken out).

Positive means "no longer holds". Nothing is generated; every score is the likelihood of fixed text.
Measured with the packaged SmolLM2 (``bench/resolve_local.py``, ``bench/resolve_change.py``): none of them
tells real contradictions from related facts that still hold (AUC 0.47-0.60); the yes/no prompt answers "no"
to nearly every pair. ``resolve_local`` offers the cloze shift as ``contradict="cloze"``, not by default.
"""

from __future__ import annotations

import json

from memcubed.backends.models.base import KVLanguageModel
from memcubed.engines.text.slots import QueryState, continuation_logprobs, scorer_for

__all__ = ["NO_LONGER", "QUESTION", "STILL", "cloze_shift", "layouts", "still_log_odds"]

PROMPT = "resolve_still"
QUESTION = "Is the known fact still true?"
NO_LONGER = "It is no longer true that"
STILL = "It is still true that"
MAX_FACT_CHARS = 400


def layouts(known: str, new: str) -> list[str]:
    """The two user messages for a pair: the known fact first, then the new fact first."""
    k = f"Known: {json.dumps(known[:MAX_FACT_CHARS], ensure_ascii=False)}"
    n = f"New: {json.dumps(new[:MAX_FACT_CHARS], ensure_ascii=False)}"
    return [f"{k}\n{n}\n{QUESTION}", f"{n}\n{k}\n{QUESTION}"]


def still_log_odds(lm: KVLanguageModel, known: str, new: str, *, both_orders: bool = True) -> float:
    """log p(no) - log p(yes) for "is ``known`` still true after ``new``?", averaged over both layouts (or the
    known-first one alone)."""
    scorer = scorer_for(lm, PROMPT)
    odds = []
    for message in layouts(known, new)[: 2 if both_orders else 1]:
        yes, no = scorer.option_logprobs(scorer.query([{"role": "user", "content": message}]), ["yes", "no"])
        odds.append(no - yes)
    return sum(odds) / len(odds)


def _sentence(text: str) -> str:
    text = " ".join(text[:MAX_FACT_CHARS].split())
    return text if text.endswith((".", "!", "?")) else f"{text}."


def _logprob(lm: KVLanguageModel, context: str, continuation: str) -> float:
    logits, kv = lm.forward(lm.encode(context))
    return continuation_logprobs(lm, QueryState(logits, kv), [continuation])[0]


def cloze_shift(lm: KVLanguageModel, known: str, new: str, *, unconditioned: bool = False) -> float:
    """log p(known | new + :data:`NO_LONGER`) - log p(known | new + :data:`STILL`); with ``unconditioned``,
    less the same difference without ``new``."""
    clause = " " + _sentence(known)
    before = _sentence(new) + " "
    shift = _logprob(lm, before + NO_LONGER, clause) - _logprob(lm, before + STILL, clause)
    if unconditioned:
        shift -= _logprob(lm, NO_LONGER, clause) - _logprob(lm, STILL, clause)
    return shift
