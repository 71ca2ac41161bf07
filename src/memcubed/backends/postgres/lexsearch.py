"""PostgreSQL lexical search: ``backends.bm25`` scored inside the query, only the best rows sent back.

Common words match a large share of a namespace (~40 % for LoCoMo questions), so reading every
matching row into Python to rank it dominated a search. :func:`sql_ranked` computes the same BM25
in SQL and returns ``limit`` rows; :func:`python_ranked` is the in-process path it replaced, kept
as the reference the tests and ``bench.pg_scale`` compare against.

The two are equal bit for bit, not only within a tolerance, so the tie-break (by seq) orders alike:
the IDF and the mean length are computed once in Python and passed as parameters, and the SQL
repeats ``bm25.term_scores``' float8 operations in their order, summed from 0 over the query's terms
in the query's order, as ``bm25.rank`` accumulates them.

Pruning (exact): a row holding only common lexemes (df above ``COMMON_SHARE`` of the namespace) scores
below the sum of their ``idf * (k1 + 1)``. The rows holding a rarer query lexeme are scored first;
when their ``limit``-th best is above that bound, the common-only rows cannot enter the answer and are
never read. Otherwise those are scored too and the two sets merged, each row scored once.
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

__all__ = ["COMMON_SHARE", "python_ranked", "query_terms", "sql_ranked", "tsqueries"]

COMMON_SHARE = 0.1
"""A lexeme held by more than this share of the namespace's documents is common (see ``sql_ranked``)."""

Rows = Callable[[str, Sequence[Any]], list[Any]]
"""The store's ``_all``: run one statement (``?`` placeholders) and return its rows as dicts."""

_TOKEN = re.compile(r'"((?:[^"]|"")*)"|(\()|(\))|\b(AND|OR)\b')

# The full-text index finds the matches first (a materialised CTE: with stale planner statistics,
# PostgreSQL would otherwise walk the namespace's cubes and test each row's tsvector).
_MATCHES = "WITH m AS MATERIALIZED (SELECT f.seq, f.len, f.tsv FROM cube_fts f WHERE f.tsv @@ ({matched}){rare})"

# Each row's frequency of each distinct query lexeme (text occurrences, weight A, plus context_weight times
# context occurrences, weight B), one column each, from one pass over its lexemes: no join and no sort per row.
_FREQ = "max(CASE WHEN u.lexeme = ? THEN cardinality(array_positions(u.weights, 'A'))::float8" \
        " + ?::float8 * cardinality(array_positions(u.weights, 'B'))::float8 END) AS f{n}"
# One term's contribution, as bm25.term_scores: idf * ((freq * (k1 + 1)) / (freq + k1 * ((1 - b) + (b * len) / avgdl))),
# 0 where the row lacks the term (adding 0 changes no sum, so the order of bm25.rank's additions is kept).
_TERM = "coalesce(?::float8 * ((t.f{n} * ?::float8) / (t.f{n} + ?::float8 * (?::float8 + (?::float8 * m.len::float8)" \
        " / ?::float8))), 0)"
_SCORED = (
    _MATCHES + " SELECT c.seq, c.id, {score} AS score FROM m JOIN cubes c ON c.seq = m.seq CROSS JOIN LATERAL"
    " (SELECT {freqs} FROM unnest(m.tsv) AS u WHERE u.lexeme = ANY(?::text[])) AS t"
    " WHERE {where} ORDER BY score DESC, c.seq LIMIT ?"
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
    if limit <= 0 or not any(t["df"] for t in terms):
        return []  # no document of the namespace holds a query lexeme: none matches
    df = {t["lexeme"]: int(t["df"]) for t in terms}
    common = {lexeme for lexeme, n in df.items() if n > COMMON_SHARE * stats.documents}
    if not common or len(common) == len(df):
        return [(cube_id, score) for _, cube_id, score in _scored(rows, terms, stats, match, scope, limit,
                                                                  context_weight, None, False)]
    # A row holding common lexemes only scores below `bound` (each term's contribution is below
    # idf * (k1 + 1)): when the best `limit` rows holding a rarer one all score above it, they are the answer;
    # otherwise the rows of common lexemes only are scored too and both sets merged (each row scored once).
    rare = [x for x in df if x not in common]
    bound = sum(idf(stats.documents, df[t["lexeme"]]) * (K1 + 1.0) for t in terms if t["lexeme"] in common)
    found = _scored(rows, terms, stats, match, scope, limit, context_weight, rare, True)
    if len(found) < limit or found[-1][2] <= bound * (1 + 1e-9):
        found = sorted([*found, *_scored(rows, terms, stats, match, scope, limit, context_weight, rare, False)],
                       key=lambda r: (-r[2], r[0]))[:limit]
    return [(cube_id, score) for _, cube_id, score in found]


def _scored(rows: Rows, terms: list[Any], stats: NamespaceStats, match: str, scope: SearchScope, limit: int,
            context_weight: float, rare: list[str] | None, holding: bool) -> list[tuple[int, str, float]]:
    """The best ``limit`` matching rows of ``scope`` by BM25 as (seq, id, score); with ``rare`` lexemes, among
    the rows holding one of them (``holding``) or those holding none."""
    matched, match_params, _, _ = tsqueries(match)
    where, params = scope_clause(scope)
    lexemes = list(dict.fromkeys(t["lexeme"] for t in terms))
    column = {lexeme: n for n, lexeme in enumerate(lexemes)}
    freqs = ", ".join(_FREQ.format(n=n) for n in range(len(lexemes)))
    # Summed left to right in the query's term order from 0, as bm25.rank accumulates: bit-equal scores.
    score = "(" * len(terms) + "0::float8" + "".join(f" + {_TERM.format(n=column[t['lexeme']])})" for t in terms)
    among = "" if rare is None else f" AND {'' if holding else 'NOT '}f.tsv @@ ?::tsquery"
    sql = _SCORED.format(matched=matched, rare=among, score=score, freqs=freqs, where=where)
    found = rows(sql, [
        *match_params, *([] if rare is None else [" | ".join(_quoted(x) for x in rare)]),
        *[p for t in terms for p in (idf(stats.documents, int(t["df"])), K1 + 1.0, K1, 1 - B, B, stats.avgdl)],
        *[p for lexeme in lexemes for p in (lexeme, context_weight)], lexemes, *params, limit])
    return [(int(r["seq"]), r["id"], float(r["score"])) for r in found]


def _quoted(lexeme: str) -> str:
    """A lexeme as a ``tsquery`` operand, taken as is (no parsing or stemming)."""
    return "'" + lexeme.replace("\\", "\\\\").replace("'", "''") + "'"


def python_ranked(rows: Rows, match: str, scope: SearchScope, limit: int, *, context_weight: float
                  ) -> list[tuple[str, float]]:
    """The reference: every row passing match, rights and filters read, then ranked by ``bm25.rank``."""
    terms, stats = query_terms(rows, match, scope.namespace)
    if not any(t["df"] for t in terms):
        return []
    matched, match_params, _, _ = tsqueries(match)
    where, params = scope_clause(scope)
    found = rows(
        _MATCHES.format(matched=matched, rare="") +
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
