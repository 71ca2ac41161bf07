"""Routes on cubes: add, add_many, get, update, delete, forget, search, history, get_version, share, revoke."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Body, Path, Query

from memcubed.cube.model import MemCube
from memcubed.interfaces.rest.auth import Caller, KernelDep
from memcubed.interfaces.rest.errors import ERROR_RESPONSES
from memcubed.schemas.base import CubeId
from memcubed.schemas.ops import CubeCreate, CubeUpdate, HistoryEntry, SearchRequest, SearchResult, ShareRequest
from memcubed.schemas.server import Page

__all__ = ["router"]

router = APIRouter(tags=["cubes"], responses=ERROR_RESPONSES)

CubeIdPath = Annotated[CubeId, Path(description="the cube's id")]
Limit = Annotated[int, Query(ge=1, le=1000, description="items per page")]
Offset = Annotated[int, Query(ge=0, le=2**31, description="items to skip")]


@router.post("/cubes", status_code=201, operation_id="add")
def add(body: CubeCreate, kernel: KernelDep, caller: Caller) -> MemCube:
    """Store a new plaintext memory owned by the caller."""
    return kernel.add(body, principal=caller)


@router.post("/cubes/batch", status_code=201, operation_id="add_many")
def add_many(body: Annotated[list[CubeCreate], Body(min_length=1, max_length=10_000)], kernel: KernelDep,
             caller: Caller) -> list[MemCube]:
    """Store several memories atomically: all of them or none."""
    return kernel.add_many(body, principal=caller)


@router.get("/cubes/{cube_id}", operation_id="get")
def get(cube_id: CubeIdPath, kernel: KernelDep, caller: Caller,
        as_of: Annotated[datetime | None, Query(description="the state at this time (with a timezone)")] = None,
        include_deleted: bool = False,
        true_at: Annotated[datetime | None, Query(description="event time: only if it held then")] = None) -> MemCube:
    """Return a cube's current state, or its state at ``as_of`` (record time); ``true_at``: only if it held then."""
    return kernel.get(cube_id, principal=caller, as_of=as_of, include_deleted=include_deleted, true_at=true_at)


@router.patch("/cubes/{cube_id}", operation_id="update")
def update(cube_id: CubeIdPath, body: CubeUpdate, kernel: KernelDep, caller: Caller) -> MemCube:
    """Change a cube's text or metadata, writing a new version."""
    return kernel.update(cube_id, body, principal=caller)


@router.delete("/cubes/{cube_id}", operation_id="delete")
def delete(cube_id: CubeIdPath, kernel: KernelDep, caller: Caller,
           expected_version: Annotated[int | None, Query(ge=1, le=2**62)] = None) -> MemCube:
    """Soft-delete a cube: hidden from get and search, its history kept (needs admin on the cube)."""
    return kernel.delete(cube_id, principal=caller, expected_version=expected_version)


@router.post("/cubes/{cube_id}/forget", operation_id="forget")
def forget(cube_id: CubeIdPath, kernel: KernelDep, caller: Caller) -> MemCube:
    """Purge a cube's text and embeddings from every version; a tombstone and the audit trail remain."""
    return kernel.forget(cube_id, principal=caller)


@router.get("/cubes/{cube_id}/history", operation_id="history")
def history(cube_id: CubeIdPath, kernel: KernelDep, caller: Caller, limit: Limit = 100,
            offset: Offset = 0) -> Page[HistoryEntry]:
    """List a cube's versions, oldest first."""
    entries = kernel.history(cube_id, principal=caller, limit=limit, offset=offset)
    return Page(items=entries, next=offset + limit if len(entries) == limit else None)


@router.get("/cubes/{cube_id}/versions/{version}", operation_id="get_version")
def get_version(cube_id: CubeIdPath, version: Annotated[int, Path(ge=1, le=2**62)], kernel: KernelDep,
                caller: Caller) -> HistoryEntry:
    """Return one version of a cube as it was written."""
    return kernel.get_version(cube_id, version, principal=caller)


@router.post("/cubes/{cube_id}/share", operation_id="share")
def share(cube_id: CubeIdPath, body: ShareRequest, kernel: KernelDep, caller: Caller) -> MemCube:
    """Grant a right on a cube to another principal, replacing any grant it had."""
    return kernel.share(cube_id, body, principal=caller)


@router.delete("/cubes/{cube_id}/grants/{grantee}", operation_id="revoke")
def revoke(cube_id: CubeIdPath, grantee: Annotated[str, Path(max_length=128)], kernel: KernelDep,
           caller: Caller) -> MemCube:
    """Remove every right ``grantee`` holds on a cube; takes effect at once."""
    return kernel.revoke(cube_id, grantee, principal=caller)


@router.post("/cubes/{cube_id}/accept", operation_id="accept_share")
def accept_share(cube_id: CubeIdPath, kernel: KernelDep, caller: Caller) -> MemCube:
    """Accept a cube shared with you: from now on it may enter your chat retrieval."""
    return kernel.accept_share(cube_id, principal=caller)


@router.post("/cubes/{cube_id}/decline", operation_id="decline_share")
def decline_share(cube_id: CubeIdPath, kernel: KernelDep, caller: Caller) -> MemCube:
    """Decline (or give up) a cube shared with you: your grant is removed at once."""
    return kernel.decline_share(cube_id, principal=caller)


@router.post("/search", operation_id="search")
def search(body: SearchRequest, kernel: KernelDep, caller: Caller) -> SearchResult:
    """Hybrid (or single-signal) retrieval over the cubes the caller may read."""
    return kernel.search(body, principal=caller)
