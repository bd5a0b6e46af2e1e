"""The boxes of a collapsed training-step picture (`graphnn viz --train --depth N`) beyond one per module.

`draw.py` puts each op of a module N levels down in that module's box (its gradient ops in a box of their own), the
loss in one box and the parameter updates in one. Here the ops left over join boxes too, so the picture of a
training step stays about as small as its model:

- the functional ops a module calls between its collapsed submodules (`F.relu`, `F.max_pool2d`, `x.view` in
  `Net.forward`) are one box per chain of such ops, and their gradient ops one box per chain ("gradient of relu,
  max_pool"); a chain that would close a cycle through other boxes stays op by op;
- a scope-less op whose users are all in one box joins it (the cast of the learning rate in the optimizer's box);
- a constant (`full 0.0`) whose users are all in boxes is drawn in each of them, not as a node with long edges.
"""

from __future__ import annotations

from collections import defaultdict

from graphnn.ir.graph import Graph

from graphnn.viz.paths import GRAD, OPTIMIZER

SEGMENT = "#"  # the last part of a chain box's key: "Net.#0", its gradient "∇Net.#0"


def is_segment(key: str) -> bool:
    return key.rsplit(".", 1)[-1].startswith(SEGMENT)


def _boxed_scopes(keys: dict) -> set:
    """Scopes with a collapsed submodule box: 'Net' when 'Net.conv1' is a box."""
    out = set()
    for ks in keys.values():
        for k in ks:
            if not k.startswith((GRAD, OPTIMIZER)) and "." in k:
                out.add(k.rsplit(".", 1)[0])
    return out


def _join_scopeless(g: Graph, keys: dict, users: dict) -> None:
    """A scope-less op with inputs joins the box all its users are in (users before producers: chains join)."""
    for n in reversed(g.nodes):
        if keys[n.id] or not n.inputs or n.meta.get("scope"):
            continue
        used = {k for o in n.outputs for c, _ in users.get(o.id, []) for k in keys[c.id] or [None]}
        if len(used) == 1 and None not in used:
            keys[n.id] = list(used)


def _chains(g: Graph, keys: dict, phase: dict) -> dict:
    """node id -> chain number, for the ops left op by op in a scope whose submodules are boxes; a chain is a
    connected set of such ops with one scope and phase."""
    boxed = _boxed_scopes(keys)
    free = {
        n.id: (n.meta.get("scope"), phase[n.id])
        for n in g.nodes
        if not keys[n.id] and n.inputs and n.meta.get("scope") in boxed and phase[n.id] != "update"
    }
    parent = {i: i for i in free}

    def find(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for n in g.nodes:
        if n.id in free:
            for v in n.inputs:
                p = v.producer
                if p is not None and p.id in free and free[p.id] == free[n.id]:
                    parent[find(p.id)] = find(n.id)
    roots: dict = {}
    return {i: roots.setdefault(find(i), len(roots)) for i in free}


def _in_cycle(g: Graph, unit: dict, members: set) -> bool:
    """Does a path leave the box of `members` and come back to it (units: node id -> unit)?"""
    succ = defaultdict(set)
    for n in g.nodes:
        for v in n.inputs:
            if v.producer is not None and unit[v.producer.id] != unit[n.id]:
                succ[unit[v.producer.id]].add(unit[n.id])
    box = unit[next(iter(members))]
    seen, todo = set(), list(succ[box])
    while todo:
        u = todo.pop()
        if u == box:
            return True
        if u not in seen:
            seen.add(u)
            todo.extend(succ[u])
    return False


def _constants(g: Graph, keys: dict, users: dict) -> None:
    """An input-less op whose users are all in boxes is drawn in each of them."""
    for n in g.nodes:
        if keys[n.id] or n.inputs:
            continue
        used = [k for o in n.outputs for c, _ in users.get(o.id, []) for k in keys[c.id] or [None]]
        if used and None not in used:
            keys[n.id] = list(dict.fromkeys(used))


def _title(nodes: list) -> str:
    return ", ".join(dict.fromkeys(n.op for n in nodes if n.inputs))


def step_boxes(g: Graph, keys: dict, phase: dict) -> tuple[dict, dict]:
    """Regroup a training step's ops: `keys` maps node id -> the key of its box or None (op by op). Returns node
    id -> [box keys] (several for a constant drawn in each box) and chain key -> its title ("relu, max_pool",
    "gradient of relu, max_pool")."""
    keys = {i: [k] if k else [] for i, k in keys.items()}
    users = g.users()
    _join_scopeless(g, keys, users)
    chain = _chains(g, keys, phase)
    nodes = {n.id: n for n in g.nodes}
    members: dict = defaultdict(list)
    for i, c in chain.items():
        scope, ph = nodes[i].meta["scope"], phase[i]
        members[(GRAD if ph == "backward" else "") + f"{scope}.{SEGMENT}{c}"].append(nodes[i])
    for key, ns in members.items():
        for n in ns:
            keys[n.id] = [key]
    for key, ns in list(members.items()):  # a chain closing a cycle through other boxes goes back to op by op
        unit = {n.id: keys[n.id][0] if keys[n.id] else n.id for n in g.nodes}
        if _in_cycle(g, unit, {n.id for n in ns}):
            for n in ns:
                keys[n.id] = []
            del members[key]
    _constants(g, keys, users)
    titles = {k: _title(ns) for k, ns in members.items() if not k.startswith(GRAD)}
    for key, ns in members.items():
        if key.startswith(GRAD):
            fed = {
                keys[v.producer.id][0] for n in ns for v in n.inputs if v.producer is not None and keys[v.producer.id]
            }
            fwd = [k for k in fed if k in titles]
            titles[key] = f"gradient of {titles[fwd[0]]}" if len(fwd) == 1 else f"gradient ops: {_title(ns)}"
    return keys, titles
