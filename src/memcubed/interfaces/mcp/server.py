"""The MCP server (official ``mcp`` SDK): tools that mirror the kernel operations.

Over stdio (``memcubed mcp``) the tools act as one configured principal; over streamable HTTP (mounted
at ``/mcp`` by the REST app) as the principal whose API key the request carries. Tool arguments are the
core schemas (``CubeCreate``, ``CubeUpdate``, ``SearchRequest``, ``ShareRequest``), so MCP accepts exactly
what REST and the Python API accept. A ``MemcubedError`` becomes a tool error whose text is the JSON
error body ``{"error": {"code", "message", "details"}}`` (the MCP side of the one error table).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Annotated, TypeVar

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import Field

from memcubed.cube.model import MemCube
from memcubed.errors import MemcubedError
from memcubed.kernel import Kernel
from memcubed.schemas.ops import CubeCreate, CubeId, CubeUpdate, HistoryEntry, SearchRequest, SearchResult, ShareRequest

__all__ = ["PrincipalOf", "build_mcp_server", "tool_error"]

PrincipalOf = Callable[[Context], str]
"""Returns the acting principal of a tool call (from the transport: a fixed name, or the request's API key)."""

R = TypeVar("R")

CubeIdArg = Annotated[CubeId, Field(description="the cube's id")]

_INSTRUCTIONS = ("memcubed is the user's long-term memory. Search it before answering questions about the user "
                 "or earlier conversations; add durable facts worth remembering; never invent cube ids.")


def tool_error(exc: MemcubedError) -> ToolError:
    """The tool error for ``exc``: its text is the JSON error body every interface uses."""
    return ToolError(json.dumps({"error": exc.to_dict()}, default=str, sort_keys=True))


def build_mcp_server(kernel: Kernel, principal_of: PrincipalOf) -> MCPServer:
    """Return an MCP server whose tools call ``kernel`` as ``principal_of(context)``.

    Args:
        kernel: the kernel the tools call (tools never touch a backend).
        principal_of: resolves the acting principal of each call; it may raise ``AuthenticationFailed``.
    """
    from memcubed import __version__

    server: MCPServer = MCPServer("memcubed", instructions=_INSTRUCTIONS, version=__version__, log_level="WARNING")

    def call(ctx: Context, op: Callable[[str], R]) -> R:
        try:
            return op(principal_of(ctx))
        except MemcubedError as exc:
            raise tool_error(exc) from exc

    @server.tool()
    def add(cube: CubeCreate, ctx: Context) -> MemCube:
        """Store a new plaintext memory (``cube.text``; optional namespace, tags, importance, source)."""
        return call(ctx, lambda p: kernel.add(cube, principal=p))

    @server.tool()
    def search(request: SearchRequest, ctx: Context) -> SearchResult:
        """Search the memories you may read (``request.query``; optional namespace, k, mode, filters)."""
        return call(ctx, lambda p: kernel.search(request, principal=p))

    @server.tool()
    def get(cube_id: CubeIdArg, ctx: Context) -> MemCube:
        """Return one memory by id."""
        return call(ctx, lambda p: kernel.get(cube_id, principal=p))

    @server.tool()
    def update(cube_id: CubeIdArg, change: CubeUpdate, ctx: Context) -> MemCube:
        """Change a memory's text or metadata; writes a new version (``change.expected_version`` guards races)."""
        return call(ctx, lambda p: kernel.update(cube_id, change, principal=p))

    @server.tool()
    def forget(cube_id: CubeIdArg, ctx: Context) -> MemCube:
        """Erase a memory's text and embeddings from every version; a tombstone and the audit trail remain."""
        return call(ctx, lambda p: kernel.forget(cube_id, principal=p))

    @server.tool()
    def history(cube_id: CubeIdArg, ctx: Context,
                limit: Annotated[int, Field(ge=1, le=1000)] = 100,
                offset: Annotated[int, Field(ge=0)] = 0) -> list[HistoryEntry]:
        """List a memory's versions, oldest first."""
        return call(ctx, lambda p: kernel.history(cube_id, principal=p, limit=limit, offset=offset))

    @server.tool()
    def share(cube_id: CubeIdArg, grant: ShareRequest, ctx: Context) -> MemCube:
        """Grant another principal a right (read, write, share, admin) on a memory."""
        return call(ctx, lambda p: kernel.share(cube_id, grant, principal=p))

    return server
