"""The REST interface (FastAPI): every kernel operation over HTTP, MCP at ``/mcp``, the chat proxy at ``/v1``."""

from memcubed.interfaces.rest.app import create_app

__all__ = ["create_app"]
