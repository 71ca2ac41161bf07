"""Dense term expansion: the candidate vocabulary of the hits, and the words nearest to the question's terms."""

from __future__ import annotations

import numpy as np
import pytest

from memcubed.engines.text.vocab import candidate_words, related_terms


def test_candidate_words_skip_speakers_stopwords_short_words_digits_and_asked_words() -> None:
    texts = ["Melanie: We went camping and swimming in 2022!", "Caroline: I love pottery, camping too"]
    words = candidate_words(texts, ["swimming"], 100)
    assert words == ["camping", "love", "pottery"]  # "went" and "too" are stopwords or short; no speaker
    assert "melanie" not in words and "caroline" not in words and "2022" not in words


def test_candidate_words_stop_at_the_limit_in_order_of_first_appearance() -> None:
    assert candidate_words(["alpha bravo charlie", "delta echo"], [], 2) == ["alpha", "bravo"]
    assert candidate_words([], ["x"], 5) == []


def test_candidate_words_see_the_lexical_forms_of_the_index() -> None:
    assert "child" in candidate_words(["Anna: the children painted"], [], 10)  # the irregular form's lemma


def _vectors(rows: list[list[float]]) -> np.ndarray:
    return np.asarray(rows, dtype=np.float32)


def test_related_terms_pick_the_nearest_words_above_the_threshold() -> None:
    asked = ["cities"]
    words = ["paris", "rome", "pottery"]
    got = related_terms(asked, _vectors([[1, 0]]), words, _vectors([[0.9, 0.1], [0.8, 0.3], [0.1, 1]]),
                        threshold=0.5, per_term=3, total=8)
    assert [w for _, w, _ in got] == ["paris", "rome"]
    assert all(t == "cities" and 0.5 <= s <= 1 for t, _, s in got)


def test_related_terms_cap_per_term_and_in_total_and_use_each_word_once() -> None:
    asked = ["a", "b"]
    words = ["w1", "w2", "w3"]
    asked_v = _vectors([[1, 0], [0.9, 0.1]])
    words_v = _vectors([[1, 0], [0.95, 0.05], [0.9, 0.1]])
    one = related_terms(asked, asked_v, words, words_v, threshold=0.0, per_term=1, total=8)
    assert len({w for _, w, _ in one}) == len(one) <= 2
    assert len(related_terms(asked, asked_v, words, words_v, threshold=0.0, per_term=3, total=2)) == 2
    assert related_terms(asked, asked_v, words, words_v, threshold=1.01, per_term=3, total=8) == []


def test_related_terms_are_deterministic_on_ties_and_empty_inputs() -> None:
    words = ["zeta", "alpha"]
    got = related_terms(["q"], _vectors([[1, 0]]), words, _vectors([[1, 0], [1, 0]]), threshold=0, per_term=2,
                        total=8)
    assert [w for _, w, _ in got] == ["alpha", "zeta"]
    assert related_terms([], _vectors([[1, 0]]), words, _vectors([[1, 0], [1, 0]]), threshold=0, per_term=2,
                         total=8) == []
    zero = related_terms(["q"], _vectors([[0, 0]]), ["w"], _vectors([[0, 0]]), threshold=0.0, per_term=1, total=1)
    assert zero == [("q", "w", pytest.approx(0.0))]
