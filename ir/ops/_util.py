"""Small helpers shared by gradient rules."""

from __future__ import annotations


def unbroadcast(b, g, shape: tuple):
    """Sum a broadcast cotangent `g` back down to `shape`."""
    if g is None or tuple(g.shape) == tuple(shape):
        return g
    lead = len(g.shape) - len(shape)
    axes = tuple(range(lead)) + tuple(i + lead for i, s in enumerate(shape) if s == 1 and g.shape[i + lead] != 1)
    if axes:
        g = b.sum(g, axes=axes, keepdims=False)
    if tuple(g.shape) != tuple(shape):
        g = b.reshape(g, shape=tuple(shape))
    return g


def dim_out_of_range(a: int, ndim: int) -> str:
    """PyTorch's message for a dimension a tensor of ndim dimensions does not have."""
    n = max(ndim, 1)
    return f"Dimension out of range (expected to be in range of [{-n}, {n - 1}], but got {a})"


def norm_axes(axes, ndim: int) -> tuple:
    """Normalize reduction axes (None = all) to a sorted tuple of non-negative ints."""
    if axes is None:
        return tuple(range(ndim))
    if isinstance(axes, int):
        axes = (axes,)
    out = []
    for a in axes:
        if not -ndim <= a < max(ndim, 1):
            raise IndexError(dim_out_of_range(a, ndim))
        out.append(a % ndim if ndim else 0)
    if len(set(out)) != len(out):
        raise ValueError(f"repeated axis in {tuple(axes)}")
    return tuple(sorted(out))


def keepdims_shape(shape: tuple, axes: tuple) -> tuple:
    return tuple(1 if i in axes else s for i, s in enumerate(shape))


def is_zero_fill(v) -> bool:
    """Is v a fill with zeros (the cotangent autodiff gives an output of a node that nothing reads)?"""
    n = v.producer
    return n is not None and n.op == "full" and not n.inputs and n.attrs.get("value") == 0
