"""Plaintext retrieval: index context, FTS query building, and score fusion of lexical and vector rankings.

The recipe was chosen on LoCoMo (bench/retrieval.py): a memory's FTS row carries a down-weighted
*context* column (its event time and the preceding memory of the same conversation), because a
reply rarely repeats the words of the question it answers; signals are fused by weighted z-scores,
which beat reciprocal rank fusion when one signal is much stronger than the other (``fusion.py`` holds the
fusion math and its other normalisations; ``expand.py`` the offline expansions fused in as extra signals).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from memcubed.backends.lexical import lexical_text
from memcubed.cube.model import MemCube
from memcubed.engines.text.config import TextConfig
from memcubed.engines.text.fusion import FusedHit, fuse_rankings
from memcubed.engines.text.stopwords import STOPWORDS
from memcubed.engines.text.temporal import resolve

__all__ = ["FusedHit", "TextEngine"]

_TOKEN = re.compile(r"[^\W_]+", re.UNICODE)


class TextEngine:
    """Index context, query building and fusion for hybrid search (pure computation, no I/O)."""

    def __init__(self, config: TextConfig | None = None) -> None:
        self.config = config or TextConfig()

    def context_for(self, cube: MemCube, preceding: MemCube | None) -> str:
        """The lexical context of ``cube``: its event time, the dates its own words name resolved against
        that time ("yesterday" -> "7 may 2023", unless ``resolve_times`` is off), then the preceding memory
        of its source when that happened within ``session_gap_s`` before it.

        The preceding text is used only when exactly the same principals may read both cubes, so that
        a search can never reveal words of a memory through a neighbour its reader may see.
        """
        parts: list[str] = []
        when = cube.source.occurred_at
        if when is not None:
            # Written the way people say it ("1:56 pm on 8 may, 2023") so query dates match its tokens.
            parts.append(f"{when.hour % 12 or 12}:{when:%M} {'am' if when.hour < 12 else 'pm'} on {when.day}"
                         f" {when:%B}, {when.year}".lower())
            if self.config.resolve_times:
                # The dates its own words name ("yesterday" -> "7 may 2023"), so a question naming one finds it.
                parts.extend(dict.fromkeys(w for span in resolve(cube.text or "", when) for w in span.words()))
        if preceding is not None and preceding.text and _same_readers(cube, preceding):
            before = preceding.source.occurred_at
            if when is None or before is None or 0 <= (when - before).total_seconds() <= self.config.session_gap_s:
                parts.append(_tail(preceding.text, self.config.context_words))
        return " ".join(parts)

    def query_terms(self, query: str) -> list[str]:
        """Return the query's content words, lower-cased, in order, without repeats.

        CJK runs become their character bigrams, exactly as the indexes split them (``backends.lexical``).
        """
        tokens = [t.lower() for t in _TOKEN.findall(lexical_text(query))]
        return list(dict.fromkeys(t for t in tokens if t not in STOPWORDS))

    def build_match(self, query: str, *, counts: Mapping[str, int] | None = None, total: int = 0) -> str | None:
        """Return an FTS5 MATCH expression OR-ing the query's content words, or None if it has none.

        With document ``counts`` per term out of ``total`` documents (at least
        ``config.prune_min_documents``), a query that mixes selective terms (found in some documents,
        but at most ``config.common_term_share`` of them) and common ones only matches documents
        holding a selective one, still ranked by every term: ``(selective) AND (all)``. BM25 cost grows
        with the rows matched, and rows matched by common terms alone rank low anyway (see NOTES.md).
        Each term is quoted, so user text can never inject FTS syntax.
        """
        terms = self.query_terms(query)
        if not terms:
            return None
        every = _any_of(terms)
        if counts is None or total < self.config.prune_min_documents:
            return every  # a small index ranks every match cheaply
        # A term that matches nothing (or that the statistics do not know) selects nothing.
        selective = [t for t in terms if 0 < counts.get(t, 0) <= self.config.common_term_share * total]
        if not selective or len(selective) == len(terms):
            return every
        return f"({_any_of(selective)}) AND ({every})"

    def fuse(self, lexical: list[tuple[str, float]], vector: list[tuple[str, float]], k: int,
             extra: Mapping[str, list[tuple[str, float]]] | None = None) -> list[FusedHit]:
        """Fuse the lexical and vector rankings (and ``extra`` ones: expansions, sub-queries) into the ``k``
        best, by the configured normalisation, weights and confidence (``engines/text/fusion.py``).

        Ties break by id, so results are deterministic.
        """
        cfg = self.config
        rankings: dict[str, list[tuple[str, float]]] = {"lexical": lexical, "vector": vector, **(extra or {})}
        # A second dense view of the question (``topic``: without the speakers' names) shares the vector weight.
        dense = cfg.vector_weight / 2 if rankings.get("topic") else cfg.vector_weight
        weights = {"lexical": cfg.lexical_weight, "vector": dense, "topic": dense, "expand": cfg.expand_weight,
                   "split": cfg.split_weight, "hop": cfg.hop_weight, "alias": cfg.alias_weight,
                   "vocab": cfg.vocab_weight}
        return fuse_rankings(rankings, weights, k, norm=cfg.fusion_norm, confidence_power=cfg.confidence_power,
                             confidence_depth=cfg.confidence_depth, rank_offset=cfg.rank_offset,
                             confident=_FIRST_STAGE)


_FIRST_STAGE = ("lexical", "vector", "topic")  # the expansions' rankings are peaked by construction: plain weights


def _any_of(terms: list[str]) -> str:
    return " OR ".join('"' + t.replace('"', '""') + '"' for t in terms)


def _same_readers(cube: MemCube, other: MemCube) -> bool:
    return cube.owner == other.owner and {g.principal for g in cube.acl} == {g.principal for g in other.acl}


def _tail(text: str, words: int) -> str:
    """The last ``words`` words of ``text`` (all of it when ``words`` is 0): the end of a long turn is what its
    reply answers, and the rest only dilutes the context column."""
    if words <= 0:
        return text
    parts = text.split()
    return text if len(parts) <= words else " ".join(parts[-words:])
