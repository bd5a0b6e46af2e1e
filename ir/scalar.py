"""The scalar language of elementwise ops: one expression gives an op's native code and, by default, its reference.

An elementwise op's definition carries `scalar(s, *xs)`: how one output element follows from one element of each
input, written with the methods of `s` (a `Scalars`). codegen implements `Scalars` on LLVM values (vectorizable,
with fast float32 approximations of the transcendental functions); `NumpyScalars` implements it on NumPy arrays,
which makes the same expression a reference kernel. So a new elementwise op needs no code in codegen.

The vocabulary (x, y: values; c: a bool value). Arithmetic follows the operands' dtype (int64 wraps, bool is
logical; `div` of int64 truncates, and a zero divisor gives the smallest int64, as NumPy on x86):
    const(v)                     the number v in the op's computation dtype (s.dtype)
    add sub mul div pow          binary arithmetic;  neg abs sign  unary
    minimum maximum              NaN-propagating (as numpy.minimum / maximum)
    exp log sqrt tanh sigmoid erf sin cos          floating-point functions
    floor ceil trunc rint        rounding to an integral value (rint: to nearest, ties to even)
    copysign(x, y)               |x| with y's sign;  fmod(x, y)  C's remainder (x's sign; int64: 0 for y = 0)
    lt le gt ge eq ne            comparisons (ne is true for NaN), giving bool
    and_ or_ not_                on bools;  select(c, x, y)
    bit_and bit_or bit_xor bit_not   bitwise, on int64 (two's complement) and bool
    cast(x, dtype)               conversion (NaN and out-of-range floats give the smallest int64)
    is_nan(x)
Attributes of the node are `s.attrs`; `s.dtype` is the dtype the operands were converted to.
"""

from __future__ import annotations

import math

import numpy as np

FLOATS = ("float32", "float64")


class Scalars:
    """The operations an elementwise expression may use (see the module docstring)."""

    dtype: str
    attrs: dict

    def const(self, v):
        raise NotImplementedError

    def is_float(self) -> bool:
        return self.dtype in FLOATS


def _erf(x: np.ndarray) -> np.ndarray:
    """erf elementwise, to full float64 accuracy (NumPy has none; math.erf per element)."""
    flat = np.asarray(x, np.float64).reshape(-1)
    return np.array([math.erf(v) for v in flat], np.float64).reshape(np.shape(x))


ERFCX_RANGE = (0.5, 4.0)  # where _erf_fast uses its interpolant of erfcx; erf rounds to +-1 in float32 past 4
ERFCX_DEGREE = 22
_erfcx_coefs: list = []


def _erf_fast(x: np.ndarray) -> np.ndarray:
    """erf elementwise to about 1e-13 relative, in whole-array NumPy operations (float32 results, far more exact
    than their rounding needs; about ten times faster than _erf): the Taylor series for |x| < 0.5, 1 - exp(-x^2)
    erfcx(|x|) up to 4 with erfcx a Chebyshev interpolant (fitted once from math.erfc), and sign(x) beyond."""
    a, b = ERFCX_RANGE
    if not _erfcx_coefs:
        f = np.vectorize(lambda t: math.erfc(t) * math.exp(t * t))
        _erfcx_coefs.append(
            np.polynomial.chebyshev.chebinterpolate(lambda t: f((t + 1) * (b - a) / 2 + a), ERFCX_DEGREE)
        )
    v = np.asarray(x, np.float64).reshape(-1)
    ax = np.abs(v)
    out = np.sign(v)  # (NaN stays NaN)
    small = ax < a
    if small.any():
        xs = v[small]
        y, s = xs * xs, 0.0
        for n in range(12, -1, -1):  # sum (-y)^n / (n! (2n + 1)): 0.25^13 / 13! is below 1e-17
            s = s * -y + 1.0 / (math.factorial(n) * (2 * n + 1))
        out[small] = 2 / math.sqrt(math.pi) * xs * s
    mid = (ax >= a) & (ax < b)
    if mid.any():
        xm = ax[mid]
        t = (2 * xm - (a + b)) / (b - a)
        out[mid] = np.copysign(1 - np.exp(-xm * xm) * np.polynomial.chebyshev.chebval(t, _erfcx_coefs[0]), v[mid])
    return out.reshape(np.shape(x))


class NumpyScalars(Scalars):
    """`Scalars` on NumPy arrays (every operand already has the computation dtype)."""

    def __init__(self, dtype: str, attrs: dict | None = None):
        self.dtype, self.attrs = dtype, attrs or {}
        self._np = np.dtype(dtype)

    def const(self, v):
        return np.asarray(v, self._np)

    def _t(self, x):  # results keep the computation dtype (NumPy may promote 0-d operands)
        return np.asarray(x).astype(self._np, copy=False) if np.asarray(x).dtype != bool else np.asarray(x)

    def add(self, x, y):
        return self._t(np.add(x, y))

    def sub(self, x, y):
        return self._t(np.logical_xor(x, y) if self.dtype == "bool" else np.subtract(x, y))

    def mul(self, x, y):
        return self._t(np.multiply(x, y))

    def div(self, x, y):
        if self.dtype == "int64":
            with np.errstate(all="ignore"):
                q = np.true_divide(x, y)
            return np.where(np.isfinite(q), np.trunc(np.nan_to_num(q)), -(2.0**63)).astype(np.int64)
        if self.dtype == "bool":
            with np.errstate(all="ignore"):
                return np.true_divide(x, y) != 0
        return self._t(np.divide(x, y))

    def pow(self, x, y):
        if self.dtype == "bool":
            return np.logical_or(x, np.logical_not(y))
        if self.dtype == "int64":  # a negative exponent: 0, but 1 and -1 for the bases 1 and -1
            neg = np.where(x == 1, 1, np.where(x == -1, np.where(y % 2 == 0, 1, -1), 0))
            return np.where(y < 0, neg, np.power(x, np.maximum(y, 0))).astype(np.int64)
        shape = np.broadcast_shapes(np.shape(x), np.shape(y))  # C's pow per element (no special-cased exponents)
        flat = [np.array(np.broadcast_to(a, shape)).reshape(-1) for a in (x, y)]
        return self._t(np.power(*flat).reshape(shape))

    def neg(self, x):
        return self._t(np.negative(x))

    def abs(self, x):
        return self._t(np.abs(x))

    def sign(self, x):
        return self._t(np.sign(x))

    def minimum(self, x, y):
        return self._t(np.minimum(x, y))

    def maximum(self, x, y):
        return self._t(np.maximum(x, y))

    def exp(self, x):
        return self._t(np.exp(x))

    def log(self, x):
        return self._t(np.log(x))

    def sqrt(self, x):
        return self._t(np.sqrt(x))

    def tanh(self, x):
        return self._t(np.tanh(x))

    def sigmoid(self, x):
        return self._t(1.0 / (1.0 + np.exp(-np.asarray(x, np.float64))))

    def erf(self, x):
        return self._t(_erf_fast(x) if self.dtype == "float32" else _erf(x))

    def sin(self, x):
        return self._t(np.sin(x))

    def cos(self, x):
        return self._t(np.cos(x))

    def floor(self, x):
        return self._t(np.floor(x))

    def ceil(self, x):
        return self._t(np.ceil(x))

    def trunc(self, x):
        return self._t(np.trunc(x))

    def rint(self, x):
        return self._t(np.rint(x))

    def copysign(self, x, y):
        return self._t(np.copysign(x, y))

    def fmod(self, x, y):
        if self.dtype in ("int64", "bool"):  # integer division by 0 gives 0 (NumPy's result) instead of trapping
            x, y = np.broadcast_arrays(np.asarray(x, np.int64), np.asarray(y, np.int64))
            safe = np.where(y == 0, 1, y)
            return self._t(np.where(y == 0, 0, np.fmod(x, safe)))
        return self._t(np.fmod(x, y))

    def is_nan(self, x):
        return np.isnan(x) if np.asarray(x).dtype.kind == "f" else np.zeros(np.shape(x), bool)

    def lt(self, x, y):
        return np.less(x, y)

    def le(self, x, y):
        return np.less_equal(x, y)

    def gt(self, x, y):
        return np.greater(x, y)

    def ge(self, x, y):
        return np.greater_equal(x, y)

    def eq(self, x, y):
        return np.equal(x, y)

    def ne(self, x, y):
        return np.not_equal(x, y)

    def and_(self, x, y):
        return np.logical_and(x, y)

    def or_(self, x, y):
        return np.logical_or(x, y)

    def not_(self, x):
        return np.logical_not(x)

    def select(self, c, x, y):
        return np.where(c, x, y)

    def bit_and(self, x, y):
        return np.bitwise_and(x, y)

    def bit_or(self, x, y):
        return np.bitwise_or(x, y)

    def bit_xor(self, x, y):
        return np.bitwise_xor(x, y)

    def bit_not(self, x):
        return np.invert(x)

    def cast(self, x, dtype: str):
        x = np.asarray(x)
        if dtype == "int64" and x.dtype.kind == "f":
            ok = np.isfinite(x) & (x >= -(2.0**63)) & (x < 2.0**63)
            return np.where(ok, np.where(ok, x, 0).astype(np.int64), np.int64(-(2**63)))
        return x.astype(dtype)


def evaluate(scalar, dtype: str, attrs: dict, arrays: list) -> np.ndarray:
    """Run an elementwise expression on NumPy arrays already converted to `dtype` (a reference kernel)."""
    with np.errstate(all="ignore"):
        return np.asarray(scalar(NumpyScalars(dtype, attrs), *arrays))


TRANSCENDENTAL = ("exp", "log", "tanh", "sigmoid", "erf", "sin", "cos", "pow", "fmod")


class _Uses(Scalars):
    """`Scalars` that records which operations an expression calls (its operands stand for any values)."""

    def __init__(self, dtype: str, attrs: dict):
        self.dtype, self.attrs, self.used = dtype, attrs, set()

    def const(self, v):
        return None

    def __getattr__(self, name: str):
        self.used.add(name)
        return lambda *args: None


def uses_transcendental(scalar, dtype: str, attrs: dict, arity: int) -> bool:
    """Does the elementwise expression `scalar` compute a function from TRANSCENDENTAL (tens of operations per
    element, where arithmetic takes one)?"""
    uses = _Uses(dtype, attrs)
    try:
        scalar(uses, *[None] * arity)
    except Exception:  # an expression that inspects its operands: assume it does
        return True
    return any(name in uses.used for name in TRANSCENDENTAL)
