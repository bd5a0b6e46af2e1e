"""`graphnn summary`: a table per layer (output shape, parameters, FLOPs, memory) and totals.

Per module (rows in `named_modules()` order, indented by depth): the shape of what its forward returned (the first
tensor of a tuple, e.g. an LSTM's sequence output rather than its final state), recorded with forward hooks while
tracing (the model's own output: the graph's first output), its parameter count, the FLOPs of its ops (each op
definition's FLOP rule), and memory = bytes of the activations its ops produce + bytes of its parameters. Containers
include their children. A module that also runs ops of its own in forward (e.g. `F.relu` in `Net.forward`) gets a
row `(own ops)` for them.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

import numpy as np

from graphnn.ir import Graph

from graphnn.ir.registry import graph_flops, node_flops
from graphnn.viz.stages import scope_paths, scope_root


@dataclass
class Row:
    path: str
    name: str
    type: str
    depth: int
    shape: str
    params: int
    flops: int
    nbytes: int


@dataclass
class Summary:
    rows: list
    totals: dict = field(default_factory=dict)

    def __str__(self) -> str:
        return format_table(self)


def si(n: float, unit: str = "") -> str:
    """1234567 -> '1.23 M'."""
    for scale, prefix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "K")):
        if abs(n) >= scale:
            return f"{n / scale:.2f} {prefix}{unit}"
    return f"{n:.0f} {unit}".rstrip() if isinstance(n, float) else f"{n} {unit}".rstrip()


def nbytes(n: int) -> str:
    for scale, prefix in ((2**30, "GiB"), (2**20, "MiB"), (2**10, "KiB")):
        if n >= scale:
            return f"{n / scale:.2f} {prefix}"
    return f"{n} B"


def _pbytes(p) -> int:
    return p.numel() * np.dtype(p.dtype_name).itemsize


def _in(scope: str, path: str) -> bool:
    return scope == path or scope.startswith(path + ".")


def _first_shape(out):
    """The shape of the first tensor in a (nested) forward result, or None."""
    if hasattr(out, "shape") and hasattr(out, "dtype"):
        return list(out.shape)
    items = out.values() if isinstance(out, dict) else out if isinstance(out, (tuple, list)) else ()
    for item in items:
        shape = _first_shape(item)
        if shape is not None:
            return shape
    return None


@contextlib.contextmanager
def output_shapes(model):
    """While the block runs (e.g. a trace of `model`), record the output shape of each submodule's last call:
    yields a dict scope ("Net.conv1") -> shape."""
    root = scope_root(model)
    shapes: dict = {}

    def hook(path):
        def record(_module, _args, out):
            shape = _first_shape(out)
            if shape is not None:
                shapes[path] = shape

        return record

    handles = [m.register_forward_hook(hook(root + ("." + name if name else ""))) for name, m in model.named_modules()]
    try:
        yield shapes
    finally:
        for h in handles:
            h.remove()


def _shape_of(path: str, root: str, graph: Graph, nodes: list, shapes: dict) -> str:
    if path in shapes:
        return str(shapes[path])
    if path == root and graph.outputs:
        return str(list(graph.outputs[0].shape))
    return str(list(nodes[-1].outputs[0].shape)) if nodes else "--"


def summarize(model, graph: Graph, train_graph: Graph | None = None, shapes: dict | None = None) -> Summary:
    """Summary rows of `model` from its traced forward graph (and totals of a training-step graph, if given);
    `shapes`: the modules' output shapes recorded while tracing (output_shapes), else each one's last op's."""
    root = scope_root(model)
    shapes = shapes or {}
    paths = scope_paths(model)  # (the children of a ModuleList record scopes without the list's name)
    scoped = [n for n in graph.nodes if n.meta.get("scope")]
    scope = {id(n): paths.get(n.meta["scope"], n.meta["scope"]) for n in scoped}
    rows, own_rows = [], []
    for name, m in model.named_modules():
        path = root + ("." + name if name else "")
        depth = name.count(".") + 1 if name else 0
        params = list(m.parameters())
        pcount = sum(p.numel() for p in params)
        pbytes = sum(_pbytes(p) for p in params)
        nodes = [n for n in scoped if _in(scope[id(n)], path)]
        shape = _shape_of(path, root, graph, nodes, shapes)
        act = sum(o.type.nbytes for n in nodes for o in n.outputs)
        rows.append(
            Row(
                path,
                name.rsplit(".", 1)[-1] if name else root,
                type(m).__name__,
                depth,
                shape,
                pcount,
                sum(node_flops(n) for n in nodes),
                act + pbytes,
            )
        )
        own = [n for n in nodes if scope[id(n)] == path]
        if own and any(True for _ in m.children()):
            ops = sorted({n.op for n in own})
            own_rows.append(
                Row(
                    path,
                    "(own ops)",
                    ", ".join(ops),
                    depth + 1,
                    str(list(own[-1].outputs[0].shape)),
                    0,
                    sum(node_flops(n) for n in own),
                    sum(o.type.nbytes for n in own for o in n.outputs),
                )
            )
    for r in reversed(own_rows):  # after the module's subtree
        last = max(i for i, x in enumerate(rows) if _in(x.path, r.path))
        rows.insert(last + 1, r)
    params = list(model.parameters())
    totals = {
        "Total params": sum(p.numel() for p in params),
        "Trainable params": sum(p.numel() for p in params if p.requires_grad),
        "Forward FLOPs": graph_flops(graph),
        "Input size": sum(v.type.nbytes for v in graph.inputs if v.meta.get("kind") == "input"),
        "Forward activations": sum(o.type.nbytes for n in graph.nodes for o in n.outputs),
        "Params size": sum(_pbytes(p) for p in params),
    }
    totals["Non-trainable params"] = totals["Total params"] - totals["Trainable params"]
    totals["Estimated total size"] = totals["Input size"] + totals["Forward activations"] + totals["Params size"]
    if train_graph is not None:
        totals["Training step FLOPs"] = graph_flops(train_graph)
    return Summary(rows, totals)


def format_table(s: Summary) -> str:
    head = ("Layer (type)", "Output Shape", "Param #", "FLOPs", "Memory")
    body = []
    for r in s.rows:
        text = (
            r.type if r.name == r.type else f"{r.name}: {r.type}" if r.name == "(own ops)" else f"{r.name} ({r.type})"
        )
        label = "  " * r.depth + text
        body.append((label, r.shape, f"{r.params:,}" if r.name != "(own ops)" else "--", si(r.flops), nbytes(r.nbytes)))
    widths = [max(len(row[i]) for row in [head] + body) for i in range(5)]
    fmt = lambda row: "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths)))  # noqa: E731
    rule = "=" * len(fmt(head))
    out = [rule, fmt(head), rule] + [fmt(b) for b in body] + [rule]
    t = s.totals
    out += [
        f"Total params: {t['Total params']:,}",
        f"Trainable params: {t['Trainable params']:,}",
        f"Non-trainable params: {t['Non-trainable params']:,}",
        f"Forward FLOPs: {t['Forward FLOPs']:,} ({si(t['Forward FLOPs'], 'FLOPs')})",
    ]
    if "Training step FLOPs" in t:
        f = t["Training step FLOPs"]
        out.append(f"Training step FLOPs (forward + backward + SGD update): {f:,} ({si(f, 'FLOPs')})")
    out += [
        rule,
        f"Input size: {nbytes(t['Input size'])}",
        f"Forward activations: {nbytes(t['Forward activations'])}",
        f"Params size: {nbytes(t['Params size'])}",
        f"Estimated total size: {nbytes(t['Estimated total size'])}",
        rule,
    ]
    return "\n".join(out) + "\n"


def summary(model, *input_shapes, train: bool = False) -> Summary:
    """Trace `model` on random inputs of the given shapes and summarize it, e.g. `print(summary(Net(), (1, 1, 32, 32)))`."""
    from graphnn.viz.inputs import example_inputs
    from graphnn.viz.stages import trace_stages

    inputs = example_inputs([tuple(s) for s in input_shapes])
    with output_shapes(model) as shapes:
        st = trace_stages(model, inputs, ["traced"])
    train_graph = trace_stages(model, inputs, ["backward"])["backward"].graph if train else None
    return summarize(model, st["traced"].graph, train_graph, shapes)
