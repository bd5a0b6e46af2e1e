"""Splitting a differentiated graph into a forward graph and a backward graph (as AOTAutograd's partitioner does).

`partition` differentiates `outputs` of a forward graph with respect to some of its inputs, then cuts the result
in two: the forward graph also returns the residuals (forward values the gradient computation reads), and the
backward graph takes those residuals and the output cotangents and returns the gradients.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .autodiff import vjp
from .extract import extract
from .graph import Graph
from .passes.scan_merge import merged_outputs
from .registry import GraphEmitter, MissingGradient


@dataclass
class Partition:
    forward: Graph  # inputs: the graph's inputs; outputs: outputs + residuals computed + extra outputs
    backward: Graph  # inputs: residual inputs + residuals computed + cotangents; outputs: grads of grad_pos
    n_out: int  # outputs of the forward graph that are the caller's outputs
    n_res: int  # residuals the forward graph computes (after its n_out outputs)
    float_outs: list  # positions of the outputs that get a cotangent
    grad_pos: list  # input positions whose gradient the backward graph returns, in its output order
    res_input_pos: list  # input positions the backward graph reads directly (residual inputs)
    missing_gradient: str | None = None  # why no gradient exists (raised when one is asked for)
    out_types: list = field(default_factory=list)  # types of the forward graph's outputs and residuals


def partition(
    graph: Graph, outputs: list, wrt: list, extra: list = (), name: str | None = None, hooks: dict | None = None
) -> Partition:
    """Differentiate `outputs` of `graph` (in place: the backward nodes are appended, then cut out) with respect
    to the inputs at positions `wrt`. `extra` are further forward outputs (state updates) after the residuals;
    `hooks`: vjp's gradient hooks."""
    name = name or graph.name
    n_fwd = len(graph.nodes)
    inputs = list(graph.inputs)
    float_outs = [j for j, v in enumerate(outputs) if v.type.is_float]
    cts = [graph.add_input(outputs[j].type, f"grad_out{j}", "cotangent") for j in float_outs]
    missing = None
    try:
        partial = vjp(
            graph,
            [outputs[j] for j in float_outs],
            cts,
            [inputs[i] for i in wrt],
            GraphEmitter(graph, {"phase": "backward"}),
            hooks=hooks,
        )
    except MissingGradient as e:
        del graph.nodes[n_fwd:]
        partial, missing = [None] * len(wrt), str(e)
    # a scan's gradient extends its forward scan, which then runs (once) in the forward graph
    subst = merged_outputs(graph)
    outputs, extra = [subst.get(v.id, v) for v in outputs], [subst.get(v.id, v) for v in extra]
    grads = [None] * len(inputs)
    for i, gr in zip(wrt, partial):
        grads[i] = gr
    fwd_ids = {v.id for v in inputs} | {o.id for n in graph.nodes[:n_fwd] for o in n.outputs}
    residuals, seen = [], set()
    for n in graph.nodes[n_fwd:]:
        for v in n.inputs:
            if v.id in fwd_ids and v.id not in seen:
                seen.add(v.id)
                residuals.append(v)
    res_inputs = [v for v in residuals if v.producer is None]
    res_computed = [v for v in residuals if v.producer is not None]
    grad_pos = [i for i, gr in enumerate(grads) if gr is not None]
    forward = extract(graph, inputs, list(outputs) + res_computed + list(extra), name=name)
    backward = extract(graph, res_inputs + res_computed + cts, [grads[i] for i in grad_pos], name=name + "_backward")
    return Partition(
        forward,
        backward,
        len(outputs),
        len(res_computed),
        float_outs,
        grad_pos,
        [inputs.index(v) for v in res_inputs],
        missing,
        [v.type for v in list(outputs) + res_computed],
    )


def drop_unread_residuals(part: Partition, backward: Graph) -> Partition:
    """`part` without the residuals its optimized backward graph `backward` no longer reads (simplification can
    make a gradient independent of a value the differentiation referred to, as an LSTM's hoisted input
    projection): the forward graph stops returning them, so they live in its arena instead of being kept until
    backward runs. `backward` loses those inputs (in place); the returned partition refers to it."""
    read = {v.id for n in backward.nodes for v in n.inputs} | {v.id for v in backward.outputs}
    k = len(part.res_input_pos)
    keep_in = [i for i in range(k) if backward.inputs[i].id in read]
    keep_res = [j for j in range(part.n_res) if backward.inputs[k + j].id in read]
    if len(keep_in) == k and len(keep_res) == part.n_res:
        return Partition(**{**part.__dict__, "backward": backward})
    backward.inputs = (
        [backward.inputs[i] for i in keep_in]
        + [backward.inputs[k + j] for j in keep_res]
        + backward.inputs[k + part.n_res :]
    )
    fwd, n = part.forward, part.n_out
    fwd.outputs = fwd.outputs[:n] + [fwd.outputs[n + j] for j in keep_res] + fwd.outputs[n + part.n_res :]
    return Partition(
        fwd,
        backward,
        n,
        len(keep_res),
        part.float_outs,
        part.grad_pos,
        [part.res_input_pos[i] for i in keep_in],
        part.missing_gradient,
        part.out_types[:n] + [part.out_types[n + j] for j in keep_res],
    )
