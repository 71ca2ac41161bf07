"""The SQLite store's in-process lexical index: FTS5's bm25() exactly, rights, and freshness across stores."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

import memcubed
from memcubed.backends.base import SearchScope
from memcubed.backends.sqlite import SqliteStore
from memcubed.backends.sqlite.lexindex import TOKENIZER, LexicalIndex, plain_terms
from memcubed.schemas.ops import SearchFilters

OpenMc = Callable[..., memcubed.Memcubed]
WORDS = ("garden compost boat sailing bay dawn pottery class thursday evening adoption agency summer painting "
         "lake sunrise support group running runner runs marathon violin lessons camping mountains recipe "
         "bread oven dog cat parrot biscuit tractor green blue red music festival concert friends family").split()
QUERIES = ["garden compost", "sailing boats at dawn", "pottery class on Thursday", "running a marathon",
           "green tractor", "the parrot Biscuit", "camping in the mountains with family", "violin",
           "summer adoption agency support group", "bread recipe oven", "nothing matches zyzzyva"]


def _sentence(rng: random.Random) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 14))) + "."


def _fill(mc: memcubed.Memcubed, rng: random.Random, n: int, namespace: str = "default") -> list[memcubed.MemCube]:
    """Cubes of random sentences, half of them turns of a few conversations (which gives them context)."""
    items: list[dict[str, Any]] = []
    for i in range(n):
        item: dict[str, Any] = {"text": _sentence(rng), "namespace": namespace}
        if i % 2:
            item["source"] = {"type": "conversation", "uri": f"conv-{i % 3}",
                              "occurred_at": f"2024-05-0{1 + i % 9}T1{i % 10}:00:00Z"}
        items.append(item)
    return mc.add_many(items)


def _reference(store: SqliteStore, match: str, namespace: str, principal: str | None, weight: float,
               limit: int) -> list[tuple[int, float]]:
    """FTS5's own bm25() over a copy of the namespace's rows alone, readable matches only: the truth the index
    must equal (per-namespace statistics are FTS5's over a table holding that namespace only)."""
    store._all(f"CREATE VIRTUAL TABLE IF NOT EXISTS temp.ref_fts USING fts5 (text, context, tokenize = '{TOKENIZER}')")
    store._all("DELETE FROM temp.ref_fts")
    store._all("INSERT INTO temp.ref_fts (rowid, text, context) SELECT f.rowid, f.text, f.context FROM cube_fts f"
               " JOIN cubes c ON c.seq = f.rowid WHERE c.namespace = ?", (namespace,))
    rights = "" if principal is None else \
        " AND (c.owner = ? OR c.seq IN (SELECT cube_seq FROM acl WHERE principal = ?))"
    params: list[Any] = [weight, match] + ([] if principal is None else [principal, principal])
    rows = store._all("SELECT f.rowid, -bm25(ref_fts, 1.0, ?) AS s FROM temp.ref_fts f JOIN cubes c ON c.seq = f.rowid"
                      f" WHERE ref_fts MATCH ?{rights} ORDER BY s DESC, f.rowid LIMIT ?", [*params, limit])
    return [(int(r[0]), float(r[1])) for r in rows]


def _assert_equal(store: SqliteStore, index: LexicalIndex, mc: memcubed.Memcubed, *, namespace: str = "default",
                  principal: str | None = None, weight: float = 0.5, limit: int = 25, least: int = 50,
                  queries: Sequence[str] = QUERIES) -> None:
    compared = 0
    for query in queries:
        match = mc.kernel.text.build_match(query)
        assert match is not None
        words = plain_terms(match)
        assert words is not None
        found = index.search(store._all, words, namespace=namespace, principal=principal or "admin",
                             is_admin=principal is None, context_weight=weight, depth=limit)
        assert found is not None
        expected = _reference(store, match, namespace, principal, weight, limit)
        assert [seq for seq, _ in found[0]] == [seq for seq, _ in expected], query
        assert [score for _, score in found[0]] == pytest.approx([score for _, score in expected], rel=1e-12)
        compared += len(expected)
    assert compared >= least  # the queries matched plenty


def test_scores_and_order_are_fts5_bm25_for_every_reader(open_mc: OpenMc, tmp_path: Path) -> None:
    mc = open_mc(tmp_path / "lex.db", embedder="none")
    for name in ("alice", "bob"):
        mc.create_principal(name)
    rng = random.Random(7)
    _fill(mc, rng, 120)
    alice = mc.as_principal("alice")
    mine = _fill(alice, rng, 60)
    _fill(mc.as_principal("bob"), rng, 60, namespace="other")
    for cube in mine[:20]:
        alice.share(cube.id, "bob", "read")
    store = mc.kernel.store
    assert isinstance(store, SqliteStore)
    index = LexicalIndex(background=False)  # loads in its first search
    for weight in (0.5, 0.0, 2.0):
        _assert_equal(store, index, mc, weight=weight)
    _assert_equal(store, index, mc, principal="alice")
    _assert_equal(store, index, mc, principal="bob", least=5)  # only the 20 shared with him in this namespace
    _assert_equal(store, index, mc, principal="bob", namespace="other")
    bob_hits = index.search(store._all, ["garden", "boat", "violin", "compost", "dog"], namespace="default",
                            principal="bob", is_admin=False, context_weight=0.5, depth=1000)
    assert bob_hits is not None and {seq for seq, _ in bob_hits[0]} <= {
        int(r[0]) for r in store._all("SELECT cube_seq FROM acl WHERE principal = 'bob'")}


CJK_WORDS = ("绿茶 咖啡 早上 喝 我 每天 东京 大阪 旅行 来週 東京に行きます たこ焼き が好き です 김치찌개를 "
             "좋아해요 오늘은 비가 와요 garden tea").split()
CJK_QUERIES = ["绿茶", "我每天早上喝绿茶", "東京", "たこ焼き", "김치찌개", "비가 와요", "garden 绿茶"]


def test_cjk_bigrams_score_as_fts5_bm25(open_mc: OpenMc, tmp_path: Path) -> None:
    """The in-process index tokenises CJK rows and query bigrams exactly as FTS5 does (loaded and delta)."""
    mc = open_mc(tmp_path / "lex.db", embedder="none")
    rng = random.Random(5)

    def fill(n: int) -> None:
        mc.add_many([{"text": "".join(rng.choice(CJK_WORDS) for _ in range(rng.randint(2, 8)))} for _ in range(n)])

    fill(80)
    store = mc.kernel.store
    assert isinstance(store, SqliteStore)
    index = LexicalIndex(background=False)
    _assert_equal(store, index, mc, queries=CJK_QUERIES, least=40)
    fill(10)  # rows after the load are tokenised by the temporary FTS5 table
    _assert_equal(store, index, mc, queries=CJK_QUERIES, least=40)
    assert index._delta_size > 0


def test_a_second_store_follows_every_write_of_the_first(open_mc: OpenMc, tmp_path: Path) -> None:
    writer = open_mc(tmp_path / "lex.db", embedder="none")
    writer.create_principal("bob")
    reader = open_mc(tmp_path / "lex.db", embedder="none")  # its own connections and index, as another process
    store = reader.kernel.store
    assert isinstance(store, SqliteStore) and store._lindex is not None
    rng = random.Random(11)
    cubes = _fill(writer, rng, 200)
    scope = SearchScope(principal="admin", is_admin=True, namespace="default")
    # The first search starts loading in the background and is answered by FTS5 meanwhile.
    assert store._lindex.search(store._all, ["garden"], namespace="default", principal="admin", is_admin=True,
                                context_weight=0.5, depth=10) is None
    assert store.lexical_search('"garden"', scope, 3, context_weight=0.5)
    assert store._lindex.wait(60)
    _assert_equal(store, store._lindex, reader)
    writer.update(cubes[0].id, text="The pottery class meets on Thursday evenings by the lake.")
    writer.delete(cubes[1].id)
    writer.forget(cubes[2].id)
    writer.share(cubes[3].id, "bob", "read")
    _fill(writer, rng, 10)
    _assert_equal(store, store._lindex, reader)  # replayed the log: delta and removals
    _assert_equal(store, store._lindex, reader, principal="bob", least=1)
    boat = writer.add("zyzzyva sailing")
    assert reader.search("zyzzyva", mode="lexical").hits[0].cube.id == boat.id
    _fill(writer, rng, 150)  # more than a quarter of the index changed: it reloads from FTS5
    for cube in cubes[50:120]:
        writer.update(cube.id, text=_sentence(rng))
    assert reader.search("garden compost", mode="lexical").hits  # starts a reload; FTS5 answers meanwhile
    assert store._lindex.wait(60)
    _assert_equal(store, store._lindex, reader)
    assert store._lindex._delta_size == 0 and store._lindex._removed == 0


def test_search_through_the_index_equals_search_inside_fts5(open_mc: OpenMc, tmp_path: Path) -> None:
    """The whole lexical path (rights, filters, depth, fallbacks) returns what the FTS5 path alone returns: the
    same order and bit-identical scores, with the statistics of the searched namespace on both."""
    mc = open_mc(tmp_path / "lex.db", embedder="none")
    mc.create_principal("alice")
    rng = random.Random(3)
    cubes = _fill(mc, rng, 300)
    for i, cube in enumerate(cubes[:150]):
        mc.update(cube.id, tags=["even" if i % 2 else "odd"])
    alice = mc.as_principal("alice")
    _fill(alice, rng, 40)
    _fill(mc, random.Random(4), 120, namespace="other")
    path = str(tmp_path / "lex.db")
    fast, slow = SqliteStore(path), SqliteStore(path, lexical_index=False)
    try:
        fast.warm("default")
        assert fast._lindex is not None and fast._lindex.wait(0)
        for query in QUERIES:
            match = mc.kernel.text.build_match(query)
            assert match is not None
            for scope in (SearchScope(principal="admin", is_admin=True, namespace="default"),
                          SearchScope(principal="alice", is_admin=False, namespace="default"),
                          SearchScope(principal="admin", is_admin=True, namespace="other"),
                          SearchScope(principal="admin", is_admin=True, namespace="default",
                                      filters=SearchFilters(tags=["even"]))):
                for limit in (1, 10, 100):
                    got = fast.lexical_search(match, scope, limit, context_weight=0.5)
                    want = slow.lexical_search(match, scope, limit, context_weight=0.5)
                    assert [c for c, _ in got] == [c for c, _ in want], (query, scope, limit)
                    assert got == want, (query, scope, limit)
    finally:
        fast.close()
        slow.close()


def test_phrases_and_other_expressions_are_left_to_fts5(open_mc: OpenMc, tmp_path: Path) -> None:
    mc = open_mc(tmp_path / "lex.db", embedder="none")
    email = mc.add("Send the e-mail to the garden club.")
    store = mc.kernel.store
    assert isinstance(store, SqliteStore) and store._lindex is not None
    assert plain_terms('"garden" OR "club"') == ["garden", "club"]
    assert plain_terms('"say ""hi"""') == ['say "hi"']
    assert plain_terms('("garden") AND ("garden" OR "club")') is None
    # "e-mail" is two tokens to FTS5 (a phrase): the index declines, FTS5 answers.
    assert store._lindex.search(store._all, ["e-mail"], namespace="default", principal="admin", is_admin=True,
                                context_weight=0.5, depth=10) is None
    scope = SearchScope(principal="admin", is_admin=True, namespace="default")
    assert [c for c, _ in store.lexical_search('"e-mail"', scope, 5, context_weight=0.5)] == [email.id]
    assert [c for c, _ in store.lexical_search('("garden") AND ("garden" OR "club")', scope, 5,
                                               context_weight=0.5)] == [email.id]


def test_trimmed_change_logs_make_a_lagging_reader_reload(open_mc: OpenMc, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from memcubed.backends.sqlite import store as sqlite_store

    monkeypatch.setattr(sqlite_store, "_LOG_KEEP", 5)
    monkeypatch.setattr(sqlite_store, "_LOG_TRIM_EVERY", 5)
    approximate = memcubed.Settings(exact_vectors_up_to=0)
    writer = open_mc(tmp_path / "lex.db", settings=approximate)
    reader = open_mc(tmp_path / "lex.db", settings=approximate)
    store = reader.kernel.store
    assert isinstance(store, SqliteStore) and store._lindex is not None
    rng = random.Random(5)
    _fill(writer, rng, 40)
    store.warm("default")
    boat = writer.add("We sailed the small wooden boat across the bay at dawn.")
    _fill(writer, rng, 30)  # the entries for the boat are trimmed before the reader replays
    counts = store._all("SELECT (SELECT count(*) FROM fts_log), (SELECT count(*) FROM vec_log)")[0]
    assert counts[0] <= 10 and counts[1] <= 10
    assert reader.search("sailing a wooden boat", mode="vector", k=1).hits[0].cube.id == boat.id
    assert store._lindex.search(store._all, ["boat"], namespace="default", principal="admin", is_admin=True,
                                context_weight=0.5, depth=5) is None  # reloading
    assert store._lindex.wait(60)
    _assert_equal(store, store._lindex, reader, least=20)


def test_document_lengths_read_from_fts5_docsize_match_its_tokens(open_mc: OpenMc, tmp_path: Path) -> None:
    """The FTS5 path reads lengths from ``cube_fts_docsize`` varints: one byte below 128 tokens, more above."""
    from memcubed.backends.sqlite.fts5 import doc_length

    mc = open_mc(tmp_path / "lex.db", embedder="none")
    for n in (1, 127, 128, 300, 16_500):  # varints of one, two and three bytes
        mc.add(" ".join("x" for _ in range(n)))
    store = mc.kernel.store
    assert isinstance(store, SqliteStore)
    store._all("CREATE VIRTUAL TABLE IF NOT EXISTS temp.cube_fts_terms USING fts5vocab(main, cube_fts, instance)")
    tokens = dict(store._all("SELECT doc, count(*) FROM temp.cube_fts_terms GROUP BY doc"))
    sizes = store._all("SELECT id, sz FROM cube_fts_docsize ORDER BY id")
    rows = [(doc_length(r[1]), tokens.get(r[0], 0)) for r in sizes]
    assert [length for length, _ in rows] == [count for _, count in rows] == [1, 127, 128, 300, 16_500]
    assert doc_length(None) == 0
