"""The OpenAI-compatible chat proxy: ``POST /v1/chat/completions`` with the caller's memories in front.

For each request: the kernel's ``chat_prepare`` validates the last user message and retrieves the
caller's memories for it (the very retrieval, filters and refusals of the ``chat`` operation), the
memories lead the conversation as the simulated-KV prefix (byte-stable, deterministic order, so the
upstream's prompt cache can hit), the request goes to the configured upstream, its answer comes back
(streamed or not), and the kernel's ``chat_remember`` optionally stores the turn. All memory work is
the kernel's; this module holds only the HTTP plumbing. The response names the memories used: header
``x-memcubed-cubes`` (ids only), and the ``memcubed`` report (ids, sources, evidence, what was remembered) as
a field of the body or, when streaming, of one last chunk with no choices just before ``data: [DONE]``. The
sources travel in no header: a label may be 2 KiB of any text, more than clients accept in headers.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from typing import Any, NoReturn

import httpx
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool

from memcubed.errors import BackendUnavailable, ConfigurationError, MemcubedError, UpstreamError, UpstreamTimeout
from memcubed.interfaces.rest.auth import Caller, KernelDep
from memcubed.interfaces.rest.errors import ERROR_RESPONSES
from memcubed.kernel import Kernel
from memcubed.kernel.chat import ChatContext
from memcubed.schemas.server import ChatCompletionRequest, ChatMemoryOptions, ChatMemoryReport, ProxyMessage
from memcubed.settings import Settings

__all__ = ["CUBES_HEADER", "REMEMBER_HEADER", "prepare", "router", "text_of"]

log = logging.getLogger(__name__)

CUBES_HEADER = "x-memcubed-cubes"
"""Response header: comma-separated ids of the memories put in front of the conversation."""
REMEMBER_HEADER = "x-memcubed-remember"
"""Request header: ``true`` stores the turn, like ``{"memcubed": {"remember": true}}`` in the body."""

router = APIRouter(tags=["chat"], responses=ERROR_RESPONSES)

_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "the upstream's chat completion (JSON), or its server-sent event stream when "
                         "`stream` is true; the `memcubed` field naming the memories used is in the body, or in "
                         "the stream's last chunk before `[DONE]` (one with no `choices`)",
          "content": {"application/json": {"schema": {"type": "object"}}, "text/event-stream": {}}},
}


def text_of(message: ProxyMessage) -> str:
    """The plain text of a chat message (text parts of a multi-part content joined by newlines)."""
    if isinstance(message.content, str):
        return message.content
    parts = message.content or []
    return "\n".join(str(p.get("text", "")) for p in parts if isinstance(p, dict) and p.get("type") == "text")


def prepare(kernel: Kernel, principal: str, question: str, options: ChatMemoryOptions,
            history: list[ProxyMessage] | None = None) -> ChatContext | None:
    """The kernel's ``chat_prepare`` for the last user message ``question`` (None when there is none: the
    conversation goes upstream as it is and nothing is remembered). Under ``remember_conversations`` the
    request carries the conversation's earlier user and assistant turns (``history``) to remember too.

    Raises:
        ValidationError: what ``chat`` would refuse (an oversize turn to remember, bad filters, ...).
    """
    if not question.strip():
        return None
    earlier: list[dict[str, str]] = []
    if kernel.settings.remember_conversations and history:
        last_user = max(i for i, m in enumerate(history) if m.role == "user")
        earlier = [{"role": m.role, "content": text_of(m)} for m in history[:last_user]
                   if m.role in ("user", "assistant") and text_of(m).strip()][-199:]  # a chat request's limit
    request = {"messages": [*earlier, {"role": "user", "content": question}], "namespace": options.namespace,
               "k": options.k, "filters": options.filters, "remember": options.remember,
               "conversation": options.conversation, "use_working_set": options.working_set}
    return kernel.chat_prepare(request, principal=principal)


def _upstream(request: Request, settings: Settings) -> httpx.AsyncClient:
    """The app's one pooled client of the configured upstream."""
    client = getattr(request.app.state, "upstream", None)
    if client is None:
        if not settings.upstream_base_url:
            raise ConfigurationError("the chat proxy has no upstream: set MEMCUBED_UPSTREAM_BASE_URL",
                                     field="upstream_base_url")
        if not settings.upstream_base_url.startswith(("http://", "https://")):
            raise ConfigurationError("MEMCUBED_UPSTREAM_BASE_URL must be an http(s) URL", field="upstream_base_url")
        headers = {"Authorization": f"Bearer {settings.upstream_api_key}"} if settings.upstream_api_key else {}
        client = httpx.AsyncClient(base_url=settings.upstream_base_url.rstrip("/"), headers=headers,
                                   timeout=settings.upstream_timeout_s)
        request.app.state.upstream = client
    assert isinstance(client, httpx.AsyncClient)
    return client


@router.post("/v1/chat/completions", operation_id="chat_completions", response_model=None, responses=_RESPONSES)
async def chat_completions(body: ChatCompletionRequest, request: Request, kernel: KernelDep,
                           caller: Caller) -> JSONResponse | StreamingResponse:
    """An OpenAI chat completion with the caller's relevant memories put in front of the conversation."""
    settings = kernel.settings
    client = _upstream(request, settings)
    options = body.memcubed
    if request.headers.get(REMEMBER_HEADER, "").strip().lower() in ("1", "true", "yes"):
        options = options.model_copy(update={"remember": True})
    users = [m for m in body.messages if m.role == "user"]
    question = text_of(users[-1]) if users else ""
    context = await run_in_threadpool(prepare, kernel, caller, question, options, body.messages)
    payload = body.model_dump(exclude={"memcubed"}, exclude_unset=True)
    payload["messages"] = _prefixed(payload["messages"], context)
    payload["stream"] = body.stream
    if settings.upstream_model:
        payload["model"] = settings.upstream_model
    headers = {CUBES_HEADER: ",".join(context.used if context else [])}
    try:
        upstream = await client.send(client.build_request("POST", "/chat/completions", json=payload), stream=True)
    except httpx.TimeoutException as exc:
        raise _timeout(settings) from exc
    except httpx.HTTPError as exc:
        raise BackendUnavailable(f"the upstream cannot be reached: {type(exc).__name__}") from exc
    if upstream.status_code >= 400:
        await _refused(upstream)
    if body.stream:
        return StreamingResponse(_relay(upstream, kernel, caller, context), headers=headers,
                                 media_type=upstream.headers.get("content-type", "text/event-stream"),
                                 background=BackgroundTask(upstream.aclose))
    try:
        answer = json.loads(await upstream.aread())
        content = answer["choices"][0]["message"].get("content") or ""
    except httpx.TimeoutException as exc:
        raise _timeout(settings) from exc
    except httpx.HTTPError as exc:
        raise UpstreamError(f"the upstream broke off its answer: {type(exc).__name__}", status=upstream.status_code
                            ) from exc
    except (ValueError, KeyError, IndexError, TypeError, AttributeError) as exc:
        raise UpstreamError("the upstream answered with an unexpected body", status=upstream.status_code) from exc
    finally:
        await upstream.aclose()
    stored: list[str] = []
    if context is not None and (context.request.remember or settings.remember_conversations):
        cubes = await run_in_threadpool(lambda: kernel.chat_remember(context, str(content), principal=caller))
        stored = [c.id for c in cubes]
    report = ChatMemoryReport(cubes=context.used if context else [], remembered=stored,
                              sources=context.sources if context else {}, evidence=context.evidence if context else {})
    return JSONResponse({**answer, "memcubed": report.model_dump()}, headers=headers)


def _timeout(settings: Settings) -> UpstreamTimeout:
    return UpstreamTimeout(f"the upstream did not answer within {settings.upstream_timeout_s} s",
                           timeout_s=settings.upstream_timeout_s)


async def _refused(upstream: httpx.Response) -> NoReturn:
    """Raise ``UpstreamError`` for an upstream error answer: its status is kept, its body only logged (it may
    name the operator's account or key, and it is not ours to pass on)."""
    try:
        detail = (await upstream.aread())[:2000].decode(errors="replace")
    except httpx.HTTPError:
        detail = "(unreadable)"
    finally:
        await upstream.aclose()
    log.warning("chat proxy: the upstream answered %s: %r", upstream.status_code, detail)
    status = upstream.status_code
    details: dict[str, Any] = {"status": status}
    retry_after = upstream.headers.get("retry-after", "")
    if retry_after.isdigit():
        details["retry_after_s"] = int(retry_after)
    what = "refused the proxy's upstream key" if status in (401, 403, 407) else f"answered {status}"
    raise UpstreamError(f"the upstream {what}", **details)


def _prefixed(messages: list[dict[str, Any]], context: ChatContext | None) -> list[dict[str, Any]]:
    """``messages`` led by the memory prefix; a leading multi-part system message is flattened to text first."""
    if context is None:
        return messages
    if messages and messages[0].get("role") == "system" and not isinstance(messages[0].get("content"), str):
        first = ProxyMessage.model_validate(messages[0])
        messages = [{**messages[0], "content": text_of(first)}, *messages[1:]]
    # prefixed() copies each message as a whole, so extra fields (name, tool calls) pass through.
    return context.prefixed(messages)


async def _relay(upstream: httpx.Response, kernel: Kernel, principal: str,
                 context: ChatContext | None) -> AsyncIterator[bytes]:
    """Pass the upstream's event stream through line by line, unchanged, collecting the answer; before its
    ``data: [DONE]`` (or at its end) remember the turn and send the ``memcubed`` report as one more chunk."""
    remember = context is not None and (context.request.remember or kernel.settings.remember_conversations)
    pieces: list[str] = []
    last: dict[str, Any] = {}
    buffer = b""
    try:
        async for chunk in upstream.aiter_raw():
            buffer += chunk
            *lines, buffer = buffer.split(b"\n")
            for line in lines:
                if line.rstrip(b"\r") in (b"data: [DONE]", b"data:[DONE]"):
                    yield await _report(kernel, principal, context, "".join(pieces) if remember else None, last)
                    remember, context = False, None  # reported: a repeated [DONE] is passed on as it is
                else:
                    event = _event(line)
                    if event is not None:
                        last = event
                        if remember:
                            pieces.append(_delta(event))
                yield line + b"\n"
    except httpx.HTTPError as exc:
        # The status line went out long ago: end the stream with an error event (OpenAI's own shape, which
        # the official clients raise as an APIError) instead of breaking the connection. Nothing is
        # remembered from a cut answer, and no report follows it.
        failure = (UpstreamTimeout if isinstance(exc, httpx.TimeoutException) else UpstreamError)(
            f"the upstream broke off its stream: {type(exc).__name__}")
        log.warning("chat proxy: %s", failure.message)
        yield buffer + f"\n\ndata: {json.dumps({'error': failure.to_dict()})}\n\n".encode()
        return
    if buffer:
        event = _event(buffer)
        if event is not None and remember:
            pieces.append(_delta(event))
        yield buffer + b"\n\n"  # the stream's last event was not terminated
    if context is not None:  # the upstream never sent [DONE]: the report ends the stream
        yield await _report(kernel, principal, context, "".join(pieces) if remember else None, last)


async def _report(kernel: Kernel, principal: str, context: ChatContext | None, answer: str | None,
                  last: dict[str, Any]) -> bytes:
    """The stream's ``memcubed`` report, after remembering ``answer`` (None: nothing to remember).

    It is a chunk with no choices (like OpenAI's usage chunk, which the official clients yield and skip), so
    its ``memcubed`` field carries what a non-streamed answer's body does; JSON escapes every control and
    non-ASCII character, so no label can end the event early or forge one."""
    stored: list[str] = []
    if answer is not None and context is not None:
        try:
            cubes = await run_in_threadpool(lambda: kernel.chat_remember(context, answer, principal=principal))
            stored = [c.id for c in cubes]
        except MemcubedError as exc:  # the answer has been delivered; only remembering it failed
            log.warning("chat proxy: the streamed turn was not remembered: [%s] %s", exc.code, exc.message)
    report = ChatMemoryReport(cubes=context.used if context else [], remembered=stored,
                              sources=context.sources if context else {},
                              evidence=context.evidence if context else {})
    chunk = {"id": str(last.get("id", "")), "object": "chat.completion.chunk", "created": last.get("created", 0),
             "model": str(last.get("model", "")), "choices": [], "memcubed": report.model_dump()}
    return f"data: {json.dumps(chunk)}\n\n".encode()


def _event(line: bytes) -> dict[str, Any] | None:
    """The JSON object of one ``data: {...}`` line of a chat completion stream (None for anything else)."""
    if not line.startswith(b"data:"):
        return None
    try:
        event = json.loads(line[5:].strip())
    except ValueError:
        return None
    return event if isinstance(event, dict) else None


def _delta(event: dict[str, Any]) -> str:
    """The content delta of one chat completion chunk ('' for anything else)."""
    try:
        return str(event["choices"][0]["delta"].get("content") or "")
    except (KeyError, IndexError, TypeError, AttributeError):
        return ""
