"""BM25 as every lexical ranker of memcubed computes it: one formula, statistics of one namespace.

The in-process SQLite index, SQLite's FTS5 path and PostgreSQL all score a query here, from the
same inputs, so the three rank alike:

- a query is a list of terms (tokens after the index's own tokenizer; a term given twice counts twice);
- a document's frequency of a term is its occurrences in the text plus ``context_weight`` times its
  occurrences in the context column; its length is its tokens in both columns;
- the statistics (documents, their mean length, and the documents holding each term) are those of
  the searched namespace only: documents of other namespaces never move a score, so one tenant's
  rankings neither depend on nor reveal what other tenants hold. A document is a row with at least
  one token.

The operations follow FTS5's ``fts5Bm25Function`` in its order (k1 1.2, b 0.75, an IDF below zero
clamped to 1e-6), so that over one namespace the scores equal FTS5's ``bm25()``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = ["K1", "B", "NamespaceStats", "Postings", "idf", "rank", "term_scores"]

K1, B = 1.2, 0.75
"""FTS5's ``bm25()`` constants."""


@dataclass(frozen=True)
class NamespaceStats:
    """The statistics BM25 reads, over one namespace: documents and the tokens of them all."""

    documents: int
    tokens: float

    @property
    def avgdl(self) -> float:
        """The mean document length (1.0 for an empty namespace, which scores nothing anyway)."""
        return self.tokens / self.documents if self.documents else 1.0


def idf(documents: int, df: int) -> float:
    """The IDF of a term held by ``df`` of ``documents`` documents, clamped as FTS5 does."""
    value = math.log((documents - df + 0.5) / (df + 0.5))
    return value if value > 0.0 else 1e-6


def term_scores(text: npt.NDArray[np.float64], context: npt.NDArray[np.float64], lengths: npt.NDArray[np.float64],
                *, df: int, stats: NamespaceStats, context_weight: float) -> npt.NDArray[np.float64]:
    """One term's BM25 contribution to each document given by its occurrences and length.

    Args:
        text: the term's occurrences in each document's text column.
        context: its occurrences in each document's context column.
        lengths: each document's tokens (both columns).
        df: the namespace's documents holding the term.
        stats: the namespace's statistics.
        context_weight: the context column's weight against the text's 1.0.

    Returns:
        The contributions, one per document, to be summed over the query's terms.
    """
    freq = text + context_weight * context
    num = freq * (K1 + 1.0)
    denom = freq + K1 * (1 - B + B * lengths / stats.avgdl)
    result: npt.NDArray[np.float64] = idf(stats.documents, df) * (num / denom)
    return result


Postings = tuple[npt.NDArray[np.int64], npt.NDArray[np.float64], npt.NDArray[np.float64]]
"""One term's documents in the namespace (sorted ids), and its occurrences in their text and context."""


def rank(candidates: npt.NDArray[np.int64], lengths: npt.NDArray[np.float64], terms: list[Postings], *,
         stats: NamespaceStats, context_weight: float, limit: int,
         dfs: Sequence[int] | None = None) -> list[tuple[int, float]]:
    """Score ``candidates`` (sorted document ids) by the query's ``terms`` and return the best ``limit``.

    Args:
        candidates: the documents that may be returned (those that match and pass rights and filters).
        lengths: each candidate's tokens.
        terms: each query term's postings over the whole namespace (its document count is the term's df),
            or over the candidates at least when ``dfs`` is given.
        stats: the namespace's statistics.
        context_weight: the context column's weight against the text's 1.0.
        limit: how many to return.
        dfs: each term's df in the namespace, where the caller keeps them (otherwise its postings' size).

    Returns:
        (document id, score) pairs, best first, ties by id.
    """
    scores = np.zeros(candidates.size, np.float64)
    if candidates.size == 0:
        return []
    for n, (docs, text, context) in enumerate(terms):
        at = np.searchsorted(candidates, docs)
        here = (at < candidates.size) & (candidates[np.minimum(at, candidates.size - 1)] == docs)
        df = int(docs.size) if dfs is None else int(dfs[n])
        scores[at[here]] += term_scores(text[here], context[here], lengths[at[here]], df=df,
                                        stats=stats, context_weight=context_weight)
    order = np.lexsort((candidates, -scores))[:limit]
    return [(int(candidates[i]), float(scores[i])) for i in order]
