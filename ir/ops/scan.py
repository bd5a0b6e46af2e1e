"""scan: a loop over the leading axis of some inputs, with a body subgraph and carried state (as lax.scan).

inputs  = carries (n_carry) + xs (n_xs, each of shape (length, ...)) + consts
body    : Graph(carries, x slices, consts) -> (new carries, y slices)
outputs = final carries + ys stacked along a new leading axis of size `length`
The gradient is a reverse scan whose body is the vjp of the forward body; the carries at each step are
recomputed by a forward scan that also stacks its carry inputs.
"""

from __future__ import annotations

import functools

import numpy as np

from ..graph import Graph
from ..registry import Fuzz, GraphEmitter, register
from ..roundoff import scan_bounds
from ..types import TensorType
from ._util import is_zero_fill, norm_axes


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
    return list(seq[:nc]), list(seq[nc : nc + nx]), list(seq[nc + nx :])


def _scan_infer(types, attrs):
    body = attrs["body"].graph
    length = attrs["length"]
    carries, xs, consts = _split(types, attrs)
    if length < 0:
        raise ValueError(f"scan length {length} is negative (inputs {[str(t) for t in xs]})")
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


def _with_carry_history(body: Graph, nc: int, saved: list = ()) -> Graph:
    """The body with its carry inputs and the `saved` values ((node position, output index) in the body) appended
    to its y outputs (to stack every step's carry and the residuals the reverse scan reads)."""
    g = body.copy()
    g.outputs = g.outputs + g.inputs[:nc] + [g.nodes[i].outputs[j] for i, j in saved]
    return g


# Patterns whose values the reverse scan recomputes from the saved ones, unless they compute a transcendental
# function (a sigmoid or tanh gate); every other forward value it needs (matrix products, reductions, gates) is
# saved by the forward scan, one stacked y per value.
_RECOMPUTED = ("elementwise", "broadcast", "injective")


def _recomputed(n) -> bool:
    from ..registry import get_op
    from ..scalar import uses_transcendental

    op = get_op(n.op)
    if op.remap:
        return True
    if op.pattern not in _RECOMPUTED:
        return False
    return op.scalar is None or not uses_transcendental(op.scalar, n.outputs[0].dtype, n.attrs, len(n.inputs))


def _save_residuals(g: Graph, position: dict) -> tuple:
    """In the backward body g (a copy of the forward body plus the vjp's nodes; `position` maps the ids of the
    copied nodes to their positions in the forward body), replace each value of a forward node that is not cheap
    to recompute by a new input. Returns ([(position, output index)] of the replaced values, [their new inputs])."""
    saved, inputs = [], []
    for n in [n for n in g.nodes if n.id in position and not _recomputed(n)]:
        for o in n.outputs:
            o = _end_of_chain(g, o, position)
            if o is None:
                continue  # no longer read (an earlier residual replaced its readers)
            new = g.add_input(o.type, f"res{len(inputs)}", "residual")
            g.replace_uses(o, new)
            saved.append((position[o.producer.id], o.index))
            inputs.append(new)
    # a value saved early may be read only by values saved later (a matrix product's by the gates it feeds)
    from ..passes.dce import dce

    dce(g)
    read = {v.id for m in g.nodes for v in m.inputs} | {v.id for v in g.outputs}
    needed = [k for k, v in enumerate(inputs) if v.id in read]
    return [saved[k] for k in needed], [inputs[k] for k in needed]


def _end_of_chain(g: Graph, o, position: dict):
    """The value to save for forward value o (None when nothing reads it): o, or, while the only reader of the
    value is a forward elementwise op of the same type (a bias add after a matrix product), that op's result.
    The forward loop then computes the chain in o's kernel and the reverse loop does not repeat it."""
    from ..registry import get_op

    while True:
        readers = [m for m in g.nodes if any(v is o for v in m.inputs)]
        if any(v is o for v in g.outputs):
            return o
        if not readers:
            return None
        m = readers[0]
        op = get_op(m.op)
        if (
            len(readers) > 1
            or m.id not in position
            or op.remap
            or op.pattern not in ("elementwise", "broadcast")
            or len(m.outputs) != 1
            or m.outputs[0].type != o.type
        ):
            return o
        o = m.outputs[0]


def _hoistable(gr):
    """A per-step constant gradient that is X^T Y (or its transpose) or a sum over rows of Y: its total over
    all steps is then one product (or sum) of the stacked X and Y, computed once after the loop."""
    p, transposed = gr.producer, False
    if p is not None and p.op == "transpose" and tuple(p.attrs["perm"]) == (1, 0):
        transposed, p = True, p.inputs[0].producer
    if p is not None and p.op == "matmul" and len(p.outputs[0].shape) == 2:
        a, y = p.inputs
        if a.producer is not None and a.producer.op == "transpose" and tuple(a.producer.attrs["perm"]) == (1, 0):
            return ("matmul", a.producer.inputs[0], y, transposed)
    if (
        not transposed
        and p is not None
        and p.op == "sum"
        and len(p.inputs[0].shape) == 2
        and not p.attrs.get("keepdims")
        and norm_axes(p.attrs["axes"], 2) == (0,)
    ):
        return ("sum", p.inputs[0])
    return None


def _backward_body(body: Graph, nc: int, nx: int, want: list) -> tuple:
    """Body of the reverse scan, and how each wanted constant's gradient is gathered.

    inputs : ct_carry (nc), ct_const_acc (accumulated consts), carry_t (nc), x_t (nx), ct_y (ny), consts
    outputs: ct_carry_prev (nc), ct_const_acc', ct_x_t (nx), then the per-step factors of hoisted consts
    plan   : per wanted const, ("carry", i) or ("matmul", ix, iy, transposed) / ("sum", iy), where i* index the
             stacked extra outputs.
    """
    from ..autodiff import vjp

    g = body.copy()
    position = {n.id: i for i, n in enumerate(g.nodes)}
    carry_in, x_in, const_in = g.inputs[:nc], g.inputs[nc : nc + nx], g.inputs[nc + nx :]
    fwd_out = list(g.outputs)
    wanted = [c for c, w in zip(const_in, want[nc + nx :]) if w]
    ct_carry = [g.add_input(v.type, f"ct_carry{i}", "cotangent") for i, v in enumerate(carry_in)]
    ct_y = [g.add_input(v.type, f"ct_y{i}", "cotangent") for i, v in enumerate(fwd_out[nc:])]
    b = GraphEmitter(g, {"phase": "backward"})
    grads = vjp(g, fwd_out, ct_carry + ct_y, carry_in + x_in + wanted, b)

    def or_zero(gr, v):
        return gr if gr is not None else b.full(0.0, v.shape, v.dtype)

    g_carry = [or_zero(gr, v) for gr, v in zip(grads[:nc], carry_in)]
    g_x = [or_zero(gr, v) for gr, v in zip(grads[nc : nc + nx], x_in)]
    ct_acc, g_const, extra, plan = [], [], [], []
    for i, (gr, v) in enumerate(zip(grads[nc + nx :], wanted)):
        h = _hoistable(gr) if gr is not None else None
        if h is None:
            acc = g.add_input(v.type, f"ct_const{i}", "cotangent")
            ct_acc.append(acc)
            g_const.append(b.add(acc, or_zero(gr, v)))
            plan.append(("carry", len(g_const) - 1))
        elif h[0] == "matmul":
            extra += [h[1], h[2]]
            plan.append(("matmul", len(extra) - 2, len(extra) - 1, h[3]))
        else:
            extra.append(h[1])
            plan.append(("sum", len(extra) - 1))
    g.outputs = g_carry + g_const + g_x + extra
    from ..passes.dce import dce

    dce(g)
    saved, res_in = _save_residuals(g, position)
    g.inputs = ct_carry + ct_acc + carry_in + x_in + ct_y + res_in + const_in
    return g, plan, saved


@functools.lru_cache(maxsize=64)
def _derived_bodies(body: Body, nc: int, nx: int, want: tuple) -> tuple:
    """(history body, reverse body, plan, saved) of a scan's gradient, derived once per body (Bodies compare by their
    structural hash): eager RNNs differentiate the same body at every backward (no pass mutates a Body's graph: they
    copy it first)."""
    bwd_body, plan, saved = _backward_body(body.graph, nc, nx, list(want))
    return Body(_with_carry_history(body.graph, nc, saved)), Body(bwd_body), plan, saved


def with_history(attrs: dict, want: tuple) -> dict:
    """The attributes of a scan that also stacks, after its own outputs, the carry history and residuals its gradient
    reads (the history body of _derived_bodies; `want`: per input, whether a gradient may be taken). Eager code runs
    this scan when a backward() may follow, so that the gradient does not run the loop again; `grad_of` keeps the
    plain body, which the gradient rule differentiates."""
    hist_body = _derived_bodies(attrs["body"], attrs["n_carry"], attrs["n_xs"], tuple(want))[0]
    return {**attrs, "body": hist_body, "grad_of": attrs["body"]}


def _scan_grad(b, node, cts):
    at = node.attrs
    nc, nx = at["n_carry"], at["n_xs"]
    carries, xs, consts = _split(node.inputs, at)
    want = tuple(v.type.is_float for v in node.inputs)
    # 1. carry history: a forward scan that also stacks each step's carry input and the residuals (the values of
    # the body's matrix products and reductions) that the reverse scan reads; a scan run with_history has them
    # already (unless its history outputs have cotangents of their own: then its body is differentiated as any other)
    plain, hist = at.get("grad_of"), None
    if (
        plain is not None
        and len(plain.graph.inputs) == len(node.inputs)
        and all(c is None or is_zero_fill(c) for c in cts[len(plain.graph.outputs) :])
        and _derived_bodies(plain, nc, nx, want)[0] == at["body"]
    ):
        body_attr, hist = plain, list(node.outputs)
    else:
        body_attr = at["body"]
    body = body_attr.graph
    hist_body, bwd_body, plan, saved = _derived_bodies(body_attr, nc, nx, want)
    if hist is None:
        hist = b.emit(
            "scan",
            *node.inputs,
            body=hist_body,
            n_carry=nc,
            n_xs=nx,
            length=at["length"],
            reverse=at.get("reverse", False),
        )
        hist = hist if isinstance(hist, tuple) else (hist,)
    ny = len(body.outputs) - nc
    carry_hist = list(hist[nc + ny : nc + ny + nc])
    res_hist = list(hist[nc + ny + nc :])
    # 2. reverse scan over the vjp of the body, reading the saved residuals instead of recomputing them
    ct_final = [c if c is not None else b.full(0.0, v.shape, v.dtype) for c, v in zip(cts[:nc], node.outputs[:nc])]
    ct_ys = [
        c if c is not None else b.full(0.0, v.shape, v.dtype)
        for c, v in zip(cts[nc : nc + ny], node.outputs[nc : nc + ny])
    ]
    wanted = [c for c, w in zip(consts, want[nc + nx :]) if w]
    acc0 = [b.full(0.0, v.shape, v.dtype) for v, p in zip(wanted, plan) if p[0] == "carry"]
    outs = b.emit(
        "scan",
        *(ct_final + acc0 + carry_hist + xs + ct_ys + res_hist + consts),
        body=bwd_body,
        n_carry=nc + len(acc0),
        n_xs=nc + nx + ny + len(res_hist),
        length=at["length"],
        reverse=not at.get("reverse", False),
    )
    outs = outs if isinstance(outs, tuple) else (outs,)
    g_carry = list(outs[:nc])
    g_acc = list(outs[nc : nc + len(acc0)])
    g_xs = list(outs[nc + len(acc0) : nc + len(acc0) + nx])
    stacked = list(outs[nc + len(acc0) + nx :])

    def rows(v):  # (length, B, n) -> (length * B, n)
        return b.reshape(v, shape=(v.shape[0] * v.shape[1], v.shape[2]))

    g_consts = []
    for p in plan:
        if p[0] == "carry":
            g_consts.append(g_acc[p[1]])
        elif p[0] == "matmul":
            xs_, ys_ = rows(stacked[p[1]]), rows(stacked[p[2]])
            prod = b.matmul(b.transpose(xs_, perm=(1, 0)), ys_)
            g_consts.append(b.transpose(prod, perm=(1, 0)) if p[3] else prod)
        else:
            g_consts.append(b.sum(stacked[p[1]], axes=(0, 1), keepdims=False))
    g_consts = iter(g_consts)
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


def _scan_flops(node) -> int:
    from ..registry import graph_flops

    return node.attrs["length"] * graph_flops(node.attrs["body"].graph)


register(
    "scan",
    infer=_scan_infer,
    ref=_scan_ref,
    grad=_scan_grad,
    pattern="opaque",
    doc="loop over the leading axis of xs with a body subgraph and carried state",
    lowering="scan",
    flops=_scan_flops,
    fuzz=Fuzz(generator="scan", heavy=True),
    roundoff=scan_bounds,
)
