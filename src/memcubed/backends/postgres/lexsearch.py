"""PostgreSQL lexical search: ``backends.bm25`` scored inside the query, only the best rows sent back.

Common words match a large share of a namespace (~40 % for LoCoMo questions), so reading every
matching row into Python to rank it dominated a search. :func:`sql_ranked` computes the same BM25
in SQL and returns ``limit`` rows; :func:`python_ranked` is the in-process path it replaced, kept
as the reference the tests and ``bench.pg_scale`` compare against.

The two are equal bit for bit, not only within a tolerance, so the tie-break (by seq) orders alike:
the IDF and the mean length are computed once in Python and passed as parameters, and the SQL
repeats ``bm25.term_scores``' float8 operations in their order, summed over the query's terms in
the query's order (an ordered ``sum``), as ``bm25.rank`` accumulates them.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from memcubed.backends._common import scope_clause
from memcubed.backends.base import SearchScope
from memcubed.backends.bm25 import K1, B, NamespaceStats, Postings, idf, rank

__all__ = ["python_ranked", "query_terms", "sql_ranked", "tsqueries"]

Rows = Callable[[str, Sequence[Any]], list[Any]]
"""The store's ``_all``: run one statement (``?`` placeholders) and return its rows as dicts."""

_TOKEN = re.compile(r'"((?:[^"]|"")*)"|(\()|(\))|\b(AND|OR)\b')

# The full-text index finds the matches first (a materialised CTE: with stale planner statistics,
# PostgreSQL would otherwise walk the namespace's cubes and test each row's tsvector).
_MATCHES = "WITH m AS MATERIALIZED (SELECT f.seq, f.len, f.tsv FROM cube_fts f WHERE f.tsv @@ ({matched}))"

# One term's contribution, as bm25.term_scores: idf * ((freq * (k1 + 1)) / (freq + k1 * ((1 - b) + (b * len) / avgdl)))
# with freq = text occurrences (weight A) + context_weight * context occurrences (weight B).
_SCORED = (
    _MATCHES + ", q AS (SELECT * FROM unnest(?::text[], ?::float8[]) WITH ORDINALITY AS q(lexeme, idf, ord))"
    " SELECT c.id, s.score FROM m JOIN cubes c ON c.seq = m.seq CROSS JOIN LATERAL ("
    " SELECT sum(q.idf * ((d.fr * ?::float8) / (d.fr + ?::float8 * (?::float8 + (?::float8 * m.len::float8)"
    " / ?::float8))) ORDER BY q.ord) AS score FROM (SELECT u.lexeme,"
    " cardinality(array_positions(u.weights, 'A'))::float8"
    " + ?::float8 * cardinality(array_positions(u.weights, 'B'))::float8 AS fr"
    " FROM unnest(m.tsv) AS u WHERE u.lexeme = ANY(?::text[])) AS d JOIN q ON q.lexeme = d.lexeme) AS s"
    " WHERE {where} ORDER BY s.score DESC, c.seq LIMIT ?"
)


def query_terms(rows: Rows, match: str, namespace: str) -> tuple[list[Any], NamespaceStats]:
    """The query's lexemes (in order; a lexeme of two terms twice) with their df, and the namespace's statistics.

    Read from the maintained tables (``lexstats``) in one query.
    """
    _, _, _, rank_params = tsqueries(match)
    terms = rows(
        "SELECT q.lexeme, coalesce(d.df, 0) AS df, s.documents, s.tokens FROM (SELECT t.ord, u.lexeme,"
        " u.positions[1] AS p FROM unnest(?::text[]) WITH ORDINALITY AS t(term, ord)"
        " CROSS JOIN LATERAL unnest(to_tsvector('english', t.term)) AS u) AS q"
        " LEFT JOIN lex_ns_terms d ON d.namespace = ? AND d.lexeme = q.lexeme"
        " LEFT JOIN lex_ns_stats s ON s.namespace = ? ORDER BY q.ord, q.p",
        (rank_params, namespace, namespace))
    stats = NamespaceStats(int(terms[0]["documents"] or 0), float(terms[0]["tokens"] or 0)) if terms else \
        NamespaceStats(0, 0.0)
    return terms, stats


def sql_ranked(rows: Rows, match: str, scope: SearchScope, limit: int, *, context_weight: float
               ) -> list[tuple[str, float]]:
    """The best ``limit`` cubes of ``scope`` matching ``match``, by BM25 computed in the query.

    Rights and filters (``scope_clause``) are conditions of the same query, so a row a principal may
    not read is never scored, let alone returned.
    """
    terms, stats = query_terms(rows, match, scope.namespace)
    if not any(t["df"] for t in terms):
        return []  # no document of the namespace holds a query lexeme: none matches
    matched, match_params, _, _ = tsqueries(match)
    where, params = scope_clause(scope)
    found = rows(_SCORED.format(matched=matched, where=where), [
        *match_params, [t["lexeme"] for t in terms], [idf(stats.documents, int(t["df"])) for t in terms],
        K1 + 1.0, K1, 1 - B, B, stats.avgdl, context_weight, list({t["lexeme"] for t in terms}),
        *params, limit])
    return [(r["id"], float(r["score"])) for r in found]


def python_ranked(rows: Rows, match: str, scope: SearchScope, limit: int, *, context_weight: float
                  ) -> list[tuple[str, float]]:
    """The reference: every row passing match, rights and filters read, then ranked by ``bm25.rank``."""
    terms, stats = query_terms(rows, match, scope.namespace)
    if not any(t["df"] for t in terms):
        return []
    matched, match_params, _, _ = tsqueries(match)
    where, params = scope_clause(scope)
    found = rows(
        _MATCHES.format(matched=matched) +
        " SELECT m.seq, c.id, m.len, u.lexeme, array_to_string(u.weights, '') AS w FROM m"
        " JOIN cubes c ON c.seq = m.seq CROSS JOIN LATERAL unnest(m.tsv) AS u"
        f" WHERE {where} AND u.lexeme = ANY(?::text[])",
        [*match_params, *params, list({t["lexeme"] for t in terms})])
    ids = {int(r["seq"]): r["id"] for r in found}
    candidates = np.asarray(sorted(ids), np.int64)
    length_of = {int(r["seq"]): float(r["len"]) for r in found}
    postings = postings_of(found)
    best = rank(candidates, np.asarray([length_of[int(s)] for s in candidates], np.float64),
                [postings[t["lexeme"]] for t in terms], dfs=[int(t["df"]) for t in terms],
                stats=stats, context_weight=context_weight, limit=limit)
    return [(ids[seq], score) for seq, score in best]


def postings_of(rows: list[Any]) -> defaultdict[str, Postings]:
    """Each lexeme's documents (sorted seqs) and its occurrences in their text (weight A) and context (B)."""
    found: defaultdict[str, list[tuple[int, str]]] = defaultdict(list)
    for r in rows:
        found[r["lexeme"]].append((int(r["seq"]), r["w"]))
    empty: Postings = (np.zeros(0, np.int64), np.zeros(0), np.zeros(0))
    postings: defaultdict[str, Postings] = defaultdict(lambda: empty)
    for lexeme, docs in found.items():
        docs.sort()
        postings[lexeme] = (np.asarray([seq for seq, _ in docs], np.int64),
                            np.asarray([w.count("A") for _, w in docs], np.float64),
                            np.asarray([w.count("B") for _, w in docs], np.float64))
    return postings


def tsqueries(match: str) -> tuple[str, list[str], str, list[str]]:
    """Translate the engine's FTS5 expression (quoted terms, OR, AND, parentheses) into SQL tsqueries.

    Returns the matching query and its parameters, then the ranking query (every term ORed, as FTS5's
    bm25 ranks by every term of the expression) and its parameters.
    """
    parts: list[str] = []
    terms: list[str] = []
    for term, opening, closing, operator in _TOKEN.findall(match):
        if opening or closing:
            parts.append(opening or closing)
        elif operator:
            parts.append("||" if operator == "OR" else "&&")
        else:
            parts.append("plainto_tsquery('english', ?)")
            terms.append(term.replace('""', '"'))
    if not terms:
        parts, terms = ["plainto_tsquery('english', ?)"], [match]
    distinct = list(dict.fromkeys(terms))
    ranked = " || ".join(["plainto_tsquery('english', ?)"] * len(distinct))
    return " ".join(parts), terms, f"({ranked})", distinct
