"""Lexical statistics are per namespace: what other namespaces hold never moves a namespace's rankings.

BM25's IDF, document count and mean length are those of the searched namespace alone, so one
tenant's results neither depend on nor reveal what another tenant stores (a side channel when IDF
spanned the whole store).
"""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import memcubed
from memcubed import ValidationError

_WORDS = ("garden compost boat sailing bay dawn pottery class thursday lake sunrise marathon violin camping "
          "mountains bread oven parrot tractor concert").split()
_CORPUS = ("garden compost at dawn", "sailing boat on the bay", "pottery class every thursday",
           "violin concert by the lake", "camping in the mountains at sunrise", "bread from the oven",
           "the parrot rode the tractor", "garden party by the lake with a boat")
_QUERIES = ("garden", "boat lake", "pottery thursday concert", "sunrise camping mountains", "parrot garden oven")
_spaces = itertools.count()


def _rankings(mc: memcubed.Memcubed, namespace: str) -> dict[str, list[tuple[str, float]]]:
    """Each query's hits in ``namespace``: ids and raw BM25 scores, best first."""
    return {q: [(h.cube.id, h.signals["lexical"].score) for h in mc.search(q, namespace=namespace, mode="lexical").hits]
            for q in _QUERIES}


@settings(max_examples=12, deadline=None)
@given(others=st.lists(st.lists(st.sampled_from([*_WORDS, "the", "a", "zebra"]), min_size=1, max_size=12)
                       .map(" ".join), min_size=1, max_size=10))
def test_adding_to_another_namespace_never_moves_a_namespaces_scores(lexical: memcubed.Memcubed,
                                                                     others: list[str]) -> None:
    n = next(_spaces)
    mine, theirs = f"tenant-a-{n}", f"tenant-b-{n}"
    lexical.add_many([{"text": text, "namespace": mine} for text in _CORPUS])
    before = _rankings(lexical, mine)
    assert before["garden"] and before["boat lake"]
    lexical.add_many([{"text": text, "namespace": theirs} for text in others])
    assert _rankings(lexical, mine) == before


def test_a_namespaces_own_documents_set_its_idf(lexical: memcubed.Memcubed) -> None:
    """A term common in one namespace and rare in another weighs differently in each (not store-wide)."""
    lexical.add_many([{"text": f"garden note {i}", "namespace": "common"} for i in range(12)]
                     + [{"text": "violin lesson", "namespace": "common"},
                        {"text": "garden violin", "namespace": "common"}])
    # The other namespace is the bigger one: over the whole store violin would be the common term.
    lexical.add_many([{"text": f"violin note {i}", "namespace": "rare"} for i in range(40)]
                     + [{"text": "garden lesson", "namespace": "rare"},
                        {"text": "garden violin", "namespace": "rare"}])
    # In "common" the rare term is violin: its lesson outranks every garden note; in "rare" it is garden.
    assert [h.cube.text for h in lexical.search("garden violin", namespace="common", mode="lexical", k=2).hits] \
        == ["garden violin", "violin lesson"]
    assert [h.cube.text for h in lexical.search("garden violin", namespace="rare", mode="lexical", k=2).hits] \
        == ["garden violin", "garden lesson"]


def test_hostile_queries_stay_inside_the_namespace(lexical: memcubed.Memcubed) -> None:
    """FTS syntax in a query is quoted like any word, and another namespace's words find nothing here."""
    lexical.add("the launch code is swordfish", namespace="vault")
    mine = lexical.add("garden compost at dawn", namespace="mine")
    for query in ('swordfish', '"garden" OR "swordfish"', 'garden" OR swordfish OR "', "NEAR(swordfish garden)",
                  "swordfish*", "garden AND NOT swordfish", "col:swordfish", "'; DROP TABLE cube_fts; --"):
        hits = lexical.search(query, namespace="mine", mode="lexical").hits
        assert {h.cube.id for h in hits} <= {mine.id}, query
    assert lexical.search("swordfish", namespace="vault", mode="lexical").hits
    # The longest query allowed, all of it acronyms and irregular forms, still ranks; one char more is refused.
    longest = ("SO went IT bought " * 700)[:10_000]
    assert {h.cube.id for h in lexical.search(longest, namespace="mine", mode="lexical").hits} <= {mine.id}
    with pytest.raises(ValidationError):
        lexical.search(longest + "x", namespace="mine", mode="lexical")
