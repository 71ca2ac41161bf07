"""``deviation.pstdev`` is ``statistics.pstdev``: the same float to the last bit (or the same error), faster."""

from __future__ import annotations

import statistics
from typing import Any

import numpy as np
from hypothesis import example, given, settings
from hypothesis import strategies as st

from memcubed.engines.text.deviation import pstdev


def _outcome(values: list[Any], fn: Any) -> tuple[str, Any]:
    try:
        return "value", repr(fn(values))  # repr: -0.0 and 0.0, nan, the last bit all differ
    except Exception as exc:  # the error itself is what is compared
        return type(exc).__name__, str(exc)


_FINITE = st.floats(allow_nan=False, allow_infinity=False)
_SCORES = st.floats(-50.0, 50.0, allow_nan=False)  # what retrieval scores look like


@settings(max_examples=500)  # cheap: pure arithmetic
@given(st.lists(st.one_of(_FINITE, _SCORES, st.sampled_from([0.0, -0.0, 5e-324, 1.7976931348623157e308])),
                min_size=1, max_size=60))
@example([0.1, 0.2, 0.3])
@example([1.0])
@example([1e308, -1e308, 1e308])  # the squares overflow floats, not integers
@example([5e-324, 1e-300, 3.0])  # subnormal to ordinary: one large shift
def test_finite_floats_give_the_standard_librarys_float_exactly(values: list[float]) -> None:
    assert _outcome(values, pstdev) == _outcome(values, statistics.pstdev)


@given(st.lists(st.one_of(st.floats(), st.integers(-10, 10), st.fractions(max_denominator=9)), max_size=8))
@example([])
@example([float("nan"), 1.0])
@example([float("inf"), 1.0])
@example([True, 2.0])
def test_anything_else_gives_the_standard_librarys_outcome(values: list[Any]) -> None:
    fast, slow = _outcome(values, pstdev), _outcome(values, statistics.pstdev)
    assert fast[0] == slow[0]
    if fast[0] == "value":
        assert fast == ("value", repr(float(statistics.pstdev(values))))
    else:
        assert fast == slow


def test_numpy_scores_and_generators_are_taken_too() -> None:
    scores = [0.25, 1.5, 3.75, 1.5]
    assert pstdev(np.float64(s) for s in scores) == statistics.pstdev(scores)
    assert pstdev(iter(scores)) == statistics.pstdev(scores)
