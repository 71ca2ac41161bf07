"""The OpenAI-compatible proxy under ``remember_conversations``: the conversation passed through is
remembered as turns (facts extracted by the configured extractor), streamed or not, each turn once."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

import memcubed
from memcubed.interfaces.rest import create_app
from memcubed.settings import Settings
from memcubed.testing.conformance.remember import facts
from memcubed.testing.openai_server import EchoChat, ScriptedChat, serve_openai


@pytest.fixture
def client(tmp_path: Path) -> Iterator[tuple[TestClient, memcubed.Memcubed]]:
    extractor = ScriptedChat([facts(("alice", "Alice's sister is called Ana.", ["t1"]))])
    with serve_openai(chat=EchoChat()) as upstream, serve_openai(chat=extractor) as models:
        settings = Settings(upstream_base_url=upstream, remember_conversations=True, extractor="extractor",
                            models={"local": "local", "extractor": "openai:x"}, model_base_url=models)
        with memcubed.open(tmp_path / "proxy.db", embedder="none", settings=settings) as mc:
            mc.create_principal("alice")
            key = mc.create_api_key("alice").key
            with TestClient(create_app(mc.kernel), base_url="http://127.0.0.1",
                            headers={"Authorization": f"Bearer {key}"}) as http:
                yield http, mc.as_principal("alice")


def test_the_proxy_remembers_the_conversation_passed_through(client: tuple[TestClient, memcubed.Memcubed]) -> None:
    http, alice = client
    history = [{"role": "user", "content": "my sister is called Ana"}]
    answer = http.post("/v1/chat/completions", json={"model": "m", "messages": history})
    assert answer.status_code == 200, answer.text
    remembered = answer.json()["memcubed"]["remembered"]
    assert [alice.get(i).text for i in remembered] == [
        "alice: my sister is called Ana", "assistant: Ana called is sister my", "Alice's sister is called Ana."]
    history += [{"role": "assistant", "content": "Ana called is sister my"},
                {"role": "user", "content": "thanks a lot"}]
    with http.stream("POST", "/v1/chat/completions", json={"model": "m", "messages": history, "stream": True}) as s:
        assert s.read().decode().rstrip().endswith("data: [DONE]")
    turns = alice.list_cubes(filters={"tags": ["turn"]})
    assert sorted(c.source.ref or "" for c in turns) == ["0", "1", "2", "3"]
    assert len({c.source.uri for c in turns}) == 1


def test_the_proxy_shows_where_every_memory_it_used_came_from(
        client: tuple[TestClient, memcubed.Memcubed]) -> None:
    http, alice = client
    first = http.post("/v1/chat/completions", json={"model": "m", "messages": [
        {"role": "user", "content": "my sister is called Ana"}]}).json()["memcubed"]
    turn, fact = first["remembered"][0], first["remembered"][2]
    # Asked later, the fact and its turn are used: the report names where each came from.
    again = http.post("/v1/chat/completions", json={"model": "m", "messages": [
        {"role": "user", "content": "what is my sister called"}]}).json()["memcubed"]
    assert fact in again["cubes"] and turn in again["cubes"] and again["evidence"] == {fact: [turn]}
    conversation = alice.get(turn).source.uri
    assert again["sources"][turn] == f"conversation:{conversation}#0"
    assert again["sources"][fact] == f"extracted:{conversation}#0"
    assert set(again["sources"]) == set(again["cubes"])


def test_remember_and_extract_over_rest(client: tuple[TestClient, memcubed.Memcubed]) -> None:
    http, alice = client
    turn = {"speaker": "alice", "text": "my sister is called Ana", "conversation_id": "c9", "turn_id": "1"}
    stored = http.post("/remember", json={"turns": [turn]})
    assert stored.status_code == 200, stored.text
    body = stored.json()
    assert body["extracted"] is True and body["counts"]["add"] == 1
    assert http.post("/remember", json={"turns": [{**turn, "time": "2023-01-01T00:00:00"}]}).status_code == 422
    assert http.post("/remember", json={"turns": [turn], "extract": False}).json()["turns"][0]["action"] == "existing"
    # Another principal's turn cannot be extracted from: it is not found, exactly like a missing one.
    admins = alice.as_principal("admin").remember([{**turn, "speaker": "admin"}], extract=False)
    missing = http.post("/extract", json={"cube_ids": [admins.turns[0].cube_id]})
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
