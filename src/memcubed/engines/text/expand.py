"""Offline query expansion for multi-hop questions (pure computation, no I/O).

- ``feedback_query``: pseudo-relevance feedback and two-hop chaining in one step: the query plus the names and
  keywords that recur in its first-stage hits, so that a second lexical query reaches memories that share the
  found facts' words but not the question's ("Where did Caroline move from?" → her hits name "Sweden").
- ``split_query``: one sub-query per named person or conjunct ("What do Melanie and Caroline both like?" →
  one query about each), so that a question about two people does not rank only memories of the wordier one.

The kernel feeds these only texts of hits the searcher may read (see ``kernel/retrieve.py``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from memcubed.backends.lexical import lexical_text
from memcubed.engines.text.stopwords import STOPWORDS

__all__ = ["feedback_query", "split_query"]

_WORD = re.compile(r"[^\W_]+", re.UNICODE)
_NAME = re.compile(r"(?<![.!?]\s)(?<!^)\b[A-Z][a-z]{2,}\b")
_CONJUNCT = re.compile(r"\s*(?:,|\band\b|\bor\b|\bwith\b)\s*", re.IGNORECASE)
_MIN_LENGTH = 3  # shorter words are mostly fillers ("ok", "oh") that the stopword list does not hold


def feedback_query(query: str, texts: Sequence[str], terms: int) -> str:
    """``query`` followed by up to ``terms`` words taken from ``texts`` (first-stage hits, best first).

    A word scores the sum of ``1 / rank`` over the hits that hold it, doubled when it is written as a name
    (capitalised inside a sentence); words of the query, stopwords and short words are left out; ties break
    alphabetically, so the result is deterministic.
    """
    asked = {w.lower() for w in _WORD.findall(lexical_text(query))}
    scores: dict[str, float] = {}
    for rank, text in enumerate(texts, start=1):
        names = {m.lower() for m in _NAME.findall(text)}
        for word in {w.lower() for w in _WORD.findall(lexical_text(text))}:
            if word in asked or word in STOPWORDS or len(word) < _MIN_LENGTH or word.isdigit():
                continue
            scores[word] = scores.get(word, 0.0) + (2.0 if word in names else 1.0) / rank
    chosen = sorted(scores, key=lambda w: (-scores[w], w))[:terms]
    return " ".join([query, *chosen])


def split_query(query: str) -> list[str]:
    """Sub-queries of ``query``: one per named person when it names several (the others' names removed), else
    one per conjunct when it joins several clauses of content words; ``[]`` when there is nothing to split."""
    names = list(dict.fromkeys(_NAME.findall(query)))
    if len(names) > 1:
        return [_without(query, [n for n in names if n != name]) for name in names]
    parts = [p for p in _CONJUNCT.split(query) if _content(p)]
    return parts if len(parts) > 1 else []


def _without(query: str, names: Sequence[str]) -> str:
    out = query
    for name in names:
        out = re.sub(rf"\b{re.escape(name)}\b(?:'s)?", " ", out)
    return " ".join(out.split())


def _content(text: str) -> bool:
    return any(w.lower() not in STOPWORDS for w in _WORD.findall(text))
