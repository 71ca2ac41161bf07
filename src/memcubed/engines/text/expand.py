"""Offline query expansion for multi-hop questions (pure computation, no I/O).

- ``feedback_query``: pseudo-relevance feedback and two-hop chaining in one step: the query plus the names and
  keywords that recur in its first-stage hits, so that a second lexical query reaches memories that share the
  found facts' words but not the question's ("Where did Caroline move from?" → her hits name "Sweden").
- ``hop_query``: two-hop chaining: the query plus the *names* its first hits mention (people, pets, places,
  titles), so the second query reaches memories about what was found ("What did Melanie's kids like?" → the
  hits name "Ella" → turns about Ella that never say "kids").
- ``split_query``: one sub-query per named person or conjunct ("What do Melanie and Caroline both like?" →
  one query about each), so that a question about two people does not rank only memories of the wordier one.

The kernel feeds these only texts of hits the searcher may read (see ``kernel/retrieve.py``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from memcubed.backends.lexical import lexical_text
from memcubed.engines.text.stopwords import STOPWORDS

__all__ = ["feedback_query", "hop_query", "query_names", "split_query"]

_WORD = re.compile(r"[^\W_]+", re.UNICODE)
_NAME = re.compile(r"(?<![.!?]\s)(?<!^)\b[A-Z][a-z]{2,}\b")
_SPEAKER = re.compile(r"^\s*[\w .'-]{1,40}:\s*")
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


def hop_query(query: str, texts: Sequence[str], terms: int) -> str:
    """``query`` followed by up to ``terms`` names that ``texts`` (first-stage hits, best first) mention and the
    query does not: a name scores the sum of ``1 / rank`` over the hits naming it; stopwords and names of the
    speakers' turn prefixes ("Caroline: …" opens a turn, not a mention) are left out; ties break
    alphabetically. ``query`` alone when the hits name nothing new."""
    asked = {w.lower() for w in _WORD.findall(lexical_text(query))}
    scores: dict[str, float] = {}
    for rank, text in enumerate(texts, start=1):
        for name in {m.lower() for m in _NAME.findall(_SPEAKER.sub("", text))}:
            if name in asked or name in STOPWORDS:
                continue
            scores[name] = scores.get(name, 0.0) + 1.0 / rank
    chosen = sorted(scores, key=lambda w: (-scores[w], w))[:terms]
    return " ".join([query, *chosen])


def query_names(query: str) -> list[str]:
    """The names ``query`` mentions (capitalised words inside its sentences), in order, without repeats."""
    return list(dict.fromkeys(_NAME.findall(query)))


def split_query(query: str) -> list[str]:
    """Sub-queries of ``query``: one per named person when it names several (the others' names removed), else
    one per conjunct when it joins several clauses of content words; ``[]`` when there is nothing to split."""
    names = query_names(query)
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
