"""The OpenAI-compatible chat proxy: ``POST /v1/chat/completions`` with the caller's memories in front.

For each request: search the caller's memories with the last user message, render the hits as the
simulated-KV prefix (``with_prefix``: byte-stable, deterministic order, so the upstream's prompt cache
can hit), forward to the configured upstream, return its answer (streamed or not), and optionally
remember the turn. The response names the memories used: header ``x-memcubed-cubes`` and, when not
streaming, the ``memcubed`` field of the body.

``recall`` and ``remember`` hold all of the memory work, so that the kernel's ``chat`` operation can
replace them without touching the HTTP plumbing.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool

from memcubed.cube.model import CubeKind
from memcubed.engines.kvcache import CubeText, with_prefix
from memcubed.errors import BackendUnavailable, ConfigurationError
from memcubed.interfaces.rest.auth import Caller, KernelDep
from memcubed.interfaces.rest.errors import ERROR_RESPONSES
from memcubed.kernel import Kernel
from memcubed.schemas.server import ChatCompletionRequest, ChatMemoryOptions, ChatMemoryReport, ProxyMessage
from memcubed.settings import Settings

__all__ = ["CUBES_HEADER", "REMEMBER_HEADER", "recall", "remember", "router"]

CUBES_HEADER = "x-memcubed-cubes"
"""Response header: comma-separated ids of the memories put in front of the conversation."""
REMEMBER_HEADER = "x-memcubed-remember"
"""Request header: ``true`` stores the turn, like ``{"memcubed": {"remember": true}}`` in the body."""

router = APIRouter(tags=["chat"], responses=ERROR_RESPONSES)

_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "the upstream's chat completion (JSON), or its server-sent event stream when "
                         "`stream` is true, plus the `memcubed` field naming the memories used",
          "content": {"application/json": {"schema": {"type": "object"}}, "text/event-stream": {}}},
}


def text_of(message: ProxyMessage) -> str:
    """The plain text of a chat message (text parts of a multi-part content joined by newlines)."""
    if isinstance(message.content, str):
        return message.content
    parts = message.content or []
    return "\n".join(str(p.get("text", "")) for p in parts if isinstance(p, dict) and p.get("type") == "text")


def recall(kernel: Kernel, principal: str, query: str, options: ChatMemoryOptions) -> list[CubeText]:
    """The caller's plaintext memories most relevant to ``query`` (the proxy's retrieval step; the same
    search the kernel's ``chat`` runs, which cannot stream or pass OpenAI parameters through)."""
    if options.k == 0 or not query.strip():
        return []
    result = kernel.search({"query": query[:10_000], "namespace": options.namespace, "k": options.k},
                           principal=principal)
    return [CubeText.of(h.cube)
            for h in result.hits if h.cube.kind is CubeKind.PLAINTEXT and h.cube.text]


def remember(kernel: Kernel, principal: str, question: str, answer: str, options: ChatMemoryOptions) -> list[str]:
    """Store the user turn and the answer as two memories in one transaction, as the kernel's ``chat`` does
    (tags ``chat`` + role, source ``conversation`` ``chat:<id>``); return their ids."""
    source = {"type": "conversation", "uri": f"chat:{options.conversation}" if options.conversation else None}
    items: list[dict[str, Any]] = [
        {"text": text[: kernel.settings.max_text_chars], "namespace": options.namespace, "tags": ["chat", role],
         "source": source}
        for role, text in (("user", question), ("assistant", answer)) if text.strip()
    ]
    return [cube.id for cube in kernel.add_many(items, principal=principal)] if items else []


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
    cubes = await run_in_threadpool(recall, kernel, caller, question, options)
    payload = body.model_dump(exclude={"memcubed"}, exclude_unset=True)
    payload["messages"] = _prefixed(payload["messages"], cubes)
    payload["stream"] = body.stream
    if settings.upstream_model:
        payload["model"] = settings.upstream_model
    headers = {CUBES_HEADER: ",".join(c.id for c in cubes)}
    try:
        upstream = await client.send(client.build_request("POST", "/chat/completions", json=payload), stream=True)
    except httpx.HTTPError as exc:
        raise BackendUnavailable(f"the upstream cannot be reached: {exc}", upstream=settings.upstream_base_url) from exc
    if upstream.status_code >= 400:
        detail = (await upstream.aread()).decode(errors="replace")[:2000]
        await upstream.aclose()
        raise BackendUnavailable(f"the upstream answered {upstream.status_code}", status=upstream.status_code,
                                 upstream_body=detail)
    if body.stream:
        return StreamingResponse(_relay(upstream, kernel, caller, question, options), headers=headers,
                                 media_type=upstream.headers.get("content-type", "text/event-stream"),
                                 background=BackgroundTask(upstream.aclose))
    try:
        answer = json.loads(await upstream.aread())
        content = answer["choices"][0]["message"].get("content") or ""
    except (ValueError, KeyError, IndexError, TypeError, AttributeError) as exc:
        raise BackendUnavailable("the upstream answered with an unexpected body") from exc
    finally:
        await upstream.aclose()
    stored: list[str] = []
    if options.remember:
        stored = await run_in_threadpool(remember, kernel, caller, question, str(content), options)
    report = ChatMemoryReport(cubes=[c.id for c in cubes], remembered=stored)
    return JSONResponse({**answer, "memcubed": report.model_dump()}, headers=headers)


def _prefixed(messages: list[dict[str, Any]], cubes: list[CubeText]) -> list[dict[str, Any]]:
    """``messages`` led by the memory prefix; a leading multi-part system message is flattened to text first."""
    if messages and messages[0].get("role") == "system" and not isinstance(messages[0].get("content"), str):
        first = ProxyMessage.model_validate(messages[0])
        messages = [{**messages[0], "content": text_of(first)}, *messages[1:]]
    # with_prefix copies each message as a whole, so extra fields (name, tool calls) pass through.
    return [dict(m) for m in with_prefix(messages, cubes)]


async def _relay(upstream: httpx.Response, kernel: Kernel, principal: str, question: str,
                 options: ChatMemoryOptions) -> AsyncIterator[bytes]:
    """Pass the upstream's event stream through unchanged, collecting the answer to remember it at the end."""
    pieces: list[str] = []
    buffer = b""
    async for chunk in upstream.aiter_raw():
        yield chunk
        if options.remember:
            buffer += chunk
            *lines, buffer = buffer.split(b"\n")
            pieces.extend(_delta(line) for line in lines)
    if options.remember:
        pieces.append(_delta(buffer))
        await run_in_threadpool(remember, kernel, principal, question, "".join(pieces), options)


def _delta(line: bytes) -> str:
    """The content delta of one ``data: {...}`` line of a chat completion stream ('' for anything else)."""
    if not line.startswith(b"data:"):
        return ""
    try:
        event = json.loads(line[5:].strip())
        return str(event["choices"][0]["delta"].get("content") or "")
    except (ValueError, KeyError, IndexError, TypeError, AttributeError):
        return ""
