"""Algebraic simplification: identities that remove work without changing results.

x+0, x-0, x*1, x/1 -> x (when no broadcasting is implied); reshape/broadcast_to to the same shape -> x;
reshape(reshape(x)) -> reshape(x); transpose(transpose(x)) -> one transpose (or x); neg(neg(x)) -> x;
cast to the same dtype -> x; sum over no axes -> x.
"""
from __future__ import annotations

from ..graph import Graph
from ..registry import make_node


def _scalar(v):
    n = v.producer
    if n is not None and n.op == "full":
        return n.attrs["value"]
    return None


def _rewrite(n):
    """Return a Value that replaces n's output, a new Node, or None."""
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
    return None


def simplify(graph: Graph) -> Graph:
    subst: dict = {}
    kept = []
    for n in graph.nodes:
        n.inputs = [subst.get(v.id, v) for v in n.inputs]
        r = _rewrite(n) if len(n.outputs) == 1 else None
        while r is not None and not hasattr(r, "type"):  # a new node: try to simplify it further
            r.meta.update(n.meta)
            nxt = _rewrite(r)
            if nxt is None:
                kept.append(r)
                r = r.outputs[0]
                break
            r = nxt
        if r is not None:
            subst[n.outputs[0].id] = r
            continue
        kept.append(n)
    graph.nodes = kept
    graph.outputs = [subst.get(v.id, v) for v in graph.outputs]
    return graph
