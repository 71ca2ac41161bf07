"""Limits at the HTTP edge (in process): an oversized body is refused with 413 before it is parsed, whether it
declares its length or streams without one; the kernel's limits answer 413 with the error body; a principal
over its rate gets 429 with Retry-After."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

import memcubed
from memcubed.errors import RateLimited
from memcubed.interfaces.rest import create_app
from memcubed.interfaces.rest.limits import RateLimiter
from memcubed.settings import Settings


def _client(db: Path, **limits: object) -> Iterator[tuple[TestClient, memcubed.Memcubed]]:
    with (memcubed.open(db, embedder="none", settings=Settings(**limits)) as mc,  # type: ignore[arg-type]
          TestClient(create_app(mc.kernel), base_url="http://127.0.0.1") as client):
        client.headers["Authorization"] = f"Bearer {mc.create_api_key().key}"
        yield client, mc


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[TestClient, memcubed.Memcubed]]:
    yield from _client(tmp_path / "limits.db")


def _store_size(db: Path) -> int:
    return sum(os.path.getsize(p) for p in db.parent.glob(db.name + "*") if p.is_file())


def test_sixty_megabyte_meta_is_refused_and_the_store_unchanged(served: tuple[TestClient, memcubed.Memcubed],
                                                                tmp_path: Path) -> None:
    client, mc = served
    cube = client.post("/cubes", json={"text": "a small memory"}).json()
    db = tmp_path / "limits.db"
    size = _store_size(db)
    huge = json.dumps({"text": "x", "meta": {"blob": "m" * (60 * 2**20)}})
    for answer in (client.post("/cubes", content=huge, headers={"Content-Type": "application/json"}),
                   client.patch(f"/cubes/{cube['id']}", content=huge, headers={"Content-Type": "application/json"})):
        assert answer.status_code == 413
        assert answer.json()["error"]["code"] == "budget_exceeded"
        assert answer.json()["error"]["details"]["field"] == "body"
    assert [c.id for c in mc.list_cubes()] == [cube["id"]]
    assert len(mc.history(cube["id"])) == 1
    assert _store_size(db) < size + 2**20


def test_a_streamed_body_without_length_is_counted(served: tuple[TestClient, memcubed.Memcubed]) -> None:
    client, mc = served
    limit = mc.kernel.settings.max_body_bytes

    def chunks() -> Iterator[bytes]:
        yield b'{"text": "streamed", "meta": {"blob": "'
        for _ in range(limit // 2**20 + 2):
            yield b"s" * 2**20
        yield b'"}}'

    answer = client.post("/cubes", content=chunks(), headers={"Content-Type": "application/json"})
    assert "content-length" not in {k.lower() for k in answer.request.headers}
    assert answer.status_code == 413
    assert answer.json()["error"] == {"code": "budget_exceeded", "message": answer.json()["error"]["message"],
                                      "details": {"field": "body", "size": None, "limit": limit}}
    assert mc.list_cubes() == []


def test_small_streamed_bodies_pass(served: tuple[TestClient, memcubed.Memcubed]) -> None:
    client, _ = served
    answer = client.post("/cubes", content=iter([b'{"text": ', b'"streamed in two"}']),
                         headers={"Content-Type": "application/json"})
    assert answer.status_code == 201, answer.text


def test_kernel_limits_answer_413_with_the_error_body(tmp_path: Path) -> None:
    for client, mc in _client(tmp_path / "meta.db", max_meta_bytes=100, quota_cubes=1):
        answer = client.post("/cubes", json={"text": "m", "meta": {"blob": "x" * 200}})
        assert answer.status_code == 413
        assert answer.json()["error"]["details"]["field"] == "meta"
        assert client.post("/cubes", json={"text": "first"}).status_code == 201
        answer = client.post("/cubes", json={"text": "second"})
        assert answer.status_code == 413
        assert answer.json()["error"]["details"]["field"] == "quota_cubes"
        assert [c.text for c in mc.list_cubes()] == ["first"]


def test_rate_limit_answers_429_with_retry_after(tmp_path: Path) -> None:
    for client, _ in _client(tmp_path / "rate.db", rate_limit_per_s=0.001, rate_limit_burst=3):
        answers = [client.get("/principals/admin") for _ in range(4)]
        assert [a.status_code for a in answers] == [200, 200, 200, 429]
        assert answers[-1].json()["error"]["code"] == "rate_limited"
        assert int(answers[-1].headers["Retry-After"]) >= 1
        assert client.get("/health").status_code == 200  # no key, no principal, no bucket


def test_token_bucket_refills_at_its_rate() -> None:
    bucket = RateLimiter(rate=2.0, burst=2)
    bucket.take("a", now=0.0)
    bucket.take("a", now=0.0)
    with pytest.raises(RateLimited) as info:
        bucket.take("a", now=0.0)
    assert info.value.details["retry_after_s"] == 0.5
    bucket.take("b", now=0.0)  # buckets are per principal
    bucket.take("a", now=0.5)
    RateLimiter(rate=0, burst=1).take("a", now=0.0)  # 0 is unlimited
