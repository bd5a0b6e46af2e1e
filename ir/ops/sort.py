"""Order-dependent primitives along one axis: argsort (sort, topk, argsort) and cumsum (prefix sums).

    argsort(x; axis, descending, k)  out[..j..] = the position along `axis` of the j-th element in sorted order
                                     (j < k: k, by default the axis' size, makes it topk's selection)
    cumsum(x; axis, reverse)         out[..j..] = x[..0..] + ... + x[..j..]   (reverse: x[..j..] + ... + x[..n-1..])

argsort is stable (equal elements keep their order, also when descending) and sorts NaN above every number, as
PyTorch's stable sort; sort, topk and the values of sort are gathers of x at these indices (take_along), whose
gradient is a scatter-add. Both ops run as a loop per row along `axis`: a heap sort ordered by (value, position),
which gives the stable order without merge buffers (with k < the axis' size, a heap of the k first pairs that a scan
of the row updates), and a running sum.
"""

from __future__ import annotations

import numpy as np

from ..registry import Fuzz, register
from ..roundoff import prefix_sums
from ..types import TensorType
from ._util import norm_axes


def _axis(attrs, ndim: int) -> int:
    return norm_axes(attrs["axis"], ndim)[0] if ndim else 0


def _argsort_infer(types, attrs):
    x = types[0]
    if x.ndim == 0:
        raise ValueError("argsort needs an input with at least one dimension")
    a = _axis(attrs, x.ndim)
    k = attrs.get("k", x.shape[a])
    if not 0 <= k <= x.shape[a]:
        raise ValueError(f"k={k} is out of range for an axis of size {x.shape[a]}")
    return TensorType(x.shape[:a] + (k,) + x.shape[a + 1 :], "int64")


def sort_keys(x: np.ndarray, descending: bool) -> tuple:
    """Keys for np.lexsort (last key first) ordering x's last axis stably, NaN above every number."""
    if x.dtype.kind == "f":
        nan = np.isnan(x)
        if not nan.any():
            return (-x,) if descending else (x,)
        v = np.where(nan, 0.0, x)
        return (-v, ~nan) if descending else (v, nan)
    v = x.astype(np.int64)
    return (~v,) if descending else (v,)  # ~v = -v - 1 reverses the order without overflowing


def _argsort_ref(arrays, attrs):
    x = arrays[0]
    a = _axis(attrs, x.ndim)
    moved = np.moveaxis(x, a, -1)
    keys = sort_keys(moved, bool(attrs.get("descending")))
    k = attrs.get("k", x.shape[a])
    if not moved.size:
        order = moved
    elif len(keys) == 1 and 0 < k <= moved.shape[-1] // 4:
        order = _first_k(keys[0], k)
    elif len(keys) == 1:
        order = np.argsort(keys[0], axis=-1, kind="stable")
    else:
        order = np.lexsort(keys, axis=-1)
    return np.moveaxis(np.asarray(order, np.int64)[..., :k], -1, a)


def _first_k(key: np.ndarray, k: int) -> np.ndarray:
    """The positions of the k smallest keys of each row in stable order (ties by position), without sorting the
    row: a partition finds the k-th key, the keys below it and the first of those equal to it are the k, and only
    they are sorted (topk of a vocabulary: O(n + k log k) per row)."""
    n = key.shape[-1]
    rows = key.reshape(-1, n)
    kth = np.partition(rows, k - 1, axis=-1)[:, k - 1 : k]
    below = rows < kth
    equal = rows == kth
    room = k - below.sum(-1, keepdims=True)
    chosen = below | (equal & (np.cumsum(equal, axis=-1) <= room))
    cols = np.nonzero(chosen)[1].reshape(-1, k)  # (exactly k per row, in position order)
    order = np.take_along_axis(cols, np.argsort(np.take_along_axis(rows, cols, -1), axis=-1, kind="stable"), -1)
    return order.reshape(key.shape[:-1] + (k,))


register(
    "argsort",
    infer=_argsort_infer,
    ref=_argsort_ref,
    grad=None,  # integer positions: nothing to differentiate
    fixed_attrs=("axis", "descending"),
    pattern="opaque",
    num_inputs=1,
    doc="positions that sort x along `axis` (stable; NaN above every number; descending keeps ties in order); "
    "with `k`, the first k of them (topk)",
    schedule="sort",
    flops=lambda n: 0,
    fuzz=Fuzz(generator="argsort", kinks="sort_ties"),
)


def _cumsum_infer(types, attrs):
    x = types[0]
    _axis(attrs, x.ndim)
    return TensorType(x.shape, "int64" if x.dtype == "bool" else x.dtype)


def _cumsum_ref(arrays, attrs):
    """Running sums; float32 ones accumulate in float64 (as PyTorch's CPU kernel: one chain of float32 adds drifts,
    0.1 summed 10^6 times gave 100958) and round once per element."""
    x = arrays[0]
    out = np.int64 if x.dtype == bool else x.dtype
    if x.ndim == 0:
        return np.asarray(x, out)
    a = _axis(attrs, x.ndim)
    acc = np.float64 if x.dtype == np.float32 else out
    with np.errstate(invalid="ignore", over="ignore"):  # inf + -inf is NaN, as in compiled code
        if attrs.get("reverse"):
            return np.flip(np.cumsum(np.flip(x, a), axis=a, dtype=acc), a).astype(out, copy=False)
        return np.cumsum(x, axis=a, dtype=acc).astype(out, copy=False)


def _cumsum_grad(b, node, cts):
    x = node.inputs[0]
    if not x.type.is_float:
        return [None]
    return [b.cumsum(cts[0], axis=node.attrs["axis"], reverse=not node.attrs.get("reverse"))]


register(
    "cumsum",
    infer=_cumsum_infer,
    ref=_cumsum_ref,
    grad=_cumsum_grad,
    fixed_attrs=("axis", "reverse"),
    pattern="opaque",
    num_inputs=1,
    doc="running sums along `axis` (reverse: from the end); bool counts as int64",
    schedule="prefix_sum",
    flops=lambda n: n.inputs[0].type.size,
    torch_name="CumsumBackward0",
    fuzz=Fuzz(generator="cumsum", smooth=True, body=True),
    roundoff=prefix_sums,
)
