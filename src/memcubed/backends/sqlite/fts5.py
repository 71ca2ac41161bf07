"""Reading FTS5's own data: its tokenizer, its postings (``fts5vocab``) and its document sizes.

Nothing about tokenising is reimplemented: words are tokenised by a temporary FTS5 table with the
tokenizer of ``cube_fts``, and postings and lengths are read from FTS5's index and ``docsize`` table.
Both lexical rankers of the SQLite store (the in-process index and the FTS5 path) read through here.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["TOKENIZER", "Query", "doc_length", "plain_terms", "quoted_words", "tokenize"]

TOKENIZER = "porter unicode61 remove_diacritics 2"
"""The tokenizer of ``cube_fts`` (migration 3); the temporary tokenizing table uses the same."""

Query = Callable[[str, Sequence[Any]], list[Any]]
"""Runs one SQL statement with parameters and returns its rows."""

_PLAIN = re.compile(r'"((?:[^"]|"")*)"(?: OR "((?:[^"]|"")*)")*')
_QUOTED = re.compile(r'"((?:[^"]|"")*)"')
_TOKENIZING_DDL = (
    f"CREATE VIRTUAL TABLE IF NOT EXISTS temp.lex_tok USING fts5 (text, context, tokenize = '{TOKENIZER}')",
    "CREATE VIRTUAL TABLE IF NOT EXISTS temp.lex_tok_terms USING fts5vocab(temp, lex_tok, instance)",
)


def plain_terms(match: str) -> list[str] | None:
    """The words of an FTS5 expression that only ORs quoted words (``"a" OR "b"``), else None."""
    if _PLAIN.fullmatch(match) is None:
        return None
    return quoted_words(match)


def quoted_words(match: str) -> list[str]:
    """Every quoted word of an FTS5 expression, in order (the engine quotes each query word)."""
    return [word.replace('""', '"') for word in _QUOTED.findall(match)]


def tokenize(query: Query, docs: Sequence[tuple[str, str]]) -> list[tuple[int, str, int]]:
    """Tokenise (text, context) pairs with FTS5's tokenizer: (pair index, term, column 0/1) per token."""
    for statement in _TOKENIZING_DDL:
        query(statement, ())
    query("INSERT INTO temp.lex_tok (rowid, text, context) SELECT j.key, json_extract(j.value, '$[0]'),"
          " json_extract(j.value, '$[1]') FROM json_each(?) AS j", (json.dumps([list(d) for d in docs]),))
    try:
        rows = query("SELECT doc, term, col = 'context' FROM temp.lex_tok_terms ORDER BY doc, col, offset", ())
    finally:
        query("DELETE FROM temp.lex_tok", ())
    return [(int(r[0]), str(r[1]), int(r[2])) for r in rows]


def doc_length(size: bytes | None) -> int:
    """A row's tokens in all columns, from its ``cube_fts_docsize.sz`` blob (one SQLite varint per column:
    big-endian groups of seven bits, the high bit set on every byte but the last)."""
    total = value = 0
    for byte in size or b"":
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            total, value = total + value, 0
    return total
