"""Where each op of a graph belongs: its phase (forward, backward, update) and the path the pictures and the
explorer collapse it into: the module scope of an op, `∇scope` for its gradient ops, `optimizer.<parameter>` for
the update of a parameter; a scope-less op joins its users' path.
"""

from __future__ import annotations

from graphnn.ir.graph import Graph


def phases(graph: Graph) -> dict:
    """Map node id -> 'forward', 'backward' (gradient nodes) or 'update' (ops fed by gradients outside autodiff,
    e.g. SGD). Scope-less constants take the phase of their consumers."""
    out: dict = {}
    tainted: set = set()  # value ids computed from gradients
    for n in graph.nodes:
        if n.meta.get("phase") == "backward":
            out[n.id] = "backward"
        elif not n.meta.get("scope") and any(v.id in tainted for v in n.inputs):
            out[n.id] = "update"
        else:
            out[n.id] = "forward"
        if out[n.id] != "forward":
            tainted.update(o.id for o in n.outputs)
    uses = graph.users()
    for n in graph.nodes:
        if not n.inputs and not n.meta.get("scope"):
            used = {out[c.id] for o in n.outputs for c, _ in uses.get(o.id, [])}
            if len(used) == 1:
                out[n.id] = used.pop()
    return out


GRAD = "∇"  # path prefix of gradient ops: the gradient of Net.conv1 is ∇Net.conv1
OPTIMIZER = "optimizer"  # path of the parameter updates (optimizer.conv1.weight)


def origin(n) -> int:
    """The id of the traced op that `n` descends from (itself when it is a traced op)."""
    return n.meta.get("origin", n.id)


def _updates(g: Graph, phase: dict) -> dict:
    """Update op id -> the name of the one parameter it updates (via the graph's write-backs), else ''."""
    targets: dict = {}  # value id -> set of parameter names its value reaches
    for out_pos, in_pos in (g.meta.get("writeback") or {}).items():
        targets.setdefault(g.outputs[out_pos].id, set()).add(g.inputs[in_pos].name or "")
    out = {}
    for n in reversed(g.nodes):
        reach = set().union(*(targets.get(o.id, set()) for o in n.outputs))
        if phase[n.id] == "update":
            out[n.id] = next(iter(reach)) if len(reach) == 1 else ""
        for v in n.inputs:
            targets.setdefault(v.id, set()).update(reach)
    return out


def module_path(scope: str, paths: dict) -> str:
    """The module path of a scope ('GPT.0.attn' -> 'GPT.blocks.0.attn', see stages.scope_paths)."""
    return paths.get(scope, scope)


def node_paths(g: Graph, paths: dict | None = None) -> dict:
    """Node id -> the path the explorer collapses it into (see the module docstring)."""
    phase = phases(g)
    updates = _updates(g, phase)
    out = {}
    for n in g.nodes:
        scope = module_path(n.meta.get("scope") or "", paths or {})
        if phase[n.id] == "update":
            out[n.id] = f"{OPTIMIZER}.{updates[n.id]}" if updates.get(n.id) else OPTIMIZER
        elif phase[n.id] == "backward" and scope:
            out[n.id] = GRAD + scope
        else:
            out[n.id] = scope
    users = g.users()
    for n in reversed(g.nodes):  # a scope-less op (a cast of the learning rate) joins its users' path, a constant
        if not out[n.id]:  # its first user's
            used = [out[c.id] for o in n.outputs for c, _ in users.get(o.id, [])]
            if len(set(used)) == 1 or (used and not n.inputs):
                out[n.id] = used[0]
    return out
