"""The SQLite store: schema migrations from older files, file handles (the rest is in tests/conformance)."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import memcubed
from memcubed import ConfigurationError
from memcubed.backends.sqlite.driver import connect
from memcubed.backends.sqlite.schema import MIGRATIONS, SCHEMA_VERSION, migrate

OpenMc = Callable[..., memcubed.Memcubed]
V1_ID = "01a20e2e-0000-7000-8000-00000000abcd"


def _open_fds(path: Path) -> int:
    """How many of this process's file descriptors point at ``path`` (Linux)."""
    target = str(path.resolve())
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{fd}") == target:
                count += 1
        except OSError:
            continue
    return count


def _schema_version(path: Path) -> int:
    conn = connect(str(path), vectors=False)
    try:
        return int(conn.execute("SELECT version FROM schema_version").fetchone()[0])
    finally:
        conn.close()


def _make_v1_file(path: Path) -> None:
    """A file as the first release wrote it: schema 1 and one cube with tags in its JSON doc."""
    conn = connect(str(path), vectors=False)
    try:
        assert migrate(conn, target=1) == 1
        doc = '{"derived_from":[],"meta":{"from":"v1"},"payload":null,"source":{"type":"api"},"tags":["legacy","v1"]}'
        conn.execute(
            "INSERT INTO cubes (id, kind, namespace, owner, state, version, created_at, updated_at, importance,"
            " text, forgotten, doc) VALUES (?, 'plaintext', 'default', 'admin', 'active', 1,"
            " '2024-01-02T03:04:05.000000Z', '2024-01-02T03:04:05.000000Z', 0.25, ?, 0, ?)",
            (V1_ID, "written by the first release", doc),
        )
        seq = conn.execute("SELECT seq FROM cubes WHERE id = ?", (V1_ID,)).fetchone()[0]
        conn.execute("INSERT INTO cube_fts (rowid, text) VALUES (?, ?)", (seq, "written by the first release"))
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        assert "cube_tags" not in tables
    finally:
        conn.close()


# sha256 of each migration as released. A released migration is never edited: files it wrote
# must keep migrating, so a schema change is always a new migration appended to the list.
RELEASED = {
    1: "55a08b8b2d94380309ed2076606ef6e0fc9bff9c7a0dde4c1fc08553fed80d23",
    2: "b4b6cbe43117adff6d9eb27ca70876f78c30dbc4c93fea32a28d6a25454b0f0d",
}


def test_schema_version_counts_migrations() -> None:
    assert SCHEMA_VERSION == len(MIGRATIONS) >= max(RELEASED)


@pytest.mark.parametrize("version", sorted(RELEASED))
def test_released_migrations_are_never_edited(version: int) -> None:
    assert hashlib.sha256(MIGRATIONS[version - 1].encode()).hexdigest() == RELEASED[version]


def test_a_new_store_is_at_the_current_schema(open_mc: OpenMc, db_path: Path) -> None:
    open_mc(db_path)
    assert _schema_version(db_path) == SCHEMA_VERSION


def test_a_version_1_file_migrates_on_open(open_mc: OpenMc, db_path: Path) -> None:
    _make_v1_file(db_path)
    assert _schema_version(db_path) == 1
    mc = open_mc(db_path)
    assert _schema_version(db_path) == SCHEMA_VERSION
    old = mc.get(V1_ID)
    assert (old.text, old.tags, old.importance, old.meta) == ("written by the first release", ["legacy", "v1"],
                                                              0.25, {"from": "v1"})
    assert old.stats.access_count == 0
    mc.kernel.flush_events()
    assert mc.get(V1_ID).stats.access_count == 1
    found = mc.search("first release", mode="lexical", filters={"tags": ["legacy"]}).hits
    assert [h.cube.id for h in found] == [V1_ID]
    fresh = mc.add("written after the migration", tags=["new"])
    assert [h.cube.id for h in mc.search("migration", filters={"tags": ["new"]}).hits] == [fresh.id]
    assert mc.update(V1_ID, text="revised after the migration").version == 2
    turn = mc.add("a turn of a conversation", source={"uri": "chat-1"})
    assert mc.add("the reply to it", source={"uri": "chat-1"}).source.uri == turn.source.uri
    assert mc.verify_audit().ok


@pytest.mark.parametrize("start", range(1, SCHEMA_VERSION))
def test_every_older_schema_migrates_and_takes_writes(open_mc: OpenMc, db_path: Path, start: int) -> None:
    conn = connect(str(db_path), vectors=False)
    try:
        assert migrate(conn, target=start) == start
    finally:
        conn.close()
    mc = open_mc(db_path, embedder="none")
    assert _schema_version(db_path) == SCHEMA_VERSION
    first = mc.add("we met at the harbour", source={"uri": "chat-9"}, tags=["t"])
    second = mc.add("it was raining", source={"uri": "chat-9"})
    mc.update(first.id, text="we met at the old harbour")
    assert {h.cube.id for h in mc.search("harbour rain", mode="lexical").hits} >= {first.id, second.id}
    assert mc.verify_audit().ok


def test_migrating_twice_is_a_no_op(tmp_path: Path) -> None:
    path = tmp_path / "twice.db"
    conn = connect(str(path), vectors=False)
    try:
        assert migrate(conn) == SCHEMA_VERSION
        assert migrate(conn) == SCHEMA_VERSION
        assert conn.execute("SELECT count(*) FROM schema_version").fetchone()[0] == 1
    finally:
        conn.close()


def test_a_newer_schema_is_refused_and_the_file_released(open_mc: OpenMc, db_path: Path) -> None:
    open_mc(db_path, embedder="none").close()
    conn = connect(str(db_path), vectors=False)
    conn.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION + 1,))
    conn.close()
    with pytest.raises(ConfigurationError) as info:
        open_mc(db_path, embedder="none")
    assert info.value.details == {"schema_version": SCHEMA_VERSION + 1}
    assert _open_fds(db_path) == 0


def test_close_releases_the_file(open_mc: OpenMc, db_path: Path) -> None:
    mc: Any = open_mc(db_path, embedder="none")
    mc.add("something")
    assert _open_fds(db_path) >= 1
    mc.close()
    assert _open_fds(db_path) == 0


def test_driver_errors_on_bad_values_become_typed_errors(tmp_path: Path) -> None:
    from memcubed import AlreadyExists, ValidationError
    from memcubed.backends.sqlite.driver import connect
    from memcubed.backends.sqlite.store import translate_errors

    conn = connect(str(tmp_path / "t.db"), vectors=False)
    try:
        conn.execute("CREATE TABLE t (k INTEGER PRIMARY KEY)")
        with pytest.raises(ValidationError), translate_errors():
            conn.execute("INSERT INTO t (k) VALUES (?)", (2**70,))
        conn.execute("INSERT INTO t (k) VALUES (1)")
        with pytest.raises(AlreadyExists), translate_errors():
            conn.execute("INSERT INTO t (k) VALUES (1)")
    finally:
        conn.close()


def test_lexical_search_ranks_before_rights_yet_returns_the_best_readable(open_mc, tmp_path: Path) -> None:
    mc = open_mc(tmp_path / "lex.db", embedder="none")
    for name in ("bob", "carol"):
        mc.create_principal(name)
    bob, carol = mc.as_principal("bob"), mc.as_principal("carol")
    bob.add_many([{"text": f"Kite kite kite: bob's kite number {i} flies high."} for i in range(450)])
    mine = [carol.add(f"Carol flew a kite once, on day {i}.") for i in range(3)]
    # 453 matches: more than the 400 ranked first for 100 candidates, and carol's rank last.
    assert sorted(h.cube.id for h in carol.search("kite", mode="lexical", k=10).hits) == sorted(c.id for c in mine)
    best = bob.search("kite", mode="lexical", k=100).hits
    assert len(best) == 100 and all(h.cube.owner == "bob" for h in best)
    assert [h.cube.id for h in mc.search("kite", mode="lexical", k=100).hits] == [h.cube.id for h in best]


def test_cjk_rows_indexed_before_bigrams_are_split_by_a_migration(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    text = "我每天早上都喝绿茶"
    with memcubed.open(path, embedder="none") as mc:
        tea = mc.add(text)
        mc.add("Alice prefers green tea")
    conn = connect(str(path), vectors=False)
    conn.execute("UPDATE cube_fts SET text = ? WHERE text = ?", (text, "我每 每天 天早 早上 上都 都喝 喝绿 绿茶"))
    conn.close()  # the row now reads as the code before bigrams indexed it
    with memcubed.open(path, embedder="none") as mc:
        assert mc.search("绿茶", mode="lexical").hits == []
    step = next(i for i, m in enumerate(MIGRATIONS) if "memcubed_lexical_text" in m)
    conn = connect(str(path), vectors=False)
    try:
        conn.execute("UPDATE schema_version SET version = ?", (step,))
        assert migrate(conn, target=step + 1) == step + 1
        conn.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION,))
    finally:
        conn.close()
    with memcubed.open(path, embedder="none") as mc:
        assert [h.cube.id for h in mc.search("绿茶", mode="lexical").hits] == [tea.id]
        assert len(mc.search("green tea", mode="lexical").hits) == 1


def test_rows_indexed_before_the_vocabulary_rules_are_reindexed_by_a_migration(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with memcubed.open(path, embedder="none") as mc:
        guitar = mc.add("Caroline bought a guitar")
        so = mc.add("My SO works in IT")
    conn = connect(str(path), vectors=False)
    conn.execute("UPDATE cube_fts SET text = (SELECT text FROM cubes WHERE seq = cube_fts.rowid)")
    conn.close()  # the rows now read as the code before the vocabulary rules indexed them
    with memcubed.open(path, embedder="none") as mc:
        assert mc.search("did she buy", mode="lexical").hits == []
    step = max(i for i, m in enumerate(MIGRATIONS) if "memcubed_lexical_text" in m)  # the newest re-index
    conn = connect(str(path), vectors=False)
    try:
        conn.execute("UPDATE schema_version SET version = ?", (step,))
        assert migrate(conn, target=step + 1) == step + 1
        conn.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION,))
    finally:
        conn.close()
    with memcubed.open(path, embedder="none") as mc:
        assert [h.cube.id for h in mc.search("did she buy", mode="lexical").hits] == [guitar.id]
        assert [h.cube.id for h in mc.search("my SO", mode="lexical").hits] == [so.id]
