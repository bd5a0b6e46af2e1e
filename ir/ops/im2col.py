"""im2col / col2im: the data movement that turns a convolution into a matrix product.

im2col(x): (N, C, *S) -> (C * prod(K), N * prod(O)), row (c, k...) and column (n, o...) in row-major order:
out[(c, k), (n, q)] = x[n, c, q * stride + k * dilation - pad_lo] (0 outside the input). With per_image=True, one
matrix per image: (N, C * prod(K), prod(O)), out[n, (c, k), q] (a convolution's per-image products then store their
results in NCHW order).
col2im is its transpose: it sums every column entry back onto the input position it was read from.
Attributes: kernel, stride, dilation (per spatial dim), padding ((lo, hi) per spatial dim); col2im also input_shape.
"""

from __future__ import annotations

import math

import numpy as np

from ..registry import Fuzz, register
from ..roundoff import moved, reduction
from ..types import TensorType
from .conv import _windows, check_window, out_size


def geometry(shape: tuple, attrs: dict) -> tuple:
    """(output spatial sizes, prod(kernel), prod(output sizes)) of im2col on an input of `shape`."""
    nsp = len(attrs["kernel"])
    if len(shape) != nsp + 2:
        raise ValueError(f"im2col with a {nsp}-d kernel needs input (N, C, *{nsp} spatial), got {shape}")
    for key in ("stride", "padding", "dilation"):
        if len(attrs[key]) != nsp:
            raise ValueError(f"{key} {attrs[key]} needs one entry per spatial dimension ({nsp})")
    check_window(attrs["kernel"], attrs["stride"], attrs["padding"], attrs["dilation"])
    outs = tuple(
        out_size(shape[2 + i], attrs["kernel"][i], attrs["stride"][i], attrs["padding"][i], attrs["dilation"][i])
        for i in range(nsp)
    )
    if any(o <= 0 for o in outs):
        raise ValueError(f"kernel {attrs['kernel']} is larger than the padded input {shape[2:]}")
    # (math.prod, not int(np.prod(...)): a size symbolic in N stays symbolic, a varying length)
    return outs, int(np.prod(attrs["kernel"])), math.prod(outs)


def _im2col_infer(types, attrs):
    x = types[0]
    outs, kp, rp = geometry(x.shape, attrs)
    if attrs.get("per_image"):
        return TensorType((x.shape[0], x.shape[1] * kp, rp), x.dtype)
    return TensorType((x.shape[1] * kp, x.shape[0] * rp), x.dtype)


def _im2col_ref(a, attrs):
    x = a[0]
    outs, kp, rp = geometry(x.shape, attrs)
    nsp = len(outs)
    win = _windows(x, attrs["kernel"], attrs, outs)  # N C O.. K..
    if attrs.get("per_image"):
        perm = (0, 1) + tuple(range(2 + nsp, 2 + 2 * nsp)) + tuple(range(2, 2 + nsp))  # N C K.. O..
        return np.ascontiguousarray(np.transpose(win, perm).reshape(x.shape[0], x.shape[1] * kp, rp))
    perm = (1,) + tuple(range(2 + nsp, 2 + 2 * nsp)) + (0,) + tuple(range(2, 2 + nsp))
    return np.ascontiguousarray(np.transpose(win, perm).reshape(x.shape[1] * kp, x.shape[0] * rp))


def _geo_attrs(attrs):
    return {k: attrs[k] for k in ("kernel", "stride", "padding", "dilation")}


def _im2col_grad(b, n, ct):
    g = ct[0]
    if n.attrs.get("per_image"):  # (N, CK, Q) -> the channel-major (CK, N * Q) that col2im sums back
        N, ck, q = g.type.shape
        g = b.reshape(b.transpose(g, perm=(1, 0, 2)), shape=(ck, N * q))
    return [b.col2im(g, input_shape=n.inputs[0].shape, **_geo_attrs(n.attrs))]


register(
    "im2col",
    infer=_im2col_infer,
    ref=_im2col_ref,
    grad=_im2col_grad,
    fixed_attrs=("kernel", "stride", "padding", "dilation", "per_image"),
    pattern="injective",
    num_inputs=1,
    lowering="im2col",
    schedule="im2col",
    fuzz=Fuzz(generator="im2col", smooth=True, exact=True, heavy=True),
    roundoff=moved,
)


def _col2im_infer(types, attrs):
    col = types[0]
    shape = tuple(attrs["input_shape"])
    _outs, kp, rp = geometry(shape, attrs)
    if col.shape != (shape[1] * kp, shape[0] * rp):
        raise ValueError(f"columns {col.shape} do not match input {shape} (expected {(shape[1] * kp, shape[0] * rp)})")
    return TensorType(shape, col.dtype)


def _col2im_ref(a, attrs):
    col = a[0]
    shape = tuple(attrs["input_shape"])
    outs, _kp, _rp = geometry(shape, attrs)
    nsp = len(outs)
    K = tuple(attrs["kernel"])
    c6 = col.reshape((shape[1],) + K + (shape[0],) + outs)  # C K.. N O..
    pads = attrs["padding"]
    padded = [shape[2 + i] + pads[i][0] + pads[i][1] for i in range(nsp)]
    xp = np.zeros((shape[0], shape[1]) + tuple(padded), col.dtype)
    for kidx in np.ndindex(*K):
        part = c6[(slice(None),) + kidx]  # C N O..
        sl = tuple(
            slice(
                kidx[i] * attrs["dilation"][i],
                kidx[i] * attrs["dilation"][i] + attrs["stride"][i] * (outs[i] - 1) + 1,
                attrs["stride"][i],
            )
            for i in range(nsp)
        )
        xp[(slice(None), slice(None)) + sl] += np.swapaxes(part, 0, 1)
    crop = tuple(slice(pads[i][0], pads[i][0] + shape[2 + i]) for i in range(nsp))
    return np.ascontiguousarray(xp[(slice(None), slice(None)) + crop])


register(
    "col2im",
    infer=_col2im_infer,
    ref=_col2im_ref,
    grad=lambda b, n, ct: [b.im2col(ct[0], **_geo_attrs(n.attrs))],
    fixed_attrs=("kernel", "stride", "padding", "dilation"),
    pattern="out_fusable",
    num_inputs=1,
    doc="sum of columns back onto the input positions they were read from (transpose of im2col)",
    lowering="col2im",
    schedule="col2im",
    fuzz=Fuzz(generator="col2im", smooth=True, heavy=True),
    roundoff=reduction(lambda n, ins: int(np.prod(n.attrs["kernel"]))),
)
