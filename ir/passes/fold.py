"""Constant folding: nodes whose inputs are all constants are evaluated once at compile time (collectives excepted:
they exchange data with other processes when the program runs)."""

from __future__ import annotations

import numpy as np

from ..graph import Graph, Node
from ..interpreter import run_node
from ..registry import get_op, make_node

MAX_FOLD_ELEMENTS = 1 << 16  # larger results stay computed at run time


def _const_value(v):
    n = v.producer
    if n is None:
        return None
    if n.op == "constant":
        return n.attrs["value"]
    if n.op == "full":
        return np.full(n.attrs["shape"], n.attrs["value"], dtype=n.attrs["dtype"])
    return None


def fold_constants(graph: Graph) -> Graph:
    subst: dict = {}
    kept = []
    for n in graph.nodes:
        n.inputs = [subst.get(v.id, v) for v in n.inputs]
        foldable = n.op not in ("call",) and not get_op(n.op).communicates
        if n.inputs and foldable and len(n.outputs) == 1 and n.outputs[0].type.size <= MAX_FOLD_ELEMENTS:
            vals = [_const_value(v) for v in n.inputs]
            if all(v is not None for v in vals):
                out = run_node(n, vals)[0]
                if out.ndim == 0 or out.size and np.all(out == out.flat[0]):
                    new = make_node(
                        "full", [], {"value": out.flat[0].item(), "shape": out.shape, "dtype": out.dtype.name}
                    )
                else:
                    new = make_node("constant", [], {"value": np.ascontiguousarray(out)})
                new.meta.update(n.meta)
                subst[n.outputs[0].id] = new.outputs[0]
                kept.append(new)
                continue
        kept.append(n)
    graph.nodes = kept
    graph.outputs = [subst.get(v.id, v) for v in graph.outputs]
    return graph


__all__ = ["fold_constants", "Node"]
