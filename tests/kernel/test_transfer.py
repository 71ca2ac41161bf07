"""Copying a whole store between backends: SQLite -> PostgreSQL -> SQLite keeps everything."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from typer.testing import CliRunner

import memcubed
from memcubed.backends.selection import open_backend
from memcubed.interfaces.cli.app import app
from memcubed.kernel.base import utcnow
from memcubed.schemas.events import ACCESS, Event
from memcubed.schemas.server import ApiKeyRecord
from memcubed.testing.backends import PgCluster, PostgresBackend


def _populate(mc: memcubed.Memcubed) -> dict[str, Any]:
    """A store with a bit of everything: principals, versions, grants, tags, stats, forget, blobs, keys, jobs."""
    for name in ("alice", "bob"):
        mc.create_principal(name)
    alice = mc.as_principal("alice")
    turn = alice.add("we met at the harbour", source={"uri": "chat-1"}, tags=["trip"], importance=0.9)
    reply = alice.add("it was raining all day", source={"uri": "chat-1"})
    # Odd but storable on every backend (what one backend refuses, the schemas refuse for all: no migrate failure).
    alice.add("ünïcode ✓ 東京\tand a tab", source={"uri": "doc://ü ✓\u200b", "ref": "p\t1"}, meta={"k\x00": ["v\x00"]},
              namespace="odd")
    alice.update(turn.id, text="we met at the old harbour")
    alice.share(turn.id, "bob", "write")
    secret = alice.add("my locker code is 7731")
    alice.forget(secret.id)
    mc.get(reply.id)  # access statistics
    digest = mc.kernel.blobs.put(b"tensor bytes")
    with mc.kernel.store.transaction():
        mc.kernel.store.insert_api_key(ApiKeyRecord(key_id="k1", principal="alice", secret_hash="a" * 64,
                                                    created_at=utcnow()))
    job = mc.submit_job("cache", cube_ids=[reply.id])
    return {"turn": turn.id, "reply": reply.id, "secret": secret.id, "digest": digest, "job": job.id}


def _everything(location: str) -> dict[str, Any]:
    """All a store holds, read through the backend (no kernel: reads would count accesses)."""
    store, blobs = open_backend(location)
    try:
        ids = list(store.iter_cube_ids())
        return {
            "principals": store.list_principals(),
            "cubes": [store.load_cube(i) for i in ids],
            "index": [store.load_index_entry(i) for i in ids],
            "versions": [store.list_versions(i, limit=1000, offset=0) for i in ids],
            "audit": list(store.iter_audit()),
            "meta": store.list_meta(),
            "keys": store.list_api_keys(),
            "jobs": store.list_jobs(principal=None, state=None, limit=100, offset=0),
            "blobs": {d: blobs.get(d) for d in blobs.iter_digests()},
            "events": [logged.event for logged in store.read_events(limit=100_000)],
        }
    finally:
        store.close()


def _same(a: dict[str, Any], b: dict[str, Any]) -> None:
    index_a, index_b = a.pop("index"), b.pop("index")
    assert a == b
    for x, y in zip(index_a, index_b, strict=True):
        assert (x is None) == (y is None)
        if x is not None and y is not None:
            assert x.context == y.context
            assert (x.vector is None) == (y.vector is None)
            if x.vector is not None and y.vector is not None:
                assert (x.vector == y.vector).all()


def test_sqlite_to_postgres_and_back_keeps_everything(embedder: Any, tmp_path: Path, pg_cluster: PgCluster) -> None:
    origin = str(tmp_path / "origin.db")
    with memcubed.open(origin, embedder=embedder) as mc:
        ids = _populate(mc)
    store, _ = open_backend(origin)
    try:  # accesses logged but not folded yet: the copy must fold them once, and the folded ones never again
        with store.transaction():
            store.append_events([Event(kind=ACCESS, principal="admin", at=utcnow(), cube_id=ids["reply"], version=1)]
                                * 2)
    finally:
        store.close()
    before = _everything(origin)
    pg = PostgresBackend(pg_cluster)
    try:
        middle = pg.location()
        report = memcubed.migrate(origin, middle)
        assert report.ok, report.problems
        assert (report.principals, report.cubes, report.api_keys, report.jobs, report.blobs) == (3, 4, 1, 1, 1)
        back = str(tmp_path / "back.db")
        result = CliRunner().invoke(app, ["--json", "migrate", "--from", middle, "--to", back])
        assert result.exit_code == 0, result.output
        _same(_everything(middle), _everything(origin))
        after = _everything(back)
        _same(after, before)
        for where in (middle, back):
            with memcubed.open(where, embedder=embedder) as mc:
                assert mc.verify_audit().ok
                assert mc.kernel.flush_events() == 2
                assert mc.kernel.store.load_cubes([ids["reply"]])[ids["reply"]].stats.access_count == 3
                assert mc.as_principal("bob").get(ids["turn"]).text == "we met at the old harbour"
                hits = mc.search("harbour rain", mode="hybrid").hits
                assert {h.cube.id for h in hits} == {ids["turn"], ids["reply"]}
                assert mc.kernel.blobs.get(ids["digest"]) == b"tensor bytes"
                assert mc.update(ids["reply"], text="it poured all day").version == 2  # the copy takes writes
    finally:
        pg.cleanup()
