"""Reductions: sum, prod, max, argmax over axes."""

from __future__ import annotations

import numpy as np

from ..registry import Fuzz, register
from ..roundoff import largest_error, product, reduction
from ..types import TensorType
from ._util import keepdims_shape, norm_axes


def _reduced(t, attrs, dtype=None):
    axes = norm_axes(attrs["axes"], t.ndim)
    shape = (
        keepdims_shape(t.shape, axes)
        if attrs.get("keepdims")
        else tuple(s for i, s in enumerate(t.shape) if i not in axes)
    )
    return TensorType(shape, dtype or t.dtype)


def _sum_infer(types, attrs):
    t = types[0]
    return _reduced(t, attrs, "int64" if t.dtype == "bool" else t.dtype)


def _expand_back(b, g, x, attrs):
    axes = norm_axes(attrs["axes"], x.type.ndim)
    g = b.reshape(g, shape=keepdims_shape(x.shape, axes))
    return b.broadcast_to(g, shape=x.shape)


def _sum_terms(node, ins) -> int:
    shape = np.shape(ins[0])
    return int(np.prod([shape[a] for a in norm_axes(node.attrs["axes"], len(shape))], dtype=np.int64))


def _sum_ref(a, at):
    x = a[0]
    return np.asarray(np.sum(x, axis=norm_axes(at["axes"], x.ndim), keepdims=bool(at.get("keepdims"))))


register(
    "sum",
    infer=_sum_infer,
    ref=_sum_ref,
    grad=lambda b, n, ct: [_expand_back(b, ct[0], n.inputs[0], n.attrs) if n.inputs[0].type.is_float else None],
    fixed_attrs=("axes", "keepdims"),
    pattern="reduce",
    num_inputs=1,
    lowering="reduce",
    schedule="column_sum",
    reads_once=True,
    monoid=(0, lambda s, acc, x: s.add(acc, x)),
    torch_name="SumBackward1",
    fuzz=Fuzz(generator="reduce", smooth=True, body=True),
    roundoff=reduction(_sum_terms),
)


def _prod_ref(a, at):
    x = a[0]
    out = np.int64 if x.dtype == bool else x.dtype
    with np.errstate(over="ignore", invalid="ignore"):
        return np.asarray(np.prod(x, axis=norm_axes(at["axes"], x.ndim), keepdims=bool(at.get("keepdims")), dtype=out))


def _prod_grad(b, node, cts):
    """d prod / d x_i = the product of the other factors: prod / x_i without zeros; with one zero, the product of the
    nonzero factors at the zero and 0 elsewhere; with two or more, 0 (PyTorch's rule)."""
    x = node.inputs[0]
    if not x.type.is_float:
        return [None]
    axes = node.attrs["axes"]
    is_zero = b.eq(x, 0.0)
    nz = b.select(is_zero, 1.0, x)
    p_nz = _expand_back(b, b.prod(nz, axes=axes, keepdims=True), x, {"axes": axes, "keepdims": True})
    zeros = _expand_back(
        b, b.sum(b.cast(is_zero, dtype="int64"), axes=axes, keepdims=True), x, {"axes": axes, "keepdims": True}
    )
    factor = b.select(is_zero, b.select(b.eq(zeros, 1), p_nz, 0.0), b.select(b.eq(zeros, 0), b.div(p_nz, nz), 0.0))
    return [b.mul(_expand_back(b, cts[0], x, node.attrs), factor)]


register(
    "prod",
    infer=_sum_infer,
    ref=_prod_ref,
    grad=_prod_grad,
    fixed_attrs=("axes", "keepdims"),
    pattern="reduce",
    num_inputs=1,
    doc="product over axes (bool counts as int64; int64 wraps)",
    lowering="reduce",
    reads_once=True,
    monoid=(1, lambda s, acc, x: s.mul(acc, x)),
    torch_name="ProdBackward1",
    fuzz=Fuzz(generator="reduce", smooth=True),
    roundoff=product(_sum_terms),
)


def _max_ref(a, at):
    x = a[0]
    return np.asarray(np.max(x, axis=norm_axes(at["axes"], x.ndim), keepdims=bool(at.get("keepdims"))))


def _max_grad(b, node, cts):
    x = node.inputs[0]
    if not x.type.is_float:
        return [None]
    y = _expand_back(b, node.outputs[0], x, node.attrs)
    mask = b.cast(b.eq(x, y), dtype=x.dtype)
    count = _expand_back(
        b, b.sum(mask, axes=node.attrs["axes"], keepdims=bool(node.attrs.get("keepdims"))), x, node.attrs
    )
    return [b.div(b.mul(_expand_back(b, cts[0], x, node.attrs), mask), count)]


def _nonempty(t, axes):
    """max and argmax have no identity: every reduced axis needs at least one element (as PyTorch)."""
    for a in norm_axes(axes, t.ndim):
        if t.ndim and t.shape[a] == 0:
            raise ValueError(f"cannot reduce axis {a} of size 0 (the maximum of no elements is undefined)")
    return t


register(
    "max",
    infer=lambda t, at: _reduced(_nonempty(t[0], at["axes"]), at),
    ref=_max_ref,
    grad=_max_grad,
    fixed_attrs=("axes", "keepdims"),
    pattern="reduce",
    num_inputs=1,
    doc="maximum over axes; the gradient is shared equally among tied maxima (as torch.amax)",
    lowering="reduce",
    monoid=("lowest", lambda s, acc, x: s.maximum(x, acc)),
    torch_name="AmaxBackward0",
    fuzz=Fuzz(generator="reduce", kinks="reduce_ties", exact=True),
    roundoff=largest_error,
)


def _argmax_ref(a, at):
    x = a[0]
    axis = norm_axes(at["axis"], x.ndim)[0]
    return np.asarray(np.argmax(x, axis=axis, keepdims=bool(at.get("keepdims"))), dtype=np.int64)


register(
    "argmax",
    infer=lambda t, at: _reduced(
        _nonempty(t[0], at["axis"]), {"axes": at["axis"], "keepdims": at.get("keepdims")}, "int64"
    ),
    ref=_argmax_ref,
    grad=None,
    fixed_attrs=("axis", "keepdims"),
    pattern="reduce",
    num_inputs=1,
    doc="index of the first maximum along one axis",
    lowering="argmax",
    fuzz=Fuzz(generator="argmax", kinks="reduce_ties"),
)
