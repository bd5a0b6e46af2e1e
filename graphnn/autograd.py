"""Autograd front end: grad_fn objects with PyTorch's names, Variable, and the symbolic backward engine.

Eager ops record IR nodes. `backward()` gathers the recorded nodes that lead to the root, differentiates them
with graphnn.ir.vjp (the gradient is itself IR) and evaluates the gradient graph with the reference interpreter,
reusing the forward values already computed.
"""

from __future__ import annotations

import functools
import sys
import weakref

import numpy as np

from graphnn import ir
from graphnn.core import backward_cache, native_eager
from graphnn.core.hooks import run_post_accumulate_hooks
from graphnn.ir.graph import Graph

from graphnn.core.grad_mode import (
    cycle_collector_paused,
    enable_grad,
    inference_mode,
    is_grad_enabled,
    no_grad,
    set_grad_enabled,
)

__all__ = [
    "Function",
    "FunctionCtx",
    "Variable",
    "backward",
    "grad",
    "no_grad",
    "enable_grad",
    "is_grad_enabled",
    "set_grad_enabled",
    "inference_mode",
]

_classes: dict = {}


class Function:
    """A node of the autograd graph as users see it (`tensor.grad_fn`), and the base class of custom functions:
    subclasses define static forward(ctx, *args) and backward(ctx, *grad_outputs) and are called as
    MyFunction.apply(*args) (graphnn/core/custom_function.py)."""

    def __init__(self, next_functions: tuple = ()):
        self.next_functions = tuple(next_functions)

    def name(self) -> str:
        return type(self).__name__

    def __repr__(self) -> str:
        return f"<{type(self).__name__} object at {hex(id(self))}>"

    @classmethod
    def apply(cls, *args, **kwargs):
        from graphnn.core.custom_function import apply_custom

        return apply_custom(cls, args, kwargs)

    @staticmethod
    def forward(ctx, *args, **kwargs):
        raise NotImplementedError("You must implement the forward function for custom autograd.Function.")

    @staticmethod
    def backward(ctx, *grad_outputs):
        raise NotImplementedError(
            "You must implement either the backward or vjp method for your custom autograd.Function to use it with backward mode AD."
        )

    @staticmethod
    def setup_context(ctx, inputs, output):
        """Overridden by functions whose forward takes no ctx (PyTorch 2's style)."""


class AccumulateGrad(Function):
    """The grad_fn edge into a leaf tensor that requires grad."""

    def __init__(self, variable):
        super().__init__(())
        self.variable = variable


def function_class(name: str) -> type:
    if name not in _classes:
        _classes[name] = type(name, (Function,), {})
    return _classes[name]


def edge(t) -> tuple:
    """(Function, 0) for a tensor as an input edge, PyTorch style."""
    if t is None or not getattr(t, "requires_grad", False):
        return (None, 0)
    if t.grad_fn is not None:
        return (t.grad_fn, 0)
    if t._accumulate is None:
        t._accumulate = AccumulateGrad(t)
    return (t._accumulate, 0)


def make_grad_fn(name: str, inputs: list) -> Function:
    return function_class(name)(tuple(edge(t) for t in inputs))


def Variable(data, requires_grad: bool = False, volatile: bool = False):
    """Legacy wrapper kept for the tutorial: returns the tensor itself (with requires_grad set if asked)."""
    from graphnn.core.tensor import Tensor, tensor

    t = data if isinstance(data, Tensor) else tensor(data)
    if requires_grad:
        t.requires_grad_(True)
    return t


def _collect(roots: list, stop: set = frozenset()) -> tuple:
    """Recorded nodes reachable from `roots` (in creation order) and the leaf values they read; the walk ends at
    values whose ids are in `stop` (read as leaves)."""
    nodes: dict = {}
    leaves: dict = {}
    stack = [v for v in roots]
    while stack:
        v = stack.pop()
        n = v.producer
        if n is None or v.id in stop:
            leaves[v.id] = v
            continue
        if n.id in nodes:
            continue
        nodes[n.id] = n
        stack.extend(n.inputs)
    return sorted(nodes.values(), key=lambda n: n.id), sorted(leaves.values(), key=lambda v: v.id)


FREED = (
    "Trying to backward through the graph a second time (or directly access saved tensors after they have "
    "already been freed). Saved intermediate values of the graph are freed when you call .backward() or "
    "autograd.grad(). Specify retain_graph=True if you need to backward through the graph a second time or if you "
    "need to access saved tensors after calling backward."
)


def _gradient_graph(
    roots: list,
    wrt_leaves: bool,
    inputs: list | None,
    seed_arrays: list | None = None,
    collected=None,
    seed_values: list | None = None,
):
    """seed_values (create_graph): per root, the recorded value of a grad_output that requires grad (the gradient
    computed is then a function of it too), or None."""
    nodes, leaves = collected or _collect([t._value for t in roots])
    _check_not_freed(nodes)
    g = Graph("backward")
    g.inputs = list(leaves)
    g.nodes = list(nodes)
    g.meta["recorded_nodes"] = len(nodes)  # the gradient nodes follow
    seeds = []
    for i, t in enumerate(roots):
        sv = seed_values[i] if seed_values else None
        if sv is not None and sv not in g.inputs and sv.type == t._value.type:
            g.inputs.append(sv)
            seeds.append(sv)
        else:
            seeds.append(g.add_input(t._value.type, f"grad_{i}", "cotangent"))
    for v, a in zip(seeds, seed_arrays or ()):
        v.data = a
    targets = _targets(nodes, leaves, inputs)
    b = ir.GraphEmitter(g, {"phase": "backward"}, fold=True)
    hooks = _eager_hooks(g, nodes, leaves)
    grads = vjp_located(g, [t._value for t in roots], seeds, targets, b, hooks=hooks)
    return g, leaves, targets, grads


def _check_not_freed(nodes: list) -> None:
    if any(n.meta.get("freed") for n in nodes):
        from graphnn.core.dispatch import located

        raise RuntimeError(located(FREED, ""))


def _targets(nodes: list, leaves: list, inputs: list | None) -> list:
    """The values whose gradients backward() computes: the leaves that require grad and the non-leaves whose
    retain_grad() was called (still alive, and still standing for that value); autograd.grad's inputs."""
    if inputs is not None:
        return [t._value for t in inputs]
    targets = [v for v in leaves if v.meta.get("tensor") is not None and v.meta["tensor"].requires_grad]
    return targets + [o for n in nodes for o in n.outputs if _retained(o) is not None]


def tensor_hooks(v) -> list:
    """The gradient hooks (Tensor.register_hook) of the tensor that recorded value v stands for."""
    t = v.meta.get("tensor")
    return v.meta.get("hooks") or (t._grad_hooks if t is not None and t._value is v else None) or []


def _eager_hooks(g, nodes: list, leaves: list) -> dict:
    """value id -> a vjp hook that evaluates the value's cotangent now, calls the tensor's hooks with it and
    feeds what they return into the rest of the gradient computation as a new input of the gradient graph."""
    from graphnn.core.hooks import USED, call_hooks
    from graphnn.core.tensor import Tensor

    if not USED[0]:
        return {}

    def make(fns):
        def hook(ct):
            new = call_hooks(fns, Tensor._wrap(_evaluate(ct)), ct.type)
            v = g.add_input(ct.type, "hooked", "cotangent")
            v.data = np.asarray(new._data, dtype=ct.dtype)
            return v

        return hook

    values = list(leaves) + [o for n in nodes for o in n.outputs]
    return {v.id: make(fns) for v in values if (fns := tensor_hooks(v))}


def _evaluate(v) -> np.ndarray:
    """The value of v in a gradient graph under construction (its inputs carry data): the nodes it depends on are
    run with the reference kernels, and keep their results (the interpreter then skips them)."""
    from graphnn.ir.interpreter import run_node

    stack = [v]
    while stack:
        u = stack[-1]
        if u.data is not None:
            stack.pop()
            continue
        p = u.producer
        if p is None:
            raise RuntimeError(located_free("a gradient hook needs a value that backward() has already freed"))
        missing = [i for i in p.inputs if i.data is None]
        if missing:
            stack.extend(missing)
            continue
        for o, a in zip(p.outputs, run_node(p, [i.data for i in p.inputs])):
            o.data = a
        stack.pop()
    return v.data


def located_free(msg: str) -> str:
    from graphnn.core.dispatch import located

    return located(msg, "")


def vjp_located(*args, hooks=None):
    """graphnn.ir.vjp, with the user's source line added to a missing-gradient error."""
    from graphnn.core.dispatch import located

    try:
        return ir.vjp(*args, hooks=hooks)
    except ir.MissingGradient as e:
        raise ir.MissingGradient(located(str(e), "")) from None


def _retained(v):
    """The live tensor that retains the gradient of recorded value v, or None."""
    ref = v.meta.get("retain")
    t = ref() if ref is not None else None
    return t if t is not None and t._value is v and t._retains_grad else None


def _run(
    roots: list, grad_tensors: list, inputs: list | None, create_graph: bool = False, seed_tensors: list | None = None
) -> tuple:
    with cycle_collector_paused():  # the gradient nodes' cycles are broken below, so they go at once
        seeds = [np.asarray(gt, dtype=t.dtype.name) for t, gt in zip(roots, grad_tensors)]
        collected = nodes, leaves = _collect([t._value for t in roots])
        key = pos = idents = None
        if not create_graph and not _has_hooks(nodes, leaves) and not _ANOMALY[0]:
            _check_not_freed(nodes)
            targets = _targets(nodes, leaves, inputs)
            key, pos, by_position, idents = backward_cache.structure_key(nodes, targets, seeds)
            program = backward_cache.lookup(key)
            if program is not None:
                return _rerun(program, by_position, targets, seeds)
        seed_values = None
        if create_graph and seed_tensors:  # grad_outputs that require grad: the gradient depends on them too
            seed_values = [
                t._eager_value() if getattr(t, "requires_grad", False) and t._trace is None else None
                for t in seed_tensors
            ]
        from graphnn.core.custom_function import INLINE_BACKWARD

        INLINE_BACKWARD.on = create_graph  # (custom functions' backward traced in: differentiable again)
        try:
            g, leaves, targets, grads = _gradient_graph(roots, True, inputs, seeds, collected, seed_values)
        finally:
            INLINE_BACKWARD.on = False
        gradient_nodes = g.nodes[g.meta["recorded_nodes"] :]
        try:
            pairs = [(t, gr) for t, gr in zip(targets, grads) if gr is not None]
            g.outputs = [gr for _, gr in pairs]
            ir.passes.dce(g)
            env = {o.id: o.data for n in g.nodes for o in n.outputs if o.data is not None}
            _check_versions(g, env)
            feeds = [v.data for v in leaves] + seeds + [v.data for v in g.inputs[len(leaves) + len(seeds) :]]
            if create_graph:
                values = _record_gradient(g, feeds, env)
                gradient_nodes = []  # they stay: later backward() calls differentiate through them
            else:
                if key is not None:
                    backward_cache.store(key, g, {n.id for n in nodes}, pos, g.inputs[len(leaves) :], grads, idents)
                values = ir.interpret(g, feeds, env, _nan_checked(g) if _ANOMALY[0] else native_eager.run)
        finally:
            for n in gradient_nodes:  # node <-> value cycles: break them so reference counting frees the nodes
                for o in n.outputs:
                    o.producer = None
    return targets, grads, pairs, values


def _has_hooks(nodes: list, leaves: list) -> bool:
    from graphnn.core.hooks import USED

    return USED[0] and any(tensor_hooks(v) for v in list(leaves) + [o for n in nodes for o in n.outputs])


def _rerun(program, by_position: list, targets: list, seeds: list) -> tuple:
    """backward() of a recorded graph whose structure was differentiated before: its gradient program on this
    step's arrays."""
    values, arrays = program.gather(by_position, seeds)
    for v in values:
        _check_version(v)
    grads = [None] * len(targets)
    for i in program.present:
        grads[i] = True
    pairs = [(targets[i], True) for i in program.present]
    return targets, grads, pairs, program.run(arrays, native_eager.run)


def _record_gradient(g, feeds: list, env: dict) -> list:
    """create_graph: evaluate the gradient graph keeping every value it computes on its node, so the gradient
    nodes become recorded nodes like the forward ones; returns the outputs as tensors that require grad when
    they depend on something that does (a later backward() differentiates through them)."""
    from graphnn.core.tensor import Tensor

    for v, a in zip(g.inputs, feeds):
        env[v.id] = a
    differentiable = {v.id for v in g.inputs if v.meta.get("tensor") is not None and v.meta["tensor"].requires_grad}
    for n in g.nodes:
        if all(o.id in env for o in n.outputs):  # a recorded forward value: differentiable as its inputs are (a
            # replayed composite's intermediate values have no tensor of their own)
            if (n.outputs and n.outputs[0].meta.get("ver") is not None) or any(
                v.id in differentiable for v in n.inputs
            ):
                differentiable.update(o.id for o in n.outputs)
            continue
        for o, a in zip(n.outputs, native_eager.run(n, [env[v.id] for v in n.inputs])):
            o.data = env[o.id] = a
        if any(v.id in differentiable for v in n.inputs):
            differentiable.update(o.id for o in n.outputs)
    out = []
    for v in g.outputs:
        if v.id in differentiable and v.type.is_float:
            t = Tensor._recorded(env[v.id], v)
            t.grad_fn = _gradient_function(v)
            out.append(t)
        else:
            out.append(Tensor._wrap(env[v.id]))
    return out


def _gradient_function(v) -> Function:
    """The grad_fn shown for a gradient computed with create_graph (the op that computed it, PyTorch style)."""
    from graphnn.core.dispatch import grad_fn_name

    p = v.producer
    return function_class(grad_fn_name(p.op) if p is not None else "AccumulateGrad")(())


def _check_versions(g, env: dict) -> None:
    """The recorded values the gradient computation reads must still be in the storage they were recorded from:
    an in-place op since then (a new version) makes them unusable, as in PyTorch."""
    for n in g.nodes:
        if n.outputs and all(o.id in env for o in n.outputs):
            continue  # a forward node with its value: not evaluated
        for v in n.inputs:
            _check_version(v)


def _check_version(v) -> None:
    ver = v.meta.get("ver")
    if ver is not None and ver[0][0] != ver[1]:
        from graphnn.core.dispatch import grad_fn_name, located
        from graphnn.core.tensor import _TORCH_TYPE

        p = v.producer
        what = f", which is output 0 of {grad_fn_name(p.op)}," if p is not None else ""
        raise RuntimeError(
            located(
                f"one of the variables needed for gradient computation has been modified by an inplace operation: "
                f"[torch.{_TORCH_TYPE.get(v.type.dtype, v.type.dtype)}Tensor {list(v.type.shape)}]{what} is at "
                f"version {ver[0][0]}; expected version {ver[1]} instead.",
                "",
            )
        )


def _free(roots: list, stop: list | None = None) -> None:
    """Let go of the recorded graph's intermediate arrays (as PyTorch frees saved tensors), so memory is returned at
    once instead of when Python's cycle collector runs; a later backward through these nodes raises. With `stop`
    (autograd.grad's inputs), only the part between the roots and those values, which the gradient ran through:
    the graph that made the inputs stays (first-order MAML: grad(inner_loss, fast_weights), then the meta loss's
    backward through the fast weights)."""
    nodes, _leaves = _collect([t._value for t in roots], {v.id for v in stop or () if v is not None})
    for n in nodes:
        n.meta["freed"] = True
        for o in n.outputs:
            o.data = None


def implicit_grad_error(t) -> RuntimeError:
    """backward() without a gradient on a tensor with more than one element (PyTorch's RuntimeError)."""
    from graphnn.core.dispatch import located

    p = t._value.producer if t._value is not None else None
    origin = f" (the result of {p.op})" if p is not None else ""
    return RuntimeError(
        located(
            f"backward: grad can be implicitly created only for scalar outputs, but this tensor{origin} "
            f"is {t._type}; pass a gradient argument to backward()",
            p.meta.get("scope", "") if p is not None else "",
        )
    )


def _seed(t, gradient):
    from graphnn.core.tensor import Tensor

    if gradient is None:
        if t.numel() != 1:
            raise implicit_grad_error(t)
        return np.ones(t.shape, t._data.dtype)
    g = gradient._data if isinstance(gradient, Tensor) else np.asarray(gradient, t._data.dtype)
    if tuple(g.shape) != tuple(t.shape):
        raise RuntimeError(f"gradient has shape {tuple(g.shape)} but the tensor has shape {tuple(t.shape)}")
    return g


def _trace_of(t):
    """The trace whose value t holds: a symbolic tensor's, or the current one for a factory's tensor it made and gave
    a value that requires grad (`total = zeros(()); total += loss` inside graphnn.compile)."""
    if t._trace is not None:
        return t._trace
    if t._temporary and t.grad_fn is not None:
        from graphnn.compiler import tracer as _tracer

        return _tracer.current()
    return None


def backward(tensors, grad_tensors=None, retain_graph=None, create_graph: bool = False, inputs=None) -> None:
    """Accumulate d(tensors)/d(leaf) into every leaf's .grad (and that of non-leaves that retain_grad()); with
    `inputs`, into those tensors' .grad only (leaves or not).

    Unless retain_graph is true, the recorded graph then lets go of its intermediate arrays (as PyTorch frees
    saved tensors), so memory is returned at once instead of when Python's cycle collector runs; a second
    backward through the same graph raises, as in PyTorch. With create_graph the gradients are recorded too
    (the .grad tensors have a grad_fn), so they can be differentiated again."""
    from graphnn.core.tensor import Tensor

    tensors = [tensors] if isinstance(tensors, Tensor) else list(tensors)
    grad_tensors = (
        [None] * len(tensors)
        if grad_tensors is None
        else ([grad_tensors] if isinstance(grad_tensors, Tensor) else list(grad_tensors))
    )
    if inputs is not None:
        inputs = [inputs] if isinstance(inputs, Tensor) else list(inputs)
        if not inputs:
            raise RuntimeError("'inputs' argument to backward() cannot be empty.")
        results = grad(tensors, inputs, grad_tensors, retain_graph, create_graph, allow_unused=True)
        for t, g in zip(inputs, results):
            if g is None:
                continue
            if t._trace is None and t.is_leaf and g._trace is not None:  # (a parameter, inside graphnn.compile)
                g._trace.accumulate_grad(t, g._trace.lift(g))
            elif t._trace is None and t.is_leaf:
                _accumulate(t, g if create_graph else g._data)
            else:
                t.grad = g if t.grad is None else t.grad + g
        notify_backward([t for t, g in zip(inputs, results) if g is not None and t.is_leaf])
        return
    traced = [(t, g, _trace_of(t)) for t, g in zip(tensors, grad_tensors)]
    if any(trace is not None for _, _, trace in traced):  # (inside graphnn.compile: each accumulates, in order)
        for i, (t, g, trace) in enumerate(traced):
            if trace is None:
                raise RuntimeError(f"element {i} of tensors does not require grad and does not have a grad_fn")
            trace.backward(t, g)
        return
    for i, t in enumerate(tensors):
        if not t.requires_grad:
            raise RuntimeError(f"element {i} of tensors does not require grad and does not have a grad_fn")
    roots, seeds, updated = [], [], []
    for t, gt in zip(tensors, grad_tensors):
        if t._value is not None and t._value.producer is not None:
            roots.append(t)
            seeds.append(_seed(t, gt))
        else:
            _accumulate(t, _seed(t, gt))  # backward() on a leaf: its gradient is the seed
            updated.append(t)
    if roots:
        _targets, _grads, pairs, values = _run(roots, seeds, None, create_graph)
        for (v, _), val in zip(pairs, values):
            t = v.meta.get("tensor")
            _accumulate(t if t is not None else _retained(v), val)
            if t is not None:
                updated.append(t)
        if not (create_graph if retain_graph is None else retain_graph):
            _free(roots)
    notify_backward(updated)


_observers: list = []  # weak references to the callables add_backward_observer registered


def add_backward_observer(fn) -> None:
    """Call fn(tensors) after every backward() (eager, and traced inside graphnn.compile) with the leaf tensors whose
    .grad it accumulated into (DistributedDataParallel reduces gradients there). fn is held weakly: a bound method
    as long as its object lives."""
    _observers.append(weakref.WeakMethod(fn) if hasattr(fn, "__self__") else weakref.ref(fn))


def notify_backward(tensors: list) -> None:
    """Run the backward observers (see add_backward_observer)."""
    for ref in list(_observers):
        fn = ref()
        if fn is None:
            _observers.remove(ref)
        elif tensors:
            fn(tensors)


def _accumulate(t, g) -> None:
    """Add gradient g (an array, or with create_graph a tensor that may carry a graph) into t.grad."""
    from graphnn.core.tensor import Tensor

    if isinstance(g, Tensor):
        if g.requires_grad:
            t.grad = g if t._grad is None else t._grad + g
            return
        g = g._data
    g = np.asarray(g, dtype=t._data.dtype)
    if t._grad is None:
        t.grad = Tensor(np.array(g, copy=True))
    else:
        t._grad._data = np.asarray(t._grad._data + g)  # (0-d arrays add to a NumPy scalar)
    run_post_accumulate_hooks(t)


def grad(
    outputs,
    inputs,
    grad_outputs=None,
    retain_graph=None,
    create_graph=False,
    only_inputs=True,
    allow_unused=None,
    is_grads_batched=False,
    materialize_grads=False,
):
    """d(outputs)/d(inputs) as new tensors, without touching .grad. As in PyTorch, only_inputs is accepted and
    ignored (deprecated there), and materialize_grads gives zeros for inputs the outputs do not depend on."""
    from graphnn.core.tensor import Tensor

    if is_grads_batched:  # one gradient per slice of the grad_outputs' first dimension, stacked
        from graphnn.core.tensor import stack

        gos = [grad_outputs] if isinstance(grad_outputs, Tensor) else list(grad_outputs)
        n = gos[0].shape[0]
        per = [
            grad(outputs, inputs, [g[i] for g in gos], True, create_graph, allow_unused=allow_unused) for i in range(n)
        ]
        if not (create_graph if retain_graph is None else retain_graph):
            _free([t for t in ([outputs] if isinstance(outputs, Tensor) else outputs) if t._value is not None])
        return tuple(None if r[0] is None else stack(list(r)) for r in zip(*per))
    if materialize_grads:
        if allow_unused is False:
            raise ValueError("Expected allow_unused to be True or not passed when materialize_grads=True")
        single = isinstance(inputs, Tensor)
        result = grad(outputs, inputs, grad_outputs, retain_graph, create_graph, allow_unused=True)
        return tuple(
            r if r is not None else Tensor(np.zeros(tuple(t.shape), t.dtype_name))
            for r, t in zip(result, [inputs] if single else inputs)
        )
    allow_unused = bool(allow_unused)

    outputs = [outputs] if isinstance(outputs, Tensor) else list(outputs)
    inputs = [inputs] if isinstance(inputs, Tensor) else list(inputs)
    grad_outputs = (
        [None] * len(outputs)
        if grad_outputs is None
        else ([grad_outputs] if isinstance(grad_outputs, Tensor) else list(grad_outputs))
    )
    for i, t in enumerate(outputs):
        if not t.requires_grad:
            raise RuntimeError(f"element {i} of tensors does not require grad and does not have a grad_fn")
    trace = next((tr for tr in map(_trace_of, outputs) if tr is not None), None)
    if trace is not None:
        result = trace.grad(outputs, inputs, grad_outputs, create_graph)
        if not allow_unused and any(r is None for r in result):
            raise RuntimeError("One of the differentiated tensors appears to not have been used in the graph")
        return tuple(result)
    for t in inputs:
        t._eager_value()
    seeds = [_seed(t, g) for t, g in zip(outputs, grad_outputs)]
    _targets, grads, pairs, values = _run(outputs, seeds, inputs, create_graph, grad_outputs)
    if not (create_graph if retain_graph is None else retain_graph):
        _free(
            [t for t in outputs if t._value is not None and t._value.producer is not None], [t._value for t in inputs]
        )
    by_id = {v.id: val for (v, _), val in zip(pairs, values)}
    result = []
    for t, gr in zip(inputs, grads):
        if gr is None:
            if not allow_unused:
                raise RuntimeError("One of the differentiated tensors appears to not have been used in the graph")
            result.append(None)
        else:
            val = by_id[t._value.id]
            result.append(val if isinstance(val, Tensor) else Tensor(val))
    return tuple(result)


class detect_anomaly:  # noqa: N801 (PyTorch's name)
    """Within (a context manager or decorator): eager backward() checks every gradient op's results and raises,
    naming the function whose gradient it is, at the first NaN (with check_nan, as PyTorch)."""

    def __init__(self, check_nan: bool = True):
        self.check_nan = check_nan

    def __enter__(self):
        self._prev = _ANOMALY[0]
        _ANOMALY[0] = bool(self.check_nan)
        return self

    def __exit__(self, *exc) -> bool:
        _ANOMALY[0] = self._prev
        return False

    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with detect_anomaly(self.check_nan):
                return fn(*args, **kwargs)

        return wrapper


_ANOMALY = [False]


def _nan_checked(g):
    """native_eager.run for a gradient graph, raising at the first gradient op whose result holds a NaN."""
    from graphnn.core.dispatch import grad_fn_name

    forward = {n.id: n for n in g.nodes[: g.meta.get("recorded_nodes", 0)]}

    def run(n, arrays):
        out = native_eager.run(n, arrays)
        if n.meta.get("phase") == "backward":
            for i, a in enumerate(out):
                if a.dtype.kind == "f" and np.isnan(a).any():
                    src = forward.get(n.meta.get("grad_of"))
                    name = grad_fn_name(src.op if src is not None else n.op)
                    raise RuntimeError(f"Function '{name}' returned nan values in its {i}th output.")
        return out

    return run


class set_detect_anomaly:  # noqa: N801 (PyTorch's name)
    """Turn anomaly detection on or off now; as a context manager, the previous setting comes back at exit."""

    def __init__(self, mode: bool, check_nan: bool = True):
        self._prev = _ANOMALY[0]
        _ANOMALY[0] = bool(mode) and bool(check_nan)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> bool:
        _ANOMALY[0] = self._prev
        return False


def is_anomaly_enabled() -> bool:
    return _ANOMALY[0]


# graphnn.autograd.functional (this is a module, not a package: the submodule is registered under that name)
from graphnn.core import autograd_functional as functional  # noqa: E402

sys.modules[__name__ + ".functional"] = functional

# graphnn.autograd.profiler (torch.autograd.profiler), registered the same way
from graphnn.profiler import autograd_profiler as profiler  # noqa: E402

sys.modules[__name__ + ".profiler"] = profiler


# graphnn.autograd.function (torch.autograd.function: Function, FunctionCtx, once_differentiable)
from graphnn.core import custom_function as function  # noqa: E402
from graphnn.core.custom_function import FunctionCtx  # noqa: E402, F401

function.Function = Function


def once_differentiable(fn):
    """Marks a custom Function's backward whose results are not differentiable again: it runs as one opaque call
    (without recording, as every opaque backward), never traced into a create_graph gradient graph, so
    differentiating its results raises (as PyTorch's)."""
    fn.once_differentiable = True
    return fn


function.once_differentiable = once_differentiable
sys.modules[__name__ + ".function"] = function
from graphnn.core import grad_mode  # noqa: E402  (torch.autograd.grad_mode.no_grad)

sys.modules[__name__ + ".grad_mode"] = grad_mode

# torch.autograd.gradcheck / gradgradcheck
from graphnn.core.gradcheck import GradcheckError, gradcheck, gradgradcheck  # noqa: E402, F401

# torch.autograd.forward_ad (dual tensors; `import torch.autograd.forward_ad as fwAD` finds it too)
from graphnn.core import forward_ad  # noqa: E402

sys.modules[__name__ + ".forward_ad"] = forward_ad
