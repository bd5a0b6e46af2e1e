"""Elementwise primitives: unary math, broadcasting binary arithmetic, comparisons, select, cast, constants."""
from __future__ import annotations

import numpy as np

from ..registry import register
from ..types import TensorType, broadcast_shapes, promote, FLOAT_DTYPES
from ._util import unbroadcast


def _same(types, attrs):
    return types[0]


def _float_only(name):
    def infer(types, attrs):
        if types[0].dtype not in FLOAT_DTYPES:
            raise TypeError(f"{name} needs a floating-point input, got {types[0].dtype}")
        return types[0]
    return infer


# NumPy has no boolean negative, sign or subtract: these ops reject all-bool inputs.
NO_BOOL = ("neg", "sign", "sub")


def _no_bool(name, infer):
    def rule(types, attrs):
        if all(t.dtype == "bool" for t in types):
            raise TypeError(f"{name} is not defined for bool inputs")
        return infer(types, attrs)
    return rule if name in NO_BOOL else infer


def _sigmoid(x):
    with np.errstate(over="ignore"):
        return (1.0 / (1.0 + np.exp(-x))).astype(x.dtype)


# name: (numpy kernel, gradient rule (b, x, y, g) -> dx or None, float only)
UNARY = {
    "neg": (np.negative, lambda b, x, y, g: b.neg(g), False),
    "abs": (np.abs, lambda b, x, y, g: b.mul(g, b.sign(x)), False),
    "sign": (np.sign, lambda b, x, y, g: None, False),  # zero gradient (piecewise constant)
    "exp": (np.exp, lambda b, x, y, g: b.mul(g, y), True),
    "log": (np.log, lambda b, x, y, g: b.div(g, x), True),
    "sqrt": (np.sqrt, lambda b, x, y, g: b.div(b.mul(g, 0.5), y), True),
    "tanh": (np.tanh, lambda b, x, y, g: b.mul(g, b.sub(1.0, b.mul(y, y))), True),
    "sigmoid": (_sigmoid, lambda b, x, y, g: b.mul(g, b.mul(y, b.sub(1.0, y))), True),
    "relu": (lambda x: np.maximum(x, np.zeros((), x.dtype)), lambda b, x, y, g: b.select(b.gt(y, 0.0), g, 0.0), False),
}


def _unary(name, fn, grad, float_only):
    def ref(a, attrs):
        with np.errstate(all="ignore"):
            return np.asarray(fn(a[0])).astype(a[0].dtype, copy=False)

    def grad_rule(b, node, cts):
        return [grad(b, node.inputs[0], node.outputs[0], cts[0])]

    register(name, infer=_no_bool(name, _float_only(name) if float_only else _same), ref=ref,
             grad=grad_rule, pattern="elementwise", num_inputs=1)


for _n, (_f, _g, _fo) in UNARY.items():
    _unary(_n, _f, _g, _fo)


def _binary_infer(types, attrs):
    shape = broadcast_shapes(types[0].shape, types[1].shape)
    return TensorType(shape, promote(types[0].dtype, types[1].dtype))


def _maximum_grad(pick):
    def rule(b, x, y, g):
        gx = b.select(pick(b, x, y), g, b.select(b.eq(x, y), b.mul(g, 0.5), 0.0))
        gy = b.select(pick(b, y, x), g, b.select(b.eq(x, y), b.mul(g, 0.5), 0.0))
        return gx, gy
    return rule


def _pow(x, y):
    """x ** y elementwise by C's pow. (NumPy computes a broadcast exponent of 0.5, -1 or 2 with sqrt, reciprocal or
    square instead, which differs at -inf and -0; compiled code, and PyTorch's tensor ** tensor, use pow.)"""
    if x.dtype.kind != "f" and y.dtype.kind != "f":
        return np.power(x, y)
    shape = np.broadcast_shapes(x.shape, y.shape)
    flat = [np.array(np.broadcast_to(a, shape)).reshape(-1) for a in (x, y)]
    return np.power(*flat).reshape(shape)


BINARY = {
    "add": (np.add, lambda b, x, y, o, g: (g, g)),
    "sub": (np.subtract, lambda b, x, y, o, g: (g, b.neg(g))),
    "mul": (np.multiply, lambda b, x, y, o, g: (b.mul(g, y), b.mul(g, x))),
    "div": (np.divide, lambda b, x, y, o, g: (b.div(g, y), b.neg(b.div(b.mul(g, o), y)))),
    "pow": (_pow, lambda b, x, y, o, g: (b.mul(g, b.mul(y, b.pow(x, b.sub(y, 1.0)))),
                                         b.mul(g, b.mul(o, b.log(x))))),
    "maximum": (np.maximum, lambda b, x, y, o, g: _maximum_grad(lambda b_, p, q: b_.gt(p, q))(b, x, y, g)),
    "minimum": (np.minimum, lambda b, x, y, o, g: _maximum_grad(lambda b_, p, q: b_.lt(p, q))(b, x, y, g)),
}


def _binary(name, fn, grad):
    def ref(a, attrs):
        with np.errstate(all="ignore"):
            return np.asarray(fn(a[0], a[1]))

    def grad_rule(b, node, cts):
        x, y = node.inputs
        g = cts[0]
        out = node.outputs[0]
        # integer / bool operands enter the gradient formulas as the (floating) result dtype: log(x), y - 1
        xf = x if x.type.is_float else b.cast(x, dtype=out.dtype)
        yf = y if y.type.is_float else b.cast(y, dtype=out.dtype)
        gx, gy = grad(b, xf, yf, out, g)
        return [unbroadcast(b, gx, x.shape) if x.type.is_float else None,
                unbroadcast(b, gy, y.shape) if y.type.is_float else None]

    register(name, infer=_no_bool(name, _binary_infer), ref=ref, grad=grad_rule, pattern="broadcast", num_inputs=2)


for _n, (_f, _g) in BINARY.items():
    _binary(_n, _f, _g)


COMPARE = {"gt": np.greater, "ge": np.greater_equal, "lt": np.less, "le": np.less_equal,
           "eq": np.equal, "ne": np.not_equal, "logical_and": np.logical_and, "logical_or": np.logical_or}


def _compare(name, fn):
    def infer(types, attrs):
        return TensorType(broadcast_shapes(types[0].shape, types[1].shape), "bool")

    register(name, infer=infer, ref=lambda a, attrs: np.asarray(fn(a[0], a[1])), grad=None,
             pattern="broadcast", num_inputs=2)


for _n, _f in COMPARE.items():
    _compare(_n, _f)


def _select_infer(types, attrs):
    c, x, y = types
    if c.dtype != "bool":
        raise TypeError(f"select condition must be bool, got {c.dtype}")
    return TensorType(broadcast_shapes(c.shape, x.shape, y.shape), promote(x.dtype, y.dtype))


def _select_grad(b, node, cts):
    c, x, y = node.inputs
    g = cts[0]
    return [None,
            unbroadcast(b, b.select(c, g, 0.0), x.shape) if x.type.is_float else None,
            unbroadcast(b, b.select(c, 0.0, g), y.shape) if y.type.is_float else None]


register("select", infer=_select_infer, ref=lambda a, attrs: np.where(a[0], a[1], a[2]),
         grad=_select_grad, pattern="broadcast", num_inputs=3, doc="where(cond, x, y)")


def _cast_grad(b, node, cts):
    x = node.inputs[0]
    return [b.cast(cts[0], dtype=x.dtype) if x.type.is_float else None]


register("cast", infer=lambda t, a: TensorType(t[0].shape, a["dtype"]),
         ref=lambda a, attrs: a[0].astype(attrs["dtype"]), grad=_cast_grad, pattern="elementwise", num_inputs=1)

register("stop_gradient", infer=_same, ref=lambda a, attrs: a[0], grad=lambda b, n, ct: [None], pattern="elementwise",
         num_inputs=1, doc="identity whose gradient is zero")

register("full", infer=lambda t, a: TensorType(a["shape"], a["dtype"]),
         ref=lambda a, attrs: np.full(attrs["shape"], attrs["value"], dtype=attrs["dtype"]),
         grad=None, pattern="elementwise", num_inputs=0, doc="a tensor filled with one scalar")


def _constant_infer(types, attrs):
    from ..registry import to_type

    return to_type(attrs["value"])


register("constant", infer=_constant_infer, ref=lambda a, attrs: attrs["value"], grad=None,
         pattern="opaque", num_inputs=0, doc="a tensor literal (results of constant folding)")
