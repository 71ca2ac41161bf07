"""The REST interface's one table from error class to HTTP status, and the handlers that use it.

Every error body is ``{"error": {"code", "message", "details"}}`` (``ErrorBody``): our own errors,
FastAPI's request validation errors (same ``validation_error`` code as the kernel's) and Starlette's
404/405 alike. Nothing below ``interfaces/`` raises ``HTTPException``.
"""

from __future__ import annotations

import logging
import math
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from memcubed import errors
from memcubed.schemas.server import ErrorBody

__all__ = ["ERROR_RESPONSES", "STATUS", "error_response", "install_error_handlers", "status_of"]

log = logging.getLogger("memcubed.rest")

STATUS: dict[type[errors.MemcubedError], int] = {
    errors.ValidationError: 422,
    errors.MalformedPlan: 422,
    errors.NotFound: 404,
    errors.UnknownPrincipal: 404,
    errors.StoreNotFound: 404,
    errors.AuthenticationFailed: 401,
    errors.AccessDenied: 403,
    errors.Conflict: 409,
    errors.VersionConflict: 409,
    errors.AlreadyExists: 409,
    errors.LeaseLost: 409,
    errors.AttemptsExhausted: 409,
    errors.AdapterInactive: 409,
    errors.BudgetExceeded: 413,
    errors.RateLimited: 429,
    errors.Cancelled: 409,
    # A request asking for something this server is not set up for (vector search without an
    # embedder, a proxy without upstream, KV of another model): the caller's request cannot work here.
    errors.ConfigurationError: 400,
    errors.ClientClosed: 400,
    errors.DependencyMissing: 501,
    errors.ModelUnavailable: 400,
    errors.IntegrityError: 500,
    errors.CorruptBundle: 422,
    errors.UpstreamError: 502,
    errors.UpstreamTimeout: 504,
    errors.StorageError: 500,
    errors.BackendUnavailable: 503,
    errors.MemcubedError: 500,
}
"""Each MemcubedError class and its one HTTP status (a test checks every class is listed)."""

_PROXY_CREDENTIALS = {401, 403, 407}

_HTTP_CODES = {404: "not_found", 405: "method_not_allowed", 401: "authentication_failed", 413: "budget_exceeded"}

ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": description}
    for status, description in [
        (400, "the server is not configured for this request (configuration_error)"),
        (401, "missing, unknown or revoked API key (authentication_failed)"),
        (403, "the principal lacks the right (access_denied)"),
        (404, "no such cube, version, principal or key (not_found, unknown_principal)"),
        (409, "the state changed (version_conflict, already_exists, conflict, adapter_inactive)"),
        (413, "a configured budget would be exceeded (budget_exceeded)"),
        (422, "malformed input (validation_error)"),
        (429, "too many requests from this principal; retry after Retry-After seconds (rate_limited)"),
        (501, "an optional dependency is missing (dependency_missing)"),
        (502, "the chat proxy's upstream failed (upstream_error; its 4xx keep their status)"),
        (503, "a backend or the upstream model cannot be reached (backend_unavailable)"),
        (504, "the chat proxy's upstream did not answer in time (upstream_timeout)"),
    ]
}
"""OpenAPI ``responses`` shared by every route: the error statuses and their body."""


def status_of(exc: errors.MemcubedError) -> int:
    """Return the HTTP status of ``exc``: its own class's, else its nearest listed ancestor's.

    An upstream's 4xx keeps its status (the request's fault: a client must not retry it as it would a
    5xx), except a refusal of the proxy's own upstream key (401, 403, 407), which the caller cannot fix: 502.
    """
    upstream = exc.details.get("status") if type(exc) is errors.UpstreamError else None
    if isinstance(upstream, int) and 400 <= upstream < 500 and upstream not in _PROXY_CREDENTIALS:
        return upstream
    for cls in type(exc).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 500


def error_response(exc: errors.MemcubedError) -> JSONResponse:
    """The JSON response for a MemcubedError (401 carries ``WWW-Authenticate: Bearer``, 429 ``Retry-After``)."""
    status = status_of(exc)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    if status == 429:
        headers = {"Retry-After": str(max(1, math.ceil(float(exc.details.get("retry_after_s", 1)))))}
    return JSONResponse(jsonable_encoder({"error": exc.to_dict()}), status_code=status, headers=headers)


def _body(code: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details or {}}}


def install_error_handlers(app: FastAPI) -> None:
    """Make every error the app can answer take the ``ErrorBody`` shape."""

    async def on_memcubed(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, errors.MemcubedError)
        if status_of(exc) >= 500:
            log.error("%s: %s", exc.code, exc.message, exc_info=exc)
        return error_response(exc)

    async def on_validation(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        found = [
            {"field": ".".join(str(p) for p in err.get("loc", ())), "message": str(err.get("msg", ""))}
            for err in exc.errors()
        ]
        summary = "; ".join(f"{e['field']}: {e['message']}" for e in found)
        return JSONResponse(_body(errors.ValidationError.code, f"invalid request: {summary}", {"errors": found}),
                            status_code=422)

    async def on_http(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        code = _HTTP_CODES.get(exc.status_code, "http_error")
        return JSONResponse(_body(code, str(exc.detail)), status_code=exc.status_code, headers=exc.headers)

    async def on_crash(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", exc_info=exc)
        return JSONResponse(_body("internal_error", "internal server error"), status_code=500)

    app.add_exception_handler(errors.MemcubedError, on_memcubed)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(Exception, on_crash)
