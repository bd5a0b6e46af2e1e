"""The scalar language of elementwise ops (graphnn.ir.scalar) on LLVM values: how a kernel computes one element.

Each method dispatches on its operands' LLVM types (float, double, i64 or i1), so one expression serves every
dtype the op accepts. Floating-point arithmetic carries the kernel's fast-math flags (never nnan/ninf); float32
exp, log, tanh, sigmoid, sin, cos and erf are vectorizable polynomials (mathfuncs), so are float64 exp, tanh and
sigmoid (mathfuncs64); the other float64 functions call libm.
"""

from __future__ import annotations

import llvmlite.ir as ir

from graphnn.ir.scalar import Scalars

from .kernel import FLOAT, I1, I64, i64
from .mathfuncs import FAST32
from .mathfuncs64 import FAST64

_INT64_MIN = -(2**63)


class LLVMScalars(Scalars):
    """`Scalars` for kernel k: values are LLVM scalars of the computation dtype `dtype` (or i1 for bools)."""

    def __init__(self, k, dtype: str, attrs: dict | None = None, reassoc: bool = False):
        self.k, self.b, self.dtype, self.attrs = k, k.b, dtype, attrs or {}
        self._extra = ("reassoc",) if reassoc else ()  # reductions: float adds may be reordered

    # -- helpers ----------------------------------------------------------------------------------------------
    @staticmethod
    def _kind(x) -> str:
        t = x.type
        if isinstance(t, ir.FloatType):
            return "float32"
        if isinstance(t, ir.DoubleType):
            return "float64"
        return "bool" if t.width == 1 else "int64"

    def _f(self, x):
        return self.k.flags(x, self._extra)

    def const(self, v):
        return self.k.const(v, self.dtype)

    def _like(self, v, x):
        return self.k.const(v, self._kind(x))

    # -- arithmetic -------------------------------------------------------------------------------------------
    def add(self, x, y):
        kind = self._kind(x)
        if kind in FLOAT:
            return self._f(self.b.fadd(x, y))
        return self.b.or_(x, y) if kind == "bool" else self.b.add(x, y)

    def sub(self, x, y):
        kind = self._kind(x)
        if kind in FLOAT:
            return self._f(self.b.fsub(x, y))
        return self.b.xor(x, y) if kind == "bool" else self.b.sub(x, y)

    def mul(self, x, y):
        kind = self._kind(x)
        if kind in FLOAT:
            return self._f(self.b.fmul(x, y))
        return self.b.and_(x, y) if kind == "bool" else self.b.mul(x, y)

    def div(self, x, y):
        kind, b = self._kind(x), self.b
        if kind in FLOAT:
            return self.k.flags(b.fdiv(x, y), self._extra, exact_division=True)
        if kind == "bool":  # as NumPy: true division, then != 0
            k = self.k
            q = b.fdiv(k.convert(x, "bool", "float64"), k.convert(y, "bool", "float64"))
            return k.convert(q, "float64", "bool")
        # int64: truncated; a zero divisor and INT64_MIN / -1, which trap in hardware, give INT64_MIN
        low = i64(_INT64_MIN)
        bad = b.or_(
            b.icmp_signed("==", y, i64(0)), b.and_(b.icmp_signed("==", x, low), b.icmp_signed("==", y, i64(-1)))
        )
        return b.select(bad, low, b.sdiv(x, b.select(bad, i64(1), y)))

    def pow(self, x, y):
        kind, b = self._kind(x), self.b
        if kind in FLOAT:
            return self.k.intrinsic("pow", kind, [x, y])
        if kind == "bool":
            return b.or_(x, b.not_(y))
        # int64 by square-and-multiply (wrapping like NumPy); negative exponents give 0
        k = self.k
        res, base = k.alloca(I64), k.alloca(I64)
        b.store(i64(1), res)
        b.store(x, base)

        def body(i):
            r, p = b.load(res), b.load(base)
            bit = b.trunc(b.lshr(y, i), I1)
            b.store(b.select(bit, b.mul(r, p), r), res)
            b.store(b.mul(p, p), base)

        k.loop(63, body)
        # a negative exponent: 0, but 1 and -1 for the bases 1 and -1 (the loop gave x ** (y mod 2^63) for them)
        unit = b.or_(b.icmp_signed("==", x, i64(1)), b.icmp_signed("==", x, i64(-1)))
        neg = b.select(unit, b.select(b.trunc(y, I1), x, i64(1)), i64(0))
        return b.select(b.icmp_signed("<", y, i64(0)), neg, b.load(res))

    def neg(self, x):
        kind = self._kind(x)
        if kind in FLOAT:
            return self.b.fneg(x)
        return self.b.sub(self._like(0, x), x)

    def abs(self, x):
        kind = self._kind(x)
        if kind in FLOAT:
            return self.k.intrinsic("fabs", kind, [x])
        if kind == "bool":
            return x
        return self.b.select(self.b.icmp_signed("<", x, i64(0)), self.b.sub(i64(0), x), x)

    def sign(self, x):
        b, kind = self.b, self._kind(x)
        zero, one, minus = self._like(0, x), self._like(1, x), self._like(-1, x)
        if kind in FLOAT:  # NaN stays NaN; both zeros give +0.0 (as NumPy and PyTorch: fuzz seed 1005160)
            rest = b.select(self.is_nan(x), x, zero)
            return b.select(b.fcmp_ordered(">", x, zero), one, b.select(b.fcmp_ordered("<", x, zero), minus, rest))
        if kind == "bool":
            return x
        return b.select(b.icmp_signed(">", x, zero), one, b.select(b.icmp_signed("<", x, zero), minus, zero))

    def _pick(self, x, y, pred: str):
        b, kind = self.b, self._kind(x)
        if kind in FLOAT:  # NaN on either side wins, as numpy.maximum / minimum
            take_x = b.or_(self.is_nan(x), b.fcmp_ordered(pred, x, y))
            return b.select(take_x, x, y)
        cmp = b.icmp_unsigned if kind == "bool" else b.icmp_signed
        return b.select(cmp(pred, x, y), x, y)

    def minimum(self, x, y):
        return self._pick(x, y, "<")

    def maximum(self, x, y):
        return self._pick(x, y, ">")

    # -- floating-point functions -----------------------------------------------------------------------------
    def _math(self, name: str, x):
        kind = self._kind(x)
        if kind == "float32" and name in FAST32:
            return FAST32[name](self.k, x)
        if kind == "float64" and name in FAST64:
            return FAST64[name](self.k, x)
        if name in ("exp", "log", "sqrt", "sin", "cos", "floor"):
            return self.k.intrinsic(name, kind, [x])
        return self.k.libm(name, kind, [x])

    def exp(self, x):
        return self._math("exp", x)

    def log(self, x):
        return self._math("log", x)

    def sqrt(self, x):
        return self.k.intrinsic("sqrt", self._kind(x), [x])

    def tanh(self, x):
        return self._math("tanh", x)

    def sigmoid(self, x):
        kind = self._kind(x)
        if kind == "float32":
            return FAST32["sigmoid"](self.k, x)
        one = self._like(1, x)
        return self._f(self.b.fdiv(one, self._f(self.b.fadd(one, self.exp(self.b.fneg(x))))))

    def erf(self, x):
        return self._math("erf", x)

    def sin(self, x):
        return self._math("sin", x)

    def cos(self, x):
        return self._math("cos", x)

    def floor(self, x):
        return self.k.intrinsic("floor", self._kind(x), [x])

    def ceil(self, x):
        return self.k.intrinsic("ceil", self._kind(x), [x])

    def trunc(self, x):
        return self.k.intrinsic("trunc", self._kind(x), [x])

    def rint(self, x):  # kernels run in the default rounding mode: to nearest, ties to even
        return self.k.intrinsic("rint", self._kind(x), [x])

    def copysign(self, x, y):
        return self.k.intrinsic("copysign", self._kind(x), [x, y])

    def fmod(self, x, y):
        kind, b = self._kind(x), self.b
        if kind in FLOAT:
            return b.frem(x, y)
        if kind == "bool":
            return ir.Constant(I1, 0)  # x % 1 = 0; x % 0: 0 as for int64 (below)
        # a zero divisor and INT64_MIN % -1, which trap in hardware, give 0
        bad = b.or_(b.icmp_signed("==", y, i64(0)), b.icmp_signed("==", y, i64(-1)))
        return b.select(bad, i64(0), b.srem(x, b.select(bad, i64(1), y)))

    def is_nan(self, x):
        if self._kind(x) not in FLOAT:
            return ir.Constant(I1, 0)
        return self.b.fcmp_unordered("uno", x, x)

    # -- comparisons and logic --------------------------------------------------------------------------------
    def _cmp(self, sym: str, x, y):
        b, kind = self.b, self._kind(x)
        if kind in FLOAT:
            return b.fcmp_unordered(sym, x, y) if sym == "!=" else b.fcmp_ordered(sym, x, y)
        return (b.icmp_unsigned if kind == "bool" else b.icmp_signed)(sym, x, y)

    def lt(self, x, y):
        return self._cmp("<", x, y)

    def le(self, x, y):
        return self._cmp("<=", x, y)

    def gt(self, x, y):
        return self._cmp(">", x, y)

    def ge(self, x, y):
        return self._cmp(">=", x, y)

    def eq(self, x, y):
        return self._cmp("==", x, y)

    def ne(self, x, y):
        return self._cmp("!=", x, y)

    def and_(self, x, y):
        return self.b.and_(self.k.convert(x, self._kind(x), "bool"), self.k.convert(y, self._kind(y), "bool"))

    def or_(self, x, y):
        return self.b.or_(self.k.convert(x, self._kind(x), "bool"), self.k.convert(y, self._kind(y), "bool"))

    def not_(self, x):
        return self.b.not_(self.k.convert(x, self._kind(x), "bool"))

    def select(self, c, x, y):
        return self.b.select(c, x, y)

    def bit_and(self, x, y):
        return self.b.and_(x, y)

    def bit_or(self, x, y):
        return self.b.or_(x, y)

    def bit_xor(self, x, y):
        return self.b.xor(x, y)

    def bit_not(self, x):
        return self.b.not_(x)

    def cast(self, x, dtype: str):
        return self.k.convert(x, self._kind(x), dtype)
