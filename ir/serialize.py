"""Graphs as JSON: a lossless, pickle-free form (used by exports so tools can read the compiled graph back)."""

from __future__ import annotations

import base64
import json

import numpy as np

from .graph import Graph, Node
from .registry import infer_node
from .types import TensorType

FORMAT_VERSION = 1


def _attr_out(v):
    if isinstance(v, np.ndarray):
        return {
            "__ndarray__": base64.b64encode(np.ascontiguousarray(v).tobytes()).decode(),
            "dtype": v.dtype.name,
            "shape": list(v.shape),
        }
    if hasattr(v, "graph") and hasattr(v, "ir_key"):  # a scan body
        return {"__body__": _graph_dict(v.graph)}
    if hasattr(v, "ir_key"):
        raise ValueError(f"attribute {v.ir_key()} (a compiled function) cannot be serialized")
    if isinstance(v, (tuple, list)):
        return [_attr_out(x) for x in v]
    if isinstance(v, (np.integer, np.floating, np.bool_)):
        return v.item()
    return v


def _attr_in(v):
    if isinstance(v, dict) and "__ndarray__" in v:
        data = base64.b64decode(v["__ndarray__"])
        return np.frombuffer(data, dtype=v["dtype"]).reshape(v["shape"]).copy()
    if isinstance(v, dict) and "__body__" in v:
        from .ops.scan import Body

        return Body(_graph_from_dict(v["__body__"]))
    if isinstance(v, list):
        return tuple(_attr_in(x) for x in v)
    return v


def _graph_dict(graph: Graph) -> dict:
    index: dict = {}
    for i, v in enumerate(graph.values()):
        index[v.id] = i
    meta_keys = ("scope", "phase", "nograd")
    return {
        "name": graph.name,
        "inputs": [
            {"name": v.name, "shape": list(v.shape), "dtype": v.dtype, "kind": v.meta.get("kind", "input")}
            for v in graph.inputs
        ],
        "nodes": [
            {
                "op": n.op,
                "inputs": [index[v.id] for v in n.inputs],
                "attrs": {k: _attr_out(a) for k, a in sorted(n.attrs.items())},
                "outputs": [{"name": o.name, "shape": list(o.shape), "dtype": o.dtype} for o in n.outputs],
                "meta": {k: n.meta[k] for k in meta_keys if k in n.meta},
            }
            for n in graph.nodes
        ],
        "outputs": [index[v.id] for v in graph.outputs],
        "writeback": {str(k): v for k, v in (graph.meta.get("writeback") or {}).items()},
    }


def _graph_from_dict(d: dict) -> Graph:
    g = Graph(d["name"])
    values = []
    for inp in d["inputs"]:
        values.append(g.add_input(TensorType(tuple(inp["shape"]), inp["dtype"]), inp["name"], inp["kind"]))
    for nd in d["nodes"]:
        ins = [values[i] for i in nd["inputs"]]
        attrs = {k: _attr_in(a) for k, a in nd["attrs"].items()}
        types = infer_node(nd["op"], [v.type for v in ins], attrs)
        declared = [TensorType(tuple(o["shape"]), o["dtype"]) for o in nd["outputs"]]
        if types != declared:
            raise ValueError(f"{nd['op']} node: stored types {[str(t) for t in declared]} do not follow its rule")
        node = Node(nd["op"], ins, attrs, types)
        node.meta.update(nd.get("meta", {}))
        for o, od in zip(node.outputs, nd["outputs"]):
            o.name = od["name"]
        g.nodes.append(node)
        values.extend(node.outputs)
    g.outputs = [values[i] for i in d["outputs"]]
    if d.get("writeback"):
        g.meta["writeback"] = {int(k): v for k, v in d["writeback"].items()}
    return g


def to_json(graph: Graph) -> str:
    """The graph (types, attributes, names, scopes, write-backs) as JSON text."""
    return json.dumps({"format_version": FORMAT_VERSION, "graph": _graph_dict(graph)}, separators=(",", ":"))


def from_json(text: str) -> Graph:
    """Rebuild a graph written by to_json; every node's types are re-derived and checked."""
    d = json.loads(text)
    if d.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"graph JSON format version {d.get('format_version')!r}, this graphnn reads {FORMAT_VERSION}")
    return _graph_from_dict(d["graph"])
