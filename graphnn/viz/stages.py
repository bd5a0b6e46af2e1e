"""Trace a model into the graphs `graphnn viz` draws: traced, optimized, backward (training step) and fused.

Inference stages come from `graphnn.compile(model)` called under no_grad. The training step is
`forward -> loss -> backward -> SGD step` compiled as one function with `graphnn.compile`, so its
'optimized' graph holds forward, backward and parameter updates together; the loss is CrossEntropyLoss
against random class indices when the output is (batch, classes), else the mean of the output.
"""

from __future__ import annotations

import copy

import os

import inspect
from dataclasses import dataclass, field
from typing import Callable

import graphnn
import graphnn.nn as nn
import graphnn.optim as optim
from graphnn.compiler.program import CompiledFunction
from graphnn.core.grad_mode import record_sources
from graphnn.ir import Graph, IRError
from graphnn.ir.fusion import FusionPlan

from graphnn.viz.inputs import ModelError, one_line

STAGES = ("traced", "optimized", "backward", "fused")


def plural(n: int, what: str) -> str:
    """plural(1, 'kernel') -> '1 kernel'; plural(7, 'kernel') -> '7 kernels'."""
    return f"{n} {what}" + ("" if n == 1 else "s")


@dataclass
class Stage:
    """One graph to draw, with what the drawing needs beyond the IR."""

    name: str
    graph: Graph
    plan: FusionPlan | None = None
    modules: dict = field(default_factory=dict)  # scope ("Net.conv1") -> module class name
    output_labels: dict = field(default_factory=dict)  # graph output position -> label
    title: str = ""
    rerun: Callable | None = None  # runs the compiled code of a 'fused' stage once more (for `graphnn viz --profile`)
    compiled: object = None  # the graphnn.compile callable the stage came from
    paths: dict = field(default_factory=dict)  # scope -> module path where they differ (see scope_paths)


class _NamedStep(CompiledFunction):
    """A compiled training step whose graph inputs carry the model's parameter names."""

    def __init__(self, fn, names: dict, name: str):
        super().__init__(fn, name, fullgraph=True)
        self.names = names

    def _names(self) -> dict:
        return dict(self.names)


def scope_root(model: nn.Module) -> str:
    """The scope that ops of `model`'s own forward record (its class name when it is not a submodule)."""
    return getattr(model, "_scope_name", "") or type(model).__name__


def module_types(model: nn.Module) -> dict:
    """Map each module's scope, as ops record it ("Net.conv1"), to its class name."""
    root = scope_root(model)
    return {(root + "." + name if name else root): type(m).__name__ for name, m in model.named_modules()}


def scope_paths(model: nn.Module) -> dict:
    """Map the scope ops record ("GPT.0.attn": the names of the modules called) to the module's path ("GPT.blocks.0.
    attn") where they differ: a ModuleList or ModuleDict is not called, so its children's scopes lack its name."""
    root = scope_root(model)
    out = {}
    for name, module in model.named_modules():
        if not name or isinstance(module, (nn.ModuleList, nn.ModuleDict)):
            continue
        parts, m, kept = name.split("."), model, []
        for part in parts:
            m = m._modules[part]
            if not isinstance(m, (nn.ModuleList, nn.ModuleDict)):
                kept.append(part)
        scope = ".".join([root] + kept)
        if scope != root + "." + name:
            out.setdefault(scope, root + "." + name)
    return out


def _check_arity(model: nn.Module, inputs: list) -> None:
    try:
        inspect.signature(model.forward).bind(*inputs)
    except TypeError as e:
        raise ModelError(f"{type(model).__name__}.forward does not take {len(inputs)} input(s): {e}") from None
    except ValueError:
        pass  # no introspectable signature


def _run(what: str, model: nn.Module, inputs: list, fn):
    shapes = " and ".join("x".join(map(str, x.shape)) for x in inputs)
    try:
        return fn()
    except ModelError:  # (says what is wrong itself: an export's own error, say)
        raise
    except (graphnn.OpError, IRError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__  # drop the "at <frame>" line
        raise ModelError(f"input shape {shapes} does not fit {type(model).__name__}: {first}") from None
    except graphnn.TraceError as e:
        raise ModelError(f"cannot trace {what} of {type(model).__name__}: {one_line(e)}") from None
    except (RuntimeError, ValueError, IndexError, TypeError) as e:  # (x.view(-1, n), cat, permute of a wrong shape)
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ModelError(f"input shape {shapes} does not fit {type(model).__name__}: {first}") from None


def inference_stages(model: nn.Module, inputs: list) -> dict:
    """'traced', 'optimized' and 'fused' of the model's forward (no gradients)."""
    _check_arity(model, inputs)
    compiled = graphnn.compile(model, fullgraph=True)  # (a graph or an error: no eager fallback)

    def call():  # (in eval mode, as an export: dropout off, BatchNorm's running statistics)
        modes = [(m, m.training) for m in model.modules()]
        model.eval()
        try:
            with graphnn.no_grad():
                return compiled(*inputs)
        finally:
            for m, was in modes:
                m.training = was

    _run("the forward", model, inputs, call)
    gs = compiled.graphs
    mods = module_types(model)
    labels = {
        j: "output" if len(gs["optimized"].outputs) == 1 else f"output {j}" for j in range(len(gs["optimized"].outputs))
    }
    name = type(model).__name__
    return {
        "traced": Stage("traced", gs["traced"], None, mods, labels, f"{name}: traced"),
        "optimized": Stage("optimized", gs["optimized"], None, mods, labels, f"{name}: optimized"),
        "fused": Stage(
            "fused",
            gs["lowered"],
            gs["fused"],
            mods,
            labels,
            f"{name}: fused ({plural(len(gs['fused'].groups), 'kernel')})",
            call,
            compiled,
        ),
    }


def first_output(out):
    """The first tensor of a model's output (a tuple, list or dict of them: a dict's first value)."""
    while isinstance(out, (tuple, list, dict)) and len(out):
        out = next(iter(out.values())) if isinstance(out, dict) else out[0]
    return out


def _loss(out, batch: int):
    out = first_output(out)
    if out.ndim == 2 and out.shape[0] == batch and out.dtype_name.startswith("float"):
        target = graphnn.randint(0, out.shape[1], (batch,))
        return nn.CrossEntropyLoss(), target
    return (lambda o, _t: o.float().mean()), graphnn.zeros(1)


def make_train_step(model: nn.Module, inputs: list, lr: float = 0.01) -> tuple:
    """(step, target, names): a compiled SGD training step `step(*inputs, target)` (forward, loss, backward,
    update) whose graph inputs carry the model's parameter names, and a random target for it."""
    _check_arity(model, inputs)
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ModelError(f"{type(model).__name__} has no trainable parameters: there is no training graph")
    with graphnn.no_grad():
        sample = _run("the forward", model, inputs, lambda: model(*inputs))
    criterion, target = _loss(sample, inputs[0].shape[0])
    opt = optim.SGD(params, lr=lr)

    def train_step(*args):
        *xs, y = args
        opt.zero_grad()
        out = model(*xs)
        loss = criterion(first_output(out), y)
        loss.backward()
        opt.step()
        return loss

    names = {id(p): n for n, p in model.named_parameters()}
    names.update({id(b): n for n, b in model.named_buffers()})
    return _NamedStep(train_step, names, type(model).__name__ + "_train_step"), target, names


def training_stages(model: nn.Module, inputs: list, lr: float = 0.01) -> dict:
    """'traced', 'optimized'/'backward' and 'fused' of one SGD training step (forward, loss, backward, update), traced
    on a copy of the model (the step runs once: the model's own weights, gradients and statistics stay as they are)."""
    model = copy.deepcopy(model)
    step, target, names = make_train_step(model, inputs, lr)
    _run("the training step", model, inputs, lambda: step(*inputs, target))
    gs = step.graphs
    g = gs["optimized"]
    labels = _training_labels(step, g, names)
    mods = module_types(model)
    name = type(model).__name__

    def stage(key: str, graph: Graph, plan, title: str) -> Stage:
        return Stage(key, graph, plan, mods, labels, f"{name} training step: {title}")

    return {
        "traced": stage("traced", gs["traced"], None, "traced"),
        "optimized": stage("optimized", g, None, "optimized"),
        "backward": stage("backward", g, None, "forward + backward + SGD update"),
        "fused": Stage(
            "fused",
            gs["lowered"],
            gs["fused"],
            mods,
            labels,
            f"{name} training step: fused ({plural(len(gs['fused'].groups), 'kernel')})",
            lambda: step(*inputs, target),
            step,
        ),
    }


def _training_labels(step: CompiledFunction, g: Graph, names: dict) -> dict:
    labels = {0: "loss"}
    for t, pos, _ in step.last.grad_targets:
        if pos is not None:
            labels[pos] = names.get(id(t), "param") + ".grad"
    for out_pos, in_pos in g.meta.get("writeback", {}).items():
        labels[out_pos] = f"{g.inputs[in_pos].name} (updated in place)"
    return labels


def trace_stages(model: nn.Module, inputs: list, stages: list, train: bool = False) -> dict:
    """The requested stages by name. With train=True, traced/optimized/fused are those of the training step;
    'backward' is always the training step's joint graph."""
    with record_sources():  # each op's user source line, for the explorer's side panel
        return _trace_stages(model, inputs, stages, train)


def _trace_stages(model: nn.Module, inputs: list, stages: list, train: bool) -> dict:
    out: dict = {}
    if not train and any(s in ("traced", "optimized", "fused") for s in stages):
        out.update(inference_stages(model, inputs))
    if train or "backward" in stages:
        tr = training_stages(model, inputs)
        out.update(tr if train else {"backward": tr["backward"]})
    paths = scope_paths(model)
    for st in out.values():
        st.paths = paths
    return {s: out[s] for s in stages}


def is_export(spec: str) -> bool:
    """Is MODEL a directory written by graphnn.export?"""
    return os.path.isdir(spec) and os.path.isfile(os.path.join(spec, "manifest.json"))


def export_stages(path: str, stage: str) -> dict:
    """'optimized' (the compiled graph stored in the export) and 'fused' (its kernels) of an exported model."""
    from graphnn.artifact.export import ExportError, read_graph
    from graphnn.ir.fusion import plan_fusion

    if stage not in ("optimized", "fused", "all"):
        raise ModelError(
            f"an exported model holds only its compiled graph: use --stage optimized, fused or all (not {stage})"
        )
    try:
        g = read_graph(path)
    except ExportError as e:
        raise ModelError(one_line(e)) from None
    labels = {j: "output" if len(g.outputs) == 1 else f"output {j}" for j in range(len(g.outputs))}
    name = os.path.basename(os.path.normpath(path))
    plan = plan_fusion(g)
    out = {
        "optimized": Stage("optimized", g, None, {}, labels, f"{name} (export): compiled graph"),
        "fused": Stage("fused", g, plan, {}, labels, f"{name} (export): fused ({plural(len(plan.groups), 'kernel')})"),
    }
    return out if stage == "all" else {stage: out[stage]}
