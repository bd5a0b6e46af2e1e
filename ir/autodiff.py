"""Reverse-mode symbolic differentiation over the IR.

`vjp` walks the nodes between the wanted inputs and the outputs in reverse order and emits each node's
gradient rule as new IR nodes, summing the contributions of values read more than once.
"""

from __future__ import annotations

from .graph import Graph, Value
from .registry import Emitter, GraphEmitter, IRError, MissingGradient, describe, get_op


def _active_nodes(graph: Graph, outputs: list, wrt: list) -> list:
    """Nodes that depend on some `wrt` value and that some output depends on, in graph order."""
    depends = {v.id for v in wrt}
    forward = []
    for n in graph.nodes:
        if n.meta.get("nograd"):
            continue  # recorded under no_grad(): no gradient flows through it
        if any(v.id in depends for v in n.inputs):
            forward.append(n)
            depends.update(o.id for o in n.outputs if o.type.is_float)
    needed = {v.id for v in outputs}
    active = []
    for n in reversed(forward):
        if any(o.id in needed for o in n.outputs):
            active.append(n)
            needed.update(v.id for v in n.inputs)
    active.reverse()
    return active, depends


def vjp(
    graph: Graph, outputs: list, cotangents: list, wrt: list, b: Emitter | None = None, hooks: dict | None = None
) -> list:
    """Emit the gradient of `outputs` (weighted by `cotangents`) with respect to `wrt`.

    Returns one Value per `wrt` entry, or None where the outputs do not depend on it.
    Nodes are emitted through `b` (default: appended to `graph`). `hooks`: value id -> fn(cotangent) -> Value,
    applied to a value's whole cotangent once every use of the value has contributed to it (just before its
    producer is differentiated; for a value without an active producer, at the end); what fn returns replaces it.
    """
    b = b or GraphEmitter(graph, {"phase": "backward"})
    active, depends = _active_nodes(graph, outputs, wrt)
    ct: dict = {}
    hooked: set = set()

    def run_hook(v: Value) -> None:
        if hooks and v.id in hooks and v.id in ct and v.id not in hooked:
            hooked.add(v.id)
            g = hooks[v.id](ct[v.id])
            if g.shape != v.shape:
                raise IRError(f"a gradient hook returned shape {g.shape} for a value of shape {v.shape}")
            ct[v.id] = g if g.dtype == v.dtype else b.cast(g, dtype=v.dtype)

    def accumulate(v: Value, g: Value):
        if g.shape != v.shape:
            raise IRError(f"gradient of shape {g.shape} for a value of shape {v.shape} (bug in a gradient rule)")
        if g.dtype != v.dtype:
            g = b.cast(g, dtype=v.dtype)
        ct[v.id] = b.add(ct[v.id], g) if v.id in ct else g

    for v, g in zip(outputs, cotangents):
        accumulate(v, g)
    for n in reversed(active):
        for o in n.outputs:
            run_hook(o)
        cts = [ct.get(o.id) for o in n.outputs]
        if all(c is None for c in cts):
            continue
        wanted = [v.id in depends and v.type.is_float for v in n.inputs]
        if not any(wanted):
            continue
        op = get_op(n.op)
        if op.grad is None:  # (ops with a zero gradient, such as sign, register a rule returning None)
            scope = f" [in module {n.meta['scope']}]" if n.meta.get("scope") else ""
            raise MissingGradient(
                f"op {n.op} has no gradient rule: cannot differentiate "
                f"{describe(n.op, [v.type for v in n.inputs], n.attrs)}{scope}"
            )
        if len(n.outputs) == 1 or op.name != "call":
            cts = [c if c is not None else b.full(0.0, o.shape, o.dtype) for c, o in zip(cts, n.outputs)]
        if isinstance(b, GraphEmitter):  # gradient nodes inherit the module scope of the node they differentiate
            b.meta = {**b.meta, "scope": n.meta.get("scope", ""), "grad_of": n.meta.get("origin", n.id)}
        try:
            grads = op.grad(b, n, cts)
        except MissingGradient:
            raise
        except NotImplementedError as e:
            raise MissingGradient(
                f"op {n.op} has no gradient rule: {e} ({describe(n.op, [v.type for v in n.inputs], n.attrs)})"
            ) from None
        for v, g, want in zip(n.inputs, grads, wanted):
            if want and g is not None:
                accumulate(v, g)
    for w in wrt:
        run_hook(w)
    return [ct.get(w.id) for w in wrt]


def grad_graph(graph: Graph, wrt: list, output_index: int = 0) -> Graph:
    """A joint forward+backward graph: the forward outputs, then d(output)/d(wrt) for each wrt input.

    The differentiated output must be a scalar; its cotangent is 1.
    """
    g = graph.copy()
    out = g.outputs[output_index]
    if out.shape != ():
        raise IRError(f"grad_graph needs a scalar output, got {out.type}")
    pos = {v.id: i for i, v in enumerate(graph.inputs)}
    targets = [g.inputs[pos[w.id]] for w in wrt]
    b = GraphEmitter(g, {"phase": "backward"})
    seed = b.full(1.0, (), out.dtype)
    grads = vjp(g, [out], [seed], targets, b)
    g.outputs = g.outputs + [gr if gr is not None else b.full(0.0, t.shape, t.dtype) for gr, t in zip(grads, targets)]
    return g
