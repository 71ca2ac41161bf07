"""Schemas of background jobs and of the operations that run as jobs."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field

from memcubed.schemas.base import CubeId, Input

__all__ = [
    "CacheJob",
    "ConsolidateJob",
    "JobRecord",
    "JobState",
    "JobSubmit",
]


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


class JobSubmit(Input):
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
    attempts: int = Field(default=0, description="how many times a worker claimed it (1 on its first run)")
    lease_until: datetime | None = Field(default=None, description="while running: its worker holds it until"
                                         " then, renewing it as it goes; after that another worker may claim it")
    heartbeat_at: datetime | None = Field(default=None, description="when its worker last renewed the lease")


class CacheJob(Input):
    """Params of a ``cache`` job: compile plaintext cubes into one activation cube."""

    cube_ids: list[CubeId] = Field(min_length=1, max_length=1000)
    model: str | None = Field(default=None, max_length=64,
                              description="a model id the operator configured (MEMCUBED_MODELS); the default"
                                          " model when omitted")
    mode: str = Field(default="exact", pattern=r"^(exact|approximate)$")
    storage_dtype: str = Field(default="float32", pattern=r"^(float32|bfloat16)$")


class ConsolidateJob(Input):
    """Params of a ``consolidate`` job: train a LoRA adapter on plaintext cubes."""

    cube_ids: list[CubeId] = Field(min_length=1, max_length=10_000)
    model: str | None = Field(default=None, max_length=64,
                              description="a model id the operator configured (MEMCUBED_MODELS); the default"
                                          " model when omitted")
    config: dict[str, Any] | None = Field(default=None, description="LoRA settings (rank, alpha, epochs, ...)")
    control: list[tuple[str, str]] | None = Field(default=None, max_length=1000,
                                                  description="(question, answer) pairs not trained on, to measure"
                                                              " drift; the built-in set when omitted")
