"""Elementwise math of PyTorch's API composed of primitives (the primitives themselves, with their api names, are
defined in ir/ops): rounding with decimals, remainders and floor division, NaN/Inf tests, nan_to_num, logaddexp,
xlogy, lerp, addcmul/addcdiv, hypot, sinc, logit, float_power and the aliases (divide, multiply, arcsin, ...).

Every function takes tensors or Python numbers where PyTorch does, and works eagerly and inside graphnn.compile;
gradients follow from the primitives (a branch that must not leak NaN into the gradient reads a safe operand).
"""

from __future__ import annotations

import math
import numbers

from graphnn.core.dispatch import apply, located, relabel
from graphnn.core.dtypes import get_default_dtype


def _t():
    from graphnn.core import tensor

    return tensor


def _tensor(x, like=None):
    """x as a tensor (a Python number takes the dtype PyTorch gives it next to `like`)."""
    T = _t()
    if isinstance(x, T.Tensor):
        return x
    if like is not None and isinstance(like, T.Tensor):
        if isinstance(x, bool) or (isinstance(x, numbers.Integral) and like.dtype_name != "bool"):
            return T.as_tensor(x, like.dtype_name if like.dtype_name != "bool" else "int64")
        if like.dtype_name in ("float32", "float64"):
            return T.as_tensor(x, like.dtype_name)
    return T.tensor(x)


def _floating(x):
    """x, with integer and bool tensors converted to the default float dtype (as PyTorch's float-valued ops)."""
    x = _tensor(x)
    return x if x.is_floating_point() else x.type_as_dtype(get_default_dtype())


def _where(c, a, b):
    return apply("select", [c, a, b])


def _is_float(x) -> bool:
    return isinstance(x, float) or (isinstance(x, _t().Tensor) and x.is_floating_point())


# -- rounding ----------------------------------------------------------------------------------------------------
def round(input, *, decimals: int = 0):  # noqa: A001
    """Round to nearest, ties to even; `decimals` rounds x * 10^decimals (as PyTorch: x / 10^-decimals below 0)."""
    if decimals == 0 or not input.is_floating_point():
        return apply("round", [input])
    scale = 10.0 ** abs(int(decimals))
    if decimals > 0:
        return relabel(apply("round", [input * scale]) / scale, "RoundBackward1", [input])
    return relabel(apply("round", [input / scale]) * scale, "RoundBackward1", [input])


def fix(input):
    return apply("trunc", [input])


def frac(input):
    """x - trunc(x) (the sign of x)."""
    return relabel(input - apply("trunc", [input]), "FracBackward0", [input])


def sgn(input):
    return apply("sign", [input])


def signbit(input):
    """True where the sign bit is set (also -0.0 and NaNs of negative sign)."""
    x = _tensor(input)
    if x.dtype_name == "bool":
        return x & False
    if not x.is_floating_point():
        return x < 0
    return apply("copysign", [1.0, x]).detach() < 0


# -- NaN and infinities ------------------------------------------------------------------------------------------
def isnan(input):
    return input != input


def isinf(input):
    if not input.is_floating_point():
        return input != input
    return input.abs() == math.inf


def isposinf(input):
    return input == math.inf if input.is_floating_point() else input != input


def isneginf(input):
    return input == -math.inf if input.is_floating_point() else input != input


def isfinite(input):
    if not input.is_floating_point():
        return input == input
    return input.abs() < math.inf


def isreal(input):
    """True everywhere: graphnn's tensors are real."""
    return _t().ones_like(input, dtype="bool")


def nan_to_num(input, nan: float = 0.0, posinf: float | None = None, neginf: float | None = None):
    """NaN -> nan, +inf -> posinf, -inf -> neginf (by default the dtype's largest and smallest finite values)."""
    if not input.is_floating_point():
        return input.clone()
    import numpy as np

    fi = np.finfo(input.dtype_name)
    hi = float(fi.max) if posinf is None else posinf
    lo = float(fi.min) if neginf is None else neginf
    out = _where(input != input, nan, input)
    out = _where(out == math.inf, hi, out)
    out = _where(out == -math.inf, lo, out)
    return relabel(out, "NanToNumBackward0", [input])


# -- division and remainders -------------------------------------------------------------------------------------
def fmod(input, other):
    return apply("fmod", [input, other])


def remainder(input, other):
    """Python's modulus: the sign of the divisor (fmod corrected by one divisor where the signs differ)."""
    r = apply("fmod", [input, other])
    fix_ = (r != 0) & ((r < 0) != (_tensor(other, r) < 0))
    return relabel(_where(fix_, r + other, r), "RemainderBackward0", [input, other])


def floor_divide(input, other):
    """x / y rounded toward -inf (PyTorch's div_floor: the quotient of x - fmod(x, y), corrected, then rounded)."""
    x, y = _tensor(input, other), _tensor(other, input)
    if not (_is_float(x) or _is_float(y)):
        q = apply("div", [x, y])  # int64: truncated
        r = apply("fmod", [x, y])
        down = (r != 0) & ((r < 0) != (y < 0))
        return q - down.long()
    x, y = x.detach(), y.detach()
    mod = apply("fmod", [x, y])
    div = (x - mod) / y
    div = _where((mod != 0) & ((y < 0) != (mod < 0)), div - 1, div)
    fl = apply("floor", [div])
    fl = _where(div - fl > 0.5, fl + 1, fl)
    fl = _where(div == 0, apply("copysign", [0.0, x / y]), fl)
    return _where(y == 0, x / y, fl)


def divide(input, other, *, rounding_mode=None):
    if rounding_mode is None:
        return _t()._true_div(input, other)
    if rounding_mode == "trunc":
        if _is_float(input) or _is_float(other):
            return relabel(apply("trunc", [_t()._true_div(input, other)]), "DivBackward3", [input, other])
        return apply("div", [input, other])
    if rounding_mode == "floor":
        return floor_divide(input, other)
    raise ValueError(
        located(f"div expected rounding_mode to be one of None, 'trunc', or 'floor' but found '{rounding_mode}'")
    )


def true_divide(input, other):
    return _t()._true_div(input, other)


def multiply(input, other):
    return apply("mul", [input, other])


def subtract(input, other, *, alpha=1):
    return _tensor(input, other).sub(other, alpha=alpha)


def negative(input):
    return -input


def positive(input):
    return input


def reciprocal(input):
    return relabel(_t()._true_div(1.0, _floating(input)), "ReciprocalBackward0", [input])


def square(input):
    x = input.long() if input.dtype_name == "bool" else input
    return relabel(x * x, "PowBackward0", [input])


def float_power(input, exponent):
    """input ** exponent computed in float64."""

    def f64(v):
        return v.double() if isinstance(v, _t().Tensor) else float(v)

    return relabel(_t()._pow(f64(input), f64(exponent)), "PowBackward0", [input, exponent])


# -- functions of two or three operands --------------------------------------------------------------------------
_LN2 = math.log(2.0)


def logaddexp(input, other):
    """log(exp(x) + exp(y)) without overflow: max + log1p(exp(-|x - y|)); equal operands (also infinite) give
    x + log 2."""
    x, y = _floating(input), _floating(other)
    same = x == y
    d = _where(same, 0.0, x - y)
    out = apply("maximum", [x, y]) + apply("log1p", [apply("exp", [-d.abs()])])
    return relabel(_where(same, x + _LN2, out), "LogaddexpBackward0", [input, other])


def logaddexp2(input, other):
    """log2(2^x + 2^y): max + log1p(2^-|x - y|) / log 2."""
    x, y = _floating(input), _floating(other)
    same = x == y
    d = _where(same, 0.0, x - y)
    out = apply("maximum", [x, y]) + apply("log1p", [apply("exp2", [-d.abs()])]) * (1.0 / _LN2)
    return relabel(_where(same, x + 1.0, out), "Logaddexp2Backward0", [input, other])


def xlogy(input, other):
    """x * log(y), 0 where x == 0 (NaN where y is NaN)."""
    x, y = _tensor(input, other), _tensor(other, input)
    x, y = _floating(x), _floating(y)
    zero = (x == 0) & (y == y)
    safe = _where(zero, 1.0, y)
    return relabel(_where(zero, 0.0, x * apply("log", [safe])), "XlogyBackward0", [input, other])


def lerp(input, end, weight):
    """start + weight (end - start), evaluated from the nearer end as PyTorch (exact at weight 0 and 1)."""
    diff = end - input
    w = _tensor(weight, input)
    out = _where(w.abs() < 0.5, input + w * diff, end - diff * (1 - w))
    return relabel(out, "LerpBackward1" if isinstance(weight, _t().Tensor) else "LerpBackward0", [input, end, weight])


def addcmul(input, tensor1, tensor2, *, value=1):
    prod = tensor1 * tensor2
    return relabel(input + (prod * value if value != 1 else prod), "AddcmulBackward0", [input, tensor1, tensor2])


def addcdiv(input, tensor1, tensor2, *, value=1):
    if not (_is_float(tensor1) or _is_float(tensor2)):
        raise RuntimeError(
            located("Integer division with addcdiv is no longer supported; use torch.div on floating-point tensors")
        )
    q = tensor1 / tensor2
    return relabel(input + (q * value if value != 1 else q), "AddcdivBackward0", [input, tensor1, tensor2])


def hypot(input, other):
    """sqrt(x^2 + y^2) without overflow or underflow: m * sqrt(1 + (n / m)^2), m = max(|x|, |y|)."""
    a, b = _tensor(input, other).abs(), _tensor(other, input).abs()
    m, n = apply("maximum", [a, b]), apply("minimum", [a, b])
    tiny = (m == 0) | (m == math.inf)
    safe = _where(tiny, 1.0, m)
    r = n / safe
    out = _where(tiny, m + n * 0, m * (r * r + 1).sqrt())
    return relabel(_where((a == math.inf) | (b == math.inf), math.inf, out), "HypotBackward0", [input, other])


def heaviside(input, values):
    """1 where x > 0, `values` where x == 0, 0 elsewhere (also at NaN, as PyTorch)."""
    one = _where(input > 0, 1, 0).type_as_dtype(input.dtype_name)
    return _where(input == 0, values, one)


def clamp_min(input, min):  # noqa: A002
    return input.clamp(min=min)


def clamp_max(input, max):  # noqa: A002
    return input.clamp(max=max)


def sinc(input):
    """sin(pi x) / (pi x), 1 at 0."""
    x = _floating(input)
    zero = x == 0
    px = _where(zero, 1.0, x * math.pi)
    return relabel(_where(zero, 1.0, apply("sin", [px]) / px), "SincBackward0", [input])


def deg2rad(input):
    return relabel(_floating(input) * (math.pi / 180.0), "Deg2RadBackward0", [input])


def rad2deg(input):
    return relabel(_floating(input) * (180.0 / math.pi), "Rad2DegBackward0", [input])


def logit(input, eps: float | None = None):
    """log(p / (1 - p)), p clamped to [eps, 1 - eps] when eps is given."""
    p = _floating(input)
    if eps is not None:
        p = p.clamp(eps, 1 - eps)
    return relabel(apply("log", [p / (1 - p)]), "LogitBackward0", [input])


# -- comparisons -------------------------------------------------------------------------------------------------
def isclose(input, other, rtol: float = 1e-05, atol: float = 1e-08, equal_nan: bool = False):
    """|x - y| <= atol + rtol |y| (equal values, also infinite ones, are close; NaN only with equal_nan)."""
    x, y = _tensor(input, other), _tensor(other, input)
    if x.dtype_name != y.dtype_name:
        raise RuntimeError(located(f"isclose: {x.dtype_name} and {y.dtype_name} tensors must have the same dtype"))
    eq = x == y
    if equal_nan:
        eq = eq | ((x != x) & (y != y))
    if not x.is_floating_point():
        x, y = x.double(), y.double()
    near = (x - y).abs() <= atol + rtol * y.abs()
    finite = (x.abs() < math.inf) & (y.abs() < math.inf)
    return eq | (near & finite)


def allclose(input, other, rtol: float = 1e-05, atol: float = 1e-08, equal_nan: bool = False) -> bool:
    return bool(isclose(input, other, rtol, atol, equal_nan).all())


def equal(input, other) -> bool:
    """Same shape and the same values (NaN is never equal)."""
    if tuple(input.shape) != tuple(other.shape):
        return False
    return bool((input == other).all())


def logical_xor(input, other):
    return (_tensor(input) != 0) != (_tensor(other) != 0)


FUNCTIONS = {
    "logical_xor": logical_xor,
    "round": round,
    "fix": fix,
    "frac": frac,
    "sgn": sgn,
    "signbit": signbit,
    "isnan": isnan,
    "isinf": isinf,
    "isposinf": isposinf,
    "isneginf": isneginf,
    "isfinite": isfinite,
    "isreal": isreal,
    "nan_to_num": nan_to_num,
    "fmod": fmod,
    "remainder": remainder,
    "floor_divide": floor_divide,
    "divide": divide,
    "true_divide": true_divide,
    "multiply": multiply,
    "subtract": subtract,
    "negative": negative,
    "positive": positive,
    "reciprocal": reciprocal,
    "square": square,
    "float_power": float_power,
    "logaddexp": logaddexp,
    "logaddexp2": logaddexp2,
    "xlogy": xlogy,
    "lerp": lerp,
    "addcmul": addcmul,
    "addcdiv": addcdiv,
    "hypot": hypot,
    "heaviside": heaviside,
    "clamp_min": clamp_min,
    "clamp_max": clamp_max,
    "sinc": sinc,
    "deg2rad": deg2rad,
    "rad2deg": rad2deg,
    "logit": logit,
    "isclose": isclose,
    "allclose": allclose,
    "equal": equal,
}
# PyTorch's in-place methods (x.op_(...)) among the functions above and the primitives' api names
INPLACE = (
    "round fix frac sgn nan_to_num fmod remainder floor_divide divide true_divide multiply subtract negative "
    "reciprocal square float_power xlogy lerp addcmul addcdiv hypot heaviside sinc deg2rad rad2deg logit "
    "floor ceil trunc copysign atan2 arctan2 atan arctan asin arcsin acos arccos tan sinh cosh asinh arcsinh "
    "acosh arccosh atanh arctanh log2 log10 exp2"
).split()
