"""Cut a subgraph out of a graph: the nodes computing `outputs` from `inputs` (used to split forward/backward)."""

from __future__ import annotations

from .graph import Graph, Node
from .registry import IRError


def extract(graph: Graph, inputs: list, outputs: list, name: str | None = None) -> Graph:
    """A new graph whose inputs are `inputs` (values of `graph`) and whose outputs are `outputs`."""
    stop = {v.id for v in inputs}
    needed: set = set()
    stack = [v for v in outputs if v.id not in stop]
    while stack:
        v = stack.pop()
        n = v.producer
        if n is None:
            raise IRError(f"{v} is needed but is neither computed in the graph nor an input of the subgraph")
        if n.id in needed:
            continue
        needed.add(n.id)
        stack.extend(u for u in n.inputs if u.id not in stop)
    g = Graph(name or graph.name)
    vmap: dict = {}
    for v in inputs:
        nv = g.add_input(v.type, v.name, v.meta.get("kind", "input"))
        nv.meta.update(v.meta)
        vmap[v.id] = nv
    for n in graph.nodes:
        if n.id not in needed:
            continue
        nn_ = Node(n.op, [vmap[v.id] for v in n.inputs], n.attrs, [o.type for o in n.outputs])
        nn_.meta.update(n.meta)
        for o, no in zip(n.outputs, nn_.outputs):
            no.name = o.name
            vmap[o.id] = no
        g.nodes.append(nn_)
    g.outputs = [vmap[v.id] for v in outputs]
    return g
