"""The chat proxy and the kernel's ``chat`` share one retrieval and one remembering: the same memories
under the same filters, the same prefix bytes upstream, the same refusals, before anything goes upstream."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

import memcubed
from memcubed import ValidationError
from memcubed.backends.models import OpenAICompatibleLM
from memcubed.interfaces.rest import create_app
from memcubed.schemas.chat import ChatResult
from memcubed.settings import Settings
from memcubed.testing.openai_server import EchoChat, serve_openai

LIMIT = 120


@pytest.fixture
def seen() -> list[dict[str, Any]]:
    return []


class Alice:
    """alice's client whose ``chat`` answers with the same echo server the proxy forwards to."""

    def __init__(self, mc: memcubed.Memcubed, url: str) -> None:
        self.mc = mc
        self.lm = OpenAICompatibleLM("m", base_url=url)

    def chat(self, question: str, **options: Any) -> ChatResult:
        return self.mc.chat(question, lm=self.lm, **options)


@pytest.fixture
def stack(tmp_path: Path, seen: list[dict[str, Any]]) -> Iterator[tuple[memcubed.Memcubed, Alice, TestClient]]:
    """alice's client, her chat with the echo model, and a proxy client holding her key."""
    with serve_openai(chat=EchoChat(), seen=seen) as url:
        settings = Settings(upstream_base_url=url, max_text_chars=LIMIT)
        with memcubed.open(tmp_path / "parity.db", embedder="none", settings=settings) as mc, \
                TestClient(create_app(mc.kernel), base_url="http://127.0.0.1") as client:
            mc.create_principal("alice")
            client.headers["Authorization"] = f"Bearer {mc.create_api_key('alice').key}"
            alice = mc.as_principal("alice")
            yield alice, Alice(alice, url), client


def _proxy(client: TestClient, question: str, **memory: Any) -> Any:
    return client.post("/v1/chat/completions", json={"model": "m", "messages": [{"role": "user", "content": question}],
                                                     "memcubed": memory})


def test_proxy_and_chat_retrieve_the_same_memories_with_the_same_filters(
        stack: tuple[memcubed.Memcubed, Alice, TestClient], seen: list[dict[str, Any]]) -> None:
    alice, chat, client = stack
    pets = [alice.add("the cat Miso sleeps on the piano", tags=["pets"]).id,
            alice.add("the cat Pickles hunts in the garden", tags=["pets"]).id]
    alice.add("the cat statue stands in the town square", tags=["town"])
    for filters in ({"tags": ["pets"]}, {"tags": ["town"]}, {}):
        kernel_chat = chat.chat("where is the cat", k=5, **filters)
        kernel_sent = seen[-1]
        answer = _proxy(client, "where is the cat", k=5, filters=filters)
        assert answer.status_code == 200, answer.text
        assert answer.headers["x-memcubed-cubes"].split(",") == kernel_chat.used
        assert answer.json()["memcubed"]["cubes"] == kernel_chat.used and kernel_chat.via == "simulated"
        # Byte for byte the same prefix reaches the model both ways.
        assert seen[-1]["messages"] == kernel_sent["messages"]
    assert set(chat.chat("where is the cat", tags=["pets"]).used) == set(pets)


def test_both_refuse_an_oversize_turn_to_remember_before_going_upstream(
        stack: tuple[memcubed.Memcubed, Alice, TestClient], seen: list[dict[str, Any]]) -> None:
    alice, chat, client = stack
    before = alice.search("word", k=50).hits
    question = "word " * (LIMIT // 5 + 1)
    with pytest.raises(ValidationError) as caught:
        chat.chat(question, remember=True)
    refused = _proxy(client, question, remember=True)
    assert refused.status_code == 422
    assert refused.json()["error"] == caught.value.to_dict()
    assert seen == [] and alice.search("word", k=50).hits == before
    # Not remembering, the same turn is fine both ways (nothing is stored, so nothing is refused).
    assert _proxy(client, question).status_code == 200
    chat.chat(question)
    assert len(seen) == 2


def test_both_remember_the_same_way(stack: tuple[memcubed.Memcubed, Alice, TestClient]) -> None:
    alice, chat, client = stack
    via_chat = chat.chat("the ferry leaves at nine", remember=True, conversation="c1")
    via_proxy = _proxy(client, "the ferry leaves at nine", remember=True, conversation="c1").json()["memcubed"]
    chat_cubes = [alice.get(i) for i in via_chat.remembered]
    proxy_cubes = [alice.get(i) for i in via_proxy["remembered"]]
    assert [(c.text, c.tags, c.source, c.namespace) for c in chat_cubes] == \
        [(c.text, c.tags, c.source, c.namespace) for c in proxy_cubes]
    assert len(proxy_cubes) == 2


def test_bad_filters_are_refused_by_the_proxy(stack: tuple[memcubed.Memcubed, Alice, TestClient],
                                             seen: list[dict[str, Any]]) -> None:
    _, _, client = stack
    refused = _proxy(client, "anything", filters={"owner": "x", "nonsense": 1})
    assert refused.status_code == 422 and seen == []
