"""scan: a loop over the leading axis of some inputs, with a body subgraph and carried state (as lax.scan).

inputs  = carries (n_carry) + xs (n_xs, each of shape (length, ...)) + consts
body    : Graph(carries, x slices, consts) -> (new carries, y slices)
outputs = final carries + ys stacked along a new leading axis of size `length`
The gradient is a reverse scan whose body is the vjp of the forward body; the carries at each step are
recomputed by a forward scan that also stacks its carry inputs.
"""
from __future__ import annotations

import numpy as np

from ..graph import Graph
from ..registry import GraphEmitter, register
from ..types import TensorType


class Body:
    """A scan body: a Graph used as an op attribute (hashable through its structural hash)."""

    def __init__(self, graph: Graph):
        self.graph = graph
        self.key = graph.structural_hash()

    def ir_key(self) -> str:
        return f"body<{self.key}>"

    def __eq__(self, other):
        return isinstance(other, Body) and other.key == self.key

    def __hash__(self):
        return hash(self.key)


def _split(seq, attrs):
    nc, nx = attrs["n_carry"], attrs["n_xs"]
    return list(seq[:nc]), list(seq[nc:nc + nx]), list(seq[nc + nx:])


def _scan_infer(types, attrs):
    body = attrs["body"].graph
    length = attrs["length"]
    carries, xs, consts = _split(types, attrs)
    expected = carries + [TensorType(t.shape[1:], t.dtype) for t in xs] + consts
    for t in xs:
        if not t.shape or t.shape[0] != length:
            raise ValueError(f"scanned input {t} must have leading dimension {length}")
    got = [v.type for v in body.inputs]
    if got != expected:
        raise ValueError(f"body takes {[str(t) for t in got]}, scan passes {[str(t) for t in expected]}")
    outs = [v.type for v in body.outputs]
    nc = attrs["n_carry"]
    if outs[:nc] != carries:
        raise ValueError(f"body returns carries {[str(t) for t in outs[:nc]]}, expected {[str(t) for t in carries]}")
    return carries + [TensorType((length,) + t.shape, t.dtype) for t in outs[nc:]]


def _scan_ref(arrays, attrs):
    from ..interpreter import interpret

    body = attrs["body"].graph
    nc = attrs["n_carry"]
    carries, xs, consts = _split(arrays, attrs)
    length = attrs["length"]
    ys = [np.empty((length,) + v.shape, v.dtype) for v in body.outputs[nc:]]
    steps = range(length - 1, -1, -1) if attrs.get("reverse") else range(length)
    for t in steps:
        outs = interpret(body, carries + [x[t] for x in xs] + consts)
        carries = outs[:nc]
        for y, o in zip(ys, outs[nc:]):
            y[t] = o
    return carries + ys


def _with_carry_history(body: Graph, nc: int) -> Graph:
    """The body with its carry inputs appended to its y outputs (to stack every step's carry)."""
    g = body.copy()
    g.outputs = g.outputs + g.inputs[:nc]
    return g


def _backward_body(body: Graph, nc: int, nx: int, want: list) -> tuple:
    """Body of the reverse scan.

    inputs : ct_carry (nc), ct_const_acc (float consts wanted), carry_t (nc), x_t (nx), ct_y (ny), consts
    outputs: ct_carry_prev (nc), ct_const_acc', then ct_x_t for each x
    """
    from ..autodiff import vjp

    g = body.copy()
    carry_in, x_in, const_in = g.inputs[:nc], g.inputs[nc:nc + nx], g.inputs[nc + nx:]
    fwd_out = list(g.outputs)
    ny = len(fwd_out) - nc
    acc_consts = [c for c, w in zip(const_in, want[nc + nx:]) if w]
    ct_carry = [g.add_input(v.type, f"ct_carry{i}", "cotangent") for i, v in enumerate(carry_in)]
    ct_acc = [g.add_input(v.type, f"ct_const{i}", "cotangent") for i, v in enumerate(acc_consts)]
    ct_y = [g.add_input(v.type, f"ct_y{i}", "cotangent") for i, v in enumerate(fwd_out[nc:])]
    g.inputs = ct_carry + ct_acc + carry_in + x_in + ct_y + const_in
    b = GraphEmitter(g, {"phase": "backward"})
    wrt = carry_in + x_in + acc_consts
    grads = vjp(g, fwd_out, ct_carry + ct_y, wrt, b)

    def or_zero(gr, v):
        return gr if gr is not None else b.full(0.0, v.shape, v.dtype)
    g_carry = [or_zero(gr, v) for gr, v in zip(grads[:nc], carry_in)]
    g_x = [or_zero(gr, v) for gr, v in zip(grads[nc:nc + nx], x_in)]
    g_const = [b.add(acc, or_zero(gr, v)) for acc, gr, v in zip(ct_acc, grads[nc + nx:], acc_consts)]
    g.outputs = g_carry + g_const + g_x
    return g, ny


def _scan_grad(b, node, cts):
    at = node.attrs
    nc, nx = at["n_carry"], at["n_xs"]
    body = at["body"].graph
    carries, xs, consts = _split(node.inputs, at)
    want = [v.type.is_float for v in node.inputs]
    # 1. carry history: a forward scan that also stacks each step's carry input
    hist_body = _with_carry_history(body, nc)
    hist = b.emit("scan", *node.inputs, body=Body(hist_body), n_carry=nc, n_xs=nx, length=at["length"],
                  reverse=at.get("reverse", False))
    hist = hist if isinstance(hist, tuple) else (hist,)
    ny = len(body.outputs) - nc
    carry_hist = list(hist[nc + ny:])
    # 2. reverse scan over the vjp of the body
    bwd_body, _ = _backward_body(body, nc, nx, want)
    ct_final = [c if c is not None else b.full(0.0, v.shape, v.dtype) for c, v in zip(cts[:nc], node.outputs[:nc])]
    ct_ys = [c if c is not None else b.full(0.0, v.shape, v.dtype) for c, v in zip(cts[nc:], node.outputs[nc:])]
    acc_consts = [c for c, w in zip(consts, want[nc + nx:]) if w]
    acc0 = [b.full(0.0, v.shape, v.dtype) for v in acc_consts]
    outs = b.emit("scan", *(ct_final + acc0 + carry_hist + xs + ct_ys + consts), body=Body(bwd_body),
                  n_carry=nc + len(acc_consts), n_xs=nc + nx + ny, length=at["length"],
                  reverse=not at.get("reverse", False))
    outs = outs if isinstance(outs, tuple) else (outs,)
    g_carry = list(outs[:nc])
    g_consts = iter(outs[nc:nc + len(acc_consts)])
    g_xs = list(outs[nc + len(acc_consts):])
    result = []
    for i, v in enumerate(node.inputs):
        if not want[i]:
            result.append(None)
        elif i < nc:
            result.append(g_carry[i])
        elif i < nc + nx:
            result.append(g_xs[i - nc])
        else:
            result.append(next(g_consts))
    return result


register("scan", infer=_scan_infer, ref=_scan_ref, grad=_scan_grad, pattern="opaque",
         doc="loop over the leading axis of xs with a body subgraph and carried state")
