"""Dead-code elimination: drop nodes none of whose outputs reach a graph output."""

from __future__ import annotations

from ..graph import Graph


def dce(graph: Graph) -> Graph:
    live = {v.id for v in graph.outputs}
    kept = []
    for n in reversed(graph.nodes):
        if any(o.id in live for o in n.outputs):
            kept.append(n)
            live.update(v.id for v in n.inputs)
    kept.reverse()
    graph.nodes = kept
    return graph
