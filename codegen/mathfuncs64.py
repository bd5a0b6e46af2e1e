"""Vectorizable float64 exp and tanh written as LLVM IR (sigmoid follows from exp), as mathfuncs does for float32.

libm's double exp and tanh are scalar calls inside otherwise vectorized loops (an LSTM cell in float64 spent most
of its time there). exp: x = n ln2 + r with |r| <= ln2/2 (ln2 split in two parts), exp(r) by its Taylor series to
r^13 (the first omitted term is below 1e-17), times 2^n built in the exponent bits (in two factors, so results
down in the subnormal range stay right). tanh: below 0.5 its odd Taylor series to x^35 (coefficients computed
exactly at import from the series of sinh and cosh), above 1 - 2/(exp(2|x|) + 1) with the sign restored. Within a
few ulp of libm; NaN and infinities as NumPy.
"""

from __future__ import annotations

from fractions import Fraction
from math import factorial

import llvmlite.ir as ir

from .mathfuncs import is_nan, poly

F64 = ir.DoubleType()
I64T = ir.IntType(64)


def _c(v: float):
    return ir.Constant(F64, v)


_EXP_TAYLOR = [1.0 / factorial(i) for i in range(13, -1, -1)]  # r^13/13! ... 1


def _tanh_series(terms: int) -> list:
    """Coefficients of tanh(x) = x * sum_j t_j (x^2)^j, j < terms: tanh * cosh = sinh, solved term by term."""
    s = [Fraction(1, factorial(2 * j + 1)) for j in range(terms)]
    c = [Fraction(1, factorial(2 * j)) for j in range(terms)]
    t: list = []
    for j in range(terms):
        t.append(s[j] - sum(t[i] * c[j - i] for i in range(j)))
    return [float(v) for v in t]


_TANH_SMALL = list(reversed(_tanh_series(18)))  # highest power first, for poly
_TANH_CUT = 0.5


def exp_f64(k, x):
    b = k.b
    hi, lo = 709.782712893384, -745.1332191019412
    xc = k.intrinsic("minnum", "float64", [k.intrinsic("maxnum", "float64", [x, _c(lo)]), _c(hi)])
    n = k.intrinsic("floor", "float64", [k.flags(b.fadd(k.flags(b.fmul(xc, _c(1.4426950408889634))), _c(0.5)))])
    r = k.flags(b.fsub(xc, k.flags(b.fmul(n, _c(0.6931471803691238)))))
    r = k.flags(b.fsub(r, k.flags(b.fmul(n, _c(1.9082149292705877e-10)))))
    y = poly(k, r, _EXP_TAYLOR)
    e = b.fptosi(n, I64T)
    e1 = b.ashr(e, ir.Constant(I64T, 1))
    for part in (e1, b.sub(e, e1)):
        scale = b.bitcast(b.shl(b.add(part, ir.Constant(I64T, 1023)), ir.Constant(I64T, 52)), F64)
        y = k.flags(b.fmul(y, scale))
    y = b.select(b.fcmp_ordered(">", x, _c(hi)), _c(float("inf")), y)
    y = b.select(b.fcmp_ordered("<", x, _c(lo)), _c(0.0), y)
    return b.select(is_nan(b, x), x, y)


def tanh_f64(k, x):
    b = k.b
    ax = k.intrinsic("fabs", "float64", [x])
    z = k.flags(b.fmul(x, x))
    small = k.flags(b.fmul(poly(k, z, _TANH_SMALL), x))
    e = exp_f64(k, k.flags(b.fmul(ax, _c(2.0))))
    big = k.flags(b.fsub(_c(1.0), k.flags(b.fdiv(_c(2.0), k.flags(b.fadd(e, _c(1.0)))))))
    big = k.intrinsic("copysign", "float64", [big, x])
    y = b.select(b.fcmp_ordered("<", ax, _c(_TANH_CUT)), small, big)
    return b.select(is_nan(b, x), x, y)


FAST64 = {"exp": exp_f64, "tanh": tanh_f64}
