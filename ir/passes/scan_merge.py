"""Merging scans: a scan whose body extends another's (same inputs and loop attributes; the other body's outputs
are a prefix of its own) replaces it. A scan's gradient runs a forward scan that also stacks the carries and the
residuals its reverse scan reads; merged with the scan of the forward pass, the loop runs once and a training step
keeps what the backward pass needs instead of recomputing it."""

from __future__ import annotations

from ..graph import Graph

_LOOP = ("n_carry", "n_xs", "length", "reverse")


def _extends(long, short) -> bool:
    """Does `long`'s body compute `short`'s outputs first and then more?"""
    bl, bs = long.attrs["body"].graph, short.attrs["body"].graph
    if len(bl.outputs) <= len(bs.outputs):
        return False
    prefix = bl.copy()
    prefix.outputs = prefix.outputs[: len(bs.outputs)]
    return prefix.structural_hash() == short.attrs["body"].key


def merge_scans(graph: Graph) -> Graph:
    merged_outputs(graph)
    return graph


def merged_outputs(graph: Graph) -> dict:
    """Merge the scans of graph in place; returns {id of a removed output: the value that replaces it}."""
    groups: dict = {}
    for n in graph.nodes:
        if n.op == "scan":
            key = (tuple(v.id for v in n.inputs),) + tuple(n.attrs.get(a) for a in _LOOP)
            groups.setdefault(key, []).append(n)
    replaced: dict = {}  # id of a replaced scan -> the scan that extends it
    for scans in groups.values():
        widest = max(scans, key=lambda n: len(n.outputs))
        for n in scans:
            if n is not widest and _extends(widest, n):
                replaced[n.id] = widest
    if not replaced:
        return {}
    subst: dict = {}
    moved = {w.id for w in replaced.values()}
    nodes, placed = [], set()
    for n in graph.nodes:
        w = replaced.get(n.id)
        if w is not None:
            subst.update({o.id: wo for o, wo in zip(n.outputs, w.outputs)})
            if w.id not in placed:  # the extended scan runs where the first scan it replaces ran
                w.inputs = [subst.get(v.id, v) for v in w.inputs]  # (it may read a scan merged away before it)
                nodes.append(w)
                placed.add(w.id)
            continue
        if n.id in moved:
            if n.id in placed:
                continue
            placed.add(n.id)
        n.inputs = [subst.get(v.id, v) for v in n.inputs]
        nodes.append(n)
    graph.nodes = nodes
    graph.outputs = [subst.get(v.id, v) for v in graph.outputs]
    return subst
