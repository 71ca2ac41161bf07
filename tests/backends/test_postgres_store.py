"""What only the PostgreSQL store does: its migrations, reaching the server, and its driver's errors."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import psycopg
import pytest
from psycopg.rows import dict_row

import memcubed
from memcubed import AlreadyExists, BackendUnavailable, ValidationError
from memcubed.backends.base import SearchScope
from memcubed.backends.postgres import PostgresStore
from memcubed.backends.postgres.embedded import with_database
from memcubed.backends.postgres.schema import MIGRATIONS, SCHEMA_VERSION, migrate
from memcubed.backends.selection import is_postgres_dsn
from memcubed.schemas.ops import PrincipalPublic
from memcubed.testing.backends import PgCluster


@pytest.fixture
def empty_db(pg_cluster: PgCluster) -> Iterator[str]:
    """A new database with nothing in it (not cloned from the migrated template)."""
    name = f"memcubed_empty_{time.time_ns()}"
    pg_cluster._admin.execute(f'CREATE DATABASE "{name}"')
    dsn = with_database(pg_cluster.admin_dsn, name)
    yield dsn
    pg_cluster.drop(dsn)


def _version(dsn: str) -> int:
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute("SELECT version FROM schema_version").fetchone()
        return int(row[0]) if row else 0


def test_dsns_select_postgres() -> None:
    assert is_postgres_dsn("postgresql://u@host/db") and is_postgres_dsn("postgres://u@host/db")
    assert not is_postgres_dsn("memories.db") and not is_postgres_dsn("/tmp/postgresql.db")


@pytest.mark.parametrize("start", range(SCHEMA_VERSION))
def test_every_older_schema_migrates_and_takes_writes(empty_db: str, start: int) -> None:
    with psycopg.connect(empty_db, autocommit=True, row_factory=dict_row) as conn:
        assert migrate(conn, target=start) == start
        assert migrate(conn, target=start) == start
    with memcubed.open(empty_db, embedder="none") as mc:
        assert _version(empty_db) == SCHEMA_VERSION == len(MIGRATIONS)
        cube = mc.add("written after the migration")
        assert mc.update(cube.id, text="and revised").version == 2
        assert mc.verify_audit().ok


def test_an_unreachable_server_is_backend_unavailable() -> None:
    with pytest.raises(BackendUnavailable):
        memcubed.open("postgresql://nobody@/memcubed?host=/nonexistent-socket-dir&connect_timeout=1",
                      embedder="none")


def test_driver_errors_map_to_memcubed_errors(empty_db: str) -> None:
    store = PostgresStore(empty_db, pool_size=2)
    try:
        with pytest.raises(AlreadyExists), store.transaction():
            store._run("INSERT INTO meta (key, value) VALUES ('k', 'v'), ('k', 'w')")
        with pytest.raises(ValidationError):
            store.set_meta("nul", "a\x00b")
        admin = PrincipalPublic(name="admin", kind="service", is_admin=True, created_at=datetime.now(UTC))
        with store.transaction():
            store.insert_principal(admin)
        with pytest.raises(AlreadyExists), store.transaction():
            store.insert_principal(admin)
    finally:
        store.close()


def test_write_transactions_of_two_stores_run_one_at_a_time(empty_db: str) -> None:
    first, second = PostgresStore(empty_db, pool_size=2), PostgresStore(empty_db, pool_size=2)
    order: list[str] = []
    inside = threading.Event()

    def other() -> None:
        inside.wait(10)
        with second.transaction():
            order.append("second")

    thread = threading.Thread(target=other)
    thread.start()
    try:
        with first.transaction():
            inside.set()
            time.sleep(0.3)  # the other store's transaction is waiting on the write lock meanwhile
            order.append("first")
        thread.join(10)
        assert order == ["first", "second"]
        assert first.get_meta("x") is None  # reads never wait
    finally:
        first.close()
        second.close()


def _scope() -> SearchScope:
    return SearchScope(principal="admin", is_admin=True, namespace="default")


def test_every_match_is_scored_by_bm25_and_the_pruned_form_still_translates(location_pg: str) -> None:
    with memcubed.open(location_pg, embedder="none") as mc:
        store = mc.kernel.store
        for i in range(60):
            mc.add(f"an apple a day, note {i}" + (" with a kiwi" if i == 7 else ""))
        with psycopg.connect(location_pg, autocommit=True) as conn:
            conn.execute("ANALYZE cube_fts")
        # Planner statistics are over every namespace: they no longer shape a query (nothing to prune).
        assert store.term_counts(["apple", "kiwi"], namespace="default") == (0, {})
        hits = mc.search("apple kiwi", mode="lexical", k=10).hits
        assert hits[0].cube.text == "an apple a day, note 7 with a kiwi"
        assert hits[0].score > hits[1].score
        pruned = mc.kernel.store.lexical_search('("kiwi") AND ("apple" OR "kiwi")', _scope(), 10, context_weight=0.5)
        assert [cube_id for cube_id, _ in pruned] == [hits[0].cube.id]  # the engine's pruned form, as tsqueries


@pytest.fixture
def location_pg(pg_cluster: PgCluster) -> Iterator[str]:
    """A fresh database cloned from the migrated template."""
    dsn = pg_cluster.create()
    yield dsn
    pg_cluster.drop(dsn)


def test_forget_vacuums_the_tables_that_held_the_text(location_pg: str) -> None:
    """Dead row versions of a forgotten cube are pruned at once, not whenever autovacuum comes by."""
    tables = ("cubes", "cube_versions", "cube_fts")

    def vacuums() -> dict[str, int]:
        with psycopg.connect(location_pg, autocommit=True, row_factory=dict_row) as conn:
            rows = conn.execute("SELECT relname, vacuum_count FROM pg_stat_user_tables WHERE relname = ANY(%s)",
                                (list(tables),)).fetchall()
            return {r["relname"]: int(r["vacuum_count"]) for r in rows}

    with memcubed.open(location_pg, embedder="none") as mc:
        cube = mc.add("my locker code is zqxjvwkcanary")
        with mc.kernel.store.transaction():
            mc.kernel.store.scrub()  # inside a transaction (VACUUM cannot run there): nothing happens
        before = vacuums()
        mc.forget(cube.id)
        after = vacuums()
        assert all(after[t] == before.get(t, 0) + 1 for t in tables), (before, after)
        with psycopg.connect(location_pg, autocommit=True) as conn:
            dead = conn.execute("SELECT sum(n_dead_tup) FROM pg_stat_user_tables WHERE relname = ANY(%s)",
                                (list(tables),)).fetchone()
        assert dead is not None and int(dead[0]) == 0
        assert mc.search("zqxjvwkcanary", mode="lexical").hits == []


def test_a_database_without_a_store_is_refused_unless_created(empty_db: str) -> None:
    with pytest.raises(memcubed.StoreNotFound):
        memcubed.open(empty_db, embedder="none", create=False)
    with psycopg.connect(empty_db, autocommit=True) as conn:  # nothing was written
        assert conn.execute("SELECT to_regclass('schema_version')").fetchone() == (None,)
    memcubed.open(empty_db, embedder="none").close()
    memcubed.open(empty_db, embedder="none", create=False).close()
    assert _version(empty_db) == SCHEMA_VERSION


def test_cjk_rows_indexed_before_bigrams_are_split_by_a_migration(location_pg: str) -> None:
    text = "来週、東京に行きます iPhone手机 김치찌개를"
    with memcubed.open(location_pg, embedder="none") as mc:
        trip = mc.add(text)
        mc.add("Alice prefers green tea")
    step = next(i for i, m in enumerate(MIGRATIONS) if any("memcubed_lexical_text" in s for s in m))
    with psycopg.connect(location_pg, autocommit=True, row_factory=dict_row) as conn:
        split = conn.execute("SELECT text, tsv::text AS tsv FROM cube_fts WHERE text LIKE '%東京%'").fetchone()
        conn.execute("UPDATE cube_fts SET text = %s WHERE text = %s", (text, split["text"]))  # as before bigrams
        conn.execute("UPDATE schema_version SET version = %s", (step,))
        assert migrate(conn, target=step + 1) == step + 1
        conn.execute("UPDATE schema_version SET version = %s", (SCHEMA_VERSION,))
        # The PL/pgSQL twin gives the tokens lexical_text gives (spacing aside).
        again = conn.execute("SELECT text, tsv::text AS tsv FROM cube_fts WHERE text LIKE '%東京%'").fetchone()
        assert again["tsv"] == split["tsv"] and again["text"].split() == split["text"].split()
    with memcubed.open(location_pg, embedder="none") as mc:
        for query in ("東京", "手机", "김치찌개"):
            assert [h.cube.id for h in mc.search(query, mode="lexical").hits] == [trip.id]


def test_rows_indexed_before_the_vocabulary_rules_are_reindexed_by_a_migration(location_pg: str) -> None:
    from memcubed.backends.lexical import lexical_text

    texts = ["Caroline bought a guitar; the children WENT home", "My SO works in IT, so it goes", "x_went went2 wentä",
             "Mice, GEESE and oxen", "", "我喜欢 went"]
    with memcubed.open(location_pg, embedder="none") as mc:
        cubes = [mc.add(t) for t in texts if t]
    step = next(i for i, m in enumerate(MIGRATIONS) if any("memcubed_word_forms_m12" in s for s in m))
    with psycopg.connect(location_pg, autocommit=True, row_factory=dict_row) as conn:
        # The PL/pgSQL twin gives exactly what word_forms gives (through lexical_text, CJK aside).
        conn.execute(MIGRATIONS[step][0])
        for text in texts:
            got = conn.execute("SELECT memcubed_word_forms_m12(%s) AS t", (text,)).fetchone()["t"]
            assert got == lexical_text(text) or "我" in text, text
        conn.execute("DROP FUNCTION memcubed_word_forms_m12(text)")
        for cube in cubes:  # as the code before the vocabulary rules indexed them
            conn.execute("UPDATE cube_fts SET text = c.text FROM cubes c WHERE c.seq = cube_fts.seq AND c.id = %s",
                         (cube.id,))
        conn.execute("UPDATE schema_version SET version = %s", (step,))
        matching = "SELECT count(*) AS n FROM cube_fts WHERE tsv @@ to_tsquery('english', 'buy')"
        assert conn.execute(matching).fetchone()["n"] == 0
        assert migrate(conn, target=step + 1) == step + 1
        assert conn.execute(matching).fetchone()["n"] == 1
        conn.execute("UPDATE schema_version SET version = %s", (SCHEMA_VERSION,))
    with memcubed.open(location_pg, embedder="none") as mc:
        assert [h.cube.id for h in mc.search("buy guitar", mode="lexical").hits] == [cubes[0].id]
        assert [h.cube.id for h in mc.search("who is my SO", mode="lexical").hits] == [cubes[1].id]
