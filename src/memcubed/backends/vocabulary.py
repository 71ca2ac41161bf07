"""Vocabulary both full-text indexes and the query builder share: stopwords, acronyms, irregular forms.

Two transformations run in Python on every text before it reaches either database, and on every
query (through ``backends.lexical.lexical_text``), so SQLite, PostgreSQL and the query agree:

- **Acronyms are not stopwords.** An all-caps token of two or more letters whose lower case is a
  stopword (``SO``, ``US``, ``IT``, ``AM``; not the operators AND, OR, NOT) is written ``SOcaps``:
  one token neither tokenizer drops, found only by the same acronym in a query. Lower-case
  ``so``/``us``/``it`` stay stopwords. Without the mark, PostgreSQL's english configuration drops
  ``it`` from documents and queries alike.
- **Irregular forms become their lemma** (``went`` → ``go``, ``bought`` → ``buy``, ``children`` →
  ``child``), from the table in ``data/irregular_forms.tsv``; Porter stemming joins only regular
  forms (``buying``/``buys``).

Both are idempotent (a marked acronym is no longer all caps; no lemma is itself a listed form), so
index text read back (``load_index_entry``) and indexed again, as ``migrate`` does, keeps its tokens.
"""

from __future__ import annotations

import re
from functools import cache
from importlib.resources import files

__all__ = ["ACRONYM_MARK", "ACRONYM_STOPWORDS", "STOPWORDS", "irregular_forms", "word_forms"]

STOPWORDS = frozenset(
    """a about above after again against all am an and any are as at be because been before being below
    between both but by can cannot could did do does doing down during each few for from further had has
    have having he her here hers herself him himself his how i if in into is it its itself just let me more
    most my myself no nor not of off on once only or other ought our ours ourselves out over own same she
    should so some such than that the their theirs them themselves then there these they this those through
    to too under until up us very was we were what when where which while who whom why will with would you
    your yours yourself yourselves s t d ll m re ve""".split()
)
"""English stopwords dropped from full-text queries (they match almost every memory)."""

ACRONYM_MARK = "caps"
"""Appended to an all-caps stopword (``US`` → ``UScaps``) so that it is indexed and queried as a word."""

ACRONYM_STOPWORDS = STOPWORDS - {"and", "or", "not"}
"""The stopwords an all-caps token of is an acronym; AND, OR and NOT in capitals are how people write
boolean operators, so they stay stopwords."""

# An ASCII word not joined to other letters or digits (unicode61 and PostgreSQL's parser split there too).
_WORD = re.compile(r"(?<![^\W_])[A-Za-z]{2,}(?![^\W_])")


@cache
def irregular_forms() -> dict[str, str]:
    """The irregular-forms table: lower-case form → lemma."""
    table: dict[str, str] = {}
    for line in files("memcubed.backends").joinpath("data/irregular_forms.tsv").read_text("utf-8").splitlines():
        if line and not line.startswith("#"):
            form, lemma = line.split("\t")
            table[form] = lemma
    return table


def word_forms(text: str) -> str:
    """Return ``text`` with all-caps stopwords marked as acronyms and irregular forms replaced by their lemma.

    Args:
        text: any text; words neither rule touches keep their exact spelling.

    Returns:
        The text as both full-text indexes and the query builder tokenise it.
    """
    return _WORD.sub(_form, text)


def _form(match: re.Match[str]) -> str:
    word = match.group()
    lower = word.lower()
    if word.isupper() and lower in ACRONYM_STOPWORDS:
        return word + ACRONYM_MARK
    return irregular_forms().get(lower, word)
