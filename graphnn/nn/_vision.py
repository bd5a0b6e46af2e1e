"""Padding, average pooling, max pooling with indices, unpooling, interpolation, pixel shuffle, embedding.

All are composites of IR primitives: padding places the input inside a larger zero tensor (slice_grad),
average pooling sums strided slices, interpolation multiplies by constant separable matrices.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from graphnn.core.dispatch import apply, located, op_error, relabel
from graphnn.compiler.tracer import check_values
from graphnn.core.attrs import ntuple
from graphnn.core.dtypes import get_default_dtype
from graphnn.core.tensor import Tensor, broadcast_to, cat, narrow, ones_like, tensor
from graphnn.ir.ops.pool import pool_out_size
from graphnn.ir.registry import IRError, IRIndexError


def window_arg(op: str, name: str, value, n: int) -> tuple:
    """A kernel_size/stride/padding/dilation argument as n ints, or an error naming the op and the argument."""
    try:
        return ntuple(value, n)
    except (TypeError, ValueError):
        raise op_error(
            IRError(
                f"{op}: expected {name} to be a single integer value or a list of {n} values to "
                f"match the {n}-d input's spatial dimensions, but got {name}={value!r}"
            )
        ) from None


def _check_window(op: str, k: tuple, s: tuple, p: tuple, d: tuple = ()) -> None:
    """Positive kernel sizes, strides and dilations, non-negative padding (an empty tuple is not checked)."""
    for name, vals, ok in (
        ("kernel_size", k, "greater than zero"),
        ("stride", s, "greater than zero"),
        ("dilation", d, "greater than zero"),
        ("padding", p, "non-negative"),
    ):
        if any(v < 0 if name == "padding" else v <= 0 for v in vals):
            raise op_error(IRError(f"{op}: {name} should be {ok}, but got {name}={vals}"))


def _pairs(pad: tuple, ndim: int) -> list:
    """PyTorch pad tuple (last dim first) as (lo, hi) per dimension, first dim first."""
    if len(pad) % 2 or len(pad) // 2 > ndim:
        raise op_error(IRError(f"pad: padding {tuple(pad)} does not fit a {ndim}-d input"))
    if not all(isinstance(p, numbers.Integral) and not isinstance(p, bool) for p in pad):
        raise TypeError(f"pad: padding must be a tuple of ints, got {tuple(pad)}")
    pairs = [(0, 0)] * ndim
    for i in range(len(pad) // 2):
        pairs[ndim - 1 - i] = (int(pad[2 * i]), int(pad[2 * i + 1]))
    return pairs


_NON_CONSTANT = ("reflect", "replicate", "circular")


def _check_non_constant(input: Tensor, pad: tuple, mode: str) -> None:
    """PyTorch pads the last 1, 2 or 3 dimensions of a batched or unbatched input in the non-constant modes."""
    k = len(pad) // 2
    if k not in (1, 2, 3) or input.ndim not in (k + 1, k + 2):
        raise NotImplementedError(
            located(
                f"pad: padding size {len(pad)} is not supported for a {input.ndim}D input in mode {mode!r}: "
                "2D or 3D input: padding size 2 (the last dimension); 3D or 4D input: padding size 4 (the last 2); "
                "4D or 5D input: padding size 6 (the last 3)"
            )
        )


def _reflect_index(n: int, lo: int, hi: int) -> np.ndarray:
    j = np.abs(np.arange(-lo, n + hi))
    period = 2 * (n - 1)
    j = j % period if period else j * 0
    return np.where(j >= n, period - j, j)


def _gathered(x: Tensor, d: int, idx: np.ndarray) -> Tensor:
    """x's elements at the constant indices idx along dimension d (a gather: exact; its gradient adds)."""
    return apply("take", [x, tensor(idx.astype(np.int64))], {"axis": d})


def _reflect(x: Tensor, pairs: list) -> Tensor:
    for d, (n, (lo, hi)) in enumerate(zip(x.shape, pairs)):
        if lo >= n or hi >= n:
            raise op_error(
                IRError(
                    f"pad: padding size should be less than the corresponding input dimension, but got: padding "
                    f"({lo}, {hi}) at dimension {d} of input {list(x.shape)}"
                )
            )
    for d, (n, (lo, hi)) in enumerate(zip(x.shape, pairs)):
        if lo or hi:
            x = _gathered(x, d, _reflect_index(n, lo, hi))
    return x


def _circular(x: Tensor, pairs: list) -> Tensor:
    for d, (n, (lo, hi)) in enumerate(zip(x.shape, pairs)):
        if lo > n or hi > n:
            raise op_error(
                IRError(
                    f"pad: padding value causes wrapping around more than once: padding ({lo}, {hi}) at "
                    f"dimension {d} of input {list(x.shape)}"
                )
            )
    for d, (n, (lo, hi)) in enumerate(zip(x.shape, pairs)):
        if lo or hi:
            x = _gathered(x, d, np.arange(-lo, n + hi) % n)
    return x


def _replicate(x: Tensor, pairs: list) -> Tensor:
    out = x
    for d, (lo, hi) in enumerate(pairs):
        if not (lo or hi):
            continue
        parts = []
        if lo:
            edge = narrow(out, d, 0, 1)
            parts.append(broadcast_to(edge, tuple(lo if i == d else s for i, s in enumerate(out.shape))))
        parts.append(out)
        if hi:
            edge = narrow(out, d, out.shape[d] - 1, 1)
            parts.append(broadcast_to(edge, tuple(hi if i == d else s for i, s in enumerate(out.shape))))
        out = cat(parts, d)
    return out


def _check_sizes(input: Tensor, pairs: list, mode: str) -> None:
    for d, (n, (lo, hi)) in enumerate(zip(input.shape, pairs)):
        if n + lo + hi < 0:
            raise op_error(
                IRError(
                    f"pad: the input size {n}, plus negative padding {lo} and {hi} resulted in a "
                    f"negative output size, which is invalid (dimension {d} of input "
                    f"{tuple(input.shape)})"
                )
            )
        if mode == "replicate" and (lo > 0 or hi > 0) and n + min(lo, 0) + min(hi, 0) <= 0:
            raise op_error(
                IRError(
                    f"pad: replicate padding of dimension {d} needs at least one element to "
                    f"repeat, but the input {tuple(input.shape)} has none there (after cropping)"
                )
            )


def _crop(x: Tensor, pairs: list) -> Tensor:
    """Negative padding crops."""
    for d, (lo, hi) in enumerate(pairs):
        if lo < 0 or hi < 0:
            x = narrow(x, d, max(-lo, 0), x.shape[d] - max(-lo, 0) - max(-hi, 0))
    return x


def pad(input: Tensor, pad: tuple, mode: str = "constant", value: float | None = None) -> Tensor:
    """PyTorch's F.pad: modes constant (value), reflect (mirrored at the edge, which is not repeated),
    replicate (the edge repeated) and circular (wrapped around); negative padding crops."""
    if mode not in ("constant",) + _NON_CONSTANT:
        raise NotImplementedError(
            f"pad: unrecognised padding mode {mode!r} (constant, reflect, replicate and circular are supported)"
        )
    pairs = _pairs(pad, input.ndim)
    if mode != "constant":
        if value:
            raise op_error(IRError(f"pad: padding mode {mode!r} doesn't take in value argument"))
        _check_non_constant(input, pad, mode)
    _check_sizes(input, pairs, mode)
    if mode == "reflect":  # indices of the input before cropping, as PyTorch's
        nsp = len(pad) // 2
        out = _crop(_reflect(input, [(max(lo, 0), max(hi, 0)) for lo, hi in pairs]), pairs)
        return relabel(out, f"ReflectionPad{nsp}DBackward0", [input])
    x = _crop(input, pairs)
    pairs = [(max(lo, 0), max(hi, 0)) for lo, hi in pairs]
    if mode == "constant":
        shape = tuple(s + lo + hi for s, (lo, hi) in zip(x.shape, pairs))
        attrs = {"shape": shape, "starts": tuple(lo for lo, _ in pairs), "steps": (1,) * x.ndim}
        src = x if x.dtype_name != "bool" else x.type_as_dtype("int64")
        out = apply("slice_grad", [src], attrs)
        if value:  # (the border set to value, the inside kept exactly: -inf, 1e9 or True pads an attention mask)
            ones = apply("full", [], {"value": 1.0, "shape": tuple(x.shape), "dtype": "float32"})
            inside = apply("slice_grad", [ones], attrs) > 0
            out = apply("select", [inside, out, value])
        out = out if x.dtype_name != "bool" else out.type_as_dtype("bool")
        return relabel(out, "ConstantPadNdBackward0", [input])
    if mode == "replicate":
        return relabel(_replicate(x, pairs), f"ReplicationPad{len(pad) // 2}DBackward0", [input])
    return relabel(_circular(x, pairs), "CopySlices", [input])


def avg_pool(
    input: Tensor,
    kernel_size,
    stride=None,
    padding=0,
    ceil_mode=False,
    count_include_pad=True,
    divisor_override=None,
    nsp: int = 2,
) -> Tensor:
    op = f"avg_pool{nsp}d"
    k = window_arg(op, "kernel_size", kernel_size, nsp)
    s = window_arg(op, "stride", stride if stride not in (None, ()) else kernel_size, nsp)
    p = window_arg(op, "padding", padding, nsp)
    if input.ndim < nsp + 1:
        raise op_error(
            IRError(
                f"{op}: expected a {nsp + 1}-d (unbatched) or {nsp + 2}-d (batched) input, got "
                f"input of shape {tuple(input.shape)}"
            )
        )
    _check_window(op, k, s, p)
    for kk, pp in zip(k, p):
        if pp > kk // 2:
            raise op_error(IRError(f"{op}: pad should be at most half of effective kernel size, got {p} for {k}"))
    if divisor_override is not None and divisor_override == 0:
        raise op_error(IRError(f"{op}: divisor_override must be not zero"))
    lead = input.ndim - nsp
    sizes = input.shape[lead:]
    outs = [pool_out_size(n, kk, ss, pp, 1, ceil_mode) for n, kk, ss, pp in zip(sizes, k, s, p)]
    if any(o <= 0 for o in outs):
        raise op_error(
            IRError(
                f"{op}: kernel {k} does not fit input {tuple(input.shape)} (padding {p}): "
                f"calculated output size {tuple(outs)} is too small"
            )
        )
    # Pad so that every window lies inside: lo = padding, hi = whatever the last window needs.
    his = [max(0, (o - 1) * ss + kk - (n + pp)) for o, ss, kk, n, pp in zip(outs, s, k, sizes, p)]
    flat = []
    for lo, hi in reversed(list(zip(p, his))):
        flat += [lo, hi]
    xp = pad(input, tuple(flat)) if any(flat) else input
    total = None
    for off in np.ndindex(*k):
        starts = (0,) * lead + tuple(off)
        stops = tuple(xp.shape[:lead]) + tuple(o0 + ss * (o - 1) + 1 for o0, ss, o in zip(off, s, outs))
        piece = apply("slice", [xp], {"starts": starts, "stops": stops, "steps": (1,) * lead + s})
        total = piece if total is None else total + piece
    div = _avg_divisors(sizes, outs, k, s, p, count_include_pad, divisor_override)
    out = total / tensor(div, dtype=input.dtype_name)
    return relabel(out, f"AvgPool{nsp}DBackward0", [input])


def _avg_divisors(sizes, outs, k, s, p, count_include_pad, divisor_override) -> np.ndarray:
    if divisor_override is not None:
        return np.full(outs, float(divisor_override))
    per_dim = []
    for n, o, kk, ss, pp in zip(sizes, outs, k, s, p):
        start = np.arange(o) * ss - pp
        end = np.minimum(start + kk, n + pp)
        size_pad = end - start
        size_real = np.minimum(end, n) - np.maximum(start, 0)
        per_dim.append(size_pad if count_include_pad else size_real)
    div = per_dim[0].astype(np.float64)
    for d in per_dim[1:]:
        div = np.multiply.outer(div, d)
    return div


def max_pool_with_indices(input: Tensor, kernel_size, stride, padding, dilation, ceil_mode, nsp: int):
    """(values, indices) with indices flat over each input plane, as PyTorch's return_indices=True."""
    attrs = pool_attrs(f"max_pool{nsp}d", kernel_size, stride, padding, dilation, ceil_mode, nsp)
    values = apply("max_pool", [input], attrs, name=f"MaxPool{nsp}DWithIndicesBackward0")
    plane = tuple(input.shape[input.ndim - nsp :])
    positions = np.arange(int(np.prod(plane)), dtype=np.float64).reshape(plane)
    src = broadcast_to(tensor(positions, dtype="float64"), tuple(input.shape))
    with _no_grad():
        x64 = input.detach().double() if input.dtype_name != "float64" else input.detach()
        idx = apply("max_pool_select", [x64, src], attrs).long()
    return values, idx


def pool_attrs(op: str, kernel_size, stride, padding, dilation, ceil_mode, nsp: int) -> dict:
    """max_pool attributes from PyTorch-style arguments (stride None or () means the kernel size)."""
    k = window_arg(op, "kernel_size", kernel_size, nsp)
    return {
        "kernel": k,
        "stride": window_arg(op, "stride", stride if stride not in (None, ()) else k, nsp),
        "padding": window_arg(op, "padding", padding, nsp),
        "dilation": window_arg(op, "dilation", dilation, nsp),
        "ceil_mode": bool(ceil_mode),
    }


def _no_grad():
    from graphnn.core.grad_mode import no_grad

    return no_grad()


def max_unpool(input: Tensor, indices: Tensor, kernel_size, stride=None, padding=0, output_size=None, nsp: int = 2):
    op = f"max_unpool{nsp}d"
    k = window_arg(op, "kernel_size", kernel_size, nsp)
    s = window_arg(op, "stride", stride if stride not in (None, ()) else k, nsp)
    p = window_arg(op, "padding", padding, nsp)
    _check_window(op, k, s, ())  # (negative padding enlarges the output, as in PyTorch)
    if input.ndim < nsp + 1:
        raise op_error(
            IRError(
                f"{op}: expected a {nsp + 1}-d (unbatched) or {nsp + 2}-d (batched) input, got "
                f"input of shape {tuple(input.shape)}"
            )
        )
    if tuple(indices.shape) != tuple(input.shape):
        raise op_error(
            IRError(f"{op}: expected indices of the input's shape {tuple(input.shape)}, got {tuple(indices.shape)}")
        )
    lead = tuple(input.shape[: input.ndim - nsp])
    default = tuple((i - 1) * ss - 2 * pp + kk for i, ss, pp, kk in zip(input.shape[input.ndim - nsp :], s, p, k))
    if output_size is None:
        out_sp = default
        if any(o < 0 for o in out_sp):
            raise op_error(
                IRError(
                    f"{op}: output_size must contain non-negative spatial dimensions, but the input "
                    f"{tuple(input.shape)} with kernel_size={k}, stride={s}, padding={p} gives {out_sp}"
                )
            )
    else:
        out_sp = tuple(int(o) for o in output_size)
        if len(out_sp) not in (nsp, nsp + 2):
            raise op_error(
                IRError(
                    f"{op}: output_size should be a sequence containing {nsp} or {nsp + 2} elements, "
                    f"but it has a length of {len(out_sp)}"
                )
            )
        out_sp = out_sp[-nsp:]
        for d, (o, dflt, ss) in enumerate(zip(out_sp, default, s)):
            if not dflt - ss < o < dflt + ss:  # (PyTorch's rule: within a stride of the default size)
                raise op_error(
                    IRError(
                        f"{op}: invalid output_size {tuple(output_size)} (dim {d} must be between "
                        f"{dflt - ss} and {dflt + ss}, exclusive)"
                    )
                )
        if any(o <= 0 for o in out_sp):
            raise op_error(IRError(f"{op}: output_size must be positive, got {tuple(output_size)}"))
    n_out = int(np.prod(out_sp))
    n_in = int(np.prod(input.shape[input.ndim - nsp :]))

    def check(idx):
        bad = (idx < 0) | (idx >= n_out)
        if bad.any():
            raise op_error(
                IRError(
                    f"max_unpool(input {input._type}, indices {indices._type}): index "
                    f"{int(idx[bad].flat[0])} is out of bounds for output size {out_sp}"
                )
            )

    check_values(indices, check)
    flat_idx = indices.reshape(lead + (n_in,))
    vals = input.reshape(lead + (n_in,))
    axis = len(lead)
    out = apply("take_along_grad", [vals, flat_idx], {"axis": axis, "shape": lead + (n_out,)})  # scatter, exact
    # Overlapping windows can pick the same input element several times: PyTorch writes it once (the copies are
    # equal) and each copy's gradient is grad_output at its index, so remove the surplus copies without gradient.
    count = apply("take_along_grad", [ones_like(vals), flat_idx], {"axis": axis, "shape": lead + (n_out,)})
    surplus = out - apply("stop_gradient", [out * (1.0 - 1.0 / apply("maximum", [count, 1.0]))])
    out = apply("select", [count > 1.0, surplus, out])
    return relabel(out.reshape(lead + out_sp), f"MaxUnpool{nsp}DBackward0", [input])


def _adaptive_args(op: str, input: Tensor, output_size, nsp: int) -> tuple:
    """(spatial input sizes, spatial output sizes): None in output_size keeps the input's size."""
    if input.ndim not in (nsp + 1, nsp + 2) or any(n <= 0 for n in input.shape[1:]):
        raise op_error(
            IRError(
                f"{op}(): Expected {nsp + 1}D or {nsp + 2}D tensor with non-zero sizes (but the batch size), "
                f"but got {list(input.shape)}"
            )
        )
    sizes = tuple(input.shape[input.ndim - nsp :])
    outs = tuple(output_size) if isinstance(output_size, (tuple, list)) else (output_size,) * nsp
    if len(outs) != nsp:
        raise op_error(IRError(f"{op}: output_size must be {nsp}, got {tuple(outs)}"))
    outs = tuple(n if o is None else int(o) for n, o in zip(sizes, outs))
    if any(o < 0 for o in outs):
        raise op_error(IRError(f"{op}: elements of output_size must be greater than or equal to 0, got {outs}"))
    return sizes, outs


def _adaptive_bounds(n: int, o: int) -> tuple:
    """Start and end of each of the o windows over n elements (PyTorch's floor / ceil rule)."""
    i = np.arange(o)
    return (i * n) // o, -((-(i + 1) * n) // o)


def _along(x: Tensor, axis: int, m: np.ndarray) -> Tensor:
    """x times the constant matrix m (out x in) along `axis`."""
    moved = x.transpose(axis, -1) if axis != x.ndim - 1 else x
    moved = moved.matmul(tensor(m.T, dtype=x.dtype_name))
    return moved.transpose(axis, -1) if axis != x.ndim - 1 else moved


def adaptive_avg_pool(input: Tensor, output_size, nsp: int) -> Tensor:
    """Each output element is the mean of its window (windows of sizes floor or ceil of n / o): each window's sum
    (products with 0/1 matrices, one per spatial axis) divided by its size."""
    sizes, outs = _adaptive_args(f"adaptive_avg_pool{nsp}d", input, output_size, nsp)
    out, div = input, np.ones(())
    for d, (n, o) in enumerate(zip(sizes, outs)):
        if n == o:
            div = np.multiply.outer(div, np.ones(n))
            continue
        lo, hi = _adaptive_bounds(n, o)
        m = ((np.arange(n) >= lo[:, None]) & (np.arange(n) < hi[:, None])).astype(np.float64)
        out = _along(out, input.ndim - nsp + d, m)
        div = np.multiply.outer(div, (hi - lo).astype(np.float64))
    if (div != 1).any():
        out = out / tensor(div, dtype=input.dtype_name)
    # (PyTorch's names: its 1-d pooling squeezes a 2-d one; a whole-plane average is a mean)
    whole = all(o == 1 for o in out.shape[-nsp:])
    name = "SqueezeBackward1" if nsp == 1 else ("MeanBackward1" if whole else f"AdaptiveAvgPool{nsp}DBackward0")
    return relabel(out, name, [input])


def _adaptive_index(n: int, o: int) -> tuple:
    """(indices, k): the o windows laid out in blocks of k (the largest window), a shorter window repeating its
    last element (which leaves the maximum and its first position unchanged)."""
    lo, hi = _adaptive_bounds(n, o)
    k = int((hi - lo).max())
    idx = np.minimum(lo[:, None] + np.arange(k), hi[:, None] - 1)
    return idx.reshape(-1), k


def adaptive_max_pool(input: Tensor, output_size, return_indices: bool, nsp: int):
    """Each output element is the maximum of its window: the windows gathered into blocks of equal size (no
    gather when the sizes divide), then max pooling over the blocks; indices flat over each input plane."""
    sizes, outs = _adaptive_args(f"adaptive_max_pool{nsp}d", input, output_size, nsp)
    lead = input.ndim - nsp
    x, kernel = input, []
    plane = np.arange(int(np.prod(sizes)), dtype=np.float64).reshape(sizes)
    for d, (n, o) in enumerate(zip(sizes, outs)):
        if n % o == 0:
            kernel.append(n // o)
            continue
        idx, k = _adaptive_index(n, o)
        x, plane = _gathered(x, lead + d, idx), np.take(plane, idx, axis=d)
        kernel.append(k)
    attrs = {"kernel": tuple(kernel), "stride": tuple(kernel), "padding": (0,) * nsp, "dilation": (1,) * nsp}
    name = "SqueezeBackward1" if nsp == 1 else f"AdaptiveMaxPool{nsp}DBackward0"
    values = relabel(apply("max_pool", [x], {**attrs, "ceil_mode": False}), name, [input])
    if not return_indices:
        return values
    src = broadcast_to(tensor(plane, dtype="float64"), tuple(x.shape))
    with _no_grad():
        x64 = x.detach().double() if x.dtype_name != "float64" else x.detach()
        idx = apply("max_pool_select", [x64, src], {**attrs, "ceil_mode": False}).long()
    return values, idx


def _antialias_matrix(n_in: int, n_out: int, mode: str, align_corners: bool, scale) -> np.ndarray:
    """PyTorch's antialiased resampling (as PIL's): output i averages the inputs within `support` of its centre
    scale * (i + 1/2), weighted by the triangle (linear) or Keys a = -0.5 (cubic) filter stretched by the scale when
    shrinking, the weights normalized to sum 1."""
    if align_corners:
        ratio = (n_in - 1) / (n_out - 1) if n_out > 1 else 0.0
    else:
        ratio = (1.0 / scale) if scale else n_in / n_out
    taps = 4 if mode == "cubic" else 2
    support = taps / 2 * ratio if ratio >= 1.0 else taps / 2
    inv = 1.0 / ratio if ratio >= 1.0 else 1.0

    def kernel(x):
        x = np.abs(x)
        if mode != "cubic":
            return np.maximum(1.0 - x, 0.0)
        a = -0.5
        near = ((a + 2) * x - (a + 3)) * x * x + 1
        far = ((a * x - 5 * a) * x + 8 * a) * x - 4 * a
        return np.where(x < 1.0, near, np.where(x < 2.0, far, 0.0))

    m = np.zeros((n_out, n_in))
    for i in range(n_out):
        centre = ratio * (i + 0.5)
        lo = max(int(centre - support + 0.5), 0)
        hi = min(int(centre + support + 0.5), n_in)
        w = kernel((np.arange(lo, hi) - centre + 0.5) * inv)
        total = w.sum()
        m[i, lo:hi] = w / total if total != 0 else w
    return m


def _interp_taps(n_in: int, n_out: int, mode: str, align_corners: bool, scale) -> list:
    """PyTorch's resampling along one dimension as taps [(source index per output, weight per output or None)]:
    one unweighted tap for the nearest modes, two for linear, four (Keys' cubic) for cubic."""
    dst = np.arange(n_out, dtype=np.float64)
    if mode == "nearest":  # PyTorch's (legacy) nearest index: two special cases, then float32 arithmetic
        if n_out == n_in:
            return [(np.arange(n_out), None)]
        if n_out == 2 * n_in:
            return [(np.arange(n_out) // 2, None)]
        ratio = np.float32(1.0 / scale) if scale else np.float32(n_in) / np.float32(n_out)
        return [(np.minimum(np.floor(dst.astype(np.float32) * ratio).astype(int), n_in - 1), None)]
    if mode == "nearest-exact":  # the source pixel whose centre is nearest: floor((dst + 1/2) * ratio), in float32
        ratio = np.float32(1.0 / scale) if scale else np.float32(n_in) / np.float32(n_out)
        src = np.floor((dst.astype(np.float32) + np.float32(0.5)) * ratio).astype(int)
        return [(np.minimum(src, n_in - 1), None)]
    if align_corners:
        ratio = (n_in - 1) / (n_out - 1) if n_out > 1 else 0.0
        src = dst * ratio
    else:
        ratio = (1.0 / scale) if scale else n_in / n_out
        src = (dst + 0.5) * ratio - 0.5
        if mode != "cubic":  # (cubic keeps source positions left of the first pixel's centre)
            src = np.maximum(src, 0.0)
    if mode == "cubic":  # Keys' cubic convolution (a = -0.75) over 4 taps, indices clamped at the borders
        left = np.floor(src)
        t, a = src - left, -0.75
        near = lambda x: ((a + 2) * x - (a + 3)) * x * x + 1  # noqa: E731  (|x| <= 1)
        far = lambda x: ((a * x - 5 * a) * x + 8 * a) * x - 4 * a  # noqa: E731  (1 < |x| < 2)
        weights = (far(t + 1), near(t), near(1 - t), far(2 - t))
        return [(np.clip(left.astype(int) - 1 + k, 0, n_in - 1), w) for k, w in enumerate(weights)]
    i0 = np.minimum(np.floor(src).astype(int), n_in - 1)
    lam = src - i0
    return [(i0, 1 - lam), (np.minimum(i0 + 1, n_in - 1), lam)]


def _resampled(x: Tensor, axis: int, taps: list, dtype: str) -> Tensor:
    """x resampled along axis: the weighted sum of its gathered taps (linear work; a gather's gradient adds)."""
    out = None
    for idx, w in taps:
        part = _gathered(x, axis, idx)
        if w is not None:
            part = part * tensor(w.reshape((-1,) + (1,) * (x.ndim - 1 - axis)), dtype=dtype)
        out = part if out is None else out + part
    return out


def interpolate(
    input: Tensor,
    size=None,
    scale_factor=None,
    mode: str = "nearest",
    align_corners=None,
    recompute_scale_factor=None,
    antialias: bool = False,
) -> Tensor:
    """Nearest (legacy or exact), (bi/tri)linear and bicubic resizing as weighted sums of constant gathers, one
    spatial dim after the other; 'area' is adaptive average pooling; antialias (bilinear, bicubic) filters as
    PyTorch's antialiased kernels (see _antialias_matrix), as products with their band matrices."""
    nsp = input.ndim - 2
    if antialias and (mode not in ("bilinear", "bicubic") or input.ndim != 4):
        raise NotImplementedError(
            "Anti-alias option is restricted to bilinear and bicubic modes and requires a 4-D tensor as input"
        )
    if mode not in ("nearest", "nearest-exact", "linear", "bilinear", "bicubic", "trilinear", "area"):
        raise NotImplementedError(f"interpolate mode {mode!r} is not supported")
    if nsp < 1:
        raise NotImplementedError(
            f"interpolate: only 3-d, 4-d and 5-d inputs are supported (got a {input.ndim}-d "
            f"input of shape {tuple(input.shape)})"
        )
    needs = {"linear": 1, "bilinear": 2, "bicubic": 2, "trilinear": 3}.get(mode)
    if needs is not None and nsp != needs:
        raise NotImplementedError(
            f"interpolate: got a {input.ndim}-d input, but {mode} mode needs a {needs + 2}-d input"
        )
    if mode in ("nearest", "nearest-exact", "area") and align_corners is not None:
        raise ValueError("align_corners option can only be set with the interpolating modes")
    if (size is None) == (scale_factor is None):
        raise ValueError("either size or scale_factor should be defined")
    in_sp = tuple(input.shape[2:])
    if size is not None:
        if isinstance(size, (tuple, list)) and len(size) != nsp:
            raise ValueError(
                f"interpolate: input and output must have the same number of spatial dimensions, but "
                f"got input with spatial dimensions of {list(in_sp)} and output size of {tuple(size)}"
            )
        out_sp, scales = ntuple(size, nsp), (None,) * nsp
    else:
        sf = tuple(scale_factor) if isinstance(scale_factor, (tuple, list)) else (scale_factor,) * nsp
        if len(sf) != nsp:
            raise ValueError(
                f"interpolate: input and scale_factor must have the same number of spatial dimensions, "
                f"but got input with spatial dimensions of {list(in_sp)} and scale_factor {sf}"
            )
        if not all(math.isfinite(float(f)) and f > 0 for f in sf):
            raise op_error(
                IRError(
                    f"interpolate: scale_factor must be positive and finite, got {scale_factor!r} "
                    f"(input of shape {tuple(input.shape)})"
                )
            )
        out_sp = tuple(int(math.floor(n * f)) for n, f in zip(in_sp, sf))
        scales = (None,) * nsp if recompute_scale_factor else sf
    if any(n <= 0 for n in in_sp) or any(o <= 0 for o in out_sp):
        raise op_error(
            IRError(
                f"interpolate: input and output sizes should be greater than 0, but got input "
                f"{in_sp} and output {out_sp} (input of shape {tuple(input.shape)})"
            )
        )
    if mode == "area":  # (each output element the mean of its window, as adaptive average pooling)
        return adaptive_avg_pool(input, out_sp, nsp)
    kind = mode if mode.startswith("nearest") else ("cubic" if mode == "bicubic" else "linear")
    integer = not input.is_floating_point()  # (uint8 images: nearest gathers them; the other modes round back)
    dtype = get_default_dtype() if integer and kind[0] != "n" else input.dtype_name
    out = input.to(dtype) if dtype != input.dtype_name else input
    for d in range(nsp) if antialias else reversed(range(nsp)):  # (PyTorch's order: the last dim's taps innermost)
        axis = 2 + d
        if not antialias:
            out = _resampled(out, axis, _interp_taps(in_sp[d], out_sp[d], kind, bool(align_corners), scales[d]), dtype)
            continue
        m = _antialias_matrix(in_sp[d], out_sp[d], kind, bool(align_corners), scales[d])
        moved = out.transpose(axis, -1) if axis != out.ndim - 1 else out
        moved = moved.matmul(tensor(m.T, dtype=dtype))
        out = moved.transpose(axis, -1) if axis != out.ndim - 1 else moved
    if out.dtype_name != input.dtype_name:
        out = out.round().to(input.dtype)
    names = {"nearest": "UpsampleNearest", "nearest-exact": "UpsampleNearestExact", "bilinear": "UpsampleBilinear"}
    name = names.get(mode, "UpsampleBicubic" if mode == "bicubic" else "UpsampleLinear")
    return relabel(out, f"{name}{nsp}D{'Aa' if antialias else ''}Backward0", [input])


def pixel_shuffle(input: Tensor, upscale_factor: int) -> Tensor:
    r = upscale_factor
    if isinstance(r, bool) or not isinstance(r, numbers.Integral) or r <= 0:
        raise op_error(IRError(f"pixel_shuffle expects a positive integer upscale_factor, but got {r!r}"))
    if input.ndim < 3:
        raise op_error(
            IRError(
                f"pixel_shuffle expects input to have at least 3 dimensions, but got input of shape "
                f"{tuple(input.shape)}"
            )
        )
    *lead, c, h, w = input.shape
    if c % (r * r):
        raise op_error(IRError(f"pixel_shuffle: {c} channels are not divisible by upscale_factor^2 = {r * r}"))
    x = input.reshape(tuple(lead) + (c // (r * r), r, r, h, w))
    n = len(lead)
    x = x.permute(*range(n), n, n + 3, n + 1, n + 4, n + 2)
    return relabel(x.reshape(tuple(lead) + (c // (r * r), h * r, w * r)), "PixelShuffleBackward0", [input])


def pixel_unshuffle(input: Tensor, downscale_factor: int) -> Tensor:
    """The inverse of pixel_shuffle: (*, C, H r, W r) -> (*, C r^2, H, W)."""
    r = downscale_factor
    if isinstance(r, bool) or not isinstance(r, numbers.Integral) or r <= 0:
        raise op_error(IRError(f"pixel_unshuffle expects a positive integer downscale_factor, but got {r!r}"))
    if input.ndim < 3:
        raise op_error(
            IRError(
                f"pixel_unshuffle expects input to have at least 3 dimensions, but got input of shape "
                f"{tuple(input.shape)}"
            )
        )
    *lead, c, h, w = input.shape
    if h % r or w % r:
        raise op_error(IRError(f"pixel_unshuffle: height {h} and width {w} must be divisible by downscale_factor {r}"))
    n = len(lead)
    x = input.reshape(tuple(lead) + (c, h // r, r, w // r, r))
    x = x.permute(*range(n), n, n + 2, n + 4, n + 1, n + 3)
    return relabel(x.reshape(tuple(lead) + (c * r * r, h // r, w // r)), "PixelUnshuffleBackward0", [input])


def embedding(
    input: Tensor,
    weight: Tensor,
    padding_idx=None,
    max_norm=None,
    norm_type=2.0,
    scale_grad_by_freq=False,
    sparse=False,
) -> Tensor:
    """Rows of `weight` picked by int64 indices: a gather (exact copies); the gradient adds rows back (scatter)."""
    call = f"embedding(indices {input._type}, weight {weight._type})"
    if input.dtype_name != "int64":
        raise op_error(IRError(f"{call}: indices must be int64, got {input.dtype_name}"))
    n = weight.shape[0]

    def check(idx):
        bad = (idx < 0) | (idx >= n)
        if bad.any():
            raise op_error(IRIndexError(f"{call}: index {int(idx[bad].flat[0])} is out of range for {n} embeddings"))

    check_values(input, check)
    if max_norm is not None or scale_grad_by_freq:  # occurrences of each row in this batch, (n, 1)
        ones = ones_like(input, dtype=weight.dtype_name).reshape(tuple(input.shape) + (1,))
        counts = apply("take_grad", [ones, input], {"axis": 0, "size": n})
    w = weight
    if max_norm is not None:
        # As PyTorch: the looked-up rows whose norm exceeds max_norm are rescaled in place, without gradient; the
        # gradient still reaches `weight` (through `zero`, also when tracing, where the update renames `weight`).
        zero = weight - apply("stop_gradient", [weight])
        with _no_grad():
            norms = weight.norm(norm_type, dim=1, keepdim=True)
            scale = apply("select", [(counts > 0) & (norms > max_norm), max_norm / (norms + 1e-7), 1.0])
            renormed = weight * scale
            weight._assign(renormed)
        w = renormed + zero
    if scale_grad_by_freq:  # same value; each row's gradient divided by its frequency in the batch
        ws = w * (1.0 / apply("maximum", [counts, 1.0]))
        w = apply("stop_gradient", [w]) + (ws - apply("stop_gradient", [ws]))
    out = apply("take", [w, input], {"axis": 0})
    if padding_idx is not None:  # no gradient reaches the padding row
        out = apply("select", [(input == padding_idx % n).unsqueeze(-1), apply("stop_gradient", [out]), out])
    return relabel(out, "EmbeddingBackward0", [weight])
