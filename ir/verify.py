"""The verifier: checks that a graph is well formed and that every node's types follow its op's rule."""

from __future__ import annotations

from .graph import Graph
from .registry import IRError, infer_node


class VerifyError(IRError):
    pass


def verify(graph: Graph) -> Graph:
    """Raise VerifyError describing the first problem found; return the graph when it is valid."""
    defined: set = set()
    for v in graph.inputs:
        if v.id in defined:
            raise VerifyError(f"input {v} listed twice")
        if v.producer is not None:
            raise VerifyError(f"input {v} has a producer")
        defined.add(v.id)
    for n in graph.nodes:
        for v in n.inputs:
            if v.id not in defined:
                raise VerifyError(f"{n.op} node reads {v} before it is defined (or from outside the graph)")
        try:
            types = infer_node(n.op, [v.type for v in n.inputs], n.attrs)
        except IRError as e:
            raise VerifyError(f"{n.op} node fails its type rule: {e}") from None
        if types != [o.type for o in n.outputs]:
            raise VerifyError(
                f"{n.op} node has output types {[str(o.type) for o in n.outputs]}, rule says {[str(t) for t in types]}"
            )
        for i, o in enumerate(n.outputs):
            if o.producer is not n or o.index != i:
                raise VerifyError(f"output {i} of {n.op} does not point back to its node")
            if o.id in defined:
                raise VerifyError(f"{o} defined twice")
            defined.add(o.id)
    for v in graph.outputs:
        if v.id not in defined:
            raise VerifyError(f"graph output {v} is not defined in the graph")
    return graph
