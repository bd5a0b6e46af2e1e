"""The error-function family in the scalar language (ir/scalar.py): erfc, erfcx (exp(x^2) erfc(x)) and erfinv.

Straight-line polynomial code (vectorizable; no libm call but exp, log, sqrt, erf). Each approximation is a
Chebyshev series, evaluated by Clenshaw's recurrence, whose coefficients are graphnn's own interpolations of the
function at 80 (erfcx) or 60 (erfinv) Chebyshev nodes computed in 50-digit arithmetic; they are listed to the term
below 1e-18 of the function (float64) and the evaluation drops the terms below 3e-9 of it for float32.

  * x erfcx(x) for x >= 1/2 as a series in t = (x - 4) / (x + 4) (t -> 1 at infinity, where it tends to
    1/sqrt(pi)): smooth in t, 22 terms. erfc(x) = exp(-x^2) x erfcx(x) / x there; below 1/2, 1 - erf(x) (>= 0.48,
    no cancellation). exp(-x^2) is exp(-h^2) exp(-(x - h)(x + h)) with h = x cut to half the mantissa, so h^2 is
    exact and the rounding of x^2 (up to 700 ulp of the exponent near the underflow) does not reach the result.
  * erfinv(x) = x P(w) with w = -log((1 - x)(1 + x)) <= 6.25 (|x| < 0.9981), else a series in sqrt(w) on
    [2.5, 4] and [4, 6.01] (sqrt(w) stays below 6.01 for float64 inputs, 4 for float32).
"""

from __future__ import annotations

import math

_X_ERFCX = (
    0.5038841025492574,
    0.09989075381102669,
    -0.05805857540482043,
    0.025397660775200937,
    -0.009088803452689467,
    0.00273374169766208,
    -0.0006941321852750504,
    0.0001469448206109839,
    -2.5022670171966118e-05,
    3.1249516733906402e-06,
    -1.9776502131888328e-07,
    -1.9761357809331007e-08,
    6.818021674652349e-09,
    -5.89722935282319e-10,
    -6.655580657471511e-11,
    2.0992346598904675e-11,
    -6.892745949525825e-13,
    -4.464974284695312e-13,
    5.577766706468637e-14,
    7.59143131565848e-15,
    -2.036943644697328e-15,
    -9.823845057485866e-17,
    6.462967816378687e-17,
    3.1569582618791875e-19,
    -2.0240947228145218e-18,
)

_ERFINV_CENTRAL = (
    1.6304220989459326,
    0.7315674456742257,
    -0.021235032142504585,
    -0.0065808875424494635,
    0.0019488711426908524,
    -0.00014158343386374536,
    -4.9292864636180004e-05,
    1.4752887929042498e-05,
    -6.111918603258194e-07,
    -5.106997335480761e-07,
    1.159027723297735e-07,
    1.4907998843194937e-09,
    -5.244776785530681e-09,
    8.51790549109762e-10,
    7.917020592973908e-11,
    -5.0994281737154326e-11,
    5.436227530231317e-12,
    1.292282189751795e-12,
    -4.656064719044143e-13,
    2.4256976317675218e-14,
    1.6403697972051414e-14,
    -3.94956069090147e-15,
    -3.9036001761416307e-17,
    1.83129083527959e-16,
    -3.03580260263594e-17,
    -2.8782301773959922e-18,
    1.8669320251663633e-18,
)

_ERFINV_TAIL = (
    3.085256800364512,
    0.7533235235903275,
    0.001445376099078788,
    -0.00027356554676226467,
    3.435667118034053e-05,
    -2.994454178621892e-06,
    4.689744071095691e-08,
    4.749091968944691e-08,
    -1.0923562236171123e-08,
    1.1751702622810708e-09,
    1.7763003973837264e-11,
    -3.0715179911528854e-11,
    5.322832515351095e-12,
    -2.6340110640861986e-13,
    -7.354037722962299e-14,
    1.8800827059018274e-14,
    -1.6682789659089529e-15,
    -1.1549842774231176e-16,
    5.583279849615506e-17,
    -7.407841088150162e-18,
)

_ERFINV_FAR = (
    4.85491659590849,
    1.015174939594544,
    -3.0924690296977014e-05,
    -6.077479658797098e-05,
    1.0534791154262499e-05,
    -1.3645904269584464e-06,
    1.5687296417413574e-07,
    -1.6802971182751556e-08,
    1.702618063024361e-09,
    -1.6170834413347697e-10,
    1.3506587160435415e-11,
    -7.093060379489975e-13,
    -7.182140523237494e-14,
    3.612951472516741e-14,
    -8.718536858384785e-15,
    1.6006930526755121e-15,
    -2.2961505297265284e-16,
    2.255475743225358e-17,
)

_K = 4.0  # erfcx's variable t = (x - K) / (x + K)
_T0 = (0.5 - _K) / (0.5 + _K)  # t at x = 1/2
_CUT = 0.5  # erfc: 1 - erf(x) below, the erfcx series above
_INV_SQRT_PI = 1 / math.sqrt(math.pi)


def chebyshev(s, u, coeffs, scale: float = 1.0):
    """sum c_k T_k(u) for u in [-1, 1] (Clenshaw); float32 drops the trailing terms below 3e-9 * scale."""
    if s.dtype == "float32":
        coeffs = coeffs[: max(i for i, c in enumerate(coeffs) if abs(c) > 3e-9 * scale) + 1]
    u2 = s.add(u, u)
    b1, b2 = s.const(0), s.const(0)
    for c in reversed(coeffs[1:]):
        b1, b2 = s.add(s.sub(s.mul(u2, b1), b2), s.const(c)), b1
    return s.add(s.sub(s.mul(u, b1), b2), s.const(coeffs[0]))


def _on(s, v, lo: float, hi: float):
    """v in [lo, hi] mapped to [-1, 1]."""
    return s.mul(s.sub(v, s.const((lo + hi) / 2)), s.const(2 / (hi - lo)))


def _split_square(s, a):
    """(h^2, d) with h^2 + d = a^2, h^2 exact: h is a cut to 26 bits (float64, a < 32) or 12 (float32, a < 16)."""
    scale = 2.0**21 if s.dtype == "float64" else 2.0**8
    h = s.div(s.floor(s.mul(a, s.const(scale))), s.const(scale))
    return s.mul(h, h), s.mul(s.sub(a, h), s.add(a, h))


def exp_square(s, a, sign: int):
    """exp(sign * a^2) for a >= 0 to the accuracy of exp (not of a^2's rounding)."""
    hh, d = _split_square(s, a)
    if sign < 0:
        hh, d = s.neg(hh), s.neg(d)
    return s.mul(s.exp(hh), s.exp(d))


def x_erfcx(s, a):
    """a * erfcx(a) for a >= 1/2 (1/sqrt(pi) at +inf)."""
    inf = s.const(float("inf"))
    t = s.div(s.sub(a, s.const(_K)), s.add(a, s.const(_K)))
    t = s.select(s.eq(a, inf), s.const(1), t)
    return chebyshev(s, _on(s, t, _T0, 1.0), _X_ERFCX, 0.3)


def erfc(s, x):
    """erfc(x): 1 - erf(x) for x < 1/2, exp(-x^2) x erfcx(x) / x above (0 at +inf; NaN stays NaN)."""
    big = s.div(s.mul(exp_square(s, x, -1), x_erfcx(s, x)), x)
    big = s.select(s.eq(x, s.const(float("inf"))), s.const(0), big)
    r = s.select(s.lt(x, s.const(_CUT)), s.sub(s.const(1), s.erf(x)), big)
    return s.select(s.is_nan(x), x, r)


def erfcx(s, x):
    """exp(x^2) erfc(x): the series above 1/2; exp(x^2) (1 - erf(x)) on [-1/2, 1/2); 2 exp(x^2) - erfcx(-x) below
    (inf below about -26.6 in float64, -9.4 in float32)."""
    a = s.abs(x)
    ya = s.div(x_erfcx(s, s.maximum(a, s.const(_CUT))), a)
    ya = s.select(s.eq(a, s.const(float("inf"))), s.const(0), ya)
    e = exp_square(s, a, 1)
    mid = s.mul(e, s.sub(s.const(1), s.erf(x)))
    neg = s.sub(s.add(e, e), ya)
    r = s.select(s.ge(x, s.const(_CUT)), ya, s.select(s.gt(x, s.const(-_CUT)), mid, neg))
    r = s.select(s.eq(x, s.const(float("-inf"))), s.const(float("inf")), r)
    return s.select(s.is_nan(x), x, r)


def erfinv(s, x):
    """erfinv on [-1, 1] (+-inf at +-1, NaN outside), odd."""
    a = s.abs(x)
    one = s.const(1)
    w = s.neg(s.log(s.mul(s.sub(one, a), s.add(one, a))))
    central = s.mul(a, chebyshev(s, _on(s, w, 0.0, 6.25), _ERFINV_CENTRAL))
    r = s.sqrt(w)
    tail = chebyshev(s, _on(s, r, 2.5, 4.0), _ERFINV_TAIL)
    if s.dtype == "float64":  # float32's w stays below 16: sqrt(w) < 4
        tail = s.select(s.lt(r, s.const(4.0)), tail, chebyshev(s, _on(s, r, 4.0, 6.01), _ERFINV_FAR))
    y = s.select(s.lt(w, s.const(6.25)), central, tail)
    y = s.select(s.eq(a, one), s.const(float("inf")), s.select(s.gt(a, one), s.const(float("nan")), y))
    return s.select(s.is_nan(x), x, s.copysign(y, x))
