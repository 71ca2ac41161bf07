"""Input and output schemas of the plaintext and governance operations, shared by every interface."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from memcubed.cube.model import CubeKind, CubeState, DerivedRef, MemCube, Right, Source
from memcubed.schemas.base import STORABLE_TEXT, CubeId, Input, Name, Tag, is_blank

__all__ = [
    "AuditRecord",
    "AuditReport",
    "CubeCreate",
    "CubeUpdate",
    "HistoryEntry",
    "MigrationReport",
    "PrincipalCreate",
    "PrincipalPublic",
    "SearchFilters",
    "SearchHit",
    "SearchMode",
    "SearchRequest",
    "SearchResult",
    "ShareRequest",
    "SignalScore",
    "TrustPolicy",
]


class CubeCreate(Input):
    """Input of ``add``: a new plaintext memory (``id``: the caller's own stable key, for idempotent imports)."""

    text: str = Field(pattern=STORABLE_TEXT,
                      description="the memory's text; the kernel enforces the configured size limit")
    namespace: Name = Field(default="default", description="memory space")
    importance: float = Field(default=0.5, ge=0.0, le=1.0, description="0..1")
    tags: list[Tag] = Field(default_factory=list, max_length=64, description="a label")
    source: Source = Field(default_factory=Source, description="provenance")
    derived_from: list[DerivedRef] = Field(default_factory=list, max_length=1000,
                                           json_schema_extra={"uniqueItems": True},
                                           description="the cube versions it was derived from")
    meta: dict[str, Any] = Field(default_factory=dict, description="free metadata")
    id: CubeId | None = Field(default=None, description=(
        "your stable key for it: stored as a uuid5 of (owner, id), so adding it again is refused"
        " and other principals' keys never collide"))
    valid_from: datetime | None = Field(default=None, description="event time from which it holds (a fact)")
    valid_to: datetime | None = Field(default=None, description=(
        "event time from which it no longer holds (at or before valid_from: it never holds)"))

    @field_validator("text")
    @classmethod
    def _text_notis_blank(cls, value: str) -> str:
        if is_blank(value):
            raise ValueError("text must not be empty")
        return value

    @field_validator("tags")
    @classmethod
    def _unique_tags(cls, value: list[str]) -> list[str]:
        return sorted(set(value))

    @field_validator("derived_from")
    @classmethod
    def _unique_refs(cls, value: list[DerivedRef]) -> list[DerivedRef]:
        if len(set(value)) != len(value):
            raise ValueError("derived_from lists a cube version twice")
        return value


class CubeUpdate(Input):
    """Input of ``update``: the fields to change; ``expected_version`` enables optimistic concurrency.

    A cube's state is the system's: ``archive``, ``restore``, ``undelete`` and ``delete`` change it.
    """

    # The published schema says what the validator below enforces: at least one field to change.
    model_config = ConfigDict(extra="forbid", json_schema_extra={"anyOf": [
        {"required": [name], "properties": {name: {"not": {"type": "null"}}}}
        for name in ("text", "importance", "tags", "source", "meta")]})

    text: str | None = Field(default=None, pattern=STORABLE_TEXT, description="new text")
    importance: float | None = Field(default=None, ge=0.0, le=1.0, description="0..1")
    tags: list[Tag] | None = Field(default=None, max_length=64, description="a label (the new tags replace the old)")
    source: Source | None = Field(default=None, description="new provenance")
    meta: dict[str, Any] | None = Field(default=None, description="new metadata")
    expected_version: int | None = Field(default=None, ge=1, description="fail unless the cube is at this version")

    @field_validator("text")
    @classmethod
    def _text_notis_blank(cls, value: str | None) -> str | None:
        if value is not None and is_blank(value):
            raise ValueError("text must not be empty")
        return value

    @field_validator("tags")
    @classmethod
    def _unique_tags(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else sorted(set(value))

    @model_validator(mode="after")
    def _something_changes(self) -> CubeUpdate:
        fields = ("text", "importance", "tags", "source", "meta")
        if all(getattr(self, name) is None for name in fields):
            raise ValueError(f"update needs at least one of {', '.join(fields)}")
        return self


class SearchMode(StrEnum):
    """Which retrieval signals a search uses."""

    HYBRID = "hybrid"
    LEXICAL = "lexical"
    VECTOR = "vector"


class SearchFilters(Input):
    """Filters applied inside the index query, together with the caller's rights."""

    owner: Name | None = Field(default=None, description="only this owner's cubes")
    kinds: list[CubeKind] | None = Field(default=None, description="only these kinds")
    tags: list[Tag] | None = Field(default=None, description="every listed tag must be present")
    states: list[CubeState] = Field(default_factory=lambda: [CubeState.ACTIVE],
                                    description="only these states (default active)")
    created_after: datetime | None = Field(default=None, description="only cubes created after this time")
    created_before: datetime | None = Field(default=None, description="only cubes created before this time")
    occurred_after: datetime | None = Field(default=None, description="only what happened after this time")
    occurred_before: datetime | None = Field(default=None, description="only what happened before this time")
    as_known_at: datetime | None = Field(default=None, description=(
        "record time: only what was stored by then, each hit as it was known then (its version at that time)"))
    true_at: datetime | None = Field(default=None, description=(
        "event time: only memories that held then (valid_from, else the event time, at or before it; valid_to"
        " unset or after it)"))


class SearchRequest(Input):
    """Input of ``search``."""

    query: str = Field(min_length=1, max_length=10_000, pattern=STORABLE_TEXT, description="what to look for")
    namespace: Name = Field(default="default", description="memory space")
    k: int = Field(default=10, ge=1, le=1000, description="number of hits")
    mode: SearchMode = Field(default=SearchMode.HYBRID, description="the retrieval signals")
    filters: SearchFilters = Field(default_factory=SearchFilters, description="filters applied inside the query")
    question_date: datetime | None = Field(default=None, description=(
        "when the question is asked: relative times in it (\"last week\", \"3 days ago\") count from here;"
        " memories of the time the query names (\"in May 2023\"), by event time or by the dates their own"
        " words name (\"yesterday\"), rank higher"))

    @field_validator("query")
    @classmethod
    def _query_notis_blank(cls, value: str) -> str:
        if is_blank(value):
            raise ValueError("query must not be empty")
        return value


class SignalScore(BaseModel):
    """How one retrieval signal ranked a hit (rank 1 is best)."""

    rank: int
    score: float


class SearchHit(BaseModel):
    """One search result: the cube, its fused score and the signals that found it."""

    cube: MemCube
    score: float
    signals: dict[str, SignalScore]


class SearchResult(BaseModel):
    """Output of ``search``: hits best first, where the time went (milliseconds), and ``explanation``: one line
    per retrieval stage that ran beyond the first lexical and vector queries, with why the router chose it.

    ``embed_ms`` is the query embedding's own wall time; ``index_ms`` the rest of the retrieval up to fusion
    (index queries, expansion stages, fusion) that did not run beside the embedding: a lexical query answered
    while the query embedded (stores whose searches overlap) adds nothing to it, only the wait for it after
    the embedding does. ``total_ms`` is the whole call (loading the hits' cubes and counting the access too),
    so ``embed_ms + index_ms <= total_ms``."""

    hits: list[SearchHit]
    embed_ms: float = 0.0
    index_ms: float = 0.0
    total_ms: float = 0.0
    explanation: list[str] = []


class ShareRequest(Input):
    """Input of ``share``: grant ``right`` on a cube to ``principal``."""

    principal: Name = Field(description="the principal granted the right")
    right: Right = Field(default=Right.READ, description="the right granted")

    @field_validator("right", mode="before")
    @classmethod
    def _parse_right(cls, value: object) -> object:
        if isinstance(value, str):
            try:
                return Right.parse(value)
            except KeyError:
                raise ValueError(f"unknown right {value!r}: use read, write, share or admin") from None
        return value


class HistoryEntry(BaseModel):
    """One version of a cube as it was written."""

    version: int
    op: str
    actor: str
    at: datetime
    cube: MemCube


class AuditRecord(BaseModel):
    """One append-only, hash-chained audit record."""

    seq: int
    at: datetime
    principal: str
    op: str
    cube_id: str | None
    version: int | None
    details: dict[str, Any]
    prev_hash: str
    hash: str


class AuditReport(BaseModel):
    """Output of ``audit verify``."""

    ok: bool
    records: int
    problems: list[str] = Field(default_factory=list)
    first_bad_seq: int | None = None
    notes: list[str] = Field(default_factory=list, description="what the check cannot prove (unkeyed records)")


class MigrationReport(BaseModel):
    """Output of ``migrate``: what was copied, and what verification found."""

    ok: bool
    principals: int
    cubes: int
    versions: int
    audit_records: int
    blobs: int
    meta_keys: int
    api_keys: int
    jobs: int
    problems: list[str] = Field(default_factory=list)


TrustPolicy = Literal["own", "accepted", "all"]
"""Whose cubes enter a principal's prompts (chat retrieval, the proxy): its own, its own and the shares it
accepted (the default), or every cube it may read."""


class PrincipalCreate(Input):
    """Input of ``principal create``."""

    name: Name
    kind: str = Field(default="user", pattern=r"^(user|agent|service)$")
    is_admin: bool = False


class PrincipalPublic(BaseModel):
    """A principal as shown to callers (never its key material)."""

    name: str
    kind: str
    is_admin: bool
    created_at: datetime
    disabled: bool = False
    trust: TrustPolicy = Field(default="accepted", description=(
        "whose memories enter this principal's chat retrieval: own, accepted shares too, or all readable"))
    deleted_at: datetime | None = Field(default=None, description=(
        "set when the principal was deleted: its name stays taken (a tombstone owning its cubes)"))
