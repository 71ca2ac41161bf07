"""The MemCube: a payload plus governance metadata, whatever the memory's form."""

from __future__ import annotations

from datetime import datetime
from enum import IntEnum, StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from memcubed.cube.strict import NO_NUL, Checked

__all__ = [
    "BlobRef",
    "CubeKind",
    "CubeState",
    "CubeStats",
    "DerivedRef",
    "Grant",
    "MemCube",
    "Right",
    "Source",
]


class CubeKind(StrEnum):
    """The form a memory lives in."""

    PLAINTEXT = "plaintext"
    ACTIVATION = "activation"
    PARAMETER = "parameter"


class CubeState(StrEnum):
    """Lifecycle state; ``stale`` means the source a derived cube came from has changed."""

    ACTIVE = "active"
    STALE = "stale"
    ARCHIVED = "archived"
    DELETED = "deleted"
    INACTIVE = "inactive"
    """A parameter cube whose adapter failed its consolidation gate: kept with its evaluation, never served."""


class Right(IntEnum):
    """Rights on a cube, each including the ones below it; the owner holds ``ADMIN``."""

    READ = 1
    WRITE = 2
    SHARE = 3
    ADMIN = 4

    @classmethod
    def parse(cls, value: str | int | Right) -> Right:
        """Return the right named by ``value`` (``"read"``, ``"write"``, ``"share"``, ``"admin"``)."""
        if isinstance(value, Right):
            return value
        if isinstance(value, int):
            return cls(value)
        return cls[value.strip().upper()]


class _Frozen(Checked):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Source(_Frozen):
    """Provenance: where a cube's content came from."""

    type: str = Field(default="api", max_length=64, pattern=NO_NUL,
                      description="api, conversation, document, derived, import…")
    uri: str | None = Field(default=None, max_length=2048, pattern=NO_NUL,
                            description="document URI or conversation id")
    ref: str | None = Field(default=None, max_length=256, pattern=NO_NUL, description="turn id, page, offset…")
    occurred_at: datetime | None = Field(default=None, description="when the content happened (event time)")


class DerivedRef(_Frozen):
    """An exact cube version another cube was compiled or trained from."""

    id: str
    version: int = Field(ge=1, le=2**53)


class Grant(_Frozen):
    """A right on a cube held by a principal other than its owner."""

    principal: str
    right: Right
    accepted: bool = Field(default=True, description=(
        "whether the grantee accepted the share: a pending grant allows explicit reads, but the cube enters"
        " the grantee's chat retrieval only once accepted (or under the trust policy 'all')"))


class BlobRef(_Frozen):
    """A content-addressed tensor payload outside the metadata database."""

    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    size: int = Field(ge=0)
    media_type: str = "application/safetensors"


class CubeStats(BaseModel):
    """Access statistics; reads update them, they never bump the version."""

    model_config = ConfigDict(extra="forbid")

    access_count: int = 0
    last_access: datetime | None = None
    hotness: float = Field(default=0.0, description="access count decayed with a half-life")


class MemCube(BaseModel):
    """One memory of any form, with its governance metadata.

    ``text`` holds a plaintext payload; ``payload`` references a tensor blob for
    activation and parameter cubes. ``acl`` lists grants beyond the owner; it is
    filled only for principals allowed to share the cube. The system owns ``kind``, ``state``,
    ``model``, ``derived_from``, ``payload`` and ``segments``: they change only through kernel
    operations, never through ``update``; ``meta`` is the user's.
    """

    model_config = ConfigDict(extra="forbid")

    id: str
    kind: CubeKind = CubeKind.PLAINTEXT
    namespace: str
    owner: str
    source: Source = Field(default_factory=Source)
    derived_from: list[DerivedRef] = Field(default_factory=list)
    created_at: datetime
    updated_at: datetime
    version: int = Field(ge=1, le=2**53)
    importance: float = Field(default=0.5, ge=0.0, le=1.0)
    acl: list[Grant] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=list)
    state: CubeState = CubeState.ACTIVE
    stats: CubeStats = Field(default_factory=CubeStats)
    model: str | None = None
    text: str | None = None
    payload: BlobRef | None = None
    segments: list[str] = Field(default_factory=list, description="activation cubes: the KV segment blob digests "
                                "of the prefix tree, in order (system-owned, never written by a user)")
    acl_version: int = Field(default=0, ge=0, description="+1 on every share or revoke; the content version stays")
    meta: dict[str, Any] = Field(default_factory=dict)
    forgotten: bool = Field(default=False, description="payload and embeddings purged; a tombstone")
    # -- conversation memory (issue 15): event time is ``source.occurred_at``; record time ``created_at`` --
    valid_from: datetime | None = Field(default=None, description=(
        "event time from which the memory holds (an extracted fact); None: unknown or always"))
    valid_to: datetime | None = Field(default=None, description=(
        "event time from which it no longer holds: set when a later fact contradicts it (system-owned)"))
