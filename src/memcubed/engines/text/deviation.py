"""``statistics.pstdev`` of floats, the very same float, without its Fraction arithmetic.

The retrieval stages scale their boosts by the population standard deviation of the hits' scores. The standard
library computes it exactly (sums of ``Fraction``s) and rounds its square root correctly, ~5 µs per score; a
float formula is faster but may move the last bit, and with it an order of ties. Here the same rational (the
scores as integers over one power of two, reduced like ``Fraction``) goes to the same correctly rounded square
root, ``statistics._float_sqrt_of_frac``, restated below; anything but finite ``float`` values is left to
``statistics.pstdev`` itself (``tests/engines/test_deviation.py`` checks they agree).
"""

from __future__ import annotations

import math
import statistics
import sys
from collections.abc import Iterable

__all__ = ["pstdev"]

_SQRT_BIT_WIDTH = 2 * sys.float_info.mant_dig + 3


def pstdev(values: Iterable[float]) -> float:
    """``statistics.pstdev(values)``: the same value, or the same error.

    Raises:
        statistics.StatisticsError: ``values`` is empty.
    """
    xs = list(values)
    if not xs or any(type(x) is not float or not math.isfinite(x) for x in xs):
        return float(statistics.pstdev(xs))
    ratios = [x.as_integer_ratio() for x in xs]  # denominators are powers of two
    shift = max(d.bit_length() for _, d in ratios) - 1
    ints = [n << (shift - d.bit_length() + 1) for n, d in ratios]
    count, total, squares = len(ints), sum(ints), sum(i * i for i in ints)
    # The variance (count * Σx² - (Σx)²) / count², with every x scaled by 2**shift, in lowest terms.
    numerator, denominator = count * squares - total * total, (count * count) << (2 * shift)
    common = math.gcd(numerator, denominator)
    return _float_sqrt_of_frac(numerator // common, denominator // common)


def _float_sqrt_of_frac(n: int, m: int) -> float:
    """Square root of n/m as a float, correctly rounded (CPython 3.11's ``statistics._float_sqrt_of_frac``)."""
    q = (n.bit_length() - m.bit_length() - _SQRT_BIT_WIDTH) // 2
    if q >= 0:
        numerator, denominator = _integer_sqrt_of_frac_rto(n, m << 2 * q) << q, 1
    else:
        numerator, denominator = _integer_sqrt_of_frac_rto(n << -2 * q, m), 1 << -q
    return numerator / denominator


def _integer_sqrt_of_frac_rto(n: int, m: int) -> int:
    """Square root of n/m, rounded to the nearest integer using round-to-odd."""
    a = math.isqrt(n // m)
    return a | (a * a * m != n)
