"""Index-driven primitives: gathers that copy selected elements (exact, any dtype) and their scatter-add gradients.

    take(x, idx; axis)                 out[p, i, q]  = x[p, idx[i], q]          (index_select, embedding, x[idx])
    take_grad(g, idx; axis, size)      out[p, j, q]  = sum of g[p, i, q] over i with idx[i] == j
    take_along(x, idx; axis)           out[..i..]    = x[..idx[..i..]..]        (torch.gather: idx has x's rank)
    take_along_grad(g, idx; axis, size) out[..j..]    = sum of g[..i..] with idx[..i..] == j along the axis

`p` are the axes before `axis`, `q` those after it; `i` runs over every index of idx. An index outside
[0, size) is an error (IndexError in the reference; compiled code reports it after the call); callers map
negative indices first when they mean them.
"""

from __future__ import annotations

import numpy as np

from ..registry import Fuzz, register
from ._util import dim_out_of_range
from ..roundoff import gathered, largest_combined, scattered
from ..types import TensorType


def _axis(attrs, ndim: int) -> int:
    a = attrs["axis"]
    if not -ndim <= a < max(ndim, 1):
        raise IndexError(dim_out_of_range(a, ndim))
    return a % max(ndim, 1)


def _index_type(t: TensorType, what: str) -> None:
    if t.dtype != "int64":
        raise TypeError(f"{what} needs int64 indices, got {t.dtype}")


def check_range(idx: np.ndarray, size: int, op: str) -> None:
    """Raise IndexError naming the first index of `idx` outside [0, size)."""
    bad = (idx < 0) | (idx >= size)
    if bad.any():
        raise IndexError(f"{op}: index {int(idx[bad].flat[0])} is out of range for a dimension of size {size}")


# -- take --------------------------------------------------------------------------------------------------------
def _take_infer(types, attrs):
    x, idx = types
    _index_type(idx, "take")
    if x.ndim == 0:
        raise ValueError("take needs an input with at least one dimension")
    a = _axis(attrs, x.ndim)
    return TensorType(x.shape[:a] + idx.shape + x.shape[a + 1 :], x.dtype)


def _take_ref(arrays, attrs):
    x, idx = arrays
    a = _axis(attrs, x.ndim)
    check_range(idx, x.shape[a], "take")
    return np.take(x, idx, axis=a)


def _take_grad(b, node, cts):
    x, idx = node.inputs
    a = _axis(node.attrs, x.type.ndim)
    return [b.take_grad(cts[0], idx, axis=a, size=x.shape[a]), None]


register(
    "take",
    infer=_take_infer,
    ref=_take_ref,
    grad=_take_grad,
    fixed_attrs=("axis",),
    pattern="injective",
    num_inputs=2,
    index_checked=True,
    doc="out[p, i, q] = x[p, idx[i], q]: the elements at idx along `axis`, copied exactly",
    lowering="take",
    torch_name="IndexSelectBackward0",
    fuzz=Fuzz(generator="take", smooth=True, exact=True),
    roundoff=gathered,
)


def _addable(t: TensorType, what: str) -> None:
    """A scatter-add's values: floating-point gradients, or int64 values (added exactly: index_put of int64)."""
    if t.dtype == "bool":
        raise TypeError(f"{what} adds floating-point or int64 values, got {t.dtype}")


def _take_grad_infer(types, attrs):
    g, idx = types
    _index_type(idx, "take_grad")
    _addable(g, "take_grad")
    a, k = attrs["axis"], idx.ndim
    if not 0 <= a <= g.ndim - k or g.shape[a : a + k] != idx.shape:
        raise ValueError(f"gradient {g.shape} does not hold index shape {idx.shape} at axis {a}")
    return TensorType(g.shape[:a] + (attrs["size"],) + g.shape[a + k :], g.dtype)


def _take_grad_ref(arrays, attrs):
    g, idx = arrays
    a, k, n = attrs["axis"], idx.ndim, attrs["size"]
    check_range(idx, n, "take_grad")
    out = np.zeros(g.shape[:a] + (n,) + g.shape[a + k :], g.dtype)
    moved = np.moveaxis(out, a, 0)  # (n, p..., q...): rows addressed by index
    src = np.moveaxis(g.reshape(g.shape[:a] + (idx.size,) + g.shape[a + k :]), a, 0)
    np.add.at(moved, idx.reshape(-1), src)
    return out


register(
    "take_grad",
    infer=_take_grad_infer,
    ref=_take_grad_ref,
    grad=lambda b, node, cts: [b.take(cts[0], node.inputs[1], axis=node.attrs["axis"]), None],
    fixed_attrs=("axis",),
    pattern="opaque",
    num_inputs=2,
    index_checked=True,
    doc="scatter-add of g's slices into `size` slots along `axis` at positions idx (gradient of take)",
    schedule="scatter_add",
    flops=lambda n: n.inputs[0].type.size,
    fuzz=Fuzz(generator="take_grad", smooth=True),
    roundoff=scattered,
)


# -- take_along (torch.gather) -----------------------------------------------------------------------------------
def _within_outside_axis(ishape: tuple, shape: tuple, a: int, what: str) -> None:
    """An index gathering from or scattering into `shape` along axis a must not be larger than it along the other axes."""
    if any(i > s for d, (i, s) in enumerate(zip(ishape, shape)) if d != a):
        raise ValueError(f"index {ishape} is larger than the {what} {shape} outside axis {a}")


def _take_along_infer(types, attrs):
    x, idx = types
    _index_type(idx, "take_along")
    if idx.ndim != x.ndim or x.ndim == 0:
        raise ValueError(f"index {idx.shape} must have the input's {x.ndim} dimensions")
    _within_outside_axis(idx.shape, x.shape, _axis(attrs, x.ndim), "input")
    return TensorType(idx.shape, x.dtype)


def _along_positions(idx: np.ndarray, a: int) -> tuple:
    """Index arrays that address x[..., idx[...], ...] for every position of idx."""
    grids = list(np.indices(idx.shape, sparse=True))
    grids[a] = idx
    return tuple(grids)


def _take_along_ref(arrays, attrs):
    x, idx = arrays
    a = _axis(attrs, x.ndim)
    check_range(idx, x.shape[a], "take_along")
    return x[_along_positions(idx, a)]


def _take_along_grad(b, node, cts):
    x, idx = node.inputs
    a = _axis(node.attrs, x.type.ndim)
    return [b.take_along_grad(cts[0], idx, axis=a, shape=x.shape), None]


register(
    "take_along",
    infer=_take_along_infer,
    ref=_take_along_ref,
    grad=_take_along_grad,
    fixed_attrs=("axis",),
    pattern="injective",
    num_inputs=2,
    index_checked=True,
    doc="out[..i..] = x[..idx[..i..]..] with the index replacing position `axis` (torch.gather)",
    lowering="take_along",
    torch_name="GatherBackward0",
    fuzz=Fuzz(generator="take_along", smooth=True, exact=True),
    roundoff=gathered,
)


def _take_along_grad_infer(types, attrs):
    g, idx = types
    _index_type(idx, "take_along_grad")
    _addable(g, "take_along_grad")
    shape = tuple(attrs["shape"])
    if g.shape != idx.shape or len(shape) != idx.ndim:
        raise ValueError(f"gradient {g.shape} and index {idx.shape} must match, with the input's rank {len(shape)}")
    _within_outside_axis(idx.shape, shape, _axis(attrs, len(shape)), "input")
    return TensorType(shape, g.dtype)


def _take_along_grad_ref(arrays, attrs):
    g, idx = arrays
    shape = tuple(attrs["shape"])
    a = _axis(attrs, len(shape))
    check_range(idx, shape[a], "take_along_grad")
    out = np.zeros(shape, g.dtype)
    np.add.at(out, _along_positions(idx, a), g)
    return out


def _scatter_extreme_infer(types, attrs):
    src, idx, base = types
    _index_type(idx, "scatter_extreme_along")
    if not src.is_float or src.dtype != base.dtype:
        raise TypeError(
            f"scatter_extreme_along combines floating-point values of one dtype, got {src.dtype} into {base.dtype}"
        )
    if idx.shape != src.shape or src.ndim != base.ndim or base.ndim == 0:
        raise ValueError(f"values {src.shape} and index {idx.shape} must match, with the base's rank {base.ndim}")
    _within_outside_axis(idx.shape, base.shape, _axis(attrs, base.ndim), "base")
    if attrs["mode"] not in ("max", "min"):
        raise ValueError(f"scatter_extreme_along mode must be 'max' or 'min', got {attrs['mode']!r}")
    return TensorType(base.shape, base.dtype)


def _scatter_extreme_ref(arrays, attrs):
    src, idx, base = arrays
    a = _axis(attrs, base.ndim)
    check_range(idx, base.shape[a], "scatter_extreme_along")
    out = np.array(base, copy=True)
    (np.maximum if attrs["mode"] == "max" else np.minimum).at(out, _along_positions(idx, a), src)  # (NaN wins)
    return out


register(
    "scatter_extreme_along",
    infer=_scatter_extreme_infer,
    ref=_scatter_extreme_ref,
    # (no gradient flows through: scatter_reduce's amax / amin, its one user, pass it detached values and build their
    # gradient from the ties: graphnn/core/extra_api.py)
    grad=lambda b, node, cts: [None, None, None],
    fixed_attrs=("axis", "mode"),
    pattern="opaque",
    num_inputs=3,
    index_checked=True,
    doc="base with each src element max- or min-combined into the slot idx names along `axis` (NaN wins)",
    schedule="scatter_extreme_along",
    flops=lambda n: n.inputs[0].type.size,
    fuzz=Fuzz(generator="scatter_extreme_along", exact=True),
    roundoff=largest_combined,
)


register(
    "take_along_grad",
    infer=_take_along_grad_infer,
    ref=_take_along_grad_ref,
    grad=lambda b, node, cts: [b.take_along(cts[0], node.inputs[1], axis=node.attrs["axis"]), None],
    fixed_attrs=("axis",),
    pattern="opaque",
    num_inputs=2,
    index_checked=True,
    doc="scatter-add of g into zeros of `shape` at positions idx along `axis` (gradient of take_along)",
    schedule="scatter_add_along",
    flops=lambda n: n.inputs[0].type.size,
    fuzz=Fuzz(generator="take_along_grad", smooth=True),
    roundoff=scattered,
)
