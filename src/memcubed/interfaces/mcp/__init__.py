"""The MCP interface: kernel operations as MCP tools (stdio and streamable HTTP)."""

from memcubed.interfaces.mcp.server import PrincipalOf, build_mcp_server, tool_error

__all__ = ["PrincipalOf", "build_mcp_server", "tool_error"]
