"""Algebraic simplification: identities that remove work without changing results.

x+0, x-0, x*1, x/1 -> x (when no broadcasting is implied); reshape/broadcast_to to the same shape -> x;
reshape(reshape(x)) -> reshape(x); transpose(transpose(x)) -> one transpose (or x); neg(neg(x)) -> x;
cast to the same dtype -> x; sum over no axes -> x; transpose(A @ B) -> B^T @ A^T when the product has no
other use (so a weight gradient is computed in the weight's layout instead of being transposed afterwards).
"""
from __future__ import annotations

from ..graph import Graph
from ..registry import make_node


def _scalar(v):
    n = v.producer
    if n is not None and n.op == "full":
        return n.attrs["value"]
    return None


def _swaps_last_two(perm) -> bool:
    nd = len(perm)
    return nd >= 2 and tuple(perm) == tuple(range(nd - 2)) + (nd - 1, nd - 2)


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
    if op in ("reshape", "broadcast_to") and ins[0].shape == out.shape:
        return ins[0]
    if op == "cast" and ins[0].dtype == out.dtype:
        return ins[0]
    if op == "sum" and not n.attrs["axes"] and ins[0].type == out.type:
        return ins[0]
    if op == "reshape" and ins[0].producer is not None and ins[0].producer.op == "reshape":
        return make_node("reshape", [ins[0].producer.inputs[0]], {"shape": out.shape})
    if op == "neg" and ins[0].producer is not None and ins[0].producer.op == "neg":
        return ins[0].producer.inputs[0]
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
        if (p is not None and p.op == "matmul" and _swaps_last_two(perm) and single_use(ins[0])
                and all(v.type.ndim == len(perm) for v in p.inputs)):
            a, b = p.inputs
            ta, tb = make_node("transpose", [a], {"perm": perm}), make_node("transpose", [b], {"perm": perm})
            return [tb, ta], make_node("matmul", [tb.outputs[0], ta.outputs[0]], {})
    return None


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
                for p in prelude:
                    out = place(p, meta)
                    if out is not p.outputs[0]:
                        r.inputs = [out if v is p.outputs[0] else v for v in r.inputs]
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
