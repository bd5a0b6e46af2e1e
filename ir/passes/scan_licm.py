"""Loop-invariant code motion for scans: body nodes that read only the scan's constant inputs run once, before
the loop, and their results enter the body as new constant inputs (e.g. the transposed recurrent weight of an
LSTM is materialized once instead of being re-read through a transpose at every step)."""

from __future__ import annotations

from ..graph import Graph
from ..registry import make_node

KEEP_INSIDE = ("constant", "full")  # nullary: as cheap inside the loop as outside


def hoist_scan_invariants(graph: Graph) -> Graph:
    nodes = []
    for n in graph.nodes:
        if n.op == "scan":
            nodes.extend(_hoist(n))
        nodes.append(n)
    graph.nodes = nodes
    return graph


def _hoist(scan) -> list:
    """Move the scan's invariant body nodes out of the loop; returns them (as outer nodes) to run before it."""
    from ..ops.scan import Body

    at = scan.attrs
    first_const = at["n_carry"] + at["n_xs"]
    body = at["body"].graph.copy()
    outer_of = {v.id: o for v, o in zip(body.inputs[first_const:], scan.inputs[first_const:])}
    moved, hoisted, inside = [], [], []
    for m in body.nodes:
        if m.op not in KEEP_INSIDE and m.inputs and len(m.outputs) == 1 and all(v.id in outer_of for v in m.inputs):
            o = make_node(m.op, [outer_of[v.id] for v in m.inputs], dict(m.attrs))
            o.meta.update(m.meta)
            moved.append(o)
            outer_of[m.outputs[0].id] = o.outputs[0]
            hoisted.append(m.outputs[0])
        else:
            inside.append(m)
    if not moved:
        return []
    used = {u.id for m in inside for u in m.inputs} | {u.id for u in body.outputs}
    subst = {v.id: body.add_input(v.type, None, "const") for v in hoisted if v.id in used}
    for m in inside:
        m.inputs = [subst.get(u.id, u) for u in m.inputs]
    body.outputs = [subst.get(u.id, u) for u in body.outputs]
    body.nodes = inside
    scan.inputs = list(scan.inputs) + [outer_of[v.id] for v in hoisted if v.id in used]
    scan.attrs = dict(at, body=Body(body))
    return moved
