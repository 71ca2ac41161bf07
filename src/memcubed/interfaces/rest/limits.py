"""Limits at the HTTP edge: the request body size (before anything parses it) and a per-principal rate.

The kernel enforces every other limit (``kernel.limits``), so the Python API, CLI, MCP and jobs get them
too; these two only make sense where requests arrive.
"""

from __future__ import annotations

import threading
import time

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from memcubed.errors import BudgetExceeded, RateLimited
from memcubed.interfaces.rest.errors import error_response

__all__ = ["BodyLimitASGI", "RateLimiter"]


class _TooLarge(Exception):
    """The body grew past the limit while the app was reading it."""


class BodyLimitASGI:
    """Answer 413 ``budget_exceeded`` to a request whose body exceeds ``limit`` bytes.

    A declared ``Content-Length`` over the limit is refused before the body is read; otherwise the bytes
    are counted as they stream in (chunked bodies declare no length), and the request is refused as soon
    as the count passes the limit, whatever the app was doing with it: its own answer is dropped.

    Args:
        app: the ASGI app to guard.
        limit: the largest body accepted, in bytes.
    """

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    def _refusal(self, size: int | None) -> BudgetExceeded:
        said = f"{size} bytes" if size is not None else "more bytes than that"
        return BudgetExceeded(f"the request body holds {said}; the limit (max_body_bytes) is {self.limit}",
                              field="body", size=size, limit=self.limit)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await error_response(self._refusal(int(declared)))(scope, receive, send)
            return
        seen = 0
        exceeded = False
        started = False

        async def counted() -> Message:
            nonlocal seen, exceeded
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    exceeded = True
                    raise _TooLarge
            return message

        async def guarded(message: Message) -> None:
            nonlocal started
            if exceeded:
                return  # the app's answer to a body it could not read whole; ours follows
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, guarded)
        except Exception:
            if not exceeded:
                raise
        if exceeded and not started:
            await error_response(self._refusal(None))(scope, receive, send)


class RateLimiter:
    """A token bucket per principal, in this process: ``rate`` requests a second on average, ``burst`` at once.

    Args:
        rate: tokens added per second; 0 turns the limiter off.
        burst: the bucket's size.
    """

    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = burst
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, principal: str, *, now: float | None = None) -> None:
        """Spend one token of ``principal``'s bucket.

        Raises:
            RateLimited: the bucket is empty; ``details["retry_after_s"]`` says when a token is back.
        """
        if self.rate <= 0:
            return
        at = time.monotonic() if now is None else now
        with self._lock:
            tokens, last = self._buckets.get(principal, (float(self.burst), at))
            tokens = min(float(self.burst), tokens + (at - last) * self.rate)
            if tokens < 1.0:
                self._buckets[principal] = (tokens, at)
                wait = (1.0 - tokens) / self.rate
                raise RateLimited(f"too many requests from {principal!r}; retry in {wait:.2f} s",
                                  principal=principal, retry_after_s=round(wait, 3))
            self._buckets[principal] = (tokens - 1.0, at)
