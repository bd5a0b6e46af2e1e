"""Algebraic simplification: identities that remove work without changing results.

x+0, x-0, x*1, x/1, x**1 -> x (when no broadcasting is implied); reshape/broadcast_to to the same shape -> x;
reshape(reshape(x)) -> reshape(x); transpose(transpose(x)) -> one transpose (or x); neg(neg(x)) -> x;
cast to the same dtype -> x; select with a constant condition -> the branch it takes; sum over no axes -> x; transpose(A @ B) -> B^T @ A^T when the product has no
other use (so a weight gradient is computed in the weight's layout instead of being transposed afterwards);
a batched product with a shared 2-D right operand -> one product over all rows; the batch sum of batched
products (a weight gradient of such a product) -> one product whose inner dimension spans the batch.
"""

from __future__ import annotations

from ..graph import Graph
from ..ops._util import norm_axes
from ..registry import make_node


def _scalar(v):
    n = v.producer
    if n is not None and n.op == "full":
        return n.attrs["value"]
    return None


def _swaps_last_two(perm) -> bool:
    nd = len(perm)
    return nd >= 2 and tuple(perm) == tuple(range(nd - 2)) + (nd - 1, nd - 2)


def _fold_batch_into_rows(n):
    """A (..., m, K) @ W (K, n) -> one (P*m, K) @ (K, n) product, reshaped back: one big GEMM, W packed once."""
    a, w = n.inputs
    rows = 1
    for s in a.shape[:-1]:
        rows *= s
    ra = make_node("reshape", [a], {"shape": (rows, a.shape[-1])})
    mm = make_node("matmul", [ra.outputs[0], w], {})
    return [ra, mm], make_node("reshape", [mm.outputs[0]], {"shape": n.outputs[0].shape})


def _batch_sum_as_one_product(n):
    """sum over the batch axes of X_b @ Y_b (a weight gradient through a batched product) -> one product whose
    inner dimension runs over batch and rows: [X_0 X_1 ...] @ [Y_0; Y_1; ...]."""
    x, y = n.inputs[0].producer.inputs
    nb = x.type.ndim - 2
    if nb < 1 or y.type.ndim != x.type.ndim or x.shape[:-2] != y.shape[:-2] or n.attrs.get("keepdims"):
        return None
    if y.producer is not None and y.producer.op == "transpose":  # (stacking Y_b^T's rows would copy them: a
        return None  # convolution's per-image weight gradient, g[n] @ col[n]^T, reads col in place as it is)
    if tuple(sorted(norm_axes(n.attrs["axes"], n.inputs[0].type.ndim))) != tuple(range(nb)):
        return None
    rows = 1
    for s in x.shape[:-2]:
        rows *= s
    rows *= x.shape[-1]
    perm = tuple(range(nb)) + (nb + 1, nb)
    tx = make_node("transpose", [x], {"perm": perm})  # (..., m, K1)
    rx = make_node("reshape", [tx.outputs[0]], {"shape": (rows, x.shape[-2])})
    lhs = make_node("transpose", [rx.outputs[0]], {"perm": (1, 0)})  # (K1, P*m)
    ry = make_node("reshape", [y], {"shape": (rows, y.shape[-1])})
    return [tx, rx, lhs, ry], make_node("matmul", [lhs.outputs[0], ry.outputs[0]], {})


def _rewrite(n, single_use=lambda v: False):
    """Return a Value that replaces n's output, a new Node, a ([new nodes], Node) pair, or None."""
    op, ins, out = n.op, n.inputs, n.outputs[0]
    if op in ("add", "sub", "mul", "div"):
        x, y = ins
        unit = 0 if op in ("add", "sub") else 1
        if _scalar(y) == unit and x.type == out.type:
            return x
        if op in ("add", "mul") and _scalar(x) == unit and y.type == out.type:
            return y
    if op == "pow" and _scalar(ins[1]) == 1 and ins[0].type == out.type:  # (the gradient of x ** 2)
        return ins[0]
    if op in ("reshape", "broadcast_to") and ins[0].shape == out.shape:
        return ins[0]
    if op == "select" and _scalar(ins[0]) is not None:  # a constant condition (a gradient's guard for a case
        pick = ins[1] if _scalar(ins[0]) else ins[2]  # that a constant operand rules out, as pow's for y == 0)
        if pick.type == out.type:
            return pick
        if pick.dtype == out.dtype:
            return make_node("broadcast_to", [pick], {"shape": out.shape})
    if op == "cast" and ins[0].dtype == out.dtype:
        return ins[0]
    if op == "sum" and not n.attrs["axes"] and ins[0].type == out.type:
        return ins[0]
    if op == "reshape" and ins[0].producer is not None and ins[0].producer.op == "reshape":
        return make_node("reshape", [ins[0].producer.inputs[0]], {"shape": out.shape})
    if op == "neg" and ins[0].producer is not None and ins[0].producer.op == "neg":
        return ins[0].producer.inputs[0]
    if op == "matmul" and ins[0].type.ndim > 2 and ins[1].type.ndim == 2:
        return _fold_batch_into_rows(n)
    if op == "sum" and ins[0].producer is not None and ins[0].producer.op == "matmul" and single_use(ins[0]):
        r = _batch_sum_as_one_product(n)
        if r is not None:
            return r
    if op == "transpose":
        perm = tuple(n.attrs["perm"])
        if perm == tuple(range(len(perm))):
            return ins[0]
        p = ins[0].producer
        if p is not None and p.op == "transpose":
            inner = tuple(p.attrs["perm"])
            combined = tuple(inner[i] for i in perm)
            if combined == tuple(range(len(combined))):
                return p.inputs[0]
            return make_node("transpose", [p.inputs[0]], {"perm": combined})
        if (
            p is not None
            and p.op == "matmul"
            and _swaps_last_two(perm)
            and single_use(ins[0])
            and all(v.type.ndim == len(perm) for v in p.inputs)
        ):
            a, b = p.inputs
            ta, tb = make_node("transpose", [a], {"perm": perm}), make_node("transpose", [b], {"perm": perm})
            return [tb, ta], make_node("matmul", [tb.outputs[0], ta.outputs[0]], {})
    return None


def local_rewrite(n):
    """The replacement of node n by its own identities alone (no knowledge of its users): a Value, a single new
    Node, or None (rewrites that need more nodes, or that depend on the value's other uses, are left out)."""
    r = _rewrite(n)
    return r if r is None or hasattr(r, "type") or hasattr(r, "op") else None


def simplify(graph: Graph) -> Graph:
    subst: dict = {}
    kept = []
    users = graph.users()
    outputs = {v.id for v in graph.outputs}

    def single_use(v) -> bool:
        return len(users.get(v.id, ())) == 1 and v.id not in outputs

    def place(node, meta):
        """Simplify a new node as far as possible; keep it (and nodes it needs), return its value."""
        r = node
        while r is not None and not hasattr(r, "type"):
            if isinstance(r, tuple):
                prelude, r = r
                placed: dict = {}  # prelude outputs that simplified to another value
                for p in prelude:
                    p.inputs = [placed.get(v.id, v) for v in p.inputs]
                    out = place(p, meta)
                    if out is not p.outputs[0]:
                        placed[p.outputs[0].id] = out
                r.inputs = [placed.get(v.id, v) for v in r.inputs]
            r.meta.update(meta)
            nxt = _rewrite(r, single_use)
            if nxt is None:
                kept.append(r)
                return r.outputs[0]
            r = nxt
        return r

    for n in graph.nodes:
        n.inputs = [subst.get(v.id, v) for v in n.inputs]
        r = _rewrite(n, single_use) if len(n.outputs) == 1 else None
        if r is not None:
            subst[n.outputs[0].id] = r if hasattr(r, "type") else place(r, n.meta)
            continue
        kept.append(n)
    graph.nodes = kept
    graph.outputs = [subst.get(v.id, v) for v in graph.outputs]
    return graph
