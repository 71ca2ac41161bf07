"""PostgreSQL's maintained BM25 statistics (``lex_ns_stats``, ``lex_ns_terms``) equal a recount from scratch
after any writes, deletes, updates and context changes, under two concurrent writers, and after the backfill."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import memcubed
from memcubed.backends.postgres.lexstats import LEX_STATS_MIGRATION, NAMESPACE_STATS_SQL, TERM_STATS_SQL
from memcubed.backends.postgres.schema import MIGRATIONS
from memcubed.errors import NotFound, ValidationError
from memcubed.testing.backends import PgCluster

# Stopwords and punctuation too: a text of them alone has no lexeme and is no document.
_WORDS = ("garden compost boat sailing sails dawn pottery running runs ran the of and it is lake 東京 タワー"
          " 北京大学 -- 42").split()
_NAMESPACES = ("a", "b", "c")

_text = st.lists(st.sampled_from(_WORDS), min_size=1, max_size=8).map(" ".join)
_op = st.one_of(
    st.tuples(st.just("add"), st.sampled_from(_NAMESPACES), _text),
    st.tuples(st.just("update"), st.integers(0, 30), _text),
    st.tuples(st.just("context"), st.integers(0, 30), _text),
    st.tuples(st.sampled_from(["delete", "forget", "undelete", "archive"]), st.integers(0, 30), st.just("")),
)


def kept(conn: Any) -> tuple[set[tuple[Any, ...]], set[tuple[Any, ...]]]:
    """The statistics tables' rows."""
    return (set(conn.execute("SELECT namespace, documents, tokens FROM lex_ns_stats").fetchall()),
            set(conn.execute("SELECT namespace, lexeme, df FROM lex_ns_terms").fetchall()))


def recounted(conn: Any) -> tuple[set[tuple[Any, ...]], set[tuple[Any, ...]]]:
    """The same statistics counted from the full-text rows."""
    return (set(conn.execute(NAMESPACE_STATS_SQL).fetchall()), set(conn.execute(TERM_STATS_SQL).fetchall()))


@pytest.fixture
def pg_dsn(pg_cluster: PgCluster) -> Iterator[str]:
    dsn = pg_cluster.create()
    yield dsn
    pg_cluster.drop(dsn)


def _apply(mc: memcubed.Memcubed, ids: list[str], op: tuple[str, Any, str]) -> None:
    kind, target, text = op
    if kind == "add":
        ids.append(mc.add(text, namespace=target).id)
        return
    if not ids:
        return
    cube_id = ids[target % len(ids)]
    try:
        if kind == "update":
            mc.update(cube_id, text=text)
        elif kind == "context":
            mc.kernel.store.set_context(cube_id, text)
        else:
            getattr(mc, kind)(cube_id)
    except (NotFound, ValidationError):
        pass  # an operation on a deleted or forgotten cube is refused; the statistics must not move either


@settings(max_examples=20, deadline=None)
@given(ops=st.lists(_op, min_size=1, max_size=25))
def test_kept_statistics_equal_a_recount_after_any_writes(pg_cluster: PgCluster, ops: list[Any]) -> None:
    dsn = pg_cluster.create()
    try:
        with memcubed.open(dsn, embedder="none") as mc, psycopg.connect(dsn, autocommit=True) as conn:
            ids: list[str] = []
            for op in ops:
                _apply(mc, ids, op)
            assert kept(conn) == recounted(conn)
            stats = dict((ns, (d, t)) for ns, d, t in kept(conn)[0])
            assert all(d > 0 and t > 0 for d, t in stats.values())  # no empty namespace keeps a row
    finally:
        pg_cluster.drop(dsn)


def test_statistics_follow_a_namespace_move_and_empty_out(pg_dsn: str) -> None:
    with memcubed.open(pg_dsn, embedder="none") as mc, psycopg.connect(pg_dsn, autocommit=True) as conn:
        first = mc.add("garden compost garden", namespace="a")
        mc.add("the of and", namespace="a")  # stopwords only: no document
        assert kept(conn) == ({("a", 1, 3)}, {("a", "garden", 1), ("a", "compost", 1)})
        conn.execute("UPDATE cubes SET namespace = 'b' WHERE id = %s", (first.id,))
        assert kept(conn) == recounted(conn) == ({("b", 1, 3)}, {("b", "garden", 1), ("b", "compost", 1)})
        mc.forget(first.id)
        assert kept(conn) == recounted(conn) == (set(), set())


def test_two_writers_in_one_namespace_keep_the_counts(pg_dsn: str) -> None:
    """Two raw connections (no store write lock) rewrite rows of one namespace at once, many times."""
    with memcubed.open(pg_dsn, embedder="none") as mc:
        seqs = []
        for i in range(40):
            mc.add(f"garden sailing row {i} " + " ".join(_WORDS[: i % 9 + 1]), namespace="a")
        with psycopg.connect(pg_dsn, autocommit=True) as conn:
            seqs = [r[0] for r in conn.execute("SELECT seq FROM cube_fts ORDER BY seq").fetchall()]
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def writer(worker: int) -> None:
        try:
            with psycopg.connect(pg_dsn, autocommit=True) as conn:
                start.wait()
                for round_ in range(30):
                    with conn.transaction():
                        for seq in seqs[worker::2][round_ % 4::4]:
                            words = " ".join(_WORDS[(seq + round_ + k) % len(_WORDS)] for k in range(round_ % 6))
                            conn.execute("UPDATE cube_fts SET context = %s WHERE seq = %s", (words, seq))
                        conn.execute("UPDATE cube_fts SET text = text || ' dawn' WHERE seq = %s", (seqs[worker],))
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        assert kept(conn) == recounted(conn)
        assert conn.execute("SELECT df FROM lex_ns_terms WHERE namespace = 'a' AND lexeme = 'dawn'").fetchone()[0] >= 2


def test_the_migration_backfills_a_store_written_before_it(pg_dsn: str) -> None:
    with memcubed.open(pg_dsn, embedder="none") as mc:
        mc.add_many([{"text": f"pottery class {i} " + _WORDS[i % len(_WORDS)], "namespace": _NAMESPACES[i % 3]}
                     for i in range(30)])
        before = mc.search("pottery garden", namespace="a", mode="lexical", k=10)
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        want = kept(conn)
        assert want == recounted(conn) and want[0]
        # Undo migration 14 as a store written before it would look, then let the store migrate again.
        conn.execute("DROP TRIGGER cube_fts_lex_stats ON cube_fts")
        conn.execute("DROP TRIGGER cubes_lex_stats ON cubes")
        conn.execute("DROP FUNCTION memcubed_lex_stats_fts(), memcubed_lex_stats_move(),"
                     " memcubed_lex_stats_apply(text, tsvector, integer, integer)")
        conn.execute("DROP TABLE lex_ns_stats, lex_ns_terms")
        conn.execute("UPDATE schema_version SET version = %s", (MIGRATIONS.index(LEX_STATS_MIGRATION),))
    # later migrations run again too: each is idempotent
    with memcubed.open(pg_dsn, embedder="none") as mc, psycopg.connect(pg_dsn, autocommit=True) as conn:
        assert kept(conn) == want
        after = mc.search("pottery garden", namespace="a", mode="lexical", k=10)
        assert [(h.cube.id, h.signals["lexical"].score) for h in after.hits] == [
            (h.cube.id, h.signals["lexical"].score) for h in before.hits]
        assert after.hits
