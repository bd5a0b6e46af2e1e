"""The gamma-function family in the scalar language (ir/scalar.py): lgamma (log |Gamma|), digamma and trigamma.

Straight-line code (vectorizable: selects, no loops over data-dependent counts). Every series' coefficients are
computed here at import from Bernoulli numbers and Hurwitz zeta values (Euler-Maclaurin), to the term below the
dtype's rounding:

  * lgamma(x), x > 0: below 2.5 the Taylor series of lgamma(2 + z) (coefficients (-1)^k (zeta(k) - 1) / k, |z| <=
    1/2), with lgamma(1 + z) = lgamma(2 + z) - log1p(z) and lgamma(t) = lgamma(t + 1) - log(t), so the zeros at 1
    and 2 keep relative accuracy; [2.5, 10) steps down to [1.5, 2.5) (the product of the steps' factors, one log);
    from 10 Stirling's series. x < 0 by reflection: log(pi / |sin(pi x)|) - lgamma(1 - x) (sin(pi x) from the
    distance to the nearest integer, exact).
  * digamma(x), x > 0: near its positive root x0 (|x - x0| <= 1/2) the Taylor series at x0 (coefficients
    (-1)^(k+1) zeta(k + 1, x0); x - x0 with x0 in two parts, so the result keeps relative accuracy through the root);
    below, digamma(x + 1) - 1 / x; above, up to 9 steps down (their terms 1/(x - i) summed as one fraction); from 10
    the asymptotic series. x < 0: digamma(1 - x) - pi / tan(pi x).
  * trigamma(x), x > 0: up to 10 steps up to [10, 11) (1 / x^2 terms, one fraction), then the asymptotic series;
    x < 0: pi^2 / sin(pi x)^2 - trigamma(1 - x).
Poles as PyTorch: lgamma is +inf at 0, -1, -2, ... and at -inf; digamma is -inf at +0, +inf at -0, NaN at the
negative integers and -inf; trigamma is +inf at 0, -1, ... (PyTorch gives a large finite value there) and NaN at
-inf.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np

from .elementwise import _log1p

_DIGAMMA_ROOT = (1.4616321449683622, 9.549995429965697e-17)  # the positive root of digamma, in two parts
_EULER = 0.5772156649015329
_BIG = 10.0  # the asymptotic series apply from here


def _bernoulli(n: int) -> list:
    """B_0 .. B_n as fractions (B_1 = -1/2)."""
    b = [Fraction(1)]
    for m in range(1, n + 1):
        b.append(-sum(math.comb(m + 1, k) * b[k] for k in range(m)) / (m + 1))
    return b


_B = _bernoulli(40)


def _hurwitz_zeta(s: int, a: float, n: int = 12, terms: int = 8) -> float:
    """zeta(s, a) = sum_{k >= 0} (k + a)^-s for s >= 2, a > 0: n terms, then the Euler-Maclaurin tail."""
    head = sum((k + a) ** -s for k in range(n))
    x = n + a
    tail = x ** (1 - s) / (s - 1) + x**-s / 2
    rising = s  # s (s + 1) ... (s + 2j - 2)
    for j in range(1, terms + 1):
        tail += float(_B[2 * j]) / math.factorial(2 * j) * rising * x ** (-s - 2 * j + 1)
        rising *= (s + 2 * j - 1) * (s + 2 * j)
    return head + tail


def _terms(dtype: str, f64: int, f32: int) -> int:
    return f64 if dtype == "float64" else f32


# lgamma(2 + z) = sum_{k >= 1} c_k z^k: c_1 = 1 - Euler's constant, c_k = (-1)^k (zeta(k) - 1) / k
_LGAMMA2 = [1 - _EULER] + [(-1) ** k * _hurwitz_zeta(k, 2.0) / k for k in range(2, 31)]
# digamma(x0 + z) = sum_{k >= 1} d_k z^k, d_k = (-1)^(k+1) zeta(k + 1, x0)
_DIGAMMA_X0 = [(-1) ** (k + 1) * _hurwitz_zeta(k + 1, _DIGAMMA_ROOT[0]) for k in range(1, 38)]
_STIRLING = [float(_B[2 * k] / (2 * k * (2 * k - 1))) for k in range(1, 10)]  # lgamma: B_2k / (2k (2k - 1) x^(2k-1))
_PSI_ASYMPTOTIC = [float(_B[2 * k] / (2 * k)) for k in range(1, 9)]  # digamma: - B_2k / (2k x^2k)
_PSI1_ASYMPTOTIC = [float(_B[2 * k]) for k in range(1, 11)]  # trigamma: B_2k / x^(2k + 1)
_HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


def _horner(s, z, coeffs):
    """sum_k coeffs[k] z^k."""
    p = s.const(coeffs[-1])
    for c in reversed(coeffs[:-1]):
        p = s.add(s.mul(p, z), s.const(c))
    return p


def _sin_pi(s, x):
    """(sin(pi r), r) with r = x - rint(x) (exact): sin(pi x) up to its sign, which no caller needs."""
    r = s.sub(x, s.rint(x))
    return s.sin(s.mul(r, s.const(math.pi))), r


def _pole(s, x):
    """x is 0 or a negative integer (or -inf)."""
    return s.and_(s.le(x, s.const(0)), s.eq(s.floor(x), x))


def _steps(s, t, lo: float, hi: float, n: int, fold):
    """Step u = t down by 1 (while u >= lo) n times, from below hi; fold(acc, u - 1) collects each step."""
    u = t
    acc = None
    for _ in range(n):
        on = s.ge(u, s.const(lo))
        v = s.sub(u, s.const(1))
        acc = fold(acc, v, on)
        u = s.select(on, v, u)
    return u, acc


def _lgamma_pos(s, t):
    """lgamma(t) for t > 0."""
    one = s.const(1)
    # [2.5, 10): lgamma(t) = lgamma(u) + log(prod of the steps' (u - 1)), u in [1.5, 2.5)
    u, prod = _steps(
        s, t, 2.5, _BIG, 8, lambda p, v, on: s.select(on, v, one) if p is None else s.select(on, s.mul(p, v), p)
    )
    tiny, small = s.lt(t, s.const(0.5)), s.lt(t, s.const(1.5))
    big = s.ge(t, s.const(_BIG))
    z = s.select(tiny, t, s.select(small, s.sub(t, one), s.sub(u, s.const(2))))
    lg = s.log(s.select(s.or_(tiny, big), t, prod))  # log(t) (t < 0.5, Stirling) or log(product)
    near = s.mul(z, _horner(s, z, _LGAMMA2[: _terms(s.dtype, 30, 14)]))  # lgamma(2 + z)
    near = s.sub(near, s.select(small, _log1p(s, z), s.const(0)))
    near = s.select(tiny, s.sub(near, lg), s.select(small, near, s.add(near, lg)))
    # Stirling: (t - 1/2)(log t - 1) - 1/2 + log(2 pi) / 2 + sum B_2k / (2k (2k - 1) t^(2k - 1))
    r = s.div(one, s.select(big, t, one))
    series = s.mul(r, _horner(s, s.mul(r, r), _STIRLING[: _terms(s.dtype, 9, 4)]))
    far = s.mul(s.sub(t, s.const(0.5)), s.sub(lg, one))
    far = s.add(far, s.add(s.const(_HALF_LOG_2PI - 0.5), series))
    return s.select(big, far, near)


def lgamma(s, x):
    """log |Gamma(x)|."""
    neg = s.lt(x, s.const(0))
    t = s.select(neg, s.sub(s.const(1), x), x)
    pos = _lgamma_pos(s, t)
    sin, _ = _sin_pi(s, x)
    reflected = s.sub(s.sub(s.const(math.log(math.pi)), s.log(s.abs(sin))), pos)
    r = s.select(neg, reflected, pos)
    r = s.select(_pole(s, x), s.const(float("inf")), r)
    return s.select(s.is_nan(x), x, r)


def _digamma_pos(s, t):
    """digamma(t) for t > 0."""
    one = s.const(1)
    x0_hi = _DIGAMMA_ROOT[0] if s.dtype == "float64" else float(np.float32(_DIGAMMA_ROOT[0]))
    x0_lo = _DIGAMMA_ROOT[0] - x0_hi + _DIGAMMA_ROOT[1]
    lo, hi = x0_hi - 0.5, x0_hi + 0.5

    def fold(acc, v, on):  # num / den += 1 / v
        if acc is None:
            return s.select(on, one, s.const(0)), s.select(on, v, one)
        num, den = acc
        return s.select(on, s.add(s.mul(num, v), den), num), s.select(on, s.mul(den, v), den)

    u, (num, den) = _steps(s, t, hi, _BIG, 9, fold)
    below, inside = s.lt(t, s.const(lo)), s.lt(t, s.const(hi))
    v = s.select(below, s.add(t, one), s.select(inside, t, u))
    z = s.sub(s.sub(v, s.const(x0_hi)), s.const(x0_lo))
    near = s.mul(z, _horner(s, z, _DIGAMMA_X0[: _terms(s.dtype, 37, 17)]))
    near = s.add(near, s.div(s.select(below, s.const(-1), num), s.select(below, t, den)))  # -1/t or the steps' sum
    # log t - 1 / (2t) - sum B_2k / (2k t^2k)
    big = s.ge(t, s.const(_BIG))
    r = s.div(one, s.select(big, t, one))
    r2 = s.mul(r, r)
    series = s.mul(r2, _horner(s, r2, _PSI_ASYMPTOTIC[: _terms(s.dtype, 8, 3)]))
    far = s.sub(s.sub(s.log(t), s.mul(r, s.const(0.5))), series)
    return s.select(big, far, near)


def digamma(s, x):
    """digamma(x) = d/dx lgamma(x)."""
    neg = s.lt(x, s.const(0))
    pos = _digamma_pos(s, s.select(neg, s.sub(s.const(1), x), x))
    sin, r = _sin_pi(s, x)
    cos = s.cos(s.mul(r, s.const(math.pi)))  # pi / tan(pi x) = pi cos(pi r) / sin(pi r)
    reflected = s.sub(pos, s.div(s.mul(cos, s.const(math.pi)), sin))
    res = s.select(neg, reflected, pos)
    inf = s.const(float("inf"))
    res = s.select(_pole(s, x), s.const(float("nan")), res)
    res = s.select(s.eq(x, s.const(0)), s.neg(s.copysign(inf, x)), res)  # -inf at +0, +inf at -0
    return s.select(s.is_nan(x), x, res)


def _trigamma_pos(s, t):
    """trigamma(t) for t > 0: 1/t^2 + trigamma(t + 1) below 10 (stepping t + 1 up to [10, 11)), else the series."""
    one = s.const(1)
    big = s.ge(t, s.const(_BIG))
    u = s.select(big, t, s.add(t, one))
    num, den = s.const(0), one
    for _ in range(9):  # num / den += 1 / u^2 while u < 10
        on = s.lt(u, s.const(_BIG))
        u2 = s.mul(u, u)
        num = s.select(on, s.add(s.mul(num, u2), den), num)
        den = s.select(on, s.mul(den, u2), den)
        u = s.select(on, s.add(u, one), u)
    r = s.div(one, u)
    r2 = s.mul(r, r)
    # 1/u + 1/(2u^2) + sum B_2k / u^(2k + 1)
    bern = _horner(s, r2, _PSI1_ASYMPTOTIC[: _terms(s.dtype, 10, 4)])
    series = s.add(r, s.add(s.mul(r2, s.const(0.5)), s.mul(s.mul(r, r2), bern)))
    first = s.div(s.div(one, t), t)
    return s.select(big, series, s.add(first, s.add(s.div(num, den), series)))


def trigamma(s, x):
    """trigamma(x) = d/dx digamma(x) (polygamma(1, x))."""
    neg = s.lt(x, s.const(0))
    pos = _trigamma_pos(s, s.select(neg, s.sub(s.const(1), x), x))
    sin, _ = _sin_pi(s, x)
    reflected = s.sub(s.div(s.const(math.pi**2), s.mul(sin, sin)), pos)
    res = s.select(neg, reflected, pos)
    res = s.select(_pole(s, x), s.const(float("inf")), res)
    res = s.select(s.eq(x, s.const(float("-inf"))), s.const(float("nan")), res)
    return s.select(s.is_nan(x), x, res)
