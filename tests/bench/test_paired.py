"""The paired comparison the embedder bench decides with: equal systems are within noise, a system that
loses on many questions is not, and lists that do not pair are refused."""

from __future__ import annotations

import pytest
from bench.paired import paired_difference


def test_equal_systems_differ_by_nothing() -> None:
    same = [0.0, 0.5, 1.0, 1.0]
    out = paired_difference(same, same)
    assert out == {"n": 4, "mean": 0.0, "ci95": [0.0, 0.0], "better": 0, "worse": 0, "within_noise_or_better": True}


def test_a_consistent_loss_is_beyond_noise_and_one_question_is_not() -> None:
    base = [1.0] * 200
    worse = [0.0] * 40 + [1.0] * 160
    out = paired_difference(base, worse)
    assert out["mean"] == -20.0 and out["ci95"][1] < 0 and out["worse"] == 40
    assert out["within_noise_or_better"] is False
    assert paired_difference(base, [0.0] + [1.0] * 199)["within_noise_or_better"] is True
    assert paired_difference(base, worse) == out  # a fixed seed: the same interval every run


@pytest.mark.parametrize(("base", "other"), [([], []), ([1.0], [1.0, 0.0])])
def test_lists_that_do_not_pair_are_refused(base: list[float], other: list[float]) -> None:
    with pytest.raises(ValueError):
        paired_difference(base, other)
