"""PostgreSQL's BM25 scored in SQL (``lexsearch.sql_ranked``) returns exactly the in-process ranking's top k
(``lexsearch.python_ranked``: every matching row read, then ``bm25.rank``), scores bit for bit and ties by seq,
over random stores and queries, and never a cube the searching principal may not read or a filter excludes."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import memcubed
from memcubed import Right
from memcubed.backends.base import SearchScope
from memcubed.backends.postgres.lexsearch import python_ranked, sql_ranked
from memcubed.cube.model import CubeState
from memcubed.schemas.ops import SearchFilters
from memcubed.testing.backends import PgCluster

# Repeated words (ties), stopwords and punctuation (a text of them alone is no document), CJK (bigrams).
# Hostile ones: quotes, backslashes, SQL, operator words and a file path, which must reach the tsquery as data.
_WORDS = ("garden garden compost boat sailing sails dawn pottery running runs ran the of and it is lake"
          " 東京 タワー 北京大学 东京 -- 42 paris o'brien c:\\temp\\x ');"
          " /usr/lo'cal/x\\y AND OR NOT \"quoted\"").split()
_PRINCIPALS = ("alice", "bob")
_namespaces = itertools.count()

_text = st.lists(st.sampled_from(_WORDS), min_size=1, max_size=9).map(" ".join)
_doc = st.tuples(st.sampled_from(_PRINCIPALS), _text, st.one_of(st.just(""), _text), st.booleans(),
                 st.sampled_from(["active", "active", "archive", "delete"]))
_query = st.lists(st.sampled_from(_WORDS), min_size=1, max_size=5).map(" ".join)
_scope = st.tuples(st.sampled_from([*_PRINCIPALS, "admin"]), st.booleans(), st.sampled_from([None, *_PRINCIPALS]))


@dataclass
class _Doc:
    owner: str
    shared: bool
    state: str


@pytest.fixture(scope="module")
def store(pg_cluster: PgCluster) -> Iterator[memcubed.Memcubed]:
    """One database; each example writes a namespace of its own (BM25 reads only the searched one's statistics)."""
    dsn = pg_cluster.create()
    with memcubed.open(dsn, embedder="none") as mc:
        for name in _PRINCIPALS:
            mc.create_principal(name)
        yield mc
    pg_cluster.drop(dsn)


def _fill(mc: memcubed.Memcubed, namespace: str, docs: list[tuple[str, str, str, bool, str]]) -> dict[str, _Doc]:
    model: dict[str, _Doc] = {}
    for owner, text, context, shared, action in docs:
        who = mc.as_principal(owner)
        cube = who.add(text, namespace=namespace)
        if context:
            mc.kernel.store.set_context(cube.id, context)
        if shared:
            who.share(cube.id, next(p for p in _PRINCIPALS if p != owner), Right.READ)
        if action == "archive":
            who.archive(cube.id)
        elif action == "delete":
            who.delete(cube.id)
        model[cube.id] = _Doc(owner, shared, {"archive": "archived", "delete": "deleted"}.get(action, "active"))
    return model


@settings(max_examples=25, deadline=None)
@given(docs=st.lists(_doc, min_size=1, max_size=30), queries=st.lists(_query, min_size=1, max_size=6),
       scopes=st.lists(_scope, min_size=1, max_size=3), limit=st.integers(0, 12),
       context_weight=st.sampled_from([0.0, 0.3, 1.0]))
def test_sql_top_k_equals_the_python_ranking(store: memcubed.Memcubed, docs: list[Any], queries: list[str],
                                              scopes: list[Any], limit: int, context_weight: float) -> None:
    namespace = f"ns{next(_namespaces)}"
    model = _fill(store, namespace, docs)
    rows = store.kernel.store._all
    for query, (principal, archived_too, owner) in itertools.product(queries, scopes):
        match = store.kernel.text.build_match(query)
        if match is None:
            continue  # stopwords and punctuation only: the engine asks the store nothing
        states = [CubeState.ACTIVE, CubeState.ARCHIVED] if archived_too else [CubeState.ACTIVE]
        scope = SearchScope(principal=principal, is_admin=principal == "admin", namespace=namespace,
                            filters=SearchFilters(states=states, owner=owner))
        got = sql_ranked(rows, match, scope, limit, context_weight=context_weight)
        assert got == python_ranked(rows, match, scope, limit, context_weight=context_weight)
        assert got == sql_ranked(rows, match, scope, 50, context_weight=context_weight)[:limit]
        for cube_id, score in got:
            doc = model[cube_id]  # a cube of this namespace only
            assert score >= 0  # 0 where the match is in the context only and its weight is 0
            assert doc.state in {s.value for s in states}
            assert owner is None or doc.owner == owner
            assert scope.is_admin or doc.owner == principal or doc.shared


def test_the_ranking_reads_only_the_searched_namespace_and_breaks_ties_by_age(store: memcubed.Memcubed) -> None:
    """Equal texts tie, the older first; a busier namespace with the same words changes no score here."""
    quiet, busy = f"ns{next(_namespaces)}", f"ns{next(_namespaces)}"
    ids = [store.add("garden compost", namespace=quiet).id for _ in range(3)]
    store.add("pottery lake", namespace=quiet)
    scope = SearchScope(principal="admin", is_admin=True, namespace=quiet)
    match = store.kernel.text.build_match("garden compost")
    assert match is not None
    before = sql_ranked(store.kernel.store._all, match, scope, 10, context_weight=0.3)
    assert [i for i, _ in before] == ids and len({s for _, s in before}) == 1
    store.add_many([{"text": "garden garden garden", "namespace": busy} for _ in range(20)])
    assert sql_ranked(store.kernel.store._all, match, scope, 10, context_weight=0.3) == before


@pytest.mark.parametrize("limit", [2, 5])
def test_rows_of_common_words_only_are_pruned_or_merged_exactly(store: memcubed.Memcubed, limit: int) -> None:
    """40 rows of a common word and three of a rare one: the best two hold the rare word (the common rows
    cannot reach them); five need the common rows too, merged in the same order as the in-process ranking."""
    namespace = f"ns{next(_namespaces)}"
    store.add_many([{"text": f"garden compost {'compost ' * (i % 3)}", "namespace": namespace} for i in range(40)])
    rare = [store.add(f"garden lgbtq {'lgbtq ' * i}", namespace=namespace).id for i in range(3)]
    scope = SearchScope(principal="alice", is_admin=False, namespace=namespace)
    store.share(rare[0], "alice", Right.READ)
    admin = SearchScope(principal="admin", is_admin=True, namespace=namespace)
    rows = store.kernel.store._all
    for who in (scope, admin):
        match = store.kernel.text.build_match("garden compost lgbtq")
        assert match is not None
        got = sql_ranked(rows, match, who, limit, context_weight=0.3)
        assert got == python_ranked(rows, match, who, limit, context_weight=0.3)
        if who is scope:
            assert [i for i, _ in got] == [rare[0]]  # the only row alice may read
        else:
            assert [i for i, _ in got][:3] == list(reversed(rare))[:limit] and len(got) == limit
