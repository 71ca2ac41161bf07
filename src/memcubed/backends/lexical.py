"""Lexical text as both full-text indexes see it: CJK runs split into overlapping bigrams.

Chinese and Japanese write no spaces between words, and Korean attaches particles to words
(``김치찌개를``), so a word tokenizer (FTS5's unicode61, PostgreSQL's default parser) makes one token
of a whole clause and a query for ``绿茶`` or ``東京`` never matches it. Both indexes and the query
builder therefore see every run of Han, kana and hangul characters as its overlapping character
bigrams (``我喜欢绿茶`` → ``我喜 喜欢 欢绿 绿茶``; a run of one character stays itself), the standard
approach of Lucene's CJK analyzer. Text without CJK characters is returned unchanged, so English
tokens and scores do not move.

Why bigrams, not FTS5's trigram tokenizer or pg_trgm: most Chinese and Japanese words are two
characters long, and a trigram index cannot match a query shorter than three characters; one
transformation, done in Python before the text reaches either database, also gives both backends
the same tokens (PostgreSQL's parser and FTS5's unicode61 both keep each bigram as one word).

The split is idempotent (bigrams split again give themselves), so text read back from an index
(``load_index_entry``) can be indexed again, as ``migrate`` does. A one-character query term only
matches a one-character run, a known limit of bigram indexes.
"""

from __future__ import annotations

import re

__all__ = ["CJK_RUN", "lexical_text"]

CJK_RUN = re.compile(
    "["
    "\u1100-\u11ff"  # hangul jamo
    "\u3005-\u3007"  # 々 〆 〇
    "\u3041-\u309f"  # hiragana
    "\u30a0-\u30ff"  # katakana (with ー)
    "\u3130-\u318f"  # hangul compatibility jamo
    "\u31f0-\u31ff"  # katakana phonetic extensions
    "\u3400-\u4dbf"  # CJK unified ideographs extension A
    "\u4e00-\u9fff"  # CJK unified ideographs
    "\uac00-\ud7af"  # hangul syllables
    "\uf900-\ufaff"  # CJK compatibility ideographs
    "\uff66-\uff9f"  # half-width katakana
    "\U00020000-\U0003134f"  # CJK unified ideographs extensions B-G
    "]+"
)
"""One run of CJK characters (Han, kana, hangul)."""


def lexical_text(text: str) -> str:
    """Return ``text`` with every CJK run replaced by its overlapping bigrams, separated by spaces.

    Args:
        text: any text; without CJK characters it is returned as it is.

    Returns:
        The text both full-text indexes and the query builder tokenise.
    """
    if CJK_RUN.search(text) is None:
        return text
    return CJK_RUN.sub(_split, text)


def _split(match: re.Match[str]) -> str:
    run = match.group()
    grams = " ".join(run[i:i + 2] for i in range(max(1, len(run) - 1)))
    text, start, end = match.string, match.start(), match.end()
    # Space the bigrams off their neighbours (``iPhone手机`` → ``iPhone 手机``) without doubling spaces,
    # so that splitting again returns the same string.
    before = " " if start > 0 and not text[start - 1].isspace() else ""
    after = " " if end < len(text) and not text[end].isspace() else ""
    return before + grams + after
