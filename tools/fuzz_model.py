"""Random small models: a fuzz graph replayed through the public API (graphnn.nn.Module + graphnn.compile).

The float inputs of the graph become the module's parameters, the others its forward arguments; forward
applies the graph's nodes one by one through graphnn's op dispatcher. Eager execution (reference kernels,
autograd over the recorded IR) is the reference; graphnn.compile must give the same outputs in inference
(no_grad) and in training mode, and `loss.backward()` through the compiled backward the same gradients, within the
rounding-error bounds of the graph and of its lowered form (fuzz_check.tolerances).
"""

from __future__ import annotations

import os

import numpy as np

import graphnn
from graphnn.core.dispatch import apply, promotes
from graphnn.ir import grad_graph
from graphnn.ir.graph import Graph
from graphnn.ir.scalar import FLOATS
from graphnn.ir.registry import family
from graphnn.ir.passes import lower_for_codegen
from graphnn.ir.roundoff import error_bounds

from .fuzz_check import Mismatch, _run, compare, differentiable, has_infinity, loss_graph, tolerances
from .fuzz_gen import FuzzCase


class Replay(graphnn.nn.Module):
    """forward(*non-float inputs) = the graph's outputs, with the float inputs as parameters."""

    def __init__(self, graph: Graph, arrays: list):
        super().__init__()
        self.graph = graph
        self.param_pos = [i for i, v in enumerate(graph.inputs) if v.type.is_float]
        for k, i in enumerate(self.param_pos):
            setattr(self, f"p{k}", graphnn.nn.Parameter(graphnn.from_numpy(arrays[i].copy())))

    def forward(self, *args):
        env, it = {}, iter(args)
        params = iter(self.parameters())
        for i, v in enumerate(self.graph.inputs):
            env[v.id] = next(params) if i in self.param_pos else next(it)
        for n in self.graph.nodes:
            ins = [env[v.id] for v in n.inputs]
            if promotes(n.op):  # the IR promotes like NumPy; graphnn's API like PyTorch (a 0-d float64 operand does
                out = n.outputs[0].dtype  # not make a float32 tensor float64): replay the IR's arithmetic
                ins = [
                    t.type_as_dtype(out) if out in FLOATS and t.dtype_name in FLOATS and t.dtype_name != out else t
                    for t in ins
                ]
            outs = apply(n.op, ins, dict(n.attrs))
            outs = outs if isinstance(outs, tuple) else (outs,)
            for o, t in zip(n.outputs, outs):
                env[o.id] = t
        return tuple(env[v.id] for v in self.graph.outputs)


def _eager(model: Replay, args: list, weights: list, backward: bool = True):
    outs = model(*args)
    loss = None
    for o, w in zip((o for o in outs if o.dtype_name in ("float32", "float64")), weights):
        term = (o * graphnn.from_numpy(w)).sum()
        loss = term if loss is None else loss + term.type_as_dtype(loss.dtype_name)
    grads = None
    if backward and loss is not None and loss.requires_grad:
        for p in model.parameters():
            p.grad = None
        loss.backward()
        grads = [None if p.grad is None else p.grad.numpy().copy() for p in model.parameters()]
    return [o.detach().numpy() for o in outs], grads


def _compiled_tolerances(graph: Graph, arrays: list) -> list:
    """Allowed |differences| between the eager (interpreted) and compiled (lowered) evaluations of `graph`."""
    low = lower_for_codegen(graph.copy())
    return tolerances(*(_run("model: rounding-error bound", error_bounds, g, arrays) for g in (graph, low)))


def check_model(case: FuzzCase, want: list) -> None:
    g = case.graph
    if any(family(n) == "scan" for n in g.nodes):
        return  # scan bodies are built by graphnn.scan from Python functions, not replayed node by node
    args = [graphnn.from_numpy(a.copy()) for a, v in zip(case.arrays, g.inputs) if not v.type.is_float]
    model = Replay(g, case.arrays)
    rng = np.random.default_rng(7)
    weights = [rng.uniform(0.5, 1.5, v.shape).astype(v.dtype) for v in g.outputs if v.type.is_float]
    backward = differentiable(g)
    # (the reference kernels throughout: an op the process has met twice, a small convolution, would otherwise run
    # natively, whose results differ in their last bits; the compiled checks below have rounding bounds)
    saved = os.environ.get("GRAPHNN_EAGER_NATIVE")
    os.environ["GRAPHNN_EAGER_NATIVE"] = "0"
    try:
        outs, grads = _run("model: eager", _eager, model, args, weights, backward)
    finally:
        if saved is None:
            os.environ.pop("GRAPHNN_EAGER_NATIVE", None)
        else:
            os.environ["GRAPHNN_EAGER_NATIVE"] = saved
    has_inf = has_infinity(g, case.arrays)
    for j, (a, b) in enumerate(zip(outs, want)):
        compare(a, b, f"model: eager output {j}")  # the same reference kernels: exactly equal
    tols = _compiled_tolerances(g, case.arrays)
    compiled = graphnn.compile(model, fullgraph=True)
    with graphnn.no_grad():
        inf = _run("model: compiled no_grad", lambda: compiled(*args))
    for j, (a, b, tol) in enumerate(zip(inf, outs, tols)):
        compare(a.numpy(), b, f"model: compiled (no_grad) output {j}", tol, has_inf)
    c_outs, c_grads = _run("model: compiled training", _eager, compiled, args, weights, backward)
    for j, (a, b, tol) in enumerate(zip(c_outs, outs, tols)):
        compare(a, b, f"model: compiled (training) output {j}", tol, has_inf)
    if grads is None:
        return
    if c_grads is None:
        raise Mismatch("model: compiled backward", "the compiled loss does not require grad")
    lg, wrt, _ = loss_graph(g, weights=weights)
    grad_tols = _compiled_tolerances(grad_graph(lg, wrt), list(case.arrays) + weights)[1:]
    for k, (a, b, tol) in enumerate(zip(c_grads, grads, grad_tols)):
        if (a is None) != (b is None):
            raise Mismatch(
                "model: compiled backward", f"parameter p{k}: grad {'missing' if a is None else 'unexpected'}"
            )
        if a is not None:
            compare(a, b, f"model: compiled grad of p{k}", tol)
