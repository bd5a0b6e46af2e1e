"""Max pooling over N spatial dims, its gradient, and the 'select at argmax' op that closes the set.

Attributes: kernel, stride, padding, dilation (one int per spatial dim; padding is symmetric and counts as
-inf), ceil_mode. Ties pick the first maximum in window order, as PyTorch does.
"""

from __future__ import annotations

import numpy as np

from ..registry import Fuzz, register
from ..roundoff import pool_selected, reduction
from ..types import TensorType
from .conv import check_window


def pool_out_size(n: int, k: int, s: int, p: int, d: int, ceil_mode: bool) -> int:
    num = n + 2 * p - d * (k - 1) - 1
    out = (-(-num // s) if ceil_mode else num // s) + 1
    if ceil_mode and (out - 1) * s >= n + p:
        out -= 1
    return out


def _pool_infer(types, attrs):
    x = types[0]
    nsp = len(attrs["kernel"])
    if not x.is_float:  # padding counts as -inf, which only floating types have
        raise TypeError(f"max_pool needs a floating-point input, got {x.dtype}")
    if x.ndim < nsp + 1:
        raise ValueError(f"a {nsp}-d pool needs at least {nsp + 1} dimensions")
    for key in ("stride", "padding", "dilation"):
        if len(attrs[key]) != nsp:
            raise ValueError(f"{key} {attrs[key]} needs {nsp} entries")
    check_window(attrs["kernel"], attrs["stride"], attrs["padding"], attrs["dilation"])
    for k, p in zip(attrs["kernel"], attrs["padding"]):
        if p > k // 2:
            raise ValueError(f"padding {p} should be at most half of kernel size {k}")
    lead = x.shape[: x.ndim - nsp]
    spatial = tuple(
        pool_out_size(
            x.shape[len(lead) + i],
            attrs["kernel"][i],
            attrs["stride"][i],
            attrs["padding"][i],
            attrs["dilation"][i],
            attrs.get("ceil_mode", False),
        )
        for i in range(nsp)
    )
    if any(s <= 0 for s in spatial):
        raise ValueError(
            f"kernel {attrs['kernel']} is larger than the padded input {x.shape[len(lead) :]}: "
            f"calculated output size {spatial} is too small"
        )
    return TensorType(lead + spatial, x.dtype)


def _padded(x: np.ndarray, attrs: dict, out_spatial: tuple, fill) -> tuple:
    """The input padded with `fill` far enough for every window, and the (lo, hi) padding of each axis."""
    nsp = len(attrs["kernel"])
    lead = x.ndim - nsp
    pads = [(0, 0)] * lead
    for i in range(nsp):
        k, s, p, d = (attrs[key][i] for key in ("kernel", "stride", "padding", "dilation"))
        hi = max(0, (out_spatial[i] - 1) * s + d * (k - 1) + 1 - (x.shape[lead + i] + p))
        pads.append((p, hi))
    return np.pad(x, pads, constant_values=fill), pads


def _offsets(x: np.ndarray, attrs: dict, out_spatial: tuple):
    """(flat kernel offset, index) pairs: the index selects, for every output position, the padded input element
    at that offset of its window (a strided view; offsets in row-major order)."""
    nsp = len(attrs["kernel"])
    lead = (slice(None),) * (x.ndim - nsp)
    for flat, kidx in enumerate(np.ndindex(*attrs["kernel"])):
        starts = [kidx[i] * attrs["dilation"][i] for i in range(nsp)]
        yield (
            flat,
            lead
            + tuple(
                slice(st, st + attrs["stride"][i] * (out_spatial[i] - 1) + 1, attrs["stride"][i])
                for i, st in enumerate(starts)
            ),
        )


def _windows(x: np.ndarray, attrs: dict, out_spatial: tuple, fill) -> tuple:
    """(..., *O, prod(K)) array of each output's window, padded with `fill`, and the padding used."""
    xp, pads = _padded(x, attrs, out_spatial, fill)
    views = [xp[idx] for _, idx in _offsets(x, attrs, out_spatial)]
    return np.stack(views, axis=-1), pads


def _out_spatial(x, attrs):
    return _pool_infer([TensorType(x.shape, "float64")], attrs).shape[x.ndim - len(attrs["kernel"]) :]


def _argmax(x, attrs):
    """Flat kernel offset of each window's maximum (the first one; a NaN counts as the maximum, as in np.argmax),
    and the padding used."""
    osp = _out_spatial(x, attrs)
    xp, pads = _padded(x, attrs, osp, -np.inf)
    best, am = None, None
    for flat, idx in _offsets(x, attrs, osp):
        v = xp[idx]
        if best is None:
            best, am = v.copy(), np.zeros(v.shape, np.int64)
            continue
        better = (v > best) | (np.isnan(v) & ~np.isnan(best))
        best[better] = v[better]
        am[better] = flat
    return am, pads


def _window(node) -> int:
    return int(np.prod(node.attrs["kernel"]))


def _max_pool_ref(a, attrs):
    x = a[0]
    osp = _out_spatial(x, attrs)
    xp, _ = _padded(x, attrs, osp, -np.inf)
    out = None
    for _, idx in _offsets(x, attrs, osp):  # NaN propagates through maximum, as through max
        out = xp[idx].copy() if out is None else np.maximum(out, xp[idx], out=out)
    return np.ascontiguousarray(out)


register(
    "max_pool",
    infer=_pool_infer,
    ref=_max_pool_ref,
    grad=lambda b, n, ct: [b.max_pool_grad(n.inputs[0], ct[0], **n.attrs)],
    slow_reference=True,
    fixed_attrs=("kernel", "stride", "padding", "dilation", "ceil_mode"),
    pattern="reduce",
    num_inputs=1,
    lowering="max_pool",
    schedule="max_pool",
    torch_name="MaxPool2DWithIndicesBackward0",
    flops=lambda n: n.outputs[0].type.size * _window(n),
    fuzz=Fuzz(generator="pool", kinks="pool_ties", exact=True),
    roundoff=pool_selected,
)


def _max_pool_grad_infer(types, attrs):
    x, g = types
    if _pool_infer([x], attrs).shape != g.shape:
        raise ValueError(f"gradient {g.shape} does not match pooling of {x.shape}")
    return x


def _max_pool_grad_ref(a, attrs):
    x, g = a
    am, pads = _argmax(x, attrs)
    gp = np.zeros(tuple(s + p[0] + p[1] for s, p in zip(x.shape, pads)), g.dtype)
    for flat, idx in _offsets(x, attrs, g.shape[x.ndim - len(attrs["kernel"]) :]):
        gp[idx] += np.where(am == flat, g, 0)  # one offset's positions are distinct: windows may overlap safely
    crop = tuple(slice(p[0], p[0] + s) for s, p in zip(x.shape, pads))
    return np.ascontiguousarray(gp[crop])


register(
    "max_pool_grad",
    infer=_max_pool_grad_infer,
    ref=_max_pool_grad_ref,
    grad=lambda b, n, ct: [None, b.max_pool_select(n.inputs[0], ct[0], **n.attrs)],
    slow_reference=True,
    fixed_attrs=("kernel", "stride", "padding", "dilation", "ceil_mode"),
    pattern="out_fusable",
    num_inputs=2,
    doc="scatter output gradients to each window's argmax",
    lowering="max_pool_grad",
    schedule="max_pool_grad",
    flops=lambda n: n.inputs[1].type.size * _window(n),
    fuzz=Fuzz(generator="pool", kinks="pool_ties", heavy=True),
    roundoff=reduction(lambda n, ins: _window(n), linear_in=(1,)),
)


def _select_infer(types, attrs):
    x, src = types
    if x.shape != src.shape:
        raise ValueError(f"source {src.shape} must have the input's shape {x.shape}")
    return TensorType(_pool_infer([x], attrs).shape, src.dtype)


def _select_ref(a, attrs):
    x, src = a
    am, _ = _argmax(x, attrs)
    sp, _ = _padded(src, attrs, am.shape[x.ndim - len(attrs["kernel"]) :], 0)
    out = np.zeros(am.shape, src.dtype)
    for flat, idx in _offsets(x, attrs, am.shape[x.ndim - len(attrs["kernel"]) :]):
        out = np.where(am == flat, sp[idx], out)
    return out


register(
    "max_pool_select",
    infer=_select_infer,
    ref=_select_ref,
    grad=lambda b, n, ct: [None, b.max_pool_grad(n.inputs[0], ct[0], **n.attrs)],
    slow_reference=True,
    fixed_attrs=("kernel", "stride", "padding", "dilation", "ceil_mode"),
    pattern="reduce",
    num_inputs=2,
    doc="for each window, the source element at the input's argmax",
    lowering="max_pool_select",
    flops=lambda n: n.outputs[0].type.size * _window(n),
    fuzz=Fuzz(generator="pool", kinks="pool_ties", exact=True, heavy=True),
    roundoff=pool_selected,
)
