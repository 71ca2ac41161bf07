"""Fact extraction a small local model can do: one slot per turn, filled after text our code forces.

Free JSON is beyond the packaged 135M model (it copies the turns back, then runs on). Here the answer's
structure is ours: per turn, the model first chooses by likelihood between ``NONE`` and ``FACT:``; for a
fact, our code forces ``FACT:`` and the speaker's name, and the model writes the rest of one sentence.
The subject is the speaker, the source is that turn, and the validity starts at the turn's time (the
kernel's default) or at the date a relative phrase of the turn names ("last month" said on 8 May 2023:
April 2023, written into the fact instead of the phrase; see ``engines.text.dating``), so every fact is
traced by construction. What the model writes is then checked, never trusted: only its first sentence is
kept, and it is rejected with the reason when the turn speaks only of its listener (second person, no
first person: the model would credit the listener's news to the speaker), when it is in the first or
second person (a copy, not a fact about the speaker), or when its words are mostly not in the turn (made
up). A turn that gives instructions is never shown to the model: it becomes
a quoted statement of what was said (``instruction: true``), as in the LLM path.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass

from memcubed.backends.models.base import KVLanguageModel
from memcubed.backends.vocabulary import STOPWORDS
from memcubed.engines.text.dating import dated
from memcubed.engines.text.extract import (
    PromptTurn,
    looks_like_instruction,
    normalized,
    quoted_statement,
    retry_seed,
)
from memcubed.engines.text.slots import scorer_for
from memcubed.schemas.remember import ExtractedFact, Extraction

__all__ = ["Rejected", "SlotExtraction", "about_listener", "content_stems", "extract_slots", "grounding"]

PROMPT = "extract_slots"
FACT = "FACT:"
MAX_TURN_CHARS = 600  # what the prompt shows of a turn: the model's window is small, and so is its attention
MAX_FACT_TOKENS = 40
MIN_GROUNDING = 0.5
_STATEMENT_MAX = 2000  # ExtractedFact.statement's limit
_PERSON = re.compile(r"\b(i|me|my|mine|myself|we|us|our|you|your|yours|yourself|i'm|i've|i'd|i'll|you're|"
                     r"you've)\b", re.IGNORECASE)
_FIRST = re.compile(r"\b(i|me|my|mine|myself|we|us|our|ours|i'm|i've|i'd|i'll|we're|we've)\b", re.IGNORECASE)
_SECOND = re.compile(r"\b(you|your|yours|yourself|you're|you've|you'd|you'll|ya)\b", re.IGNORECASE)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s")
_LISTENER = "the turn speaks of its listener, not its speaker"


@dataclass(frozen=True)
class Rejected:
    """A sentence the model wrote for a turn that was not kept as a fact, and why."""

    key: str
    subject: str
    statement: str
    reason: str


@dataclass(frozen=True)
class SlotExtraction:
    """The facts of some turns (schema-valid, one turn each) and the sentences rejected."""

    extraction: Extraction
    rejected: list[Rejected]
    skipped: int  # turns the model judged to hold no fact (NONE)



def content_stems(text: str) -> set[str]:
    """The first four letters of each word of ``text`` that is not a stopword (a crude, language-blind stem)."""
    return {word[:4] for word in normalized(text).split() if word not in STOPWORDS}


def grounding(statement: str, subject: str, said: str) -> float:
    """The share of the statement's content words (its subject's name aside) that the turn's words carry.

    Words are compared by their first four letters (``continuing`` ~ ``continue``); a statement with no
    content word of its own has grounding 0.
    """
    words = content_stems(statement) - content_stems(subject)
    return len(words & content_stems(said)) / len(words) if words else 0.0


def about_listener(said: str) -> bool:
    """Whether a turn speaks only of its listener: words in the second person and none in the first
    ("You're doing something amazing!"); a fact the model writes about the speaker from it is misattributed."""
    text = said.replace("\u2019", "'")
    return _SECOND.search(text) is not None and _FIRST.search(text) is None


def _checked(subject: str, written: str, said: str) -> tuple[str, str | None]:
    """The first sentence of what the model wrote, and why it is rejected (None: kept)."""
    text = written.strip()
    # The subject was forced, so it is split off before the sentence end is looked for: a name may hold ". ".
    lead = subject if text.startswith(subject) else ""
    body = _SENTENCE_END.split(text[len(lead):], maxsplit=1)[0].rstrip()
    sentence = (lead + body).strip()
    if about_listener(said):
        return sentence, _LISTENER
    if len(body.split()) < 2:
        return sentence, "no statement after the subject"
    if _PERSON.search(body) or '"' in body or "said:" in body:
        return sentence, "not a third-person statement (copied words)"
    if grounding(sentence, subject, said) < MIN_GROUNDING:
        return sentence, f"not supported by the turn (grounding < {MIN_GROUNDING})"
    return sentence, None


def extract_slots(lm: KVLanguageModel, turns: Sequence[PromptTurn], *, retries: int = 0,
                  temperature: float = 0.7) -> SlotExtraction:
    """Extract at most one fact per turn with ``lm`` by slot filling (see the module docstring).

    Args:
        lm: an open model (its KV-cache is reused across turns).
        turns: the turns, each under its prompt key.
        retries: how many more sentences to ask for when one is rejected for its own words (copied or made
            up), each sampled at ``temperature`` from a seed of the turn and the try (``retry_seed``); none at
            a temperature of 0 (a greedy retry writes the same sentence).

    Returns:
        The facts (citing their own turn's key), the rejected sentences and the count of NONE turns.

    Raises:
        BackendUnavailable: the model fails.
    """
    facts: list[ExtractedFact] = []
    rejected: list[Rejected] = []
    skipped = 0
    retries = retries if temperature > 0 else 0
    for turn in turns:
        subject = turn.speaker.strip()[:200] or "someone"
        if looks_like_instruction(turn.text):
            # The quote is cut so that the attributed statement fits the fact's 2000 characters whatever the name.
            quoted = quoted_statement(subject, turn.text[:_STATEMENT_MAX - len(subject) - 12])
            facts.append(ExtractedFact(subject=subject, statement=quoted, turn_ids=[turn.key], instruction=True))
            continue
        scorer = scorer_for(lm, PROMPT)
        said = turn.text[:MAX_TURN_CHARS]
        state = scorer.query([{"role": "user", "content": f"{subject} said: {json.dumps(said, ensure_ascii=False)}"}])
        # The choice is between two fixed words, never the speaker's name: a name's own likelihood must not decide.
        none, fact = scorer.option_logprobs(state, ["NONE", FACT])
        if none >= fact:
            skipped += 1
            continue
        fresh = scorer.copy(state) if retries else state
        written = scorer.fill(state, f"{FACT} {subject}", max_new_tokens=MAX_FACT_TOKENS).removeprefix(FACT)
        sentence, reason = _checked(subject, written, said)
        for attempt in range(2, retries + 2):
            if reason is None or reason == _LISTENER:  # the turn, not the words, was at fault: no retry helps
                break
            # A greedy model writes the rejected sentence again; a sample seeded by the turn and try does not,
            # and repeats in every run.
            state = scorer.copy(fresh)
            written = scorer.fill(state, f"{FACT} {subject}", max_new_tokens=MAX_FACT_TOKENS, temperature=temperature,
                                  seed=retry_seed([turn], attempt)).removeprefix(FACT)
            sentence, reason = _checked(subject, written, said)
        if reason is not None:
            rejected.append(Rejected(key=turn.key, subject=subject, statement=sentence[:2000], reason=reason))
            continue
        # "last month" is the turn's last month: named absolutely, it starts the fact's validity.
        when = dated(sentence, turn.text, turn.time)
        facts.append(ExtractedFact(subject=subject, statement=when.text[:_STATEMENT_MAX], turn_ids=[turn.key],
                                   valid_from=when.span.start if when.span else None))
    return SlotExtraction(extraction=Extraction(facts=facts), rejected=rejected, skipped=skipped)
