"""Elementwise primitives: unary math, broadcasting binary arithmetic, comparisons, select, cast, constants.

Each op is one `register` call: its NumPy reference, its scalar expression (the native lowering, see
ir/scalar.py), its gradient rule, its PyTorch grad_fn name and its fuzz traits.
"""

from __future__ import annotations

import numpy as np

from ..registry import Fuzz, register
from ..roundoff import rounded_once
from ..types import FLOAT_DTYPES, TensorType, broadcast_shapes, promote
from ._util import unbroadcast


def _same(types, attrs):
    return types[0]


def _float_only(name):
    def infer(types, attrs):
        if types[0].dtype not in FLOAT_DTYPES:
            raise TypeError(f"{name} needs a floating-point input, got {types[0].dtype}")
        return types[0]

    return infer


def _no_bool(name, infer):
    """NumPy has no boolean negative, sign or subtract: these ops reject all-bool inputs."""

    def rule(types, attrs):
        if all(t.dtype == "bool" for t in types):
            raise TypeError(f"{name} is not defined for bool inputs")
        return infer(types, attrs)

    return rule


def _sigmoid(x):  # (unary's reference runs it with floating-point warnings off: exp(-x) may overflow to inf)
    return (1.0 / (1.0 + np.exp(-x))).astype(x.dtype, copy=False)


def unary(
    name: str,
    fn,
    scalar,
    grad,
    *,
    float_only: bool = False,
    no_bool: bool = False,
    torch_name: str | None = None,
    fuzz: Fuzz = Fuzz(),
    doc: str = "",
    api: tuple = (),
):
    """Register a unary elementwise op: NumPy kernel `fn` (None: evaluate `scalar` with NumPy, dozens of NumPy
    calls for a polynomial: a slow reference, so that eager code runs the op natively once it recurs), lowering
    `scalar(s, x)`, gradient `grad(b, x, y, g)` -> dx or None (no rule: None)."""

    def ref(a, attrs):  # (warnings off: see binary's)
        return np.asarray(fn(a[0])).astype(a[0].dtype, copy=False)

    def grad_rule(b, node, cts):
        return [grad(b, node.inputs[0], node.outputs[0], cts[0])]

    infer = _float_only(name) if float_only else _same
    return register(
        name,
        infer=_no_bool(name, infer) if no_bool else infer,
        ref=ref if fn is not None else None,
        grad=grad_rule if grad is not None else None,
        pattern="elementwise",
        num_inputs=1,
        scalar=scalar,
        torch_name=torch_name,
        fuzz=fuzz,
        doc=doc,
        api=api,
        int_to_float=float_only,
        slow_reference=fn is None,
    )


_SMOOTH = Fuzz(smooth=True, body=True)
_TWO_OVER_SQRT_PI = 1.1283791670955126
unary(
    "neg",
    np.negative,
    lambda s, x: s.neg(x),
    lambda b, x, y, g: b.neg(g),
    no_bool=True,
    torch_name="NegBackward0",
    fuzz=Fuzz(smooth=True, exact=True, body=True),
    api=("neg",),
)
unary(
    "abs",
    np.abs,
    lambda s, x: s.abs(x),
    lambda b, x, y, g: b.mul(g, b.sign(x)),
    torch_name="AbsBackward0",
    fuzz=Fuzz(kinks="zero", exact=True),
    api=("abs",),
)
unary(
    "sign",
    np.sign,
    lambda s, x: s.sign(x),
    lambda b, x, y, g: b.full(0.0, x.shape, x.dtype),  # piecewise constant: zero (PyTorch's gradient of zeros)
    no_bool=True,
    torch_name="SignBackward0",
    fuzz=Fuzz(kinks="zero", exact=True),
    api=("sign",),
)
unary(
    "exp",
    np.exp,
    lambda s, x: s.exp(x),
    lambda b, x, y, g: b.mul(g, y),
    float_only=True,
    torch_name="ExpBackward0",
    fuzz=_SMOOTH,
    api=("exp",),
)
unary(
    "log",
    np.log,
    lambda s, x: s.log(x),
    lambda b, x, y, g: b.div(g, x),
    float_only=True,
    torch_name="LogBackward0",
    fuzz=Fuzz(domain="pos", nonfinite=True, smooth=True),
    api=("log",),
)
unary(
    "sqrt",
    np.sqrt,
    lambda s, x: s.sqrt(x),
    lambda b, x, y, g: b.div(b.mul(g, 0.5), y),
    float_only=True,
    torch_name="SqrtBackward0",
    fuzz=Fuzz(domain="pos", nonfinite=True, smooth=True),
    api=("sqrt",),
)
unary(
    "tanh",
    np.tanh,
    lambda s, x: s.tanh(x),
    lambda b, x, y, g: b.mul(g, b.sub(1.0, b.mul(y, y))),
    float_only=True,
    torch_name="TanhBackward0",
    fuzz=_SMOOTH,
    api=("tanh",),
)
unary(
    "sigmoid",
    _sigmoid,
    lambda s, x: s.sigmoid(x),
    lambda b, x, y, g: b.mul(g, b.mul(y, b.sub(1.0, y))),
    float_only=True,
    torch_name="SigmoidBackward0",
    fuzz=_SMOOTH,
    api=("sigmoid",),
)
unary(
    "relu",
    lambda x: np.maximum(x, np.zeros((), x.dtype)),
    lambda s, x: s.maximum(x, s.const(0)),
    lambda b, x, y, g: b.select(b.gt(y, 0.0), g, 0.0),
    torch_name="ReluBackward0",
    fuzz=Fuzz(kinks="zero", exact=True),
    api=("relu",),
)

unary(
    "sin",
    np.sin,
    lambda s, x: s.sin(x),
    lambda b, x, y, g: b.mul(g, b.cos(x)),
    float_only=True,
    torch_name="SinBackward0",
    fuzz=_SMOOTH,
    api=("sin",),
)
unary(
    "cos",
    np.cos,
    lambda s, x: s.cos(x),
    lambda b, x, y, g: b.neg(b.mul(g, b.sin(x))),
    float_only=True,
    torch_name="CosBackward0",
    fuzz=_SMOOTH,
    api=("cos",),
)
unary(
    "erf",
    None,
    lambda s, x: s.erf(x),
    lambda b, x, y, g: b.mul(g, b.mul(b.exp(b.neg(b.mul(x, x))), _TWO_OVER_SQRT_PI)),
    float_only=True,
    torch_name="ErfBackward0",
    fuzz=_SMOOTH,
    api=("erf",),
    doc="the error function",
)


def _rsqrt(s, x):
    """1 / sqrt(x); at 0 and +inf exactly (a fast reciprocal square root refined by a Newton step is NaN there)."""
    r = s.div(s.const(1), s.sqrt(x))
    return s.select(s.eq(x, s.const(float("inf"))), s.const(0), s.select(s.eq(x, s.const(0)), s.div(s.const(1), x), r))


unary(
    "rsqrt",
    lambda x: 1 / np.sqrt(x),
    _rsqrt,
    lambda b, x, y, g: b.mul(g, b.mul(b.mul(y, b.mul(y, y)), -0.5)),
    float_only=True,
    torch_name="RsqrtBackward0",
    fuzz=Fuzz(domain="pos", nonfinite=True, smooth=True),
    api=("rsqrt",),
)


def _log1p(s, x):
    """log(1 + x) without losing x's digits near 0: log(u) * x / (u - 1) with u = 1 + x rounded (Goldberg)."""
    one = s.const(1)
    u = s.add(one, x)
    exact = s.or_(s.eq(u, one), s.eq(u, s.const(float("inf"))))
    return s.select(exact, s.select(s.eq(u, one), x, u), s.mul(s.log(u), s.div(x, s.sub(u, one))))


def _expm1(s, x):
    """exp(x) - 1 without cancellation near 0: (u - 1) * x / log(u) with u = exp(x) rounded (Kahan)."""
    one = s.const(1)
    u = s.exp(x)
    um1 = s.sub(u, one)
    plain = s.or_(s.eq(um1, s.const(-1)), s.eq(u, s.const(float("inf"))))
    return s.select(s.eq(u, one), x, s.select(plain, um1, s.mul(um1, s.div(x, s.log(u)))))


unary(
    "log1p",
    np.log1p,
    _log1p,
    lambda b, x, y, g: b.div(g, b.add(x, 1.0)),
    float_only=True,
    torch_name="Log1PBackward0",
    fuzz=Fuzz(domain="pos", nonfinite=True, smooth=True),
    api=("log1p",),
)
unary(
    "expm1",
    np.expm1,
    _expm1,
    lambda b, x, y, g: b.mul(g, b.add(y, 1.0)),
    float_only=True,
    torch_name="Expm1Backward0",
    fuzz=_SMOOTH,
    api=("expm1",),
)


def _binary_infer(types, attrs):
    shape = broadcast_shapes(types[0].shape, types[1].shape)
    return TensorType(shape, promote(types[0].dtype, types[1].dtype))


def _maximum_grad(pick):
    def rule(b, x, y, o, g):
        gx = b.select(pick(b, x, y), g, b.select(b.eq(x, y), b.mul(g, 0.5), 0.0))
        gy = b.select(pick(b, y, x), g, b.select(b.eq(x, y), b.mul(g, 0.5), 0.0))
        return gx, gy

    return rule


def _pow(x, y):
    """x ** y elementwise by C's pow. (NumPy computes a broadcast exponent of 0.5, -1 or 2 with sqrt, reciprocal or
    square instead, which differs at -inf and -0; compiled code, and PyTorch's tensor ** tensor, use pow.)"""
    if x.dtype.kind != "f" and y.dtype.kind != "f":
        if x.dtype == bool and y.dtype == bool:
            return np.power(x, y)
        # integer powers: a negative exponent gives 0 but for bases 1 and -1 (as PyTorch and compiled code)
        xb, yb = np.broadcast_arrays(x.astype(np.int64), y.astype(np.int64))
        with np.errstate(over="ignore"):
            pos = np.power(xb, np.maximum(yb, 0))
        neg = np.where(xb == 1, 1, np.where(xb == -1, np.where(yb % 2 == 0, 1, -1), 0))
        return np.where(yb < 0, neg, pos).astype(np.result_type(x, y))
    shape = np.broadcast_shapes(x.shape, y.shape)
    # both operands in the result's float dtype, as compiled code and eager calls (a float32 tensor ** an int
    # tensor) compute it: NumPy would take an int64 exponent to float64 (fuzz seed 1007100)
    dt = np.result_type(*(a.dtype for a in (x, y) if a.dtype.kind == "f"))
    if y.size == 1 and y.reshape(-1)[0] in (0, 1, 2):  # x ** 2 (a squared error; x ** 1 in its gradient): pow's
        xs = np.array(np.broadcast_to(x, shape), dt)  # exact value by multiplication, 50x faster than NumPy's pow
        e = y.reshape(-1)[0]
        return xs * xs if e == 2 else xs if e == 1 else np.ones(shape, dt)
    flat = [np.array(np.broadcast_to(a, shape), dt).reshape(-1) for a in (x, y)]
    return np.power(*flat).reshape(shape)


def binary(
    name: str,
    fn,
    scalar,
    grad,
    *,
    no_bool: bool = False,
    torch_name: str | None = None,
    fuzz: Fuzz = Fuzz(),
    doc: str = "",
    api: tuple = (),
):
    """Register a broadcasting binary op: NumPy kernel `fn` (None: evaluate `scalar` with NumPy), lowering
    `scalar(s, x, y)` (operands in the result's dtype), gradient `grad(b, x, y, out, g) -> (gx, gy)` before
    unbroadcasting (None: no rule)."""

    def ref(a, attrs):  # (NumPy's floating-point warnings are off around every reference kernel: run_node)
        return np.asarray(fn(a[0], a[1]))

    def grad_rule(b, node, cts):
        x, y = node.inputs
        g = cts[0]
        out = node.outputs[0]
        # integer / bool operands enter the gradient formulas as the (floating) result dtype: log(x), y - 1
        xf = x if x.type.is_float else b.cast(x, dtype=out.dtype)
        yf = y if y.type.is_float else b.cast(y, dtype=out.dtype)
        gx, gy = grad(b, xf, yf, out, g)
        return [
            unbroadcast(b, gx, x.shape) if x.type.is_float else None,
            unbroadcast(b, gy, y.shape) if y.type.is_float else None,
        ]

    return register(
        name,
        infer=_no_bool(name, _binary_infer) if no_bool else _binary_infer,
        ref=ref if fn is not None else None,
        grad=grad_rule if grad is not None else None,
        pattern="broadcast",
        num_inputs=2,
        scalar=scalar,
        torch_name=torch_name,
        fuzz=fuzz,
        doc=doc,
        api=api,
    )


binary(
    "add",
    np.add,
    lambda s, x, y: s.add(x, y),
    lambda b, x, y, o, g: (g, g),
    torch_name="AddBackward0",
    fuzz=Fuzz(smooth=True, body=True),
)
binary(
    "sub",
    np.subtract,
    lambda s, x, y: s.sub(x, y),
    lambda b, x, y, o, g: (g, b.neg(g)),
    no_bool=True,
    torch_name="SubBackward0",
    fuzz=Fuzz(smooth=True, body=True),
)
binary(
    "mul",
    np.multiply,
    lambda s, x, y: s.mul(x, y),
    lambda b, x, y, o, g: (b.mul(g, y), b.mul(g, x)),
    torch_name="MulBackward0",
    fuzz=Fuzz(smooth=True, body=True),
)


def _divide(x, y):
    """x / y; int64 by int64 truncated exactly as the native code divides (not through float64, which loses
    bits above 2**53): a zero divisor and INT64_MIN / -1, which trap in hardware, give INT64_MIN."""
    x, y = np.asarray(x), np.asarray(y)
    if x.dtype != np.int64 or y.dtype != np.int64:
        return np.divide(x, y)
    low = np.iinfo(np.int64).min
    bad = (y == 0) | ((x == low) & (y == -1))
    ys = np.where(bad, 1, y)
    q = x // ys  # rounded down: one more toward zero where the quotient is negative and inexact
    return np.where(bad, low, q + ((q < 0) & (q * ys != x)))


binary(
    "div",
    _divide,
    lambda s, x, y: s.div(x, y),
    lambda b, x, y, o, g: (b.div(g, y), b.neg(b.div(b.mul(g, o), y))),
    torch_name="DivBackward0",
    fuzz=Fuzz(domain=("any", "away"), nonfinite=True, smooth=True),
)


def _pow_grad(b, x, y, o, g):
    """As PyTorch's: no gradient to the base where the exponent is 0 (x ** 0 at x = 0 is flat, not 0 * inf), none to
    the exponent where the base is 0 and the exponent >= 0 (0 ** y is 0 or 1 there, not 0 * log 0)."""
    gx = b.select(b.eq(y, 0.0), 0.0, b.mul(g, b.mul(y, b.pow(x, b.sub(y, 1.0)))))
    gy = b.select(b.logical_and(b.eq(x, 0.0), b.ge(y, 0.0)), 0.0, b.mul(g, b.mul(o, b.log(x))))
    return gx, gy


binary(
    "pow",
    _pow,
    lambda s, x, y: s.pow(x, y),
    _pow_grad,
    torch_name="PowBackward0",
    fuzz=Fuzz(domain=("pos", "any"), nonfinite=True, value_errors=True, smooth=True),
)
binary(
    "maximum",
    np.maximum,
    lambda s, x, y: s.maximum(x, y),
    _maximum_grad(lambda b, p, q: b.gt(p, q)),
    torch_name="MaximumBackward0",
    fuzz=Fuzz(kinks="ties", exact=True),
    api=("maximum",),
)
binary(
    "minimum",
    np.minimum,
    lambda s, x, y: s.minimum(x, y),
    _maximum_grad(lambda b, p, q: b.lt(p, q)),
    torch_name="MinimumBackward0",
    fuzz=Fuzz(kinks="ties", exact=True),
    api=("minimum",),
)


def _compare(name: str, fn, scalar, kinks: str = "ties") -> None:
    def infer(types, attrs):
        return TensorType(broadcast_shapes(types[0].shape, types[1].shape), "bool")

    register(
        name,
        infer=infer,
        ref=lambda a, attrs: np.asarray(fn(a[0], a[1])),
        grad=None,
        pattern="broadcast",
        num_inputs=2,
        scalar=scalar,
        operands="promoted",
        torch_name=name.title().replace("_", "") + "Backward0",
        fuzz=Fuzz(kinks=kinks),
    )


_compare("gt", np.greater, lambda s, x, y: s.gt(x, y))
_compare("ge", np.greater_equal, lambda s, x, y: s.ge(x, y))
_compare("lt", np.less, lambda s, x, y: s.lt(x, y))
_compare("le", np.less_equal, lambda s, x, y: s.le(x, y))
_compare("eq", np.equal, lambda s, x, y: s.eq(x, y))
_compare("ne", np.not_equal, lambda s, x, y: s.ne(x, y))
_compare("logical_and", np.logical_and, lambda s, x, y: s.and_(x, y), kinks="zero")
_compare("logical_or", np.logical_or, lambda s, x, y: s.or_(x, y), kinks="zero")


def _integral(name, infer):
    """Bitwise ops: int64 and bool operands only (as PyTorch: floats are a TypeError)."""

    def rule(types, attrs):
        bad = [t.dtype for t in types if t.dtype not in ("int64", "bool")]
        if bad:
            raise TypeError(f"{name} needs integer or bool inputs, got {bad[0]}")
        return infer(types, attrs)

    return rule


def _bitwise(name: str, fn, scalar, num_inputs: int, api: str) -> None:
    infer = _same if num_inputs == 1 else _binary_infer
    register(
        name,
        infer=_integral(name, infer),
        ref=lambda a, attrs: np.asarray(fn(*a)),
        grad=None,
        pattern="elementwise" if num_inputs == 1 else "broadcast",
        num_inputs=num_inputs,
        scalar=scalar,
        flops=lambda node: 0,
        api=(api,),
        fuzz=Fuzz(exact=True),
        doc=f"{api}: bitwise on int64 (two's complement), logical on bool",
    )


_bitwise("bitwise_and", np.bitwise_and, lambda s, x, y: s.bit_and(x, y), 2, "bitwise_and")
_bitwise("bitwise_or", np.bitwise_or, lambda s, x, y: s.bit_or(x, y), 2, "bitwise_or")
_bitwise("bitwise_xor", np.bitwise_xor, lambda s, x, y: s.bit_xor(x, y), 2, "bitwise_xor")
_bitwise("bitwise_not", np.invert, lambda s, x: s.bit_not(x), 1, "bitwise_not")


def _select_infer(types, attrs):
    c, x, y = types
    if c.dtype != "bool":
        raise TypeError(f"select condition must be bool, got {c.dtype}")
    return TensorType(broadcast_shapes(c.shape, x.shape, y.shape), promote(x.dtype, y.dtype))


def _select_grad(b, node, cts):
    c, x, y = node.inputs
    g = cts[0]
    return [
        None,
        unbroadcast(b, b.select(c, g, 0.0), x.shape) if x.type.is_float else None,
        unbroadcast(b, b.select(c, 0.0, g), y.shape) if y.type.is_float else None,
    ]


register(
    "select",
    infer=_select_infer,
    ref=lambda a, attrs: np.where(a[0], a[1], a[2]),
    grad=_select_grad,
    pattern="broadcast",
    num_inputs=3,
    doc="where(cond, x, y)",
    scalar=lambda s, c, x, y: s.select(c, x, y),
    operands=lambda ins, out: ["bool", out, out],
    torch_name="WhereBackward0",
    fuzz=Fuzz(generator="select", smooth=True, exact=True, body=True),
)


def _cast_ref(a, attrs):
    """astype, quietly: NaN or an infinity cast to an integer (a value a select then drops, as in T5's position
    buckets) is as undefined as in PyTorch, which does not warn either."""
    with np.errstate(invalid="ignore", over="ignore"):
        return a[0].astype(attrs["dtype"])


def _cast_grad(b, node, cts):
    x = node.inputs[0]
    return [b.cast(cts[0], dtype=x.dtype) if x.type.is_float else None]


register(
    "cast",
    infer=lambda t, a: TensorType(t[0].shape, a["dtype"]),
    ref=_cast_ref,
    grad=_cast_grad,
    pattern="elementwise",
    num_inputs=1,
    scalar=lambda s, x: s.cast(x, s.attrs["dtype"]),
    operands="none",
    flops=lambda node: 0,
    torch_name="ToCopyBackward0",
    fuzz=Fuzz(generator="cast", kinks="cast", smooth=True, exact=True),
)

register(
    "stop_gradient",
    infer=_same,
    ref=lambda a, attrs: a[0],
    grad=lambda b, n, ct: [None],
    pattern="elementwise",
    num_inputs=1,
    doc="identity whose gradient is zero",
    scalar=lambda s, x: x,
    flops=lambda node: 0,
    view="detach/.data",
    fuzz=Fuzz(exact=True),
)

register(
    "full",
    infer=lambda t, a: TensorType(a["shape"], a["dtype"]),
    ref=lambda a, attrs: np.full(attrs["shape"], attrs["value"], dtype=attrs["dtype"]),
    grad=None,
    pattern="elementwise",
    num_inputs=0,
    doc="a tensor filled with one scalar",
    scalar=lambda s: s.const(s.attrs["value"]),
    remap=True,
    flops=lambda node: 0,
    fuzz=Fuzz(generator="full", smooth=True, exact=True, body=True),
)


def _constant_infer(types, attrs):
    from ..registry import to_type

    return to_type(attrs["value"])


register(
    "constant",
    infer=_constant_infer,
    ref=lambda a, attrs: attrs["value"],
    grad=None,
    pattern="opaque",
    num_inputs=0,
    doc="a tensor literal (results of constant folding)",
    lowering="constant",
    flops=lambda node: 0,
    fuzz=Fuzz(skip=True),
    roundoff=rounded_once,
)
