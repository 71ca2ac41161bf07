"""A real OpenAI-compatible ``/v1/embeddings`` HTTP server over a real local embedder, for tests."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from memcubed.backends.base import Embedder


@contextmanager
def serve_embeddings(embedder: Embedder, *, api_key: str | None = None) -> Iterator[str]:
    """Serve ``embedder`` on a free loopback port; yield the base URL (``http://127.0.0.1:PORT/v1``)."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            if api_key is not None and self.headers.get("Authorization") != f"Bearer {api_key}":
                self._reply(401, {"error": {"message": "invalid api key"}})
                return
            if self.path != "/v1/embeddings":
                self._reply(404, {"error": {"message": "not found"}})
                return
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            texts = body["input"] if isinstance(body["input"], list) else [body["input"]]
            vectors = embedder.embed(texts)
            # Listed in reverse: clients must order by "index", as the API allows any order.
            data = [{"object": "embedding", "index": i, "embedding": vectors[i].tolist()}
                    for i in reversed(range(len(texts)))]
            self._reply(200, {"object": "list", "model": body["model"], "data": data})

        def _reply(self, status: int, payload: dict[str, Any]) -> None:
            raw = json.dumps(payload).encode()
            self.send_response(status)
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
