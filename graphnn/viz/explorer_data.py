"""The data of the interactive explorer (`graphnn viz -o page.html`): one JSON-able dict with every stage.

Per stage: nodes (graph inputs, ops or, for a fused stage, kernels; outputs), edges, and what the side panel shows
(op, attributes, types, module path, source line, phase, kernel, FLOPs and bytes from the op definitions' cost
rules). Each node has a `path` that the page collapses by: the module scope of an op, `∇scope` for its gradient
ops, `optimizer.<parameter>` for the update of a parameter. Nodes carry `o` (the traced op they descend from:
`meta["origin"]`) and gradient ops `g` (the traced forward op they differentiate), which link stages and forward
ops to their gradients. A fused stage adds its memory plan (bytes live after each kernel, the arena's size) and,
from `graphnn viz --profile`, each kernel's share of the cycles.
"""

from __future__ import annotations

import os

from graphnn.ir.graph import format_attr
from graphnn.ir.memory import kernel_liveness, plan_memory
from graphnn.ir.registry import family, node_flops

from graphnn.viz.paths import GRAD, OPTIMIZER, module_path, node_paths, origin, phases
from graphnn.viz.stages import Stage


def _short(v, limit: int = 80) -> str:
    s = format_attr(v)
    return s if len(s) <= limit else s[: limit - 1] + "…"


def _source(where: str) -> str:
    """'file:line: code' with the file relative to the working directory when it lies below it."""
    path, sep, rest = where.partition(":")
    rel = os.path.relpath(path) if os.path.isabs(path) else path
    return (rel if not rel.startswith("..") else path) + sep + rest


def _param_path(name: str, modules: dict) -> str:
    """The module holding parameter `name` ('conv1.weight' -> 'Net.conv1'), '' when unknown."""
    roots = [p for p in modules if "." not in p]
    if not name or not roots:
        return ""
    path = roots[0] + ("." + name.rsplit(".", 1)[0] if "." in name else "")
    return path if path in modules else roots[0]


def _bytes(n) -> int:
    return sum(v.type.nbytes for v in n.inputs) + sum(o.type.nbytes for o in n.outputs)


def _inputs(st: Stage, names: dict) -> list:
    out = []
    for i, v in enumerate(st.graph.inputs):
        kind = v.meta.get("kind", "input")
        name = v.name or names[v.id]
        node = {"id": f"in{i}", "op": kind, "name": name, "path": "", "outs": [f"%{names[v.id]}: {v.type}"]}
        if kind == "param":
            node["path"] = _param_path(name, st.modules)
        out.append(node)
    return out


def _outputs(st: Stage, names: dict) -> list:
    """The graph's outputs; beyond the first three (a training step's gradients and updated parameters), in one
    collapsible group 'outputs'."""
    many = len(st.graph.outputs) > 3
    return [
        {
            "id": f"out{j}",
            "op": "output",
            "name": st.output_labels.get(j, f"output {j}"),
            "path": "outputs" if many and j else "",
            "ins": [str(v.type)],
        }
        for j, v in enumerate(st.graph.outputs)
    ]


def _op_node(n, i: int, names: dict, path: str, phase: str, kernels: list, paths: dict) -> dict:
    node = {
        "id": f"n{i}",
        "op": n.op,
        "path": path,
        "scope": module_path(n.meta.get("scope") or "", paths),
        "ph": phase,
        "o": origin(n),
        "attrs": {k: _short(v) for k, v in sorted(n.attrs.items())},
        "ins": [f"%{names[v.id]}: {v.type}" for v in n.inputs],
        "outs": [f"%{names[o.id]}: {o.type}" for o in n.outputs],
        "flops": node_flops(n),
        "bytes": _bytes(n),
    }
    if n.meta.get("grad_of") is not None:
        node["g"] = n.meta["grad_of"]
    if n.meta.get("source"):
        node["src"] = _source(n.meta["source"])
    if kernels:
        node["k"] = kernels
    return node


def _op_stage(st: Stage) -> dict:
    g = st.graph
    names, phase, paths = g._names(), phases(g), node_paths(g, st.paths)
    kernels: dict = {}
    if st.plan is not None:
        for k, grp in enumerate(st.plan.groups):
            for n in grp.nodes:
                kernels.setdefault(n.id, []).append(k)
    nodes = _inputs(st, names)
    src_of = {v.id: f"in{i}" for i, v in enumerate(g.inputs)}
    edges = []
    for i, n in enumerate(g.nodes):
        nodes.append(_op_node(n, i, names, paths[n.id], phase[n.id], kernels.get(n.id, []), st.paths))
        for o in n.outputs:
            src_of[o.id] = f"n{i}"
        edges += [[src_of[v.id], f"n{i}"] for v in n.inputs]
    nodes += _outputs(st, names)
    edges += [[src_of[v.id], f"out{j}"] for j, v in enumerate(g.outputs)]
    return {"nodes": nodes, "edges": _unique(edges)}


def _unique(edges: list) -> list:
    seen, out = set(), []
    for e in edges:
        if e[0] != e[1] and tuple(e) not in seen:
            seen.add(tuple(e))
            out.append(e)
    return out


def _kernel_stage(st: Stage, cycles: dict | None) -> dict:
    g, plan = st.graph, st.plan
    names, phase, paths = g._names(), phases(g), node_paths(g, st.paths)
    nodes = _inputs(st, names)
    src_of = {v.id: f"in{i}" for i, v in enumerate(g.inputs)}
    for k, grp in enumerate(plan.groups):
        for n in grp.nodes:
            for o in n.outputs:
                src_of.setdefault(o.id, f"k{k}")
        for o in grp.root.producer.outputs:
            src_of[o.id] = f"k{k}"  # where the value is materialized
    total = sum(cycles.values()) if cycles else 0
    edges = []
    for k, grp in enumerate(plan.groups):
        root = grp.root.producer
        reads = {v.id: v for n in grp.nodes for v in n.inputs if v.id not in plan.inlined}
        written = sum(o.type.nbytes for o in root.outputs)
        node = {
            "id": f"k{k}",
            "op": "kernel",
            "name": f"kernel {k}",
            "pattern": grp.pattern,
            "root": root.op,
            "path": paths[root.id],
            "scope": module_path(root.meta.get("scope") or "", st.paths),
            "ph": phase[root.id],
            "o": sorted({origin(n) for n in grp.nodes}),
            "ops": [
                f"%{', %'.join(names[o.id] for o in n.outputs)} = {n.op}"
                f"({', '.join('%' + names[v.id] for v in n.inputs)}): {', '.join(str(o.type) for o in n.outputs)}"
                for n in grp.nodes
            ],
            "outs": [f"%{names[o.id]}: {o.type}" for o in root.outputs],
            "ins": [f"%{names[v.id]}: {v.type}" for v in reads.values()],
            "flops": sum(node_flops(n) for n in grp.nodes),
            "bytes": written + sum(v.type.nbytes for v in reads.values()),
            "constant": family(root) == "constant",
        }
        if root.meta.get("source"):
            node["src"] = _source(root.meta["source"])
        if total:
            node["share"] = cycles.get(k, 0) / total
            node["cycles"] = cycles.get(k, 0)
        nodes.append(node)
        edges += [[src_of[vid], f"k{k}"] for vid in reads]
    nodes += _outputs(st, names)
    edges += [[src_of[v.id], f"out{j}"] for j, v in enumerate(g.outputs)]
    return {"nodes": nodes, "edges": _unique(edges), "memory": memory_timeline(st)}


def memory_timeline(st: Stage) -> dict:
    """Bytes of intermediates live after each kernel (graph inputs and outputs have their own buffers), the
    peak, and the size of the arena that the memory planner packs them into."""
    g, plan = st.graph, st.plan
    steps = [k for k, grp in enumerate(plan.groups) if family(grp.root.producer) != "constant"]
    read = {v.id for n in g.nodes for v in n.inputs} | {v.id for v in g.outputs}
    first, last, sizes = kernel_liveness([plan.groups[k] for k in steps], plan.inlined, read)
    own = {v.id for v in g.inputs} | {v.id for v in g.outputs}
    live = [0] * len(steps)
    buffers = []
    for vid, size in sizes.items():
        if vid in own:
            continue
        end = last.get(vid, first[vid])
        buffers.append((vid, size, first[vid], end))
        for s in range(first[vid], end + 1):
            live[s] += size
    arena = plan_memory(buffers, {}).size if buffers else 0
    peak = max(live) if live else 0
    return {
        "kernels": [f"k{k}" for k in steps],
        "live": live,
        "peak": peak,
        "peak_at": live.index(peak) if live else 0,
        "arena": arena,
    }


def stage_data(st: Stage, cycles: dict | None = None) -> dict:
    """The explorer's data of one stage (kernels as nodes when it has a fusion plan)."""
    body = _kernel_stage(st, cycles) if st.plan is not None else _op_stage(st)
    return {"name": st.name, "title": st.title or st.name, **body}


def explorer_data(stages: dict, title: str, cycles: dict | None = None, summary: str | None = None) -> dict:
    """The page's JSON: every stage, module types (with the pseudo-paths of gradients and updates) and the
    summary table. `cycles`: {stage name: {kernel index: cycles}} from a profile."""
    modules: dict = {}
    for st in stages.values():
        modules.update(st.modules)
    modules.update({GRAD + p: f"gradient of {t}" for p, t in list(modules.items())})
    modules[OPTIMIZER] = "parameter updates"
    modules["outputs"] = "graph outputs"
    return {
        "title": title,
        "stages": {k: stage_data(st, (cycles or {}).get(k)) for k, st in stages.items()},
        "modules": modules,
        "summary": summary or "",
        "profiled": bool(cycles),
    }
