"""N-dimensional convolution (NC[D]HW input, O,C/groups,K... weight) and its two gradient ops.

Attributes: stride, dilation (one int per spatial dim), padding (a (lo, hi) pair per spatial dim), groups.
conv_grad_input and conv_grad_weight are the transposes of conv in each argument; together the three
ops are closed under differentiation.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ..registry import Fuzz, register
from ..roundoff import reduction
from ..types import TensorType


def out_size(n: int, k: int, stride: int, pad: tuple, dil: int) -> int:
    return (n + pad[0] + pad[1] - dil * (k - 1) - 1) // stride + 1


def check_window(kernel, stride, padding, dilation) -> None:
    """Sliding-window arguments every op over windows needs (as PyTorch checks them): positive kernel sizes,
    strides and dilations, non-negative padding (an int or a (lo, hi) pair per dimension)."""
    if any(k <= 0 for k in kernel):
        raise ValueError(f"kernel size should be greater than zero, but got kernel {tuple(kernel)}")
    if any(s <= 0 for s in stride):
        raise ValueError(f"non-positive stride {tuple(stride)} is not supported (stride should be greater than zero)")
    if any(d <= 0 for d in dilation):
        raise ValueError(f"dilation should be greater than zero, but got dilation {tuple(dilation)}")
    if any(q < 0 for p in padding for q in (p if isinstance(p, (tuple, list)) else (p,))):
        raise ValueError(f"negative padding {tuple(padding)} is not supported")


def _check_attrs(nsp: int, attrs: dict):
    for key in ("stride", "dilation", "padding"):
        if len(attrs[key]) != nsp:
            raise ValueError(f"{key} {attrs[key]} needs one entry per spatial dimension ({nsp})")
    if any(len(p) != 2 for p in attrs["padding"]):
        raise ValueError(f"padding {attrs['padding']} needs a (lo, hi) pair per spatial dimension")
    if attrs["groups"] <= 0:
        raise ValueError(f"non-positive groups {attrs['groups']} is not supported")


def _conv_infer(types, attrs):
    x, w = types
    nsp = x.ndim - 2
    if nsp < 1 or w.ndim != x.ndim:
        raise ValueError("conv expects input (N, C, *spatial) and weight (O, C/groups, *kernel) of the same rank")
    if x.dtype != w.dtype or not x.is_float:
        raise TypeError(f"conv needs floating input and weight of one dtype, got {x.dtype} and {w.dtype}")
    _check_attrs(nsp, attrs)
    check_window(w.shape[2:], attrs["stride"], attrs["padding"], attrs["dilation"])
    g = attrs["groups"]
    if x.shape[1] != w.shape[1] * g or w.shape[0] % g:
        raise ValueError(
            f"input has {x.shape[1]} channels but weight expects {w.shape[1]} x groups={g}"
            + (f" and {w.shape[0]} output channels, not divisible by groups" if w.shape[0] % g else "")
        )
    spatial = tuple(
        out_size(x.shape[2 + i], w.shape[2 + i], attrs["stride"][i], attrs["padding"][i], attrs["dilation"][i])
        for i in range(nsp)
    )
    if any(s <= 0 for s in spatial):
        padded = tuple(x.shape[2 + i] + sum(attrs["padding"][i]) for i in range(nsp))
        extent = tuple(attrs["dilation"][i] * (w.shape[2 + i] - 1) + 1 for i in range(nsp))
        raise ValueError(f"kernel {w.shape[2:]} (dilated extent {extent}) is larger than the padded input {padded}")
    return TensorType((x.shape[0], w.shape[0]) + spatial, x.dtype)


def _windows(x: np.ndarray, kshape: tuple, attrs: dict, out_spatial: tuple) -> np.ndarray:
    """(N, C, *O, *K) view of the padded input's receptive fields."""
    nsp = len(kshape)
    pad = [(0, 0), (0, 0)] + [tuple(p) for p in attrs["padding"]]
    xp = np.pad(x, pad)
    ext = tuple(attrs["dilation"][i] * (kshape[i] - 1) + 1 for i in range(nsp))
    win = sliding_window_view(xp, ext, axis=tuple(range(2, 2 + nsp)))
    sl = (slice(None), slice(None))
    sl += tuple(slice(0, attrs["stride"][i] * (out_spatial[i] - 1) + 1, attrs["stride"][i]) for i in range(nsp))
    sl += tuple(slice(None, None, attrs["dilation"][i]) for i in range(nsp))
    return win[sl]


def _columns(x: np.ndarray, kshape: tuple, attrs: dict, out_spatial: tuple) -> np.ndarray:
    """The receptive fields as one (G, C/G * prod(K), N * prod(O)) matrix per group (im2col), copied in an order
    that reads the input in runs along its last axis."""
    nsp = len(kshape)
    n, c = x.shape[:2]
    win = _windows(x, kshape, attrs, out_spatial)  # N C O.. K..
    perm = (1,) + tuple(range(2 + nsp, 2 + 2 * nsp)) + (0,) + tuple(range(2, 2 + nsp))  # C K.. N O..
    cols = np.ascontiguousarray(win.transpose(perm))
    g = attrs["groups"]
    return cols.reshape(g, c // g * _size(kshape), n * _size(out_spatial))


def _per_group(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a[i] @ b[i] for each group i, as 2-D products (NumPy's stacked matmul does not call BLAS for transposed
    operands: 5 to 50 times slower on im2col shapes)."""
    return np.stack([a[i] @ b[i] for i in range(a.shape[0])])


def _gradient_matrix(g: np.ndarray, groups: int) -> np.ndarray:
    """A (N, F, O..) result gradient as one (G, F/G, N * prod(O)) matrix per group."""
    n, f = g.shape[:2]
    rows = np.ascontiguousarray(np.moveaxis(g, 0, 1))  # F N O..
    return rows.reshape(groups, f // groups, n * _size(g.shape[2:]))


def _conv_ref(a, attrs):
    x, w = a
    out = _conv_infer([TensorType(x.shape, "float32"), TensorType(w.shape, "float32")], attrs).shape
    g = attrs["groups"]
    cols = _columns(x, w.shape[2:], attrs, out[2:])
    y = _per_group(w.reshape(g, w.shape[0] // g, -1), cols)  # G F/G N*O
    y = y.reshape((w.shape[0], x.shape[0]) + tuple(out[2:]))
    return np.ascontiguousarray(np.moveaxis(y, 0, 1)).astype(x.dtype, copy=False)


def _conv_grad(b, node, cts):
    x, w = node.inputs
    g = cts[0]
    at = dict(node.attrs)
    return [b.conv_grad_input(g, w, input_shape=x.shape, **at), b.conv_grad_weight(x, g, weight_shape=w.shape, **at)]


def _conv_terms(node, ins) -> int:
    """Products summed into one element of the op's result."""
    op, at = node.op, node.attrs
    if op == "conv":
        return int(np.prod(np.shape(ins[1])[1:]))
    if op == "conv_grad_input":
        w = np.shape(ins[1])
        return w[0] // at["groups"] * int(np.prod(w[2:]))
    g = np.shape(ins[1])
    return g[0] * int(np.prod(g[2:]))


def _size(shape) -> int:
    return int(np.prod(shape, dtype=np.int64))


register(
    "conv",
    infer=_conv_infer,
    ref=_conv_ref,
    grad=_conv_grad,
    slow_reference=True,
    fixed_attrs=("stride", "padding", "dilation", "groups"),
    pattern="out_fusable",
    num_inputs=2,
    lowering="conv",
    schedule="direct_conv",
    torch_name="ConvolutionBackward0",
    flops=lambda n: 2 * n.outputs[0].type.size * _size(n.inputs[1].shape[1:]),
    fuzz=Fuzz(generator="conv", smooth=True, heavy=True),
    roundoff=reduction(_conv_terms),
)


def _conv_attrs(attrs):
    return {k: attrs[k] for k in ("stride", "padding", "dilation", "groups")}


def _gi_infer(types, attrs):
    g, w = types
    x = TensorType(attrs["input_shape"], w.dtype)
    if _conv_infer([x, w], _conv_attrs(attrs)).shape != g.shape:
        raise ValueError(f"gradient {g.shape} does not match conv of {x.shape} with {w.shape}")
    return x


def _gi_ref(a, attrs):
    g, w = a
    shape = tuple(attrs["input_shape"])
    nsp = len(shape) - 2
    groups = attrs["groups"]
    pads = attrs["padding"]
    osp, ksp = g.shape[2:], w.shape[2:]
    wm = w.reshape(groups, w.shape[0] // groups, -1)  # G F/G C/G*K
    cols = _per_group(wm.transpose(0, 2, 1), _gradient_matrix(g, groups))  # G C/G*K N*O
    cols = cols.reshape((shape[1],) + tuple(ksp) + (shape[0],) + tuple(osp))  # C K.. N O..
    padded = [shape[2 + i] + pads[i][0] + pads[i][1] for i in range(nsp)]
    xp = np.zeros((shape[0], shape[1]) + tuple(padded), g.dtype)
    for kidx in np.ndindex(*ksp):  # col2im: each kernel offset's products added at their input positions
        sl = tuple(
            slice(
                kidx[i] * attrs["dilation"][i],
                kidx[i] * attrs["dilation"][i] + attrs["stride"][i] * (osp[i] - 1) + 1,
                attrs["stride"][i],
            )
            for i in range(nsp)
        )
        xp[(slice(None), slice(None)) + sl] += np.moveaxis(cols[(slice(None),) + kidx], 0, 1)
    crop = tuple(slice(pads[i][0], pads[i][0] + shape[2 + i]) for i in range(nsp))
    return np.ascontiguousarray(xp[(slice(None), slice(None)) + crop])


def _gi_grad(b, node, cts):
    g, w = node.inputs
    G = cts[0]
    at = _conv_attrs(node.attrs)
    return [b.conv(G, w, **at), b.conv_grad_weight(G, g, weight_shape=w.shape, **at)]


register(
    "conv_grad_input",
    infer=_gi_infer,
    ref=_gi_ref,
    grad=_gi_grad,
    slow_reference=True,
    fixed_attrs=("stride", "padding", "dilation", "groups"),
    pattern="out_fusable",
    num_inputs=2,
    doc="gradient of conv with respect to its input (a transposed convolution)",
    lowering="conv_grad_input",
    flops=lambda n: 2 * n.inputs[0].type.size * _size(n.inputs[1].shape[1:]),
    fuzz=Fuzz(generator="conv_grad", smooth=True, heavy=True),
    roundoff=reduction(_conv_terms),
)


def _gw_infer(types, attrs):
    x, g = types
    w = TensorType(attrs["weight_shape"], x.dtype)
    if _conv_infer([x, w], _conv_attrs(attrs)).shape != g.shape:
        raise ValueError(f"gradient {g.shape} does not match conv of {x.shape} with weight {w.shape}")
    return w


def _gw_ref(a, attrs):
    x, g = a
    wshape = tuple(attrs["weight_shape"])
    cols = _columns(x, wshape[2:], attrs, g.shape[2:])  # G C/G*K N*O
    gw = _per_group(_gradient_matrix(g, attrs["groups"]), cols.transpose(0, 2, 1))  # G F/G C/G*K
    return np.ascontiguousarray(gw.reshape(wshape)).astype(x.dtype, copy=False)


def _gw_grad(b, node, cts):
    x, g = node.inputs
    G = cts[0]
    at = _conv_attrs(node.attrs)
    return [b.conv_grad_input(g, G, input_shape=x.shape, **at), b.conv(x, G, **at)]


register(
    "conv_grad_weight",
    infer=_gw_infer,
    ref=_gw_ref,
    grad=_gw_grad,
    slow_reference=True,
    fixed_attrs=("stride", "padding", "dilation", "groups"),
    pattern="out_fusable",
    num_inputs=2,
    doc="gradient of conv with respect to its weight",
    lowering="conv_grad_weight",
    flops=lambda n: 2 * n.inputs[1].type.size * _size(n.outputs[0].shape[1:]),
    fuzz=Fuzz(generator="conv_grad", smooth=True, heavy=True),
    roundoff=reduction(_conv_terms),
)
