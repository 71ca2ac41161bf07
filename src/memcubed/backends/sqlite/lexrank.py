"""Lexical ranking from FTS5's data when the in-process index cannot answer: the same BM25, per namespace.

FTS5's own ``bm25()`` reads its statistics over the whole table, every namespace together, so it is
not used to rank. FTS5 finds the matching rows (rights and filters applied in the same query); each
query term's occurrences in the namespace come from FTS5's index (``fts5vocab``, looked up by term),
document lengths from its ``docsize`` table, and ``backends.bm25`` scores them exactly as the
in-process index does: both paths give the same scores and order (a test compares them).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from memcubed.backends.bm25 import NamespaceStats, Postings, rank
from memcubed.backends.sqlite.fts5 import Query, doc_length, quoted_words, tokenize

__all__ = ["namespace_stats", "rank_matches"]

_VOCAB_DDL = "CREATE VIRTUAL TABLE IF NOT EXISTS temp.cube_fts_terms USING fts5vocab(main, cube_fts, instance)"


def namespace_stats(query: Query, namespace: str) -> NamespaceStats:
    """The namespace's documents (rows with a token) and their tokens, read from FTS5's document sizes."""
    lengths = [doc_length(r[0]) for r in query(
        "SELECT d.sz FROM cubes c CROSS JOIN cube_fts_docsize d ON d.id = c.seq WHERE c.namespace = ?", (namespace,))]
    counted = [n for n in lengths if n > 0]
    return NamespaceStats(len(counted), float(sum(counted)))


def rank_matches(query: Query, match: str, where: str, params: Sequence[Any], *, namespace: str, limit: int,
                 context_weight: float) -> list[tuple[str, float]]:
    """The best ``limit`` (cube id, score) of the rows matching ``match`` that pass ``where`` (over ``cubes c``),
    best first, ties by seq.

    Args:
        query: runs SQL on the store's connection.
        match: the FTS5 expression; every quoted word in it is a query term, ranked even where the
            expression only requires some of them (the engine's pruned ``(selective) AND (all)``).
        where: the rights and filters clause of ``scope_clause`` (it holds the namespace), and its params.
        namespace: the namespace whose statistics rank.
        context_weight: the context column's weight against the text's 1.0.
    """
    # CROSS JOIN keeps the full-text index as the outer loop (see the store's lexical_search).
    rows = query(f"SELECT c.seq, c.id FROM cube_fts CROSS JOIN cubes c ON c.seq = cube_fts.rowid"
                 f" WHERE cube_fts MATCH ? AND {where}", [match, *params])
    if not rows:
        return []
    seqs = np.asarray(sorted(int(r[0]) for r in rows), np.int64)
    ids = {int(r[0]): str(r[1]) for r in rows}
    sizes = dict(query("SELECT j.value, d.sz FROM json_each(?) AS j CROSS JOIN cube_fts_docsize d ON d.id = j.value",
                       (_json_list(seqs),)))
    lengths = np.asarray([doc_length(sizes.get(int(s))) for s in seqs], np.float64)
    stats = namespace_stats(query, namespace)
    words = list(dict.fromkeys(quoted_words(match)))
    stems = [term for _, term, _ in tokenize(query, [(word, "") for word in words])]
    query(_VOCAB_DDL, ())
    best = rank(seqs, lengths, [_postings(query, stem, namespace) for stem in stems], stats=stats,
                context_weight=context_weight, limit=limit)
    return [(ids[seq], score) for seq, score in best]


def _postings(query: Query, stem: str, namespace: str) -> Postings:
    """One term's documents in the namespace (sorted seqs) and its occurrences in their text and context."""
    rows = query("SELECT v.doc, sum(v.col = 'text'), sum(v.col = 'context') FROM temp.cube_fts_terms v"
                 " CROSS JOIN cubes c ON c.seq = v.doc WHERE v.term = ? AND c.namespace = ? GROUP BY v.doc"
                 " ORDER BY v.doc", (stem, namespace))
    docs = np.asarray([int(r[0]) for r in rows], np.int64)
    text = np.asarray([float(r[1]) for r in rows], np.float64)
    context = np.asarray([float(r[2]) for r in rows], np.float64)
    return docs, text, context


def _json_list(values: Any) -> str:
    return "[" + ",".join(str(int(v)) for v in values) + "]"
