"""Reference interpreter: runs a graph with each op's NumPy kernel."""

from __future__ import annotations

import threading

import numpy as np

from .graph import Graph
from .registry import OPS, IRError
from .types import dtype_name


def check_input(v, a: np.ndarray, what: str = "input") -> np.ndarray:
    a = np.asarray(a)
    if tuple(a.shape) != v.shape or dtype_name(a.dtype) != v.dtype:
        raise IRError(f"{what} {v.name or v.id} expects {v.type}, got {a.dtype.name}{list(a.shape)}")
    return a


_quiet = threading.local()  # .on: NumPy's floating-point warnings are off already (inside interpret)


def run_node(node, arrays: list) -> list:
    try:
        d = OPS[node.op]
    except KeyError:
        raise IRError(f"unknown op {node.op!r}") from None
    res = []
    if getattr(_quiet, "on", False):
        outs = d.run(arrays, node.attrs)
    else:
        with np.errstate(all="ignore"):  # (inf - inf is nan, x / 0 is inf, silently: as compiled code and PyTorch)
            outs = d.run(arrays, node.attrs)
    for o, a in zip(node.outputs, outs):
        if type(a) is not np.ndarray:
            a = np.asarray(a)
        ot = o.type
        if dtype_name(a.dtype) != ot.dtype:
            a = a.astype(ot.dtype)
        if a.shape != ot.shape:
            raise IRError(f"reference kernel of {node.op} returned shape {a.shape}, its rule says {o.shape}")
        res.append(a)
    return res


def interpret(graph: Graph, inputs: list, env: dict | None = None, run=run_node, checked: bool = True) -> list:
    """Evaluate `graph` on NumPy `inputs`. `env` (value id -> array) pre-seeds known values; `run(node, arrays)`
    computes one node (the reference kernels by default); checked=False trusts the inputs' types (callers whose
    inputs were typed by the graph itself, such as a reused gradient program)."""
    env = dict(env or {})
    if len(inputs) != len(graph.inputs):
        raise IRError(f"graph takes {len(graph.inputs)} inputs, got {len(inputs)}")
    for v, a in zip(graph.inputs, inputs):
        env[v.id] = check_input(v, a) if checked else a
    last_use: dict = {}
    for i, n in enumerate(graph.nodes):
        for v in n.inputs:
            last_use[v.id] = i
    keep = {v.id for v in graph.outputs}
    outer = getattr(_quiet, "on", False)
    with np.errstate(all="ignore"):  # (once for the graph; run_node skips its own)
        _quiet.on = True
        try:
            for i, n in enumerate(graph.nodes):
                if all(o.id in env for o in n.outputs):
                    continue
                for o, a in zip(n.outputs, run(n, [env[v.id] for v in n.inputs])):
                    env[o.id] = a
                for v in n.inputs:
                    if last_use.get(v.id) == i and v.id not in keep:
                        env.pop(v.id, None)
        finally:
            _quiet.on = outer
    return [env[v.id] for v in graph.outputs]
