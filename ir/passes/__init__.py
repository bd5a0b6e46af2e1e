"""Graph-to-graph passes. Each takes a Graph, rewrites it in place and returns it."""
from __future__ import annotations

from ..graph import Graph
from ..verify import verify
from .cse import cse
from .dce import dce
from .fold import fold_constants
from .simplify import simplify

PIPELINE = (("simplify", simplify), ("fold_constants", fold_constants), ("cse", cse), ("dce", dce))


def optimize(graph: Graph, check: bool = False) -> Graph:
    """Run the standard pipeline twice (passes expose work for each other); verify after each pass if `check`."""
    for _ in range(2):
        for _name, p in PIPELINE:
            p(graph)
            if check:
                verify(graph)
    return graph


__all__ = ["cse", "dce", "fold_constants", "simplify", "optimize", "PIPELINE"]
