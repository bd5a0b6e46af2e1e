"""Fewer stacked outputs for scans: a stacked output (y) that repeats an earlier one, or that is a scanned input's
slice passed through (a reverse scan returning the forward carries it reads), is replaced by that output or that
input, and stacked outputs nothing reads are dropped, as are scanned and constant inputs the body does not read. The loop then writes (and keeps) each stacked value once:
e.g. an LSTM's reverse scan returns its gate gradients once for the input, weight and bias gradients."""

from __future__ import annotations

from ..graph import Graph
from ..registry import make_node
from .dce import dce


def simplify_scan_outputs(graph: Graph) -> Graph:
    for i, n in enumerate(graph.nodes):
        if n.op == "scan":
            new = _simplified(graph, n)
            if new is not None:
                graph.nodes[i] = new
    return graph


def _read(graph: Graph) -> set:
    return {v.id for m in graph.nodes for v in m.inputs} | {v.id for v in graph.outputs}


def _simplified(graph: Graph, scan):
    """A scan node without the redundant stacked outputs of `scan` (whose readers now read their replacements)
    and without the scanned and constant inputs its body no longer reads, or None when all are needed."""
    from ..ops.scan import Body

    at = scan.attrs
    nc, nx = at["n_carry"], at["n_xs"]
    body = at["body"].graph
    x_of = {v.id: scan.inputs[nc + k] for k, v in enumerate(body.inputs[nc : nc + nx])}
    read = _read(graph)
    kept, first, subst = list(range(nc)), {}, {}
    for j in range(nc, len(body.outputs)):
        bv, out = body.outputs[j], scan.outputs[j]
        if bv.id in x_of:  # y[t] = x[t]: the stacked input itself
            subst[out.id] = x_of[bv.id]
        elif bv.id in first:  # y[t] repeats an earlier stacked output
            subst[out.id] = first[bv.id]
        elif out.id in read:
            first[bv.id] = j
            kept.append(j)
    new_body = body.copy()
    new_body.outputs = [new_body.outputs[j] for j in kept]
    dce(new_body)
    used = {v.id for m in new_body.nodes for v in m.inputs} | {v.id for v in new_body.outputs}
    inputs = [p for p, v in enumerate(new_body.inputs) if p < nc or v.id in used]
    if len(kept) == len(body.outputs) and len(inputs) == len(body.inputs):
        return None
    new_body.inputs = [new_body.inputs[p] for p in inputs]
    at = dict(at, body=Body(new_body), n_xs=sum(nc <= p < nc + nx for p in inputs))
    new = make_node("scan", [scan.inputs[p] for p in inputs], at)
    new.meta.update(scan.meta)
    position = {j: new.outputs[p] for p, j in enumerate(kept)}
    subst = {vid: position[v] if isinstance(v, int) else v for vid, v in subst.items()}
    subst.update({scan.outputs[j].id: new.outputs[p] for p, j in enumerate(kept)})
    for m in graph.nodes:
        m.inputs = [subst.get(v.id, v) for v in m.inputs]
    graph.outputs = [subst.get(v.id, v) for v in graph.outputs]
    return new
