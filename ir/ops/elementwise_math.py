"""More elementwise primitives: rounding (floor, ceil, trunc, round), fmod and copysign, the inverse trigonometric
functions (atan2, atan, asin, acos), tan, the hyperbolic functions and their inverses, log2, log10, exp2, and the
special functions erfc, erfcx, erfinv, lgamma, digamma, trigamma (their expressions: _erf.py, _gamma.py).

Each is one definition in the scalar language (ir/scalar.py): arctangents by a polynomial written here (so compiled
code stays vectorizable: no libm call), the others from exp, log, sin, cos and the helpers of elementwise.py.
"""

from __future__ import annotations

import math

import numpy as np

from ..registry import Fuzz, register
from ..types import FLOAT_DTYPES, TensorType, broadcast_shapes, promote
from . import _erf, _gamma
from ._util import unbroadcast
from .elementwise import _expm1, _log1p, binary, unary

_ROUNDING = Fuzz(kinks="integers", exact=True)


def _rounding(name: str, fn, method: str, torch_name: str, doc: str) -> None:
    """A rounding op: integral dtypes pass through unchanged (as PyTorch); the gradient is zero."""
    unary(
        name,
        fn,
        lambda s, x: getattr(s, method)(x) if s.is_float() else x,
        lambda b, x, y, g: b.full(0.0, x.shape, x.dtype),  # zero (a gradient of zeros, as PyTorch's)
        no_bool=True,
        torch_name=torch_name,
        fuzz=_ROUNDING,
        doc=doc,
        api=(name,) if name != "round" else (),  # graphnn.round / Tensor.round take `decimals` (graphnn/core)
    )


_rounding("floor", np.floor, "floor", "FloorBackward0", "the largest integer <= x")
_rounding("ceil", np.ceil, "ceil", "CeilBackward0", "the smallest integer >= x")
_rounding("trunc", np.trunc, "trunc", "TruncBackward0", "x rounded toward zero")
_rounding("round", np.rint, "rint", "RoundBackward0", "x rounded to the nearest integer, ties to even")


def _float_result(name):
    """Broadcasting binary ops of floating results: integer and bool operands give float32 (as PyTorch)."""

    def infer(types, attrs):
        dt = promote(types[0].dtype, types[1].dtype)
        return TensorType(broadcast_shapes(types[0].shape, types[1].shape), dt if dt in FLOAT_DTYPES else "float32")

    return infer


binary(
    "fmod",
    None,
    lambda s, x, y: s.fmod(x, y),
    lambda b, x, y, o, g: (g, b.neg(b.mul(g, b.trunc(b.div(x, y))))),
    no_bool=True,
    torch_name="FmodBackward0",
    fuzz=Fuzz(domain=("any", "away"), kinks="quotients", nonfinite=True, exact=True),
    doc="C's remainder x - trunc(x / y) * y (the sign of x); integer division by zero gives 0",
    api=("fmod",),
)


def _copysign_grad(b, node, cts):
    x, y = node.inputs
    g, o = cts[0], node.outputs[0]
    xf = x if x.type.is_float else b.cast(x, dtype=o.dtype)
    gx = b.mul(g, b.mul(b.sign(xf), b.sign(o)))  # 0 at x = 0, as PyTorch
    gy = b.full(0.0, y.shape, y.dtype) if y.type.is_float else None  # zero (PyTorch's is a tensor of zeros)
    return [unbroadcast(b, gx, x.shape) if x.type.is_float else None, gy]


register(
    "copysign",
    infer=_float_result("copysign"),
    grad=_copysign_grad,
    pattern="broadcast",
    num_inputs=2,
    # a NaN's sign bit depends on what produced it (x86's default NaN is negative, a polynomial's may not be): |x|
    scalar=lambda s, x, y: s.copysign(x, s.select(s.ne(y, y), s.const(1), y)),
    torch_name="CopysignBackward0",
    fuzz=Fuzz(kinks="zero", exact=True),
    doc="|x| with the sign of y (also of a signed zero); |x| for a NaN y, whose sign bit is not portable",
    api=("copysign",),
)


# -- arctangents -------------------------------------------------------------------------------------------------
_TAN_PI_8 = math.sqrt(2.0) - 1.0


def _atan_unit(s, t):
    """atan(t) for 0 <= t <= 1: t > tan(pi/8) moves to pi/4 + atan((t - 1) / (t + 1)); then its Taylor series
    t * sum (-z)^k / (2k + 1), z = t^2 <= tan(pi/8)^2 ~ 0.172, summed by Horner to the term below the dtype's
    rounding (k = 9 for float32, 20 for float64)."""
    mid = s.gt(t, s.const(_TAN_PI_8))
    u = s.select(mid, s.div(s.sub(t, s.const(1)), s.add(t, s.const(1))), t)
    z = s.mul(u, u)
    n = 9 if s.dtype == "float32" else 20
    p = s.const((-1) ** n / (2 * n + 1))
    for k in range(n - 1, -1, -1):
        p = s.add(s.mul(p, z), s.const((-1) ** k / (2 * k + 1)))
    r = s.mul(u, p)
    return s.select(mid, s.add(r, s.const(math.pi / 4)), r)


def atan2_expr(s, y, x):
    """atan2(y, x) in the scalar language, with C's special cases (signed zeros, infinities; NaN propagates)."""
    ax, ay = s.abs(x), s.abs(y)
    hi, lo = s.maximum(ax, ay), s.minimum(ax, ay)
    inf = s.const(float("inf"))
    ratio = s.div(lo, hi)
    ratio = s.select(s.eq(hi, s.const(0)), s.const(0), ratio)
    ratio = s.select(s.and_(s.eq(ax, inf), s.eq(ay, inf)), s.const(1), ratio)
    r = _atan_unit(s, ratio)
    r = s.select(s.gt(ay, ax), s.sub(s.const(math.pi / 2), r), r)
    r = s.select(s.lt(s.copysign(s.const(1), x), s.const(0)), s.sub(s.const(math.pi), r), r)
    return s.copysign(r, y)


def _atan2_grad(b, x, y, o, g):
    """At the origin (0/0) both gradients are 0, as PyTorch's."""
    d = b.add(b.mul(x, x), b.mul(y, y))
    origin = b.eq(d, 0.0)
    d = b.select(origin, 1.0, d)
    return (
        b.select(origin, 0.0, b.div(b.mul(g, y), d)),
        b.select(origin, 0.0, b.neg(b.div(b.mul(g, x), d))),
    )


register(
    "atan2",
    infer=_float_result("atan2"),
    grad=lambda b, node, cts: _binary_grad(b, node, cts, _atan2_grad),
    pattern="broadcast",
    num_inputs=2,
    scalar=atan2_expr,
    ref=lambda a, attrs: _float_ref(np.arctan2, a),
    torch_name="Atan2Backward0",
    fuzz=Fuzz(kinks="branch_cut", smooth=True),
    doc="the angle of the point (x=other, y=input), in [-pi, pi]",
    api=("atan2", "arctan2"),
)


def _float_ref(fn, arrays):
    dt = promote(*(str(a.dtype) if a.dtype != bool else "bool" for a in arrays))
    dt = dt if dt in FLOAT_DTYPES else "float32"
    with np.errstate(all="ignore"):
        return np.asarray(fn(*(np.asarray(a, dt) for a in arrays)), dt)


def _binary_grad(b, node, cts, rule):
    x, y = node.inputs
    o = node.outputs[0]
    xf = x if x.type.is_float else b.cast(x, dtype=o.dtype)
    yf = y if y.type.is_float else b.cast(y, dtype=o.dtype)
    gx, gy = rule(b, xf, yf, o, cts[0])
    return [
        unbroadcast(b, gx, x.shape) if x.type.is_float else None,
        unbroadcast(b, gy, y.shape) if y.type.is_float else None,
    ]


def _one_minus_square(s, x):
    """1 - x^2 as (1 - x)(1 + x): exact near |x| = 1."""
    return s.mul(s.sub(s.const(1), x), s.add(s.const(1), x))


def _rsqrt_one_minus_square(b, x):
    return b.rsqrt(b.mul(b.sub(1.0, x), b.add(x, 1.0)))


# defined on [-1, 1] (NaN outside); the derivative is infinite at the ends
_UNIT = Fuzz(nonfinite=True, singular=(-1.0, 1.0))
unary(
    "atan",
    np.arctan,
    lambda s, x: atan2_expr(s, x, s.const(1)),
    lambda b, x, y, g: b.div(g, b.add(b.mul(x, x), 1.0)),
    float_only=True,
    torch_name="AtanBackward0",
    fuzz=Fuzz(smooth=True, body=True),
    api=("atan", "arctan"),
)
unary(
    "asin",
    np.arcsin,
    lambda s, x: atan2_expr(s, x, s.sqrt(_one_minus_square(s, x))),
    lambda b, x, y, g: b.mul(g, _rsqrt_one_minus_square(b, x)),
    float_only=True,
    torch_name="AsinBackward0",
    fuzz=_UNIT,
    api=("asin", "arcsin"),
)
unary(
    "acos",
    np.arccos,
    lambda s, x: atan2_expr(s, s.sqrt(_one_minus_square(s, x)), x),
    lambda b, x, y, g: b.neg(b.mul(g, _rsqrt_one_minus_square(b, x))),
    float_only=True,
    torch_name="AcosBackward0",
    fuzz=_UNIT,
    api=("acos", "arccos"),
)


# -- tan, hyperbolic functions -----------------------------------------------------------------------------------
unary(
    "tan",
    np.tan,
    lambda s, x: s.div(s.sin(x), s.cos(x)),
    lambda b, x, y, g: b.mul(g, b.add(b.mul(y, y), 1.0)),
    float_only=True,
    torch_name="TanBackward0",
    fuzz=Fuzz(nonfinite=True),  # poles at pi/2 + k pi
    api=("tan",),
)


def _sinh(s, x):
    """sinh: for |x| < 1 from u = expm1(|x|) as (u + u / (u + 1)) / 2 (no cancellation), else (e - 1/e) / 2."""
    a = s.abs(x)
    u = _expm1(s, s.minimum(a, s.const(1)))
    small = s.mul(s.add(u, s.div(u, s.add(u, s.const(1)))), s.const(0.5))
    e = s.exp(a)
    big = s.sub(s.mul(e, s.const(0.5)), s.div(s.const(0.5), e))
    return s.copysign(s.select(s.lt(a, s.const(1)), small, big), x)


def _cosh(s, x):
    e = s.exp(s.abs(x))
    return s.add(s.mul(e, s.const(0.5)), s.div(s.const(0.5), e))


unary(
    "sinh",
    np.sinh,
    _sinh,
    lambda b, x, y, g: b.mul(g, b.cosh(x)),
    float_only=True,
    torch_name="SinhBackward0",
    fuzz=Fuzz(smooth=True),
    api=("sinh",),
)
unary(
    "cosh",
    np.cosh,
    _cosh,
    lambda b, x, y, g: b.mul(g, b.sinh(x)),
    float_only=True,
    torch_name="CoshBackward0",
    fuzz=Fuzz(smooth=True),
    api=("cosh",),
)

_HUGE = 2.0**28  # beyond, sqrt(1 + x^2) rounds to |x| in float64 (and float32): asinh, acosh are log(2|x|)
_LN2 = math.log(2.0)


def _asinh(s, x):
    """asinh(|x|) = log1p(a + a^2 / (1 + sqrt(1 + a^2))) (accurate near 0), log(a) + log 2 for huge a."""
    a = s.abs(x)
    m = s.minimum(a, s.const(_HUGE))
    near = _log1p(s, s.add(m, s.div(s.mul(m, m), s.add(s.const(1), s.sqrt(s.add(s.const(1), s.mul(m, m)))))))
    far = s.add(s.log(a), s.const(_LN2))
    return s.copysign(s.select(s.gt(a, s.const(_HUGE)), far, near), x)


def _acosh(s, x):
    """acosh(x) = log1p(t + sqrt(2t + t^2)), t = x - 1 (accurate near 1); log(x) + log 2 for huge x."""
    t = s.sub(s.minimum(x, s.const(_HUGE)), s.const(1))
    near = _log1p(s, s.add(t, s.sqrt(s.add(s.add(t, t), s.mul(t, t)))))
    far = s.add(s.log(x), s.const(_LN2))
    return s.select(s.lt(x, s.const(1)), s.const(float("nan")), s.select(s.gt(x, s.const(_HUGE)), far, near))


def _atanh(s, x):
    """atanh(x) = sign(x) log1p(2a / (1 - a)) / 2, a = |x| (log1p's argument stays >= 0: well conditioned)."""
    a = s.abs(x)
    return s.copysign(s.mul(_log1p(s, s.div(s.add(a, a), s.sub(s.const(1), a))), s.const(0.5)), x)


unary(
    "asinh",
    np.arcsinh,
    _asinh,
    lambda b, x, y, g: b.mul(g, b.rsqrt(b.add(b.mul(x, x), 1.0))),
    float_only=True,
    torch_name="AsinhBackward0",
    fuzz=Fuzz(smooth=True),
    api=("asinh", "arcsinh"),
)
unary(
    "acosh",
    np.arccosh,
    _acosh,
    lambda b, x, y, g: b.mul(g, b.rsqrt(b.mul(b.sub(x, 1.0), b.add(x, 1.0)))),
    float_only=True,
    torch_name="AcoshBackward0",
    fuzz=Fuzz(nonfinite=True, singular=(1.0,)),  # defined for x >= 1; the derivative is infinite at 1
    api=("acosh", "arccosh"),
)
unary(
    "atanh",
    np.arctanh,
    _atanh,
    lambda b, x, y, g: b.div(g, b.mul(b.sub(1.0, x), b.add(x, 1.0))),
    float_only=True,
    torch_name="AtanhBackward0",
    fuzz=_UNIT,
    api=("atanh", "arctanh"),
)

# -- logarithms and powers of 2 and 10 ---------------------------------------------------------------------------
_INV_LN2 = 1.0 / math.log(2.0)
_INV_LN10 = 1.0 / math.log(10.0)
unary(
    "log2",
    np.log2,
    lambda s, x: s.mul(s.log(x), s.const(_INV_LN2)),
    lambda b, x, y, g: b.div(b.mul(g, _INV_LN2), x),
    float_only=True,
    torch_name="Log2Backward0",
    fuzz=Fuzz(domain="pos", nonfinite=True, smooth=True),
    api=("log2",),
)
unary(
    "log10",
    np.log10,
    lambda s, x: s.mul(s.log(x), s.const(_INV_LN10)),
    lambda b, x, y, g: b.div(b.mul(g, _INV_LN10), x),
    float_only=True,
    torch_name="Log10Backward0",
    fuzz=Fuzz(domain="pos", nonfinite=True, smooth=True),
    api=("log10",),
)
unary(
    "exp2",
    np.exp2,
    lambda s, x: s.pow(s.const(2), x),  # C's pow: exact at integers, no error growing with |x|
    lambda b, x, y, g: b.mul(g, b.mul(y, _LN2)),
    float_only=True,
    torch_name="Exp2Backward0",
    fuzz=Fuzz(smooth=True),
    api=("exp2",),
)


# -- special functions -------------------------------------------------------------------------------------------
_SQRT_PI = math.sqrt(math.pi)


def _per_element(fn, pole: float):
    """A float64 reference from a scalar math function (`pole` where it raises: lgamma at 0, -1, ...)."""

    def call(v: float) -> float:
        try:
            return fn(v)
        except (ValueError, OverflowError):
            return pole

    def ref(x):
        flat = np.asarray(x, np.float64).reshape(-1)
        return np.array([call(float(v)) for v in flat], np.float64).reshape(np.shape(x))

    return ref


unary(
    "erfc",
    _per_element(math.erfc, math.nan),
    _erf.erfc,
    lambda b, x, y, g: b.mul(g, b.mul(b.exp(b.neg(b.mul(x, x))), -2 / _SQRT_PI)),
    float_only=True,
    torch_name="ErfcBackward0",
    fuzz=Fuzz(smooth=True),
    doc="the complementary error function 1 - erf(x), accurate where it is tiny (x up to ~26.5 in float64)",
    api=("erfc",),
)
unary(
    "erfcx",
    None,  # reference: the expression (NumPy has no erfcx; erfc(x) exp(x^2) overflows and loses digits)
    _erf.erfcx,
    lambda b, x, y, g: b.mul(g, b.sub(b.mul(b.mul(x, y), 2.0), 2 / _SQRT_PI)),
    float_only=True,
    torch_name="SpecialErfcxBackward0",
    fuzz=Fuzz(nonfinite=True, smooth=True),  # overflows below about -26.6 (float64), -9.4 (float32)
    doc="the scaled complementary error function exp(x^2) erfc(x)",
)
unary(
    "erfinv",
    None,  # reference: the expression (checked against mpmath and PyTorch in tests/test_special_fns.py)
    _erf.erfinv,
    lambda b, x, y, g: b.mul(g, b.mul(b.exp(b.mul(y, y)), _SQRT_PI / 2)),
    float_only=True,
    torch_name="ErfinvBackward0",
    fuzz=_UNIT,  # +-inf at the ends
    doc="the inverse error function, on [-1, 1]",
    api=("erfinv",),
)
unary(
    "lgamma",
    None,  # reference: the expression (libm's lgamma, math.lgamma, is off by up to ~50 ulp near 2: tests check mpmath)
    _gamma.lgamma,
    lambda b, x, y, g: b.mul(g, b.digamma(x)),
    float_only=True,
    torch_name="LgammaBackward0",
    fuzz=Fuzz(domain="pos", kinks="poles", nonfinite=True, smooth=True),
    doc="log |Gamma(x)| (+inf at 0 and the negative integers)",
    api=("lgamma",),
)
unary(
    "digamma",
    None,  # reference: the expression (checked against mpmath and PyTorch in tests/test_special_fns.py)
    _gamma.digamma,
    lambda b, x, y, g: b.mul(g, b.trigamma(x)),
    float_only=True,
    torch_name="DigammaBackward0",
    fuzz=Fuzz(domain="pos", kinks="poles", nonfinite=True, smooth=True),
    doc="the logarithmic derivative of Gamma (-inf at +0, NaN at the negative integers, as PyTorch)",
    api=("digamma",),
)
unary(
    "trigamma",
    None,
    _gamma.trigamma,
    None,  # polygamma(2, x): not defined in graphnn
    float_only=True,
    torch_name="PolygammaBackward0",
    fuzz=Fuzz(domain="pos", kinks="poles", nonfinite=True),
    doc="polygamma(1, x), the derivative of digamma (+inf at 0 and the negative integers)",
)
