"""Input and output schemas of every kernel operation, shared by every interface."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator, model_validator

from memcubed.cube.model import CubeKind, CubeState, DerivedRef, MemCube, Right, Source

__all__ = [
    "AuditRecord",
    "AuditReport",
    "CubeCreate",
    "CubeUpdate",
    "GenerationResult",
    "HistoryEntry",
    "Name",
    "PrincipalCreate",
    "PrincipalPublic",
    "SearchFilters",
    "SearchHit",
    "SearchMode",
    "SearchRequest",
    "SearchResult",
    "ShareRequest",
    "SignalScore",
    "Tag",
]

Name = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:@-]{0,127}$")]
"""A principal or namespace name: letters, digits and ``_.:@-``, at most 128 characters."""

Tag = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64, pattern=r"^[^\x00-\x1f]+$")]
"""A free label, 1 to 64 printable characters."""


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)


class CubeCreate(_Input):
    """Input of ``add``: a new plaintext memory (``id`` keeps an existing id, for imports)."""

    text: str = Field(description="the memory's text; the kernel enforces the configured size limit")
    namespace: Name = "default"
    importance: float = Field(default=0.5, ge=0.0, le=1.0)
    tags: list[Tag] = Field(default_factory=list, max_length=64)
    source: Source = Field(default_factory=Source)
    derived_from: list[DerivedRef] = Field(default_factory=list)
    meta: dict[str, Any] = Field(default_factory=dict)
    id: str | None = Field(default=None, description="keep an existing id (imports, migrations)")

    @field_validator("text")
    @classmethod
    def _text_not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("text must not be empty")
        return value

    @field_validator("tags")
    @classmethod
    def _unique_tags(cls, value: list[str]) -> list[str]:
        return sorted(set(value))


class CubeUpdate(_Input):
    """Input of ``update``: the fields to change; ``expected_version`` enables optimistic concurrency."""

    text: str | None = None
    importance: float | None = Field(default=None, ge=0.0, le=1.0)
    tags: list[Tag] | None = Field(default=None, max_length=64)
    source: Source | None = None
    meta: dict[str, Any] | None = None
    state: CubeState | None = Field(default=None, description="active, stale or archived (use delete to delete)")
    expected_version: int | None = Field(default=None, ge=1)

    @field_validator("text")
    @classmethod
    def _text_not_blank(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("text must not be empty")
        return value

    @field_validator("tags")
    @classmethod
    def _unique_tags(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else sorted(set(value))

    @field_validator("state")
    @classmethod
    def _not_deleted(cls, value: CubeState | None) -> CubeState | None:
        if value is CubeState.DELETED:
            raise ValueError("use delete/forget to delete a cube")
        return value

    @model_validator(mode="after")
    def _something_changes(self) -> CubeUpdate:
        fields = ("text", "importance", "tags", "source", "meta", "state")
        if all(getattr(self, name) is None for name in fields):
            raise ValueError(f"update needs at least one of {', '.join(fields)}")
        return self


class SearchMode(StrEnum):
    """Which retrieval signals a search uses."""

    HYBRID = "hybrid"
    LEXICAL = "lexical"
    VECTOR = "vector"


class SearchFilters(_Input):
    """Filters applied inside the index query, together with the caller's rights."""

    owner: Name | None = None
    kinds: list[CubeKind] | None = None
    tags: list[Tag] | None = Field(default=None, description="every listed tag must be present")
    states: list[CubeState] = Field(default_factory=lambda: [CubeState.ACTIVE])
    created_after: datetime | None = None
    created_before: datetime | None = None
    occurred_after: datetime | None = None
    occurred_before: datetime | None = None


class SearchRequest(_Input):
    """Input of ``search``."""

    query: str = Field(min_length=1, max_length=10_000)
    namespace: Name = "default"
    k: int = Field(default=10, ge=1, le=1000)
    mode: SearchMode = SearchMode.HYBRID
    filters: SearchFilters = Field(default_factory=SearchFilters)

    @field_validator("query")
    @classmethod
    def _query_not_blank(cls, value: str) -> str:
        if not value.strip():
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
    """Output of ``search``: hits best first, and where the time went (milliseconds)."""

    hits: list[SearchHit]
    embed_ms: float = 0.0
    index_ms: float = 0.0
    total_ms: float = 0.0


class ShareRequest(_Input):
    """Input of ``share``: grant ``right`` on a cube to ``principal``."""

    principal: Name
    right: Right = Right.READ

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


class PrincipalCreate(_Input):
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


class GenerationResult(BaseModel):
    """Output of ``generate``: the continuation and what was injected."""

    text: str
    injected: list[str] = Field(default_factory=list, description="activation cube ids whose KV was injected")
    adapters: list[str] = Field(default_factory=list, description="parameter cube ids whose adapters were active")
    prefix_tokens: int = 0
    ttft_ms: float
    total_ms: float
    load_ms: float = 0.0
