"""Common-subexpression elimination: one node per (op, inputs, attributes)."""

from __future__ import annotations

from ..graph import Graph, format_attr


def _key(n) -> tuple:
    return (
        n.op,
        tuple(v.id for v in n.inputs),
        tuple((k, format_attr(a)) for k, a in sorted(n.attrs.items())),
        tuple(o.type for o in n.outputs),
    )


def cse(graph: Graph) -> Graph:
    seen: dict = {}
    subst: dict = {}
    kept = []
    for n in graph.nodes:
        n.inputs = [subst.get(v.id, v) for v in n.inputs]
        k = _key(n)
        if k in seen:
            for o, prev in zip(n.outputs, seen[k].outputs):
                subst[o.id] = prev
            continue
        seen[k] = n
        kept.append(n)
    graph.nodes = kept
    graph.outputs = [subst.get(v.id, v) for v in graph.outputs]
    return graph
