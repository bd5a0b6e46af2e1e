"""Lower convolutions to matrix products: conv, conv_grad_weight and conv_grad_input become im2col / col2im
plus one (batched, for groups) matmul, so every convolution runs on the matmul kernel. A depthwise convolution (one
input channel per group, one output channel per group: MobileNet's, ConvNeXt's) is a sum over its kernel's taps of
shifted slices of the (padded) input times one weight per channel instead, elementwise work one fused loop computes
without a column matrix (its gradients: the taps' slices scattered back, and one channel sum per tap).

conv:             out[o, (n, q)]     = W[o, (c, k)] @ im2col(x)[(c, k), (n, q)]
                  (a small weight: out[n, o, q] = W[o, (c, k)] @ im2col(x, per_image)[n, (c, k), q], see _per_image)
conv_grad_weight: gW[o, (c, k)]      = g[o, (n, q)] @ im2col(x)^T
conv_grad_input:  dcol[(c, k), (n, q)] = W^T @ g[o, (n, q)];  gx = col2im(dcol)
"""

from __future__ import annotations

from ..graph import Graph
from ..registry import make_node


class _Builder:
    def __init__(self, meta: dict):
        self.nodes, self.meta = [], meta

    def __call__(self, op, *inputs, **attrs):
        n = make_node(op, list(inputs), attrs)
        n.meta.update(self.meta)
        self.nodes.append(n)
        return n.outputs[0]


def _geo(attrs):
    return {"stride": attrs["stride"], "padding": attrs["padding"], "dilation": attrs["dilation"]}


def _channels_first(e, g, o_count):
    """(N, O, *S) -> (O, N * prod(S))."""
    nd = len(g.shape)
    t = e("transpose", g, perm=(1, 0) + tuple(range(2, nd))) if g.shape[0] != 1 else g
    return e("reshape", t, shape=(o_count, g.type.size // o_count))


def _kernel_points(wshape) -> int:
    """Positions in one kernel window (not size // (O * C): channel counts may be 0)."""
    kp = 1
    for s in wshape[2:]:
        kp *= s
    return kp


PER_IMAGE_WEIGHT_BYTES = 64 << 10  # a convolution's weight matrix at most this big ...
PER_IMAGE_POSITIONS = 64  # ... and at least this many output positions per image: one product per image


def _per_image(dtype: str, wshape: tuple, positions) -> bool:
    """Compute a convolution as one product per image (its result in NCHW order: no transposing kernel after it, the
    bias and activation in the product's epilogue) rather than one over the whole batch (its result channel-major)?
    When the weight matrix, which every image's product reads again, stays in any core's L1 or L2, and each image
    has columns for several whole panels. (In a training step the weight gradient sums the per-image products of
    the gradient with the same columns.)"""
    itemsize = 8 if dtype == "float64" else 4
    size = _kernel_points((1, 1) + tuple(wshape))  # (elements of the weight)
    return isinstance(positions, int) and size * itemsize <= PER_IMAGE_WEIGHT_BYTES and positions >= PER_IMAGE_POSITIONS


def _swap_last(e, v):
    nd = len(v.shape)
    return e("transpose", v, perm=tuple(range(nd - 2)) + (nd - 1, nd - 2))


def _depthwise(n) -> bool:
    """A convolution with one input and one output channel per group, over 1 or 2 spatial dimensions, stride 1."""
    at = n.attrs
    wshape = tuple(at["weight_shape"]) if n.op == "conv_grad_weight" else n.inputs[1].shape
    channels = at["input_shape"][1] if n.op == "conv_grad_input" else n.inputs[0].shape[1]
    # (strided ones stay products: their gradient's strided scatters cost more per element than the column matrix)
    unit = all(st == 1 for st in at["stride"])
    return at["groups"] == channels == wshape[0] and wshape[1] == 1 and len(wshape) in (3, 4) and channels > 1 and unit


def _taps(kernel: tuple) -> list:
    out = [()]
    for k in kernel:
        out = [t + (i,) for t in out for i in range(k)]
    return out


def _padded_shape(at, in_shape: tuple) -> tuple:
    return tuple(in_shape[:2]) + tuple(lo + s + hi for s, (lo, hi) in zip(in_shape[2:], at["padding"]))


def _tap_window(at, tap: tuple, xp_shape: tuple, out_spatial: tuple) -> dict:
    """slice attributes of the padded input's window that kernel tap `tap` multiplies (output-shaped)."""
    off = tuple(t * d for t, d in zip(tap, at["dilation"]))
    stops = tuple(o + (q - 1) * s + 1 for o, q, s in zip(off, out_spatial, at["stride"]))
    return {"starts": (0, 0) + off, "stops": tuple(xp_shape[:2]) + stops, "steps": (1, 1) + tuple(at["stride"])}


def _tap_weight(e, w, tap: tuple, nd: int):
    """w[:, 0, *tap] shaped to broadcast over (N, C, *spatial)."""
    C = w.shape[0]
    t = e("slice", w, starts=(0, 0) + tap, stops=(C, 1) + tuple(i + 1 for i in tap), steps=(1,) * (2 + nd))
    return e("reshape", t, shape=(1, C) + (1,) * nd)


def _rewrite_depthwise(n, e):
    at = n.attrs
    nd = len(at["stride"])
    if n.op == "conv_grad_input":
        g, w = n.inputs
        in_shape = tuple(at["input_shape"])
    elif n.op == "conv":
        x, w = n.inputs
        in_shape = x.shape
    else:
        x, g = n.inputs
        in_shape = x.shape
    kernel = tuple(at["weight_shape"][2:]) if n.op == "conv_grad_weight" else w.shape[2:]
    xp_shape = _padded_shape(at, in_shape)
    padded = xp_shape != tuple(in_shape)
    lo = tuple(p[0] for p in at["padding"])
    if n.op == "conv_grad_input":
        out_spatial = g.shape[2:]
        acc = None
        for tap in _taps(kernel):
            win = _tap_window(at, tap, xp_shape, out_spatial)
            part = e(
                "slice_grad",
                e("mul", g, _tap_weight(e, w, tap, nd)),
                shape=xp_shape,
                starts=win["starts"],
                steps=win["steps"],
            )
            acc = part if acc is None else e("add", acc, part)
        if padded:
            acc = e(
                "slice",
                acc,
                starts=(0, 0) + lo,
                stops=tuple(in_shape[:2]) + tuple(l + s for l, s in zip(lo, in_shape[2:])),
                steps=(1,) * (2 + nd),
            )
        return acc
    xp = e("slice_grad", x, shape=xp_shape, starts=(0, 0) + lo, steps=(1,) * (2 + nd)) if padded else x
    out_spatial = n.outputs[0].shape[2:] if n.op == "conv" else g.shape[2:]
    if n.op == "conv":
        acc = None
        for tap in _taps(kernel):
            part = e("mul", e("slice", xp, **_tap_window(at, tap, xp_shape, out_spatial)), _tap_weight(e, w, tap, nd))
            acc = part if acc is None else e("add", acc, part)
        return acc
    C = in_shape[1]
    cols = [
        e(
            "reshape",
            e(
                "sum",
                e("mul", g, e("slice", xp, **_tap_window(at, tap, xp_shape, out_spatial))),
                axes=(0,) + tuple(range(2, 2 + nd)),
                keepdims=False,
            ),
            shape=(C, 1),
        )
        for tap in _taps(kernel)
    ]
    gw = e("concat", *cols, axis=1) if len(cols) > 1 else cols[0]
    return e("reshape", gw, shape=tuple(at["weight_shape"]))


def _rewrite(n, e):
    at = n.attrs
    groups = at["groups"]
    if _depthwise(n):
        return _rewrite_depthwise(n, e)
    if n.op == "conv":
        x, w = n.inputs
        O, cg = w.shape[0], w.shape[1]
        kp = _kernel_points(w.shape)
        out = n.outputs[0]
        N, Q = out.shape[0], _kernel_points((1, 1) + out.shape[2:])  # (Q: output positions per image)
        if groups == 1 and N != 1 and _per_image(w.dtype, w.shape, Q):
            # one product per image, the weight broadcast: out[n] = W @ col[n], stored in NCHW order directly
            col = e("im2col", x, kernel=tuple(w.shape[2:]), per_image=True, **_geo(at))
            return e("reshape", e("matmul", e("reshape", w, shape=(O, cg * kp)), col), shape=out.shape)
        col = e("im2col", x, kernel=tuple(w.shape[2:]), **_geo(at))
        R = col.shape[1]
        if groups == 1:
            out2 = e("matmul", e("reshape", w, shape=(O, cg * kp)), col)
        else:
            wg = e("reshape", w, shape=(groups, O // groups, cg * kp))
            out2 = e("reshape", e("matmul", wg, e("reshape", col, shape=(groups, cg * kp, R))), shape=(O, R))
        t = e("reshape", out2, shape=(O, N) + out.shape[2:])
        return (
            e("transpose", t, perm=(1, 0) + tuple(range(2, len(out.shape))))
            if N != 1
            else e("reshape", t, shape=out.shape)
        )
    if n.op == "conv_grad_weight":
        x, g = n.inputs
        wshape = tuple(at["weight_shape"])
        O, cg = wshape[0], wshape[1]
        kp = _kernel_points(wshape)
        N, Q = g.shape[0], _kernel_points((1, 1) + g.shape[2:])
        if groups == 1 and N != 1 and _per_image(g.dtype, wshape, Q):
            # the forward's per-image columns (one im2col, shared after CSE), each image's g[n] @ col[n]^T summed:
            # no channel-major column matrix, no transposed copy of g
            col = e("im2col", x, kernel=wshape[2:], per_image=True, **_geo(at))
            parts = e("matmul", e("reshape", g, shape=(N, O, Q)), _swap_last(e, col))
            return e("reshape", e("sum", parts, axes=(0,), keepdims=False), shape=wshape)
        col = e("im2col", x, kernel=wshape[2:], **_geo(at))
        R = col.shape[1]
        gT = _channels_first(e, g, O)
        if groups == 1:
            gw = e("matmul", gT, _swap_last(e, col))
        else:
            gw = e(
                "matmul",
                e("reshape", gT, shape=(groups, O // groups, R)),
                _swap_last(e, e("reshape", col, shape=(groups, cg * kp, R))),
            )
        return e("reshape", gw, shape=wshape)
    if n.op == "conv_grad_input":
        g, w = n.inputs
        O, cg = w.shape[0], w.shape[1]
        kp = _kernel_points(w.shape)
        gT = _channels_first(e, g, O)
        R = gT.shape[1]
        if groups == 1:
            dcol = e("matmul", _swap_last(e, e("reshape", w, shape=(O, cg * kp))), gT)
        else:
            wg = e("reshape", w, shape=(groups, O // groups, cg * kp))
            dcol = e(
                "reshape",
                e("matmul", _swap_last(e, wg), e("reshape", gT, shape=(groups, O // groups, R))),
                shape=(groups * cg * kp, R),
            )
        return e("col2im", dcol, input_shape=tuple(at["input_shape"]), kernel=tuple(w.shape[2:]), **_geo(at))
    return None


CONVOLUTIONS = ("conv", "conv_grad_weight", "conv_grad_input")  # the ops conv_to_gemm rewrites


def conv_to_gemm(graph: Graph) -> Graph:
    """Rewrite every convolution op (float32/float64) into im2col/col2im + matmul, in place."""
    subst: dict = {}
    kept = []
    for n in graph.nodes:
        n.inputs = [subst.get(v.id, v) for v in n.inputs]
        if n.op in CONVOLUTIONS:
            e = _Builder(n.meta)
            new = _rewrite(n, e)
            kept.extend(e.nodes)
            subst[n.outputs[0].id] = new
            continue
        kept.append(n)
    graph.nodes = kept
    graph.outputs = [subst.get(v.id, v) for v in graph.outputs]
    return graph
