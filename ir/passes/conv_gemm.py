"""Lower convolutions to matrix products: conv, conv_grad_weight and conv_grad_input become im2col / col2im
plus one (batched, for groups) matmul, so every convolution runs on the matmul kernel.

conv:             out[o, (n, q)]     = W[o, (c, k)] @ im2col(x)[(c, k), (n, q)]
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


def _swap_last(e, v):
    nd = len(v.shape)
    return e("transpose", v, perm=tuple(range(nd - 2)) + (nd - 1, nd - 2))


def _rewrite(n, e):
    at = n.attrs
    groups = at["groups"]
    if n.op == "conv":
        x, w = n.inputs
        O, cg = w.shape[0], w.shape[1]
        kp = _kernel_points(w.shape)
        col = e("im2col", x, kernel=tuple(w.shape[2:]), **_geo(at))
        R = col.shape[1]
        if groups == 1:
            out2 = e("matmul", e("reshape", w, shape=(O, cg * kp)), col)
        else:
            wg = e("reshape", w, shape=(groups, O // groups, cg * kp))
            out2 = e("reshape", e("matmul", wg, e("reshape", col, shape=(groups, cg * kp, R))), shape=(O, R))
        out = n.outputs[0]
        N = out.shape[0]
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
