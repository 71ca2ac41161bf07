"""Schemas of blob garbage collection (``collect_garbage``)."""

from __future__ import annotations

from pydantic import BaseModel, Field

from memcubed.schemas.base import Input

__all__ = ["GcInput", "GcReport"]

MAX_LISTED = 1000
"""Most digests one report lists (the counts cover every blob)."""


class GcInput(Input):
    """Input of ``collect_garbage``: what to sweep and whether to only report (deleted cubes past their
    retention are purged first, so that their blobs can go)."""

    dry_run: bool = Field(default=False, description="list what would be collected, deleting nothing")
    grace_s: float | None = Field(default=None, ge=0, le=10 * 365 * 24 * 3600,
                                  description="keep blobs written less than this many seconds ago (default: the"
                                              " store's blob_gc_grace_s); 0 collects every unreferenced blob")
    retention_s: float | None = Field(default=None, ge=0, le=100 * 365 * 24 * 3600,
                                      description="first purge the cubes soft-deleted longer ago than this many"
                                                  " seconds (default: the store's deleted_retention_s)")


class GcReport(BaseModel):
    """What a garbage collection found and removed."""

    dry_run: bool
    grace_s: float = Field(description="the grace period applied, in seconds")
    blobs: int = Field(description="blobs stored before the sweep")
    referenced: int = Field(description="stored blobs a live cube uses")
    young: int = Field(description="unreferenced blobs kept because they are younger than the grace period")
    collected: int = Field(description="unreferenced blobs removed (or, in a dry run, that would be)")
    bytes: int = Field(description="their size in bytes")
    digests: list[str] = Field(default_factory=list, description=f"their digests (the first {MAX_LISTED})")
    retention_s: float = Field(default=0.0, description="the deleted-cube retention applied, in seconds")
    purged: list[str] = Field(default_factory=list, description="the soft-deleted cubes purged first (or, in a dry"
                                                                " run, that would be), past their retention")
