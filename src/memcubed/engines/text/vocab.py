"""Dense term expansion: bridge the vocabulary gap between a question and the memories that answer it (pure).

"What activities does Melanie partake in?" is answered by turns about pottery, camping and swimming, none of
which says "activities"; "Which cities has Jon visited?" by turns naming Paris and Rome. BM25 cannot see such
a turn, and its cosine similarity to the whole question is often too weak for the vector signal alone. This
stage takes the *candidate vocabulary*: the content words of the first-stage hits the searcher may read, embeds
each word with the store's own embedder (``TERM_CACHE`` keeps word vectors across queries), and adds to the
question the words nearest to one of its content words ("cities" → paris, rome; "instruments" → violin); the
kernel fuses the lexical ranking of that expanded question as signal ``vocab``.

Why the hits' words, not the namespace's whole vocabulary embedded at index time: a word of the namespace may
come only from memories the searcher cannot read, and one vocabulary per readable scope is a vocabulary per
principal; the hits' words are readable by construction (the kernel passes only texts of hits whose rights and
derivation it checked), and a word that answers a question is nearly always in a memory the first stage ranks
in its top few dozen (NOTES.md, ``vocab``: most misses sit at ranks 11–100).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from memcubed.backends.lexical import lexical_text
from memcubed.engines.text.stopwords import STOPWORDS

__all__ = ["candidate_words", "related_terms"]

_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)
_SPEAKER = re.compile(r"^\s*[\w .'-]{1,40}:\s*")
_MIN_LENGTH = 4  # shorter words are fillers ("yeah", "oh") or too ambiguous to bridge on their own


def candidate_words(texts: Sequence[str], asked: Sequence[str], limit: int) -> list[str]:
    """Up to ``limit`` distinct content words of ``texts`` (hits, best first), in order of first appearance,
    lower-cased as the lexical index sees them: no stopwords, short words, digits, the turns' speaker prefixes
    ("Caroline: …") nor words already ``asked``."""
    skip = {w.lower() for w in asked}
    out: dict[str, None] = {}
    for text in texts:
        for word in _WORD.findall(lexical_text(_SPEAKER.sub("", text, count=1))):
            word = word.lower()
            if len(word) >= _MIN_LENGTH and word not in STOPWORDS and word not in skip:
                out.setdefault(word, None)
                if len(out) >= limit:
                    return list(out)
    return list(out)


def related_terms(asked: Sequence[str], asked_vectors: npt.NDArray[np.float32], words: Sequence[str],
                  word_vectors: npt.NDArray[np.float32], *, threshold: float, per_term: int,
                  total: int) -> list[tuple[str, str, float]]:
    """The ``words`` nearest to each ``asked`` term: ``(asked term, word, cosine)``, best first overall.

    A word qualifies for a term when its cosine similarity is at least ``threshold``; each term brings at most
    ``per_term`` words, the whole expansion at most ``total`` (a word is used once, for its nearest term); ties
    break alphabetically, so the result is deterministic.
    """
    if not asked or not words or total < 1:
        return []
    a = _unit(asked_vectors)
    w = _unit(word_vectors)
    sims = a @ w.T  # terms × words
    chosen: list[tuple[str, str, float]] = []
    for i, term in enumerate(asked):
        order = sorted(range(len(words)), key=lambda j: (-float(sims[i, j]), words[j]))
        picked = [(term, words[j], round(float(sims[i, j]), 4)) for j in order[:per_term]
                  if sims[i, j] >= threshold]
        chosen.extend(picked)
    best: dict[str, tuple[str, str, float]] = {}
    for item in chosen:
        if item[1] not in best or item[2] > best[item[1]][2]:
            best[item[1]] = item
    return sorted(best.values(), key=lambda item: (-item[2], item[1]))[:total]


def _unit(vectors: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    rows = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    return (rows / np.where(norms == 0, 1.0, norms)).astype(np.float32)
