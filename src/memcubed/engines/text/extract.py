"""Fact extraction and resolution prompts, and the strict parsing of what a model answers to them.

The prompts live in package data files (``prompts/*.txt``). A model's answer is one JSON object validated
with pydantic (``Extraction``, ``Resolution``); anything else — prose, a truncated object, a field of the
wrong type, a fact citing a turn it was not shown — is an :class:`InvalidOutput`, which the kernel records
and retries; it never drops the turns. Turns reach the model as JSON strings under short keys (``t1``…),
never as raw text next to the instructions, and the caller's turn ids never reach it.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from importlib.resources import files

from pydantic import ValidationError as PydanticValidationError

from memcubed.schemas.remember import Extraction, Resolution

__all__ = [
    "InvalidOutput",
    "PromptTurn",
    "extraction_messages",
    "lines_extraction_messages",
    "looks_like_instruction",
    "normalized",
    "parse_extraction",
    "parse_extraction_lines",
    "parse_resolution",
    "quoted_statement",
    "resolution_messages",
    "retry_seed",
    "summary_messages",
]

_INSTRUCTION = re.compile(
    r"\b(from now on|ignore (all |any |the )?(previous|prior|above|earlier)|disregard (all |any |the )?|"
    r"(always|never|only) (answer|reply|respond|say|write|speak|use|mention|tell)|"
    r"you (must|should|will|shall) (always|never|now|only)|system prompt|new instructions?|"
    r"(act|behave) as|pretend (to be|you are)|do not tell|override)\b",
    re.IGNORECASE)
_FENCE = re.compile(r"^\s*```(?:json)?\s*(.*?)\s*```\s*$", re.DOTALL)


class InvalidOutput(Exception):  # internal: the kernel turns it into a recorded, retried failure
    """The model's answer is not the JSON the prompt asked for (``reason`` says how)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class PromptTurn:
    """A turn as the extractor sees it: a short key, the speaker, the event time and the words."""

    key: str
    speaker: str
    time: datetime | None
    text: str


def retry_seed(turns: Sequence[PromptTurn], attempt: int) -> int:
    """The sampling seed of try ``attempt`` at extracting ``turns``: a digest of their speakers, times and words
    and of the try's number, so a retry differs from the try before it yet repeats in every run (a greedy
    model answers a failed prompt the same way each time; a sample from a fixed seed does not, and stays
    reproducible)."""
    digest = hashlib.sha256(str(attempt).encode())
    for turn in turns:
        digest.update(json.dumps([turn.speaker, turn.time.isoformat() if turn.time else None, turn.text],
                                 ensure_ascii=False).encode("utf-8", "surrogatepass"))
    return int.from_bytes(digest.digest()[:4], "big") & 0x7FFFFFFF


@cache
def _prompt(name: str) -> str:
    return files("memcubed.engines.text").joinpath("prompts", f"{name}.txt").read_text(encoding="utf-8")


def extraction_messages(turns: Sequence[PromptTurn]) -> list[dict[str, str]]:
    """The chat that asks a model for the facts in ``turns`` (one JSON line per turn, as data)."""
    lines = [json.dumps({"id": t.key, "speaker": t.speaker, "time": t.time.isoformat() if t.time else None,
                         "text": t.text}, ensure_ascii=False) for t in turns]
    return [{"role": "system", "content": _prompt("extract")}, {"role": "user", "content": "\n".join(lines)}]


def lines_extraction_messages(turns: Sequence[PromptTurn]) -> list[dict[str, str]]:
    """The chat that asks a model for the facts in ``turns`` as ``key | subject | statement`` lines (for small
    models that cannot keep to JSON); the turns are data lines ``key. speaker (date): "words"``."""
    lines = [f"{t.key}. {t.speaker}" + (f" ({t.time:%Y-%m-%d})" if t.time else "") + ": "
             + json.dumps(t.text, ensure_ascii=False) for t in turns]
    return [{"role": "system", "content": _prompt("extract_lines")}, {"role": "user", "content": "\n".join(lines)}]


def summary_messages(turns: Sequence[PromptTurn]) -> list[dict[str, str]]:
    """The chat that asks a model for a summary of one session's ``turns``."""
    return [{"role": "system", "content": _prompt("summarize")}, extraction_messages(turns)[1]]


def resolution_messages(statement: str, known: Sequence[str]) -> list[dict[str, str]]:
    """The chat that asks a model how ``statement`` relates to the ``known`` facts (numbered from 1)."""
    body = {"new": statement, "known": {str(n): text for n, text in enumerate(known, start=1)}}
    return [{"role": "system", "content": _prompt("resolve")},
            {"role": "user", "content": json.dumps(body, ensure_ascii=False)}]


def _json_object(reply: str) -> tuple[object, str | None]:
    """The first complete JSON value of ``reply`` and a note of what was discarded around it (None: nothing).

    Small models often write a valid answer and then run on; the answer is taken from the first ``{`` or
    ``[`` (fences tolerated) and the rest is discarded and noted. A second JSON value after the first is not
    trailing chatter but a second answer: which one was meant is unknowable, so that refuses the answer.
    """
    text = reply.strip()
    fenced = _FENCE.match(text)
    if fenced:
        text = fenced.group(1)
    starts = [i for i in (text.find("{"), text.find("[")) if i >= 0]
    start = min(starts) if starts else 0
    decoder = json.JSONDecoder()
    try:
        value, end = decoder.raw_decode(text, start)
    except ValueError as exc:
        raise InvalidOutput(f"not JSON ({exc.__class__.__name__}: {str(exc)[:120]})") from None
    rest = text[end:].strip()
    if rest[:1] in ("{", "["):
        try:
            decoder.raw_decode(rest)
        except ValueError:
            pass
        else:
            raise InvalidOutput("two JSON values: one answer was asked for")
    # The note gives sizes only: it is stored (result, job) and the discarded text may copy a turn's words.
    parts = [f"{start} characters before" if start else "", f"{len(rest)} characters after" if rest else ""]
    kept = " and ".join(p for p in parts if p)
    return value, (f"discarded {kept} the JSON answer" if kept else None)


def parse_extraction(reply: str, keys: Sequence[str], *, notes: list[str] | None = None) -> Extraction:
    """Validate an extraction answer (its first JSON value); every fact must cite only ``keys``.

    Text around the JSON value is discarded, and a note saying how much is appended to ``notes``.

    Raises:
        InvalidOutput: not one JSON object of the schema, or a fact cites a turn it was not shown.
    """
    value, discarded = _json_object(reply)
    try:
        extraction = Extraction.model_validate(value)
    except PydanticValidationError as exc:
        raise InvalidOutput(f"schema: {exc.errors()[0]['loc']} {exc.errors()[0]['msg']}"[:300]) from None
    if discarded is not None and notes is not None:
        notes.append(discarded)
    allowed = set(keys)
    for fact in extraction.facts:
        unknown = [k for k in fact.turn_ids if k not in allowed]
        if unknown:
            raise InvalidOutput(f"a fact cites turns it was not shown: {unknown[:3]}")
    return extraction


_LINE = re.compile(r"^\s*(?:[-*]\s*)?(t\d+(?:\s*,\s*t\d+)*)\s*\|\s*([^|]+?)\s*\|\s*(\S.*?)\s*$")
_NONE = re.compile(r"^\s*none\.?\s*$", re.IGNORECASE)


def parse_extraction_lines(reply: str, keys: Sequence[str]) -> Extraction:
    """Validate a ``key | subject | statement`` answer into the same schema as :func:`parse_extraction`.

    Every non-blank line must have that form (or the whole answer is ``NONE``): a line of anything else
    (prose, a repeated turn) refuses the whole answer, as JSON prose would; fences are tolerated.

    Raises:
        InvalidOutput: a line not of the form, no line at all, or a fact citing a turn it was not shown.
    """
    text = reply.strip()
    fenced = _FENCE.match(text)
    lines = [line for line in (fenced.group(1) if fenced else text).splitlines() if line.strip()]
    if len(lines) == 1 and _NONE.match(lines[0]):
        return Extraction(facts=[])
    if not lines:
        raise InvalidOutput("an empty answer (neither fact lines nor NONE)")
    facts: list[dict[str, object]] = []
    for n, line in enumerate(lines, start=1):
        match = _LINE.match(line)
        if match is None:
            # The reason is stored (job error, audit): it never quotes the answer, which may copy a turn's words.
            raise InvalidOutput(f"line {n} of {len(lines)} is not 'turn id | subject | fact'")
        cited = [k.strip() for k in match.group(1).split(",")]
        facts.append({"subject": match.group(2), "statement": match.group(3), "turn_ids": cited})
    try:
        extraction = Extraction.model_validate({"facts": facts})
    except PydanticValidationError as exc:
        raise InvalidOutput(f"schema: {exc.errors()[0]['loc']} {exc.errors()[0]['msg']}"[:300]) from None
    unknown = [k for fact in extraction.facts for k in fact.turn_ids if k not in set(keys)]
    if unknown:
        raise InvalidOutput(f"a fact cites turns it was not shown: {unknown[:3]}")
    return extraction


def parse_resolution(reply: str, known: int) -> Resolution:
    """Validate a resolution answer against ``known`` numbered facts: one JSON object, fences tolerated,
    nothing else around it.

    Raises:
        InvalidOutput: not the JSON asked for, text around it, or a target outside 1..known.
    """
    try:
        value, discarded = _json_object(reply)
        if discarded is not None:
            # Stricter than extraction on purpose: this answer may change a known fact, and a refused answer
            # only adds the new one (nothing lost), while a guess from a chatty answer could close the wrong one.
            raise InvalidOutput(f"text around the JSON answer ({discarded})")
        resolution = Resolution.model_validate(value)
    except PydanticValidationError as exc:
        raise InvalidOutput(f"schema: {exc.errors()[0]['msg']}"[:300]) from None
    if resolution.target is not None and resolution.target > known:
        raise InvalidOutput(f"target {resolution.target} is not one of the {known} known facts")
    return resolution


def looks_like_instruction(text: str) -> bool:
    """Whether ``text`` tells an assistant what to do (such text is stored as what was said, quoted)."""
    return _INSTRUCTION.search(unicodedata.normalize("NFKC", text)) is not None


def quoted_statement(speaker: str, said: str) -> str:
    """What was said, attributed and quoted: ``Alice said: "…"`` (never an instruction of its own)."""
    return f'{speaker} said: "{said.strip()}"'


def normalized(text: str) -> str:
    """``text`` for exact-duplicate checks: NFKC, case-folded, punctuation dropped, spaces collapsed."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    kept = "".join(ch if ch.isalnum() else " " for ch in folded)
    return " ".join(kept.split())
