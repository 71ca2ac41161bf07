"""The chat proxy when its upstream fails (in process, the official ``openai`` client over the app, a scripted
real upstream): a 4xx keeps its status with our error body (the client does not retry it), a 5xx is 502, a
timeout 504, the upstream's own body never reaches the client, a stream cut off ends with an error event
instead of a traceback, and a turn that could not be remembered is refused before the upstream is billed."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
from fastapi.testclient import TestClient

import memcubed
from memcubed.interfaces.rest import create_app
from memcubed.settings import Settings
from memcubed.testing.openai_server import UPSTREAM_SECRET, EchoChat, Script, serve_openai

Stack = tuple[TestClient, openai.OpenAI, Script, list[dict[str, Any]]]
QUESTION = [{"role": "user", "content": "where does the heron fish"}]


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    script = Script()
    seen: list[dict[str, Any]] = []
    with serve_openai(chat=EchoChat(), seen=seen, script=script) as url:
        settings = Settings(upstream_base_url=url, upstream_timeout_s=0.5, max_text_chars=1000)
        with (memcubed.open(tmp_path / "proxy.db", embedder="none", settings=settings) as mc,
              TestClient(create_app(mc.kernel), base_url="http://127.0.0.1") as app):
            mc.add("the heron fishes at the weir")
            key = mc.create_api_key().key
            app.headers["Authorization"] = f"Bearer {key}"
            client = openai.OpenAI(base_url="http://127.0.0.1/v1", api_key=key, http_client=app, max_retries=2)
            yield app, client, script, seen


@pytest.mark.parametrize(("upstream", "status", "raised"), [
    (400, 400, openai.BadRequestError),
    (404, 404, openai.NotFoundError),
    (422, 422, openai.UnprocessableEntityError),
    (429, 429, openai.RateLimitError),
    (401, 502, openai.InternalServerError),  # the proxy's own upstream key: not the caller's to fix
    (500, 502, openai.InternalServerError),
    (503, 502, openai.InternalServerError),
])
def test_upstream_statuses(stack: Stack, upstream: int, status: int, raised: type[openai.APIStatusError]) -> None:
    _, client, script, seen = stack
    # max_retries=2: a 4xx must be answered once (no retry), a 5xx up to three times.
    script.statuses = [upstream] * 3
    with pytest.raises(raised) as info:
        client.chat.completions.create(model="m", messages=QUESTION)  # type: ignore[arg-type]
    assert info.value.status_code == status
    body = info.value.response.json()
    assert body["error"]["code"] == "upstream_error" and body["error"]["details"]["status"] == upstream
    assert UPSTREAM_SECRET not in info.value.response.text
    assert len(seen) == (1 if status < 500 and upstream != 429 else 3)


def test_an_upstream_429_passes_its_retry_after(stack: Stack) -> None:
    app, _, script, _ = stack
    script.statuses, script.retry_after = [429], 7
    answer = app.post("/v1/chat/completions", json={"model": "m", "messages": QUESTION})
    assert answer.status_code == 429 and answer.headers["Retry-After"] == "7"


def test_an_upstream_timeout_is_504(stack: Stack) -> None:
    app, _, script, _ = stack
    script.stall_s = 3.0
    answer = app.post("/v1/chat/completions", json={"model": "m", "messages": QUESTION})
    assert answer.status_code == 504
    assert answer.json()["error"]["code"] == "upstream_timeout"


def test_a_stream_cut_off_ends_with_an_error_event(stack: Stack, caplog: pytest.LogCaptureFixture) -> None:
    app, client, script, _ = stack
    script.stall_s, script.stall_after = 3.0, 2
    with caplog.at_level(logging.WARNING):
        stream = client.chat.completions.create(model="m", messages=QUESTION, stream=True,  # type: ignore[arg-type]
                                                extra_body={"memcubed": {"remember": True}})
        words = []
        with pytest.raises(openai.APIError) as info:
            for chunk in stream:
                words.append(chunk.choices[0].delta.content or "")
    assert "".join(words) == "fish heron "  # what arrived before the upstream stalled
    assert "broke off its stream" in str(info.value.message)
    assert not any(record.exc_info for record in caplog.records)  # no traceback on the server
    stored = app.get("/cubes").json()["items"]
    assert [c["text"] for c in stored] == ["the heron fishes at the weir"]  # nothing remembered from a cut answer


def test_a_turn_that_cannot_be_remembered_is_refused_before_the_upstream(stack: Stack) -> None:
    app, _, _, seen = stack
    long_turn = [{"role": "user", "content": "heron " * 500}]
    answer = app.post("/v1/chat/completions", json={"model": "m", "messages": long_turn,
                                                      "memcubed": {"remember": True}})
    assert answer.status_code == 422 and answer.json()["error"]["code"] == "validation_error"
    assert seen == []
