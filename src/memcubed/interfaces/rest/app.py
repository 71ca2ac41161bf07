"""The FastAPI app factory: routes, error handlers, the MCP endpoint and their lifespans."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio.to_thread
from fastapi import FastAPI
from mcp.server.mcpserver import Context
from starlette.routing import Route

from memcubed.errors import AuthenticationFailed
from memcubed.interfaces.mcp import build_mcp_server
from memcubed.interfaces.rest.auth import BearerAuthASGI, bearer_token
from memcubed.interfaces.rest.derive import derived_router
from memcubed.interfaces.rest.errors import install_error_handlers
from memcubed.interfaces.rest.limits import BodyLimitASGI, RateLimiter
from memcubed.interfaces.rest.proxy import router as proxy_router
from memcubed.interfaces.rest.routes import bundle, memory, principal
from memcubed.kernel import Kernel
from memcubed.kernel.registry import OPERATIONS

__all__ = ["create_app"]

_DESCRIPTION = """Every memcubed kernel operation over HTTP, under the same names.

Authenticate with `Authorization: Bearer <API key>`. Errors are `{"error": {"code", "message", "details"}}`
with one HTTP status per error class. MCP (streamable HTTP) is served at `/mcp` with the same keys, and an
OpenAI-compatible chat proxy that puts your memories in front of the conversation at `/v1/chat/completions`.
"""


def create_app(kernel: Kernel, *, host: str = "127.0.0.1", threads: int = 64) -> FastAPI:
    """Return the memcubed HTTP app serving ``kernel`` (which the caller keeps and closes).

    Args:
        kernel: the kernel every route calls.
        host: the address served; the MCP endpoint turns on DNS-rebinding protection for loopback hosts.
        threads: worker threads for the (synchronous) kernel calls. More than anyio's default of 40, so
            that requests queued behind the embedder (every add and search embeds) leave threads for
            reads that need none.
    """
    from memcubed import __version__

    def principal_of(ctx: Context, operation: str) -> str:
        headers = ctx.headers
        if headers is None:
            raise AuthenticationFailed("missing API key: send Authorization: Bearer <key>")
        return kernel.authenticate(bearer_token(headers.get("authorization")), operation=operation).name

    mcp = build_mcp_server(kernel, principal_of)
    # Stateless, JSON answers: any of several server processes can answer any MCP request.
    mcp.streamable_http_app(streamable_http_path="/mcp", stateless_http=True, json_response=True, host=host)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        anyio.to_thread.current_default_thread_limiter().total_tokens = threads
        async with mcp.session_manager.run():
            yield
        upstream = getattr(app.state, "upstream", None)
        if upstream is not None:
            await upstream.aclose()

    app = FastAPI(title="memcubed", version=__version__, description=_DESCRIPTION, lifespan=lifespan)
    app.state.kernel = kernel
    limiter = RateLimiter(kernel.settings.rate_limit_per_s, kernel.settings.rate_limit_burst)
    app.state.rate_limiter = limiter
    app.add_middleware(BodyLimitASGI, limit=kernel.settings.max_body_bytes)
    install_error_handlers(app)
    # Every operation declaring ``http`` gets its route from the registry; the rest are written by hand.
    for router in (derived_router(OPERATIONS), memory.router, principal.router, bundle.router, proxy_router):
        app.include_router(router)

    @app.get("/health", tags=["server"], operation_id="health")
    def health() -> dict[str, str]:
        """Liveness and readiness (no key needed)."""
        return {"status": "ok", "version": __version__}

    _publish_model_ids(app, kernel.models.ids())
    app.router.routes.append(Route("/mcp", BearerAuthASGI(mcp.session_manager.handle_request, kernel, limiter),
                                   methods=["GET", "POST", "DELETE"], include_in_schema=False))
    return app


def _publish_model_ids(app: FastAPI, ids: list[str]) -> None:
    """Make the published schema say which model ids this server accepts (the operator's allow-list), so
    that a client learns them from ``/openapi.json`` and the schema says exactly what the validators do."""
    inputs = {op.input.__name__ for op in OPERATIONS.values() if "model" in op.input.model_fields}
    build = app.openapi

    def openapi() -> dict[str, Any]:
        schema = app.openapi_schema
        if schema is None:
            schema = build()
            fields = [s["properties"]["model"] for name, s in schema.get("components", {}).get("schemas", {}).items()
                      if name in inputs]
            fields += [p["schema"] for path in schema.get("paths", {}).values() for op in path.values()
                       for p in op.get("parameters", []) if p["name"] == "model" and p["in"] == "query"]
            for field in fields:
                for branch in field.get("anyOf", [field]):
                    if branch.get("type") == "string":
                        branch["enum"] = ids
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
