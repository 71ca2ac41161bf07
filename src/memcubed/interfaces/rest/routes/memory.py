"""Routes on memory in other forms and on generation: list_cubes, chat, generate, generate_with_adapters,
consolidate and submit_job (queued as jobs), recompile and archive.

Each route runs one operation of the kernel's registry (``memcubed.kernel.registry.OPERATIONS``), whose
execute step resolves the request's model id against the operator's allow-list.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from memcubed.cube.model import CubeKind, CubeState, MemCube
from memcubed.interfaces.rest.auth import Caller, KernelDep
from memcubed.interfaces.rest.errors import ERROR_RESPONSES
from memcubed.kernel.registry import OPERATIONS
from memcubed.schemas.base import CubeId, Name, Tag
from memcubed.schemas.chat import ChatResult, GenerationResult
from memcubed.schemas.jobs import ConsolidateJob, JobRecord, JobSubmit
from memcubed.schemas.operation import AdapterGenerateInput, ChatInput, CubeRef, GenerateInput, RecompileInput
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


@router.post("/chat", operation_id="chat")
def chat(body: ChatInput, kernel: KernelDep, caller: Caller) -> ChatResult:
    """Answer the last user turn with your memories (retrieved, or an activation cube's) given to the model."""
    result: ChatResult = OPERATIONS["chat"].execute(kernel, body, caller)
    return result


@router.post("/generate", operation_id="generate")
def generate(body: GenerateInput, kernel: KernelDep, caller: Caller) -> GenerationResult:
    """Continue a query with an activation cube's KV injected (a closed model gets its sources as a prefix)."""
    result: GenerationResult = OPERATIONS["generate"].execute(kernel, body, caller)
    return result


@router.post("/generate/adapters", operation_id="generate_with_adapters")
def generate_with_adapters(body: AdapterGenerateInput, kernel: KernelDep, caller: Caller) -> GenerationResult:
    """Answer a query with parameter cubes' adapters active and no memory in the prompt."""
    result: GenerationResult = OPERATIONS["generate_with_adapters"].execute(kernel, body, caller)
    return result


@router.post("/consolidate", status_code=202, operation_id="consolidate")
def consolidate(body: ConsolidateJob, kernel: KernelDep, caller: Caller) -> JobRecord:
    """Train a LoRA adapter on plaintext cubes as a background job; poll ``/jobs/{id}``."""
    return kernel.submit_job({"kind": "consolidate", "params": body.model_dump()}, principal=caller)


@router.post("/jobs", status_code=202, operation_id="submit_job")
def submit_job(body: JobSubmit, kernel: KernelDep, caller: Caller) -> JobRecord:
    """Queue long work of any job kind (``cache``, ``consolidate``) with its params."""
    return kernel.submit_job(body, principal=caller)


@router.post("/cubes/{cube_id}/recompile", operation_id="recompile")
def recompile(cube_id: CubeIdPath, kernel: KernelDep, caller: Caller, model: ModelQuery = None) -> MemCube:
    """Build an activation or parameter cube again from its sources' current versions."""
    cube: MemCube = OPERATIONS["recompile"].execute(kernel, RecompileInput(cube_id=cube_id, model=model), caller)
    return cube


@router.post("/cubes/{cube_id}/archive", operation_id="archive")
def archive(cube_id: CubeIdPath, kernel: KernelDep, caller: Caller) -> MemCube:
    """Archive a cube; an activation or parameter cube drops its KV or adapter (its sources are kept)."""
    cube: MemCube = OPERATIONS["archive"].execute(kernel, CubeRef(cube_id=cube_id), caller)
    return cube


@router.post("/cubes/{cube_id}/restore", operation_id="restore")
def restore(cube_id: CubeIdPath, kernel: KernelDep, caller: Caller) -> MemCube:
    """Bring an archived plaintext cube back to active."""
    cube: MemCube = OPERATIONS["restore"].execute(kernel, CubeRef(cube_id=cube_id), caller)
    return cube


@router.post("/cubes/{cube_id}/undelete", operation_id="undelete")
def undelete(cube_id: CubeIdPath, kernel: KernelDep, caller: Caller) -> MemCube:
    """Bring a soft-deleted (not forgotten) cube back to active."""
    cube: MemCube = OPERATIONS["undelete"].execute(kernel, CubeRef(cube_id=cube_id), caller)
    return cube
