"""Whole inputs of operations whose arguments are more than one core schema (a cube id plus a change,
a query plus a model id, ...): with these, every operation of the registry has exactly one input schema."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from memcubed.schemas.base import CubeId, Input, Name
from memcubed.schemas.chat import ChatRequest
from memcubed.schemas.jobs import JobState
from memcubed.schemas.ops import CubeCreate, CubeUpdate, SearchFilters, ShareRequest, TrustPolicy
from memcubed.schemas.server import ApiKeyCreate

__all__ = [
    "AdapterGenerateInput",
    "AddManyInput",
    "ApiKeyCreateInput",
    "ApiKeyRef",
    "AuditInput",
    "ChatInput",
    "CubeRef",
    "DeleteInput",
    "GenerateInput",
    "GetInput",
    "HistoryInput",
    "JobRef",
    "ListApiKeysInput",
    "ListCubesInput",
    "ListJobsInput",
    "NoInput",
    "PageInput",
    "PrincipalRef",
    "RecompileInput",
    "RevokeInput",
    "SetAdminInput",
    "SetTrustInput",
    "ShareInput",
    "UpdateInput",
    "VersionRef",
]

ModelId = Field(default=None, max_length=64, description="a model id the operator configured (MEMCUBED_MODELS); "
                                                         "the default model when omitted")


class NoInput(Input):
    """The input of an operation that takes nothing but the acting principal."""


class CubeRef(Input):
    """One cube, by id (``forget``, ``archive``)."""

    cube_id: CubeId = Field(description="the cube's id")


class GetInput(CubeRef):
    """Input of ``get``: a cube's current state, or its state at ``as_of``."""

    as_of: datetime | None = Field(default=None, description="record time: the cube as it was known then")
    include_deleted: bool = Field(default=False, description="a deleted cube too")
    true_at: datetime | None = Field(default=None, description=(
        "event time: the cube only if it held then (not found otherwise)"))


class VersionRef(CubeRef):
    """Input of ``get_version``."""

    version: int = Field(ge=1, le=2**62, description="read this version")


class PageInput(Input):
    """A page of a list."""

    limit: int = Field(default=100, ge=1, le=1000, description="items per page")
    offset: int = Field(default=0, ge=0, le=2**31, description="items to skip")


class HistoryInput(CubeRef, PageInput):
    """Input of ``history``."""


class UpdateInput(CubeRef):
    """Input of ``update``: the cube and the change."""

    change: CubeUpdate = Field(description="what changes")


class DeleteInput(CubeRef):
    """Input of ``delete``."""

    expected_version: int | None = Field(default=None, ge=1, le=2**62,
                                         description="fail unless the cube is at this version")


class ShareInput(CubeRef):
    """Input of ``share``: the cube and the grant."""

    grant: ShareRequest = Field(description="the grant")


class RevokeInput(CubeRef):
    """Input of ``revoke``: every right ``grantee`` holds on the cube."""

    grantee: Name = Field(description="the principal whose rights are removed")


class AddManyInput(Input):
    """Input of ``add_many``: memories stored all together or not at all."""

    items: list[CubeCreate] = Field(min_length=1, max_length=10_000)


class ListCubesInput(PageInput):
    """Input of ``list_cubes``: the cubes of a namespace the principal may read, newest first."""

    namespace: Name = Field(default="default", description="memory space")
    filters: SearchFilters = Field(default_factory=SearchFilters, description="which cubes")


class GenerateInput(Input):
    """Input of ``generate``: continue ``query`` with an activation cube's KV injected (or simulated)."""

    query: str = Field(min_length=1, max_length=100_000)
    activation_id: CubeId | None = None
    model: str | None = ModelId
    max_new_tokens: int = Field(default=64, ge=1, le=4096)


class AdapterGenerateInput(Input):
    """Input of ``generate_with_adapters``: answer ``query`` with parameter cubes' adapters active."""

    query: str = Field(min_length=1, max_length=100_000)
    parameter_ids: list[CubeId] = Field(default_factory=list, max_length=64)
    model: str | None = ModelId
    max_new_tokens: int = Field(default=64, ge=1, le=4096)
    chat: bool = True


class ChatInput(ChatRequest):
    """Input of ``chat`` from an interface: the request plus the configured model id that answers it."""

    model: str | None = ModelId


class RecompileInput(CubeRef):
    """Input of ``recompile``: retrain a parameter cube on its sources' current versions."""

    model: str | None = ModelId


class AuditInput(Input):
    """Input of ``audit``: one cube's records, or everyone's (administrators), after a cursor."""

    cube_id: CubeId | None = Field(default=None, description="only this cube's records")
    after_seq: int = Field(default=0, ge=0, le=2**62, description="records after this seq (the cursor)")
    limit: int = Field(default=100, ge=1, le=1000, description="at most this many records")


class PrincipalRef(Input):
    """One principal, by name."""

    name: Name = Field(description="the principal's name")


class SetTrustInput(Input):
    """Input of ``set_trust``: the policy, and whose (yourself when omitted; anyone's for administrators)."""

    policy: TrustPolicy = Field(description="whose memories enter your prompts")
    name: Name | None = Field(default=None, description="the principal's name")


class SetAdminInput(PrincipalRef):
    """Input of ``set_admin``: whom, and whether it administers the store."""

    is_admin: bool


class ApiKeyCreateInput(ApiKeyCreate):
    """Input of ``create_api_key``: whose key (yourself when omitted) and its label."""

    owner: Name | None = None


class ApiKeyRef(Input):
    """One API key, by id."""

    key_id: str = Field(min_length=1, max_length=64)


class ListApiKeysInput(PageInput):
    """Input of ``list_api_keys``: yours, or (administrators) ``owner``'s or everyone's."""

    owner: Name | None = Field(default=None, description="whose keys (default: yours; all for administrators)")


class JobRef(Input):
    """One job, by id."""

    job_id: str = Field(min_length=1, max_length=64, description="the job's id")


class ListJobsInput(PageInput):
    """Input of ``list_jobs``."""

    state: JobState | None = Field(default=None, description="only jobs in this state")
    limit: int = Field(default=50, ge=1, le=1000, description="items per page")
