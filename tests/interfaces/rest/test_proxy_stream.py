"""A streamed proxy answer carries the same ``memcubed`` report as a non-streamed one: one last chunk with no
choices before ``data: [DONE]``, read through the official ``openai`` client and raw, over real HTTP to the
session's real server (its upstream: the real loopback OpenAI-compatible echo server)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import openai
from tests.interfaces.rest.conftest import Login

from memcubed.testing.server import RunningServer


def _openai(server: RunningServer, client: httpx.Client) -> openai.OpenAI:
    key = client.headers["authorization"].removeprefix("Bearer ")
    return openai.OpenAI(base_url=f"{server.url}/v1", api_key=key, max_retries=0)


def _events(raw: str) -> list[str]:
    """The data of each server-sent event, as a client's parser sees them (events end at a blank line)."""
    events = []
    for block in raw.replace("\r\n", "\n").split("\n\n"):
        data = [line[5:].lstrip() for line in block.split("\n") if line.startswith("data:")]
        if data:
            events.append("\n".join(data))
    return events


def _stream(client: httpx.Client, question: str, **extra: Any) -> tuple[httpx.Headers, list[str]]:
    body = {"model": "m", "stream": True, "messages": [{"role": "user", "content": question}], **extra}
    with client.stream("POST", "/v1/chat/completions", json=body) as response:
        assert response.status_code == 200
        return response.headers, _events(response.read().decode())


def test_a_streamed_answer_reports_what_a_plain_one_does(server: RunningServer, login: Login) -> None:
    alice = login("alice")
    cube = alice.post("/cubes", json={"text": "the ferry to Vlieland leaves at nine",
                                      "source": {"type": "document", "uri": "timetable.pdf", "ref": "p3"}}).json()
    question = "when does the Vlieland ferry leave"
    plain = alice.post("/v1/chat/completions", json={"model": "m", "messages": [
        {"role": "user", "content": question}]}).json()["memcubed"]
    with _openai(server, alice) as client:
        chunks = list(client.chat.completions.create(model="m", messages=[{"role": "user", "content": question}],
                                                     stream=True, extra_body={"memcubed": {"remember": True}}))
    # The official client yields the report as a chunk without choices (as it does OpenAI's usage chunk).
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == \
        "leave ferry Vlieland the does when"
    assert [bool(c.choices) for c in chunks][-1] is False and all(c.choices for c in chunks[:-1])
    report = (chunks[-1].model_extra or {})["memcubed"]
    assert chunks[-1].id == chunks[0].id and chunks[-1].object == "chat.completion.chunk"
    assert report["cubes"] == plain["cubes"] and cube["id"] in report["cubes"]
    assert report["sources"] == plain["sources"] and report["sources"][cube["id"]] == "document:timetable.pdf#p3"
    assert report["evidence"] == plain["evidence"] == {}
    # Remembered before [DONE]: the report names the stored turn, which the caller can read at once.
    assert len(report["remembered"]) == 2
    assert [alice.get(f"/cubes/{i}").json()["text"] for i in report["remembered"]] == [
        question, "leave ferry Vlieland the does when"]
    headers, events = _stream(alice, question)
    assert events[-1] == "[DONE]" and events.count("[DONE]") == 1
    last = json.loads(events[-2])
    assert last["choices"] == [] and last["memcubed"]["remembered"] == []  # not asked to remember this time
    assert headers["x-memcubed-cubes"].split(",") == last["memcubed"]["cubes"]


def test_a_hostile_source_label_cannot_split_headers_or_the_stream(server: RunningServer, login: Login) -> None:
    alice = login("alice")
    uri = "x\r\nx-evil: 1\r\n\r\ndata: [DONE]\n\ndata: {\"choices\": []}\n\n東京 🚀 Ünïcødé " + "z" * 1900
    ref = "\u2028\u0085\r\n" + "é" * 200
    hostile = alice.post("/cubes", json={"text": "the harbour master is called Wietske",
                                         "source": {"type": "conversation", "uri": uri, "ref": ref}})
    assert hostile.status_code == 201, hostile.text
    cube = hostile.json()
    headers, events = _stream(alice, "who is the harbour master")
    assert "x-evil" not in headers and headers["x-memcubed-cubes"] == cube["id"]
    assert events[-1] == "[DONE]" and events.count("[DONE]") == 1  # no forged end, no forged event
    chunks = [json.loads(e) for e in events[:-1]]
    assert "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"]) == \
        "master harbour the is who"
    assert [c for c in chunks if not c["choices"]] == [chunks[-1]]
    assert chunks[-1]["memcubed"]["sources"] == {cube["id"]: f"conversation:{uri}#{ref}"}  # exact, not mangled
    with _openai(server, alice) as client:
        got = list(client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "who is the harbour master"}], stream=True))
    assert (got[-1].model_extra or {})["memcubed"]["sources"][cube["id"]] == f"conversation:{uri}#{ref}"


def test_a_cube_the_caller_cannot_read_is_never_named(server: RunningServer, login: Login) -> None:
    alice, bob = login("alice"), login("bob")
    own = alice.post("/cubes", json={"text": "the lock keeper feeds the swans at dawn"}).json()
    secret = bob.post("/cubes", json={"text": "the lock keeper hides the swans' key under the mat",
                                      "source": {"type": "document", "uri": "bob-private-diary"}}).json()
    # Shared with Alice but not accepted: readable, yet not trusted into her prompts (default policy).
    pending = bob.post("/cubes", json={"text": "the lock keeper's swans are named after rivers"}).json()
    assert bob.post(f"/cubes/{pending['id']}/share", json={"principal": alice.principal,  # type: ignore[attr-defined]
                                                            "right": "read"}).status_code == 200
    headers, events = _stream(alice, "what does the lock keeper do with the swans")
    report = json.loads(events[-2])["memcubed"]
    assert report["cubes"] == [own["id"]] and list(report["sources"]) == [own["id"]]
    everything = str(headers) + "".join(events)
    for unreadable in (secret["id"], pending["id"], "bob-private-diary", "under the mat"):
        assert unreadable not in everything
