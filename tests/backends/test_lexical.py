"""CJK runs become overlapping bigrams, the same way for both indexes and the query builder."""

from __future__ import annotations

import pytest

from memcubed.backends.lexical import lexical_text


@pytest.mark.parametrize(("text", "expected"), [
    ("我喜欢绿茶", "我喜 喜欢 欢绿 绿茶"),
    ("東京に行きます", "東京 京に に行 行き きま ます"),
    ("김치찌개를 좋아해요", "김치 치찌 찌개 개를 좋아 아해 해요"),
    ("茶", "茶"),
    ("iPhone手机很好", "iPhone 手机 机很 很好"),
    ("我喝绿茶。他喝咖啡", "我喝 喝绿 绿茶 。 他喝 喝咖 咖啡"),
])
def test_cjk_runs_become_bigrams(text: str, expected: str) -> None:
    assert lexical_text(text) == expected


@pytest.mark.parametrize("text", ["Alice prefers green tea", "", "café naïve – 8080", "e-mail x_y"])
def test_text_without_cjk_is_unchanged(text: str) -> None:
    assert lexical_text(text) == text


@pytest.mark.parametrize("text", ["我喜欢绿茶", "iPhone手机很好", "東京に 行きます", "a김치b", "。茶、"])
def test_splitting_is_idempotent(text: str) -> None:
    """Index text read back (``load_index_entry``) and indexed again keeps the same tokens."""
    once = lexical_text(text)
    assert lexical_text(once) == once


@pytest.mark.parametrize(("text", "expected"), [
    ("SO and I met in the US", "SOcaps and I meet in the UScaps"),  # acronyms that spell stopwords are marked
    ("so it goes for us", "so it goes for us"),  # lower case: still stopwords, untouched
    ("I AM NOT SURE", "I AMcaps NOT SURE"),  # one letter is never an acronym, nor AND/OR/NOT; NASA keeps
    ("NASA and IT", "NASA and ITcaps"),
    ("Caroline went and bought the children new shoes", "Caroline go and buy the child new shoes"),
    ("Mice? Geese! WENT", "mouse? goose! go"),
    ("wentworth x_went went2 wentä", "wentworth x_go went2 wentä"),  # whole words only (unicode61 splits at _)
    ("我喜欢 went", "我喜 喜欢 go"),
])
def test_vocabulary_rules(text: str, expected: str) -> None:
    assert lexical_text(text) == expected
    assert lexical_text(expected) == expected  # idempotent: indexed text can be indexed again


def test_the_irregular_forms_table_is_idempotent_and_keeps_content_words() -> None:
    from memcubed.backends.vocabulary import STOPWORDS, irregular_forms

    table = irregular_forms()
    assert len(table) > 100 and table["got"] == "get" and table["children"] == "child"
    assert not set(table.values()) & set(table)  # no lemma is itself a form: applying twice changes nothing
    assert not set(table) & STOPWORDS and not set(table.values()) & STOPWORDS  # no content word vanishes
