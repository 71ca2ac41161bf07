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
    assert lexical_text(text) is text


@pytest.mark.parametrize("text", ["我喜欢绿茶", "iPhone手机很好", "東京に 行きます", "a김치b", "。茶、"])
def test_splitting_is_idempotent(text: str) -> None:
    """Index text read back (``load_index_entry``) and indexed again keeps the same tokens."""
    once = lexical_text(text)
    assert lexical_text(once) == once
