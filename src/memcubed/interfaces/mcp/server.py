"""The MCP server (official ``mcp`` SDK): one tool per kernel operation, under its name.

Over stdio (``memcubed mcp``) the tools act as one configured principal; over streamable HTTP (mounted
at ``/mcp`` by the REST app) as the principal whose API key the request carries. Tool arguments are the
core schemas (``CubeCreate``, ``CubeUpdate``, ``SearchRequest``, ``ShareRequest``), so MCP accepts exactly
what REST and the Python API accept. The first tools are written out; every other operation of the
kernel's registry becomes a tool taking its input schema as ``request`` (operations that may run as jobs
are queued, as over REST). A ``MemcubedError`` becomes a tool error whose text is the JSON
error body ``{"error": {"code", "message", "details"}}`` (the MCP side of the one error table).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, TypeVar

import pydantic
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError, UnexpectedToolError
from mcp.types import CallToolResult, InputRequiredResult
from pydantic import BaseModel, Field

from memcubed.cube.model import MemCube
from memcubed.errors import MemcubedError
from memcubed.kernel import Kernel
from memcubed.kernel.registry import OPERATIONS, Operation
from memcubed.kernel.validation import from_pydantic
from memcubed.schemas.base import CubeId
from memcubed.schemas.jobs import JobRecord
from memcubed.schemas.ops import CubeCreate, CubeUpdate, HistoryEntry, SearchRequest, SearchResult, ShareRequest

__all__ = ["PrincipalOf", "build_mcp_server", "tool_error"]

PrincipalOf = Callable[[Context, str], str]
"""Returns the acting principal of a call to the operation named (from the transport: a fixed name, or the
request's API key, whose scope must cover the operation)."""

R = TypeVar("R")

_WRITTEN_OUT = {"add", "search", "get", "update", "forget", "history", "share"}
"""The tools defined by hand below (their argument shapes predate the registry); the rest are generated."""

CubeIdArg = Annotated[CubeId, Field(description="the cube's id")]

_INSTRUCTIONS = ("memcubed is the user's long-term memory. Search it before answering questions about the user "
                 "or earlier conversations; add durable facts worth remembering; never invent cube ids.")


def tool_error(exc: MemcubedError) -> ToolError:
    """The tool error for ``exc``: its text is the JSON error body every interface uses."""
    return ToolError(json.dumps({"error": exc.to_dict()}, default=str, sort_keys=True))


class _Server(MCPServer):
    """The SDK's server, with argument validation errors in our JSON error body instead of pydantic's text."""

    async def call_tool(self, name: str, arguments: dict[str, Any], context: Context[Any, Any] | None = None
                        ) -> CallToolResult | InputRequiredResult:
        try:
            return await super().call_tool(name, arguments, context)
        except ToolError as exc:
            cause = exc.__cause__
            if isinstance(exc, UnexpectedToolError) or not isinstance(cause, pydantic.ValidationError):
                raise
            raise ToolError(f"Error executing tool {name}: {tool_error(from_pydantic(cause, name))}") from cause


def build_mcp_server(kernel: Kernel, principal_of: PrincipalOf) -> MCPServer:
    """Return an MCP server whose tools call ``kernel`` as ``principal_of(context)``.

    Args:
        kernel: the kernel the tools call (tools never touch a backend).
        principal_of: resolves the acting principal of each call; it may raise ``AuthenticationFailed``.
    """
    from memcubed import __version__

    server: MCPServer = _Server("memcubed", instructions=_INSTRUCTIONS, version=__version__, log_level="WARNING")

    def call(ctx: Context, name: str, op: Callable[[str], R]) -> R:
        try:
            return op(principal_of(ctx, name))
        except MemcubedError as exc:
            raise tool_error(exc) from exc

    @server.tool()
    def add(cube: CubeCreate, ctx: Context) -> MemCube:
        """Store a new plaintext memory (``cube.text``; optional namespace, tags, importance, source)."""
        return call(ctx, "add", lambda p: kernel.add(cube, principal=p))

    @server.tool()
    def search(request: SearchRequest, ctx: Context) -> SearchResult:
        """Search the memories you may read (``request.query``; optional namespace, k, mode, filters)."""
        return call(ctx, "search", lambda p: kernel.search(request, principal=p))

    @server.tool()
    def get(cube_id: CubeIdArg, ctx: Context, as_of: datetime | None = None,
            true_at: datetime | None = None) -> MemCube:
        """Return one memory by id; ``as_of``: as it was known then (record time); ``true_at``: only if it held
        then (event time). Both take a timezone."""
        return call(ctx, "get", lambda p: kernel.get(cube_id, principal=p, as_of=as_of, true_at=true_at))

    @server.tool()
    def update(cube_id: CubeIdArg, change: CubeUpdate, ctx: Context) -> MemCube:
        """Change a memory's text or metadata; writes a new version (``change.expected_version`` guards races)."""
        return call(ctx, "update", lambda p: kernel.update(cube_id, change, principal=p))

    @server.tool()
    def forget(cube_id: CubeIdArg, ctx: Context) -> MemCube:
        """Erase a memory's text and embeddings from every version; a tombstone and the audit trail remain."""
        return call(ctx, "forget", lambda p: kernel.forget(cube_id, principal=p))

    @server.tool()
    def history(cube_id: CubeIdArg, ctx: Context,
                limit: Annotated[int, Field(ge=1, le=1000)] = 100,
                offset: Annotated[int, Field(ge=0)] = 0) -> list[HistoryEntry]:
        """List a memory's versions, oldest first."""
        return call(ctx, "history", lambda p: kernel.history(cube_id, principal=p, limit=limit, offset=offset))

    @server.tool()
    def share(cube_id: CubeIdArg, grant: ShareRequest, ctx: Context) -> MemCube:
        """Grant another principal a right (read, write, share, admin) on a memory."""
        return call(ctx, "share", lambda p: kernel.share(cube_id, grant, principal=p))

    for op in OPERATIONS.values():
        if op.name not in _WRITTEN_OUT:
            server.add_tool(_tool(op, kernel, call), name=op.name, description=op.summary)
    return server


def _tool(op: Operation, kernel: Kernel, call: Callable[[Context, str, Callable[[str], object]], object]
          ) -> Callable[..., object]:
    """The tool of a registry operation: ``request`` is its input schema; a job operation is queued."""
    def tool(request: BaseModel, ctx: Context) -> object:
        if op.job:
            params = request.model_dump(mode="json")
            return call(ctx, op.name, lambda p: kernel.submit_job({"kind": op.name, "params": params}, principal=p))
        return call(ctx, op.name, lambda p: op.execute(kernel, request, p))

    # The SDK derives the tool's JSON schema from these annotations.
    tool.__annotations__ = {"request": op.input, "ctx": Context, "return": JobRecord if op.job else op.output}
    tool.__name__ = op.name
    tool.__doc__ = op.summary
    return tool
