"""Lexical text as both full-text indexes see it: CJK runs split into overlapping bigrams, then the shared
vocabulary rules (``backends.vocabulary``: acronyms that look like stopwords, irregular forms).

Chinese and Japanese write no spaces between words, and Korean attaches particles to words
(``김치찌개를``), so a word tokenizer (FTS5's unicode61, PostgreSQL's default parser) makes one token
of a whole clause and a query for ``绿茶`` or ``東京`` never matches it. Both indexes and the query
builder therefore see every run of Han, kana and hangul characters as its overlapping character
bigrams (``我喜欢绿茶`` → ``我喜 喜欢 欢绿 绿茶``; a run of one character stays itself), the standard
approach of Lucene's CJK analyzer. Text without CJK characters keeps its words (but for the
vocabulary rules).

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

from memcubed.backends.vocabulary import word_forms

__all__ = ["CJK_CLASS_SQL", "CJK_RUN", "lexical_text"]

_RANGES = (
    (0x1100, 0x11FF),  # hangul jamo
    (0x3005, 0x3007),  # 々 〆 〇
    (0x3041, 0x309F),  # hiragana
    (0x30A0, 0x30FF),  # katakana (with ー)
    (0x3130, 0x318F),  # hangul compatibility jamo
    (0x31F0, 0x31FF),  # katakana phonetic extensions
    (0x3400, 0x4DBF),  # CJK unified ideographs extension A
    (0x4E00, 0x9FFF),  # CJK unified ideographs
    (0xAC00, 0xD7AF),  # hangul syllables
    (0xF900, 0xFAFF),  # CJK compatibility ideographs
    (0xFF66, 0xFF9F),  # half-width katakana
    (0x20000, 0x3134F),  # CJK unified ideographs extensions B-G
)

CJK_RUN = re.compile("[" + "".join(f"{chr(low)}-{chr(high)}" for low, high in _RANGES) + "]+")
"""One run of CJK characters (Han, kana, hangul)."""


def _escape(code: int) -> str:
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


CJK_CLASS_SQL = "[" + "".join(f"{_escape(low)}-{_escape(high)}" for low, high in _RANGES) + "]"
"""The same characters as a PostgreSQL regular expression class (ARE escapes), for SQL migrations."""


def lexical_text(text: str) -> str:
    """Return ``text`` with every CJK run replaced by its overlapping bigrams, separated by spaces, and the
    vocabulary rules applied (``backends.vocabulary.word_forms``).

    Args:
        text: any text.

    Returns:
        The text both full-text indexes and the query builder tokenise.
    """
    if CJK_RUN.search(text) is not None:
        text = CJK_RUN.sub(_split, text)
    return word_forms(text)


def _split(match: re.Match[str]) -> str:
    run = match.group()
    grams = " ".join(run[i:i + 2] for i in range(max(1, len(run) - 1)))
    text, start, end = match.string, match.start(), match.end()
    # Space the bigrams off their neighbours (``iPhone手机`` → ``iPhone 手机``) without doubling spaces,
    # so that splitting again returns the same string.
    before = " " if start > 0 and not text[start - 1].isspace() else ""
    after = " " if end < len(text) and not text[end].isspace() else ""
    return before + grams + after
