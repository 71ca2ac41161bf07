"""Schemas of conversation memory: ``remember`` (turns in, memories out) and ``extract`` (facts from stored turns)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field, field_validator, model_validator

from memcubed.schemas.base import STORABLE_TEXT, CubeId, Input, Name, is_blank

__all__ = [
    "ExtractInput",
    "ExtractedFact",
    "Extraction",
    "FactOutcome",
    "RememberInput",
    "RememberResult",
    "Resolution",
    "Turn",
    "TurnOutcome",
]

_LABEL = r"^[^\x00-\x1f]{1,256}$"


class Turn(Input):
    """One conversation turn: who said what, when, where (``conversation_id``, ``turn_id``: its provenance)."""

    speaker: str = Field(min_length=1, max_length=128, pattern=_LABEL, description="who said it (a name)")
    role: Literal["user", "assistant", "system", "tool"] = "user"
    text: str = Field(pattern=STORABLE_TEXT, description="what was said; stored as is (the kernel caps its size)")
    time: datetime | None = Field(default=None, description="event time: when it was said (with a timezone)")
    conversation_id: str = Field(min_length=1, max_length=256, pattern=_LABEL)
    session_id: str | None = Field(default=None, max_length=256, pattern=_LABEL)
    turn_id: str = Field(min_length=1, max_length=256, pattern=_LABEL,
                         description="unique within the conversation: remembering it again changes nothing")

    @field_validator("text")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if is_blank(value):
            raise ValueError("text must not be empty")
        return value


class RememberInput(Input):
    """Input of ``remember``: turns to store as memories of the caller, with facts extracted when configured."""

    turns: list[Turn] = Field(min_length=1, max_length=1000, description=(
        "the kernel caps a batch at remember_max_turns; a (conversation_id, turn_id) repeated in the batch is"
        " stored once, like one remembered before"))
    namespace: Name = "default"
    extract: bool = Field(default=True, description="extract and resolve facts when an extractor is configured")


class ExtractInput(Input):
    """Input of ``extract`` (also a job kind: the retry of a failed extraction): facts from stored turns."""

    cube_ids: list[CubeId] = Field(min_length=1, max_length=1000, description="turn cubes (the caller's own)")
    attempt: int = Field(default=1, ge=1, le=100, description="which try this is (retries stop at a limit)")


class TurnOutcome(BaseModel):
    """What ``remember`` did with one turn."""

    turn_id: str
    conversation_id: str
    action: Literal["added", "existing", "noop"] = Field(description=(
        "added: stored now; existing: this (conversation, turn) was stored before; noop: a duplicate of"
        " duplicate_of (same speaker, same words), not stored again"))
    cube_id: str | None = None
    duplicate_of: str | None = None


class FactOutcome(BaseModel):
    """What resolution did with one extracted fact."""

    action: Literal["add", "update", "contradict", "noop", "rejected"]
    statement: str
    subject: str = ""
    cube_id: str | None = Field(default=None, description="the fact cube written (add, update, contradict)")
    target: str | None = Field(default=None, description="the known fact it updated, contradicted or duplicated")
    sources: list[str] = Field(default_factory=list, description="the turn cubes it was derived from")
    quoted: bool = Field(default=False, description="it carried instructions: stored as what was said")
    reason: str | None = None


class RememberResult(BaseModel):
    """Output of ``remember`` and ``extract``: what was stored, and clearly what was not done."""

    turns: list[TurnOutcome] = Field(default_factory=list)
    facts: list[FactOutcome] = Field(default_factory=list)
    extracted: bool = Field(description="facts were extracted from the turns")
    reason: str | None = Field(default=None, description="why not, when extracted is false")
    extractor: str | None = Field(default=None, description="the model id that extracted")
    retry_job: str | None = Field(default=None, description="the queued extract job that retries a failed extraction")
    summarized: bool = Field(default=False, description="per-session summaries were written (summaries)")
    summary_reason: str | None = Field(default=None, description="why not, or which sessions failed")
    summaries: list[str] = Field(default_factory=list, description="the session summary cubes written")
    counts: dict[str, int] = Field(default_factory=dict, description="facts by action")
    notes: list[str] = Field(default_factory=list, description="what was tolerated in the extractor's answers,"
                             " e.g. text discarded around the JSON (sizes only)")


class ExtractedFact(BaseModel):
    """One fact as the extractor must write it (validated; anything else is a failed extraction)."""

    subject: str = Field(min_length=1, max_length=200, description="who or what the fact is about")
    statement: str = Field(min_length=1, max_length=2000, description="the fact, one self-contained sentence")
    turn_ids: list[str] = Field(min_length=1, max_length=50, description="the turns it comes from")
    valid_from: datetime | None = None
    valid_to: datetime | None = None
    instruction: bool = Field(default=False, description="the turn tells the assistant what to do")

    @field_validator("valid_from", "valid_to")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("times must carry a timezone")
        return value


class Extraction(BaseModel):
    """The extractor's whole answer."""

    facts: list[ExtractedFact] = Field(max_length=200)


class Resolution(BaseModel):
    """The resolver's answer for one new fact against the known ones it was shown (numbered from 1)."""

    action: Literal["add", "update", "contradict", "noop"]
    target: int | None = Field(default=None, ge=1, le=50, description="the known fact's number, unless add")

    @model_validator(mode="after")
    def _target(self) -> Resolution:
        if (self.action == "add") != (self.target is None):
            raise ValueError("add takes no target; update, contradict and noop need one")
        return self
