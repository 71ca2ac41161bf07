"""Schemas of the server: API keys, error bodies, pages, the OpenAI-compatible chat proxy."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from memcubed.schemas.base import Input, Name
from memcubed.schemas.ops import SearchFilters

__all__ = [
    "ApiKeyCreate",
    "ApiKeyIssued",
    "ApiKeyPublic",
    "ApiKeyRecord",
    "ChatCompletionRequest",
    "ChatMemoryOptions",
    "ChatMemoryReport",
    "ErrorBody",
    "ErrorDetail",
    "Page",
    "ProxyMessage",
]


KeyScope = Literal["read", "write", "admin"]
"""What a key may do: ``read`` runs read-only operations, ``write`` everything but administration, ``admin``
everything its principal may (each scope includes the ones before it)."""

SCOPE_LEVEL: dict[str, int] = {"read": 0, "write": 1, "admin": 2}
"""The order of key scopes."""


class ApiKeyRecord(BaseModel):
    """A stored API key: only the hash of its secret is kept."""

    key_id: str
    principal: str
    secret_hash: str = Field(repr=False, description="sha256 hex of the key's secret")
    label: str = ""
    created_at: datetime
    revoked_at: datetime | None = None
    expires_at: datetime | None = None
    scope: KeyScope = "admin"


class ApiKeyCreate(Input):
    """Input of ``create_api_key``: an optional label that tells a principal's keys apart."""

    label: str = Field(default="", max_length=128, pattern=r"^[^\x00-\x1f]*$")
    expires_at: datetime | None = Field(default=None, description="refused from this time on (with a timezone)")
    scope: KeyScope = Field(default="admin", description="read: read-only operations; write: all but "
                            "administration; admin: everything the principal may do")


class ApiKeyPublic(BaseModel):
    """An API key as shown to callers: never its secret nor the secret's hash."""

    key_id: str
    principal: str
    label: str
    created_at: datetime
    revoked_at: datetime | None = None
    expires_at: datetime | None = None
    scope: KeyScope = "admin"


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


class ChatMemoryOptions(Input):
    """memcubed's options of a proxied chat completion (the ``memcubed`` field of the request)."""

    remember: bool = Field(default=False, description="store the user message and the answer as memories")
    namespace: Name = "default"
    k: int = Field(default=5, ge=0, le=50, description="memories to put in front of the conversation")
    filters: SearchFilters = Field(default_factory=SearchFilters, description="search filters, as in chat")
    conversation: str | None = Field(default=None, max_length=256,
                                     description="conversation id recorded as the source of remembered turns")
    working_set: bool = Field(default=True, description="lead with your working set of the namespace, if any")


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
    sources: dict[str, str] = Field(default_factory=dict, description=(
        "for each memory used, where it came from (type[:uri][#ref], as in chat)"))
    evidence: dict[str, list[str]] = Field(default_factory=dict, description=(
        "for each extracted fact used, the turn cubes it came from (put in front with it)"))
