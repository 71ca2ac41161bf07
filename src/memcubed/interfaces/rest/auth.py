"""Who is calling: ``Authorization: Bearer <API key>`` resolved by the kernel, as FastAPI dependencies.

``Caller`` and ``KernelDep`` are the ``Annotated`` aliases routes declare; ``BearerAuthASGI`` guards
mounted ASGI apps (the MCP endpoint) with the same keys.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from memcubed.errors import AuthenticationFailed, MemcubedError
from memcubed.interfaces.rest.errors import error_response
from memcubed.interfaces.rest.limits import RateLimiter
from memcubed.kernel import Kernel

__all__ = ["BearerAuthASGI", "Caller", "KernelDep", "bearer_token", "get_kernel"]

_bearer = HTTPBearer(auto_error=False, scheme_name="ApiKey",
                     description="an API key, `mck_<key_id>_<secret>` (`memcubed principal create` prints one)")


def get_kernel(request: Request) -> Kernel:
    """The kernel this app serves."""
    kernel = request.app.state.kernel
    assert isinstance(kernel, Kernel)
    return kernel


KernelDep = Annotated[Kernel, Depends(get_kernel)]


def bearer_token(authorization: str | None) -> str:
    """Return the token of an ``Authorization: Bearer <token>`` header value.

    Raises:
        AuthenticationFailed: the header is missing or not a bearer token.
    """
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthenticationFailed("missing API key: send Authorization: Bearer <key>")
    return token.strip()


def _caller(request: Request, kernel: KernelDep,
            credentials: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)]) -> str:
    if credentials is None:
        raise AuthenticationFailed("missing API key: send Authorization: Bearer <key>")
    route = request.scope.get("route")
    operation = getattr(route, "operation_id", None) or "unknown"
    name = kernel.authenticate(credentials.credentials, operation=operation).name
    limiter = getattr(request.app.state, "rate_limiter", None)
    if isinstance(limiter, RateLimiter):
        limiter.take(name)
    return name


Caller = Annotated[str, Depends(_caller)]
"""The authenticated principal's name (401 ``authentication_failed`` otherwise; 403 when the key's scope
does not cover the route's operation), within its rate (429 ``rate_limited`` otherwise)."""


class BearerAuthASGI:
    """Answer 401 with the error body unless the request carries a valid API key; otherwise pass it on.

    Args:
        app: the ASGI app to guard.
        kernel: authenticates the key (checked on every request: a revoked key stops working at once).
        limiter: the per-principal rate limit the request must fit (429 otherwise).
    """

    def __init__(self, app: ASGIApp, kernel: Kernel, limiter: RateLimiter | None = None) -> None:
        self.app = app
        self.kernel = kernel
        self.limiter = limiter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            try:
                token = bearer_token(Headers(scope=scope).get("authorization"))
                caller = await run_in_threadpool(self.kernel.authenticate, token)
                if self.limiter is not None:
                    self.limiter.take(caller.name)
            except MemcubedError as exc:
                await error_response(exc)(scope, receive, send)
                return
        await self.app(scope, receive, send)
