"""The ``list_cubes`` route, written by hand: its filters come from repeated query parameters (``tag``,
``kind``, ``state``, ``owner``), not from the fields of its input schema (a nested ``filters`` object)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from memcubed.cube.model import CubeKind, CubeState, MemCube
from memcubed.interfaces.rest.auth import Caller, KernelDep
from memcubed.interfaces.rest.errors import ERROR_RESPONSES
from memcubed.kernel.registry import OPERATIONS
from memcubed.schemas.base import CubeId, Name, Tag
from memcubed.schemas.server import Page

__all__ = ["router"]

router = APIRouter(tags=["memory"], responses=ERROR_RESPONSES)

CubeIdPath = Annotated[CubeId, Path(description="the cube's id")]
ModelQuery = Annotated[str | None, Query(max_length=64, description="a configured model id (default model when "
                                                                     "omitted)")]


@router.get("/cubes", operation_id="list_cubes")
def list_cubes(kernel: KernelDep, caller: Caller,
               namespace: Annotated[Name, Query(description="memory space")] = "default",
               tag: Annotated[list[Tag] | None, Query(description="every tag must be present")] = None,
               kind: Annotated[list[CubeKind] | None, Query(description="only these kinds")] = None,
               state: Annotated[list[CubeState] | None, Query(description="these states (default active)")] = None,
               owner: Annotated[Name | None, Query(description="only this owner's cubes")] = None,
               limit: Annotated[int, Query(ge=1, le=1000)] = 100,
               offset: Annotated[int, Query(ge=0, le=2**31)] = 0) -> Page[MemCube]:
    """The cubes of a namespace you may read, newest first (filters as in search)."""
    filters = {k: v for k, v in (("tags", tag), ("kinds", kind), ("states", state), ("owner", owner)) if v}
    cubes = OPERATIONS["list_cubes"].execute(kernel, {"namespace": namespace, "filters": filters, "limit": limit,
                                                      "offset": offset}, caller)
    return Page(items=cubes, next=offset + limit if len(cubes) == limit else None)
