"""A real OpenAI-compatible HTTP server over real local models, for tests.

``/v1/embeddings`` is served by an embedder, ``/v1/chat/completions`` by a language model. A ``Script``
makes it misbehave on purpose: answer chosen error statuses, stall before answering or mid-stream.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from memcubed.backends.base import Embedder
from memcubed.backends.models import LanguageModel

UPSTREAM_SECRET = "upstream-private-detail acct_12345"
"""Text every scripted error body carries: it must never reach a proxy's client."""


@dataclass
class Script:
    """How the server misbehaves: the next requests get ``statuses`` (in order, one each) as error answers
    whose body holds ``UPSTREAM_SECRET`` (with ``retry_after`` as a header when set); with ``stall_s``, a
    request waits that long and is then dropped unanswered, or, with ``stall_after``, its stream stops after
    that many chunks."""

    statuses: list[int] = field(default_factory=list)
    retry_after: int | None = None
    stall_s: float = 0.0
    stall_after: int | None = None


@contextmanager
def serve_openai(*, embedder: Embedder | None = None, chat: LanguageModel | None = None,
                 api_key: str | None = None, seen: list[dict[str, Any]] | None = None,
                 script: Script | None = None) -> Iterator[str]:
    """Serve the given models on a free loopback port; yield the base URL (``http://127.0.0.1:PORT/v1``).

    Every request body that is served is appended to ``seen`` when given; ``script`` makes answers fail.
    """
    plan = script or Script()

    def embeddings(body: dict[str, Any]) -> dict[str, Any]:
        assert embedder is not None
        texts = body["input"] if isinstance(body["input"], list) else [body["input"]]
        vectors = embedder.embed(texts)
        # Listed in reverse: clients must order by "index", as the API allows any order.
        data = [{"object": "embedding", "index": i, "embedding": vectors[i].tolist()}
                for i in reversed(range(len(texts)))]
        return {"object": "list", "model": body["model"], "data": data}

    def completions(body: dict[str, Any]) -> dict[str, Any]:
        assert chat is not None
        text = chat.complete(body["messages"], max_new_tokens=body.get("max_tokens") or 16,
                             temperature=float(body.get("temperature") or 0.0), seed=body.get("seed"))
        return {"id": "chatcmpl-test", "object": "chat.completion", "created": 0, "model": body["model"],
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}]}

    routes = {"/v1/embeddings": embeddings if embedder else None, "/v1/chat/completions": completions if chat else None}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            if api_key is not None and self.headers.get("Authorization") != f"Bearer {api_key}":
                self._reply(401, {"error": {"message": "invalid api key"}})
                return
            route = routes.get(self.path)
            if route is None:
                self._reply(404, {"error": {"message": "not found"}})
                return
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            if seen is not None:
                seen.append(body)
            if plan.statuses:
                status = plan.statuses.pop(0)
                headers = {"Retry-After": str(plan.retry_after)} if plan.retry_after is not None else {}
                self._reply(status, {"error": {"message": UPSTREAM_SECRET, "type": "scripted"}}, headers)
                return
            if plan.stall_s and plan.stall_after is None:
                time.sleep(plan.stall_s)
                return  # the client gave up long ago: nothing to answer
            answer = route(body)
            if body.get("stream"):
                self._stream(answer)
            else:
                self._reply(200, answer)

        def _stream(self, answer: dict[str, Any]) -> None:
            """Send a chat completion as OpenAI's server-sent events: one chunk per word, then [DONE]."""
            text = answer["choices"][0]["message"]["content"]
            words = [w + " " for w in text.split(" ")]
            words[-1] = words[-1][:-1]
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.end_headers()
            base = {"id": answer["id"], "object": "chat.completion.chunk", "created": 0, "model": answer["model"]}
            for n, word in enumerate(words):
                if plan.stall_after is not None and n == plan.stall_after:
                    self.wfile.flush()
                    time.sleep(plan.stall_s)
                    return
                delta = {"role": "assistant", "content": word} if n == 0 else {"content": word}
                chunk = {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]}
                self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
            done = {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
            self.wfile.write(f"data: {json.dumps(done)}\n\ndata: [DONE]\n\n".encode())
            self.wfile.flush()
            self.close_connection = True

        def _reply(self, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None) -> None:
            raw = json.dumps(payload).encode()
            self.send_response(status)
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


class EchoChat:
    """A stand-in upstream model for proxy plumbing tests: answers with the last user message reversed
    word by word (deterministic, instant). Tests of what a real model does use the packaged SmolLM2."""

    name = "echo"

    def complete(self, messages: Any, *, max_new_tokens: int = 16, temperature: float = 0.0,
                 seed: int | None = None) -> str:
        users = [m for m in messages if m.get("role") == "user"]
        content = users[-1].get("content") if users else ""
        text = content if isinstance(content, str) else json.dumps(content)
        return " ".join(reversed(text.split())) or "(nothing to echo)"


class ScriptedChat:
    """A scripted upstream model for planner and extraction tests: answers each request with the next of ``replies`` (a
    string, or a function of the request's messages), then with ``then`` once the script is spent. Every
    request's messages are kept in ``received``, and its temperature and seed in ``sampling``, so a test can
    read what the model was shown and how it was asked to answer."""

    name = "scripted"

    def __init__(self, replies: list[Any], *, then: str = '{"facts": []}') -> None:
        self.replies = list(replies)
        self.then = then
        self.received: list[list[dict[str, Any]]] = []
        self.sampling: list[tuple[float, int | None]] = []

    def complete(self, messages: Any, *, max_new_tokens: int = 16, temperature: float = 0.0,
                 seed: int | None = None) -> str:
        self.received.append([dict(m) for m in messages])
        self.sampling.append((temperature, seed))
        reply = self.replies.pop(0) if self.replies else self.then
        return str(reply(messages) if callable(reply) else reply)
