"""Input and output schemas of every kernel operation, shared by every interface."""

from __future__ import annotations

import re
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, WithJsonSchema, field_validator, model_validator

from memcubed.cube.model import CubeKind, CubeState, DerivedRef, MemCube, Right, Source

__all__ = [
    "ApiKeyCreate",
    "ApiKeyIssued",
    "ApiKeyPublic",
    "ApiKeyRecord",
    "AuditRecord",
    "AuditReport",
    "CacheJob",
    "ChatCompletionRequest",
    "ChatMemoryOptions",
    "ChatMemoryReport",
    "ChatMessage",
    "ChatRequest",
    "ChatResult",
    "CubeCreate",
    "CubeId",
    "CubeUpdate",
    "ErrorBody",
    "ErrorDetail",
    "GenerationResult",
    "HistoryEntry",
    "JobRecord",
    "JobState",
    "JobSubmit",
    "MigrationReport",
    "Name",
    "Page",
    "PrincipalCreate",
    "PrincipalPublic",
    "ProxyMessage",
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

_WS = r"\t\n\x0b\x0c\r\x1c-\x20\x85\xa0\u1680\u180e\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"
"""Every character some regex dialect or trimmer calls whitespace (Python, JSON Schema/ECMA, pydantic's Rust),
spelled out so that the published schema and the validators agree exactly."""

Tag = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64,
                                       pattern=rf"^[^\x00-\x1f{_WS}](?:[^\x00-\x1f]*[^\x00-\x1f{_WS}])?$")]
"""A free label, 1 to 64 printable characters, no leading or trailing space."""

CubeId = Annotated[str, StringConstraints(
    pattern=r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")]
"""A cube id: a UUID (memcubed makes UUIDv7s, sortable by creation)."""

_NOT_BLANK = rf"[^{_WS}]"
"""Somewhere a character that is not whitespace: the published schema rejects what the validators reject."""

_STORABLE_TEXT = rf"^[^\x00]*[^{_WS}\x00][^\x00]*$"
"""Not blank and no NUL character (PostgreSQL text cannot hold one; every backend takes the same input)."""


def _blank(value: str) -> bool:
    return re.search(_NOT_BLANK, value) is None


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)


class CubeCreate(_Input):
    """Input of ``add``: a new plaintext memory (``id`` keeps an existing id, for imports)."""

    text: str = Field(pattern=_STORABLE_TEXT,
                      description="the memory's text; the kernel enforces the configured size limit")
    namespace: Name = "default"
    importance: float = Field(default=0.5, ge=0.0, le=1.0)
    tags: list[Tag] = Field(default_factory=list, max_length=64)
    source: Source = Field(default_factory=Source)
    derived_from: list[DerivedRef] = Field(default_factory=list, max_length=1000,
                                           json_schema_extra={"uniqueItems": True})
    meta: dict[str, Any] = Field(default_factory=dict)
    id: CubeId | None = Field(default=None, description="keep an existing id (imports, migrations)")

    @field_validator("text")
    @classmethod
    def _text_not_blank(cls, value: str) -> str:
        if _blank(value):
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


class CubeUpdate(_Input):
    """Input of ``update``: the fields to change; ``expected_version`` enables optimistic concurrency."""

    # The published schema says what the validator below enforces: at least one field to change.
    model_config = ConfigDict(extra="forbid", json_schema_extra={"anyOf": [
        {"required": [name], "properties": {name: {"not": {"type": "null"}}}}
        for name in ("text", "importance", "tags", "source", "meta", "state")]})

    text: str | None = Field(default=None, pattern=_STORABLE_TEXT)
    importance: float | None = Field(default=None, ge=0.0, le=1.0)
    tags: list[Tag] | None = Field(default=None, max_length=64)
    source: Source | None = None
    meta: dict[str, Any] | None = None
    state: Annotated[CubeState, WithJsonSchema({"type": "string", "enum": ["active", "stale", "archived"]})] | None = \
        Field(default=None, description="active, stale or archived (use delete to delete)")
    expected_version: int | None = Field(default=None, ge=1)

    @field_validator("text")
    @classmethod
    def _text_not_blank(cls, value: str | None) -> str | None:
        if value is not None and _blank(value):
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

    query: str = Field(min_length=1, max_length=10_000, pattern=_NOT_BLANK)
    namespace: Name = "default"
    k: int = Field(default=10, ge=1, le=1000)
    mode: SearchMode = SearchMode.HYBRID
    filters: SearchFilters = Field(default_factory=SearchFilters)

    @field_validator("query")
    @classmethod
    def _query_not_blank(cls, value: str) -> str:
        if _blank(value):
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
    prefix_tokens: int = 0
    ttft_ms: float
    total_ms: float
    load_ms: float = 0.0


class ApiKeyRecord(BaseModel):
    """A stored API key: only the hash of its secret is kept."""

    key_id: str
    principal: str
    secret_hash: str = Field(repr=False, description="sha256 hex of the key's secret")
    label: str = ""
    created_at: datetime
    revoked_at: datetime | None = None


class ApiKeyCreate(_Input):
    """Input of ``create_api_key``: an optional label that tells a principal's keys apart."""

    label: str = Field(default="", max_length=128, pattern=r"^[^\x00-\x1f]*$")


class ApiKeyPublic(BaseModel):
    """An API key as shown to callers: never its secret nor the secret's hash."""

    key_id: str
    principal: str
    label: str
    created_at: datetime
    revoked_at: datetime | None = None


class ApiKeyIssued(ApiKeyPublic):
    """Output of ``create_api_key``: the key's public fields and, this one time, the whole key."""

    key: str = Field(description="``mck_<key_id>_<secret>``, the bearer token; shown once and never stored")


class ErrorDetail(BaseModel):
    """A ``MemcubedError`` as interfaces report it."""

    code: str = Field(description="stable machine-readable error code, e.g. not_found, access_denied")
    message: str
    details: dict[str, Any] = Field(default_factory=dict)


class ErrorBody(BaseModel):
    """The body of every error response: ``{"error": {"code", "message", "details"}}``."""

    error: ErrorDetail


T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    """One page of a list; ask for the next one with ``next`` as the offset (``after_seq`` for audit)."""

    items: list[T]
    next: int | None = Field(default=None, description="cursor of the next page; null on the last page")


class ChatMemoryOptions(_Input):
    """memcubed's options of a proxied chat completion (the ``memcubed`` field of the request)."""

    remember: bool = Field(default=False, description="store the user message and the answer as memories")
    namespace: Name = "default"
    k: int = Field(default=5, ge=0, le=50, description="memories to put in front of the conversation")
    conversation: str | None = Field(default=None, max_length=256,
                                     description="conversation id recorded as the source of remembered turns")


class ProxyMessage(BaseModel):
    """One OpenAI chat message as the proxy takes it; fields other than role and content pass through unchanged."""

    model_config = ConfigDict(extra="allow")

    role: str = Field(max_length=64)
    content: str | list[dict[str, Any]] | None = None


class ChatCompletionRequest(BaseModel):
    """An OpenAI ``/chat/completions`` request; unknown fields pass through to the upstream."""

    model_config = ConfigDict(extra="allow")

    model: str = Field(max_length=256)
    messages: list[ProxyMessage] = Field(min_length=1, max_length=1000)
    stream: bool = False
    memcubed: ChatMemoryOptions = Field(default_factory=ChatMemoryOptions)


class ChatMemoryReport(BaseModel):
    """Which memories a proxied chat completion used and which it stored (the ``memcubed`` response field)."""

    cubes: list[str] = Field(default_factory=list, description="ids of the memories put in front of the conversation")
    remembered: list[str] = Field(default_factory=list, description="ids of the memories stored from this turn")


class JobState(StrEnum):
    """Where a job is in its life: queued → running → succeeded | failed | cancelled."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        """Whether the job will not change state again."""
        return self in (JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED)


class JobSubmit(_Input):
    """Input of ``submit_job``: long work (``cache``, ``consolidate``) to run in the background."""

    kind: str = Field(pattern=r"^[a-z_]{1,32}$", description="the operation to run, e.g. cache")
    params: dict[str, Any] = Field(default_factory=dict, description="the operation's arguments")


class JobRecord(BaseModel):
    """A background job: what runs, for whom, how far it got and how it ended."""

    id: str
    kind: str
    principal: str
    params: dict[str, Any] = Field(default_factory=dict)
    state: JobState = JobState.QUEUED
    done: int = 0
    total: int = 0
    cancel_requested: bool = False
    result: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    worker: str | None = None
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None


class CacheJob(_Input):
    """Params of a ``cache`` job: compile plaintext cubes into one activation cube."""

    cube_ids: list[CubeId] = Field(min_length=1, max_length=1000)
    model: str = Field(default="local", description="local (packaged SmolLM2) or local:<hub name or folder>")
    mode: str = Field(default="exact", pattern=r"^(exact|approximate)$")
    storage_dtype: str = Field(default="float32", pattern=r"^(float32|bfloat16)$")


class ChatMessage(_Input):
    """One turn of a conversation, as OpenAI-compatible APIs write it."""

    role: str = Field(pattern=r"^(system|user|assistant)$")
    content: str = Field(max_length=200_000, pattern=r"^[^\x00]*$",
                         description="no NUL character: a remembered turn must be storable on every backend")


class ChatRequest(_Input):
    """Input of ``chat``: answer the conversation's last user turn with the principal's memories.

    The memories come from ``activation_id`` (an activation cube's exact sources) or else from a
    search for the last user turn (``k`` hits, ``filters`` applied; ``k=0`` recalls nothing).
    """

    messages: list[ChatMessage] = Field(min_length=1, max_length=200)
    namespace: Name = "default"
    k: int = Field(default=5, ge=0, le=50)
    filters: SearchFilters = Field(default_factory=SearchFilters)
    activation_id: str | None = None
    remember: bool = Field(default=False, description="store the user turn and the reply as plaintext memories")
    conversation: str | None = Field(default=None, max_length=512,
                                     description="conversation id; remembered turns get source uri chat:<id>")
    max_new_tokens: int = Field(default=128, ge=1, le=4096)

    @model_validator(mode="after")
    def _ends_with_user(self) -> ChatRequest:
        if self.messages[-1].role != "user" or not self.messages[-1].content.strip():
            raise ValueError("the last message must be a non-empty user turn")
        return self


class ChatResult(BaseModel):
    """Output of ``chat``: the reply, which memories shaped it and how they reached the model."""

    text: str
    used: list[str] = Field(default_factory=list, description="plaintext cube ids given to the model, in order")
    via: str = Field(description="kv (attention state injected), simulated (byte-stable prompt prefix) or none")
    activation_id: str | None = None
    prefix_tokens: int = 0
    reused_tokens: int = Field(default=0, description="memory tokens whose KV was loaded instead of computed")
    remembered: list[str] = Field(default_factory=list, description="ids of the turns stored as new memories")
    retrieve_ms: float = 0.0
    prefill_ms: float = Field(default=0.0, description="time to load or compute the memories' KV")
    ttft_ms: float = 0.0
    total_ms: float = 0.0
