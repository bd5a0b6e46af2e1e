"""Injective primitives that move data without arithmetic: reshape, transpose, broadcast_to, slice, pad, concat."""

from __future__ import annotations

import numpy as np

from ..registry import Fuzz, register
from ..roundoff import joined, moved
from ..types import TensorType
from ._util import unbroadcast
from ..rows import concat_rows, sized_rows, slice_rows, transpose_rows


def _reshape_infer(types, attrs):
    t = types[0]
    shape = tuple(attrs["shape"])
    n = 1
    for s in shape:
        n *= s
    if n != t.size:
        raise ValueError(f"cannot reshape {t.shape} ({t.size} elements) to {shape} ({n} elements)")
    return TensorType(shape, t.dtype)


register(
    "reshape",
    infer=_reshape_infer,
    ref=lambda a, at: a[0].reshape(at["shape"]),
    grad=lambda b, n, ct: [b.reshape(ct[0], shape=n.inputs[0].shape)],
    pattern="injective",
    num_inputs=1,
    lowering="reshape",
    remap=True,
    reads_once=True,
    torch_name="ViewBackward0",
    view="view/reshape/flatten/squeeze/unsqueeze",
    fuzz=Fuzz(generator="reshape", smooth=True, exact=True, body=True),
    roundoff=moved,
    rows=sized_rows,
)


def _transpose_infer(types, attrs):
    t = types[0]
    perm = tuple(attrs["perm"])
    if sorted(perm) != list(range(t.ndim)):
        raise ValueError(f"perm {perm} is not a permutation of the {t.ndim} axes")
    return TensorType(tuple(t.shape[p] for p in perm), t.dtype)


def _transpose_grad(b, node, cts):
    perm = node.attrs["perm"]
    inv = tuple(int(i) for i in np.argsort(perm))
    return [b.transpose(cts[0], perm=inv)]


register(
    "transpose",
    infer=_transpose_infer,
    ref=lambda a, at: np.transpose(a[0], at["perm"]),
    grad=_transpose_grad,
    fixed_attrs=("perm",),
    pattern="injective",
    num_inputs=1,
    lowering="transpose",
    remap=True,
    view="transpose/permute/t",
    torch_name="PermuteBackward0",
    fuzz=Fuzz(generator="transpose", smooth=True, exact=True, body=True),
    roundoff=moved,
    rows=transpose_rows,
)


def _broadcast_infer(types, attrs):
    t = types[0]
    shape = tuple(attrs["shape"])
    lead = len(shape) - t.ndim
    if lead < 0 or any(s != 1 and s != shape[i + lead] for i, s in enumerate(t.shape)):
        raise ValueError(f"cannot broadcast {t.shape} to {shape}")
    return TensorType(shape, t.dtype)


register(
    "broadcast_to",
    infer=_broadcast_infer,
    ref=lambda a, at: np.broadcast_to(a[0], at["shape"]),
    grad=lambda b, n, ct: [unbroadcast(b, ct[0], n.inputs[0].shape)],
    pattern="broadcast",
    num_inputs=1,
    lowering="broadcast_to",
    remap=True,
    flops=lambda node: 0,
    torch_name="ExpandBackward0",
    view="expand/broadcast_to",
    fuzz=Fuzz(generator="broadcast_to", smooth=True, exact=True, body=True),
    roundoff=moved,
)


def _slice_infer(types, attrs):
    t = types[0]
    starts, stops, steps = attrs["starts"], attrs["stops"], attrs["steps"]
    if not len(starts) == len(stops) == len(steps) == t.ndim:
        raise ValueError("slice needs a start, stop and step for every axis")
    shape = []
    for s, st, sp, d in zip(starts, stops, steps, t.shape):
        if sp <= 0 or not (0 <= s <= d and 0 <= st <= d):
            raise ValueError(f"slice {s}:{st}:{sp} does not fit an axis of size {d}")
        shape.append(max(0, -(-(st - s) // sp)))
    return TensorType(tuple(shape), t.dtype)


def _slice_ref(a, at):
    return a[0][tuple(slice(s, e, p) for s, e, p in zip(at["starts"], at["stops"], at["steps"]))]


def _slice_grad(b, node, cts):
    x = node.inputs[0]
    return [b.slice_grad(cts[0], shape=x.shape, starts=node.attrs["starts"], steps=node.attrs["steps"])]


register(
    "slice",
    infer=_slice_infer,
    ref=_slice_ref,
    grad=_slice_grad,
    pattern="injective",
    num_inputs=1,
    doc="basic strided slice with non-negative start/stop and positive step on every axis",
    lowering="slice",
    view="indexing/slicing/narrow/split/chunk",
    remap=True,
    torch_name="SliceBackward0",
    fuzz=Fuzz(generator="slice", smooth=True, exact=True, body=True),
    roundoff=moved,
    rows=slice_rows,
)


def _slice_grad_ref(a, at):
    out = np.zeros(at["shape"], a[0].dtype)
    idx = tuple(slice(s, s + p * (n - 1) + 1 if n else s, p) for s, p, n in zip(at["starts"], at["steps"], a[0].shape))
    out[idx] = a[0]
    return out


def _slice_grad_grad(b, node, cts):
    g = node.inputs[0]
    stops = tuple(
        s + p * (n - 1) + 1 if n else s for s, p, n in zip(node.attrs["starts"], node.attrs["steps"], g.shape)
    )
    return [b.slice(cts[0], starts=node.attrs["starts"], stops=stops, steps=node.attrs["steps"])]


register(
    "slice_grad",
    infer=lambda t, at: TensorType(at["shape"], t[0].dtype),
    ref=_slice_grad_ref,
    grad=_slice_grad_grad,
    pattern="injective",
    num_inputs=1,
    doc="scatter a slice back into zeros of the sliced tensor's shape",
    lowering="slice_grad",
    fuzz=Fuzz(generator="slice_grad", smooth=True, exact=True),
    roundoff=moved,
    rows=sized_rows,
)


def _concat_infer(types, attrs):
    if not types:
        raise ValueError("concat needs at least one operand")
    first = types[0]
    axis = attrs["axis"]
    if not 0 <= axis < first.ndim:
        raise ValueError(f"axis {axis} out of range for {first.ndim}-d operands")
    for t in types[1:]:
        if t.dtype != first.dtype:
            raise TypeError(f"operands of one dtype expected, got {first.dtype} and {t.dtype}")
        if t.ndim != first.ndim or any(a != b for i, (a, b) in enumerate(zip(t.shape, first.shape)) if i != axis):
            raise ValueError(f"sizes must match except along axis {axis}: {first.shape} and {t.shape}")
    shape = list(first.shape)
    shape[axis] = sum(t.shape[axis] for t in types)
    return TensorType(tuple(shape), first.dtype)


def concat_offsets(node) -> list:
    """Start of each operand along the concat axis (and the total size at the end)."""
    axis, offsets = node.attrs["axis"], [0]
    for v in node.inputs:
        offsets.append(offsets[-1] + v.shape[axis])
    return offsets


def _concat_grad(b, node, cts):
    axis, nd = node.attrs["axis"], node.outputs[0].type.ndim
    out = node.outputs[0].shape
    grads = []
    for v, lo, hi in zip(node.inputs, concat_offsets(node), concat_offsets(node)[1:]):
        starts = tuple(lo if i == axis else 0 for i in range(nd))
        stops = tuple(hi if i == axis else out[i] for i in range(nd))
        grads.append(b.slice(cts[0], starts=starts, stops=stops, steps=(1,) * nd))
    return grads


register(
    "concat",
    infer=_concat_infer,
    ref=lambda a, at: np.concatenate(a, axis=at["axis"]),
    grad=_concat_grad,
    fixed_attrs=("axis",),
    pattern="injective",
    doc="join operands of one dtype along an axis (all other sizes equal)",
    lowering="concat",
    torch_name="CatBackward0",
    fuzz=Fuzz(generator="concat", smooth=True, exact=True, body=True),
    roundoff=joined,
    rows=concat_rows,
)
