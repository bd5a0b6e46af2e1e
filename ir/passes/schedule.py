"""Scheduling for communication: each collective (and what it reads) moves as early as its operands allow.

Node order is execution order in compiled code. A collective is moved, with every not yet placed node it depends on,
ahead of the nodes it does not depend on (their order otherwise kept), one collective after the other in graph
order: a gradient bucket's exchange then starts right after its last gradient is computed, and overlaps the
kernels that compute the other gradients (codegen waits for it where its result is first read). Every process
runs the same pass on the same graph, so all start their collectives in the same order.
"""

from __future__ import annotations

from ..graph import Graph
from ..registry import get_op


def start_collectives_early(graph: Graph) -> Graph:
    collectives = [n for n in graph.nodes if get_op(n.op).communicates]
    if not collectives:
        return graph
    rest, placed = list(graph.nodes), []
    for c in collectives:
        need = _ancestors(c, {n.id for n in rest})
        placed += [n for n in rest if n.id in need]
        rest = [n for n in rest if n.id not in need]
    graph.nodes = placed + rest
    return graph


def _ancestors(node, candidates: set) -> set:
    """Ids of `node` and of the nodes among `candidates` it depends on."""
    found, stack = set(), [node]
    while stack:
        n = stack.pop()
        if n.id in found:
            continue
        found.add(n.id)
        stack.extend(v.producer for v in n.inputs if v.producer is not None and v.producer.id in candidates)
    return found
