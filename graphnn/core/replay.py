"""Replay of composite functions in eager code.

A composite such as F.cross_entropy (a log-softmax, a gather, a mean) runs eagerly as a dozen ops, and each op pays
the Python cost of an eager op (operand checks, type rule, recording, wrapping: about ten microseconds) on top of its
kernel. A function wrapped with `replayed` is traced once per call signature - the arguments' types and
requires_grad flags, its other arguments, the grad mode and the default dtype - on the second call with that
signature. Later calls run the traced ops' kernels on the arguments' arrays and record the ops that need gradients
as eager ops record them: the values, the gradients and the recorded graph are those of the plain eager call (same
kernels, same nodes), at a fraction of the Python cost.

Only functions of their arguments are replayed: a trace that reads anything else (captured tensors, random draws,
values turned into Python numbers, .grad), changes state, warns, or returns an argument or a tensor it did not
compute marks its signature as not replayable, and so does a signature with arguments other than tensors and plain Python values.
Calls inside a trace (graphnn.compile) and calls while the profiler listens run the function itself, and a replay
that fails (a kernel raising on bad values) runs the function itself to raise its own error.
"""

from __future__ import annotations

import functools
import threading
import warnings
from collections import OrderedDict


from graphnn.compiler import tracer as _tracer
from graphnn.core import dispatch, native_eager
from graphnn.core.dtypes import get_default_dtype
from graphnn.core.grad_mode import INFERENCE_REGIONS, current_scope, is_grad_enabled, is_inference_mode_enabled
from graphnn.ir import config
from graphnn.ir.graph import Node, Value
from graphnn.ir.interpreter import run_node
from graphnn.ir.registry import get_op
from graphnn.ir.types import FLOAT_DTYPES

MAX_SIGNATURES = 64  # per function (least recently used dropped)
_PLAIN = (int, float, bool, str, type(None))
_NOT_REPLAYABLE = "no"


def replayed(fn):
    """Wrap a composite function of tensors so that eager calls replay its trace (see the module docstring)."""
    entries: OrderedDict = OrderedDict()  # signature -> calls so far, a _Plan, or _NOT_REPLAYABLE
    lock = threading.Lock()

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        if _tracer.current() is not None or dispatch.op_observer is not None or not config.get("GRAPHNN_REPLAY"):
            return fn(*args, **kwargs)
        tensors: list = []
        key = _signature(args, kwargs, tensors)
        if key is None:
            return fn(*args, **kwargs)
        with lock:
            entry = entries.get(key, 0)
            if entry is not _NOT_REPLAYABLE and not isinstance(entry, _Plan):
                entries[key] = entry + 1
            entries.move_to_end(key)
            while len(entries) > MAX_SIGNATURES:
                entries.popitem(last=False)
        if isinstance(entry, _Plan):
            out = entry.run(tensors)
            return fn(*args, **kwargs) if out is _FAILED else out
        result = fn(*args, **kwargs)
        if entry == 1:  # the second call with this signature: trace it (for the calls after this one)
            plan = _build(fn, args, kwargs, result, tensors)
            with lock:
                entries[key] = plan if plan is not None else _NOT_REPLAYABLE
        return result

    wrapper.replay_entries = entries  # (tests)
    return wrapper


def _signature(args: tuple, kwargs: dict, tensors: list):
    """A hashable key of what the trace depends on, with the tensor arguments appended to `tensors` in the order
    the trace makes them inputs; None when an argument is neither a concrete tensor nor a plain Python value."""
    Tensor = dispatch._tensor.Tensor if dispatch._tensor is not None else dispatch._tensor_module().Tensor
    parts: list = [is_grad_enabled(), get_default_dtype()]
    for name, a in [(None, a) for a in args] + list(kwargs.items()):
        if isinstance(a, Tensor):
            if a._data is None:
                return None
            tensors.append(a)
            parts.append((name, a._data.shape, a.dtype_name, a._requires_grad))
        else:
            p = _plain(a)
            if p is None:
                return None
            parts.append((name, p))
    return tuple(parts)


def _plain(x):
    """A hashable form of a plain Python argument (numbers, strings, None and tuples or lists of them)."""
    t = type(x)
    if t in _PLAIN:
        return (t, repr(x) if t is float else x)  # repr: -0.0 and NaN keyed exactly
    if isinstance(x, (tuple, list)):  # (graphnn.Size too)
        parts = [_plain(y) for y in x]
        return None if any(p is None for p in parts) else (t, tuple(parts))
    return None


_FAILED = object()


class _Plan:
    """A traced composite as steps over value slots: per node (template node, input slots, output slots)."""

    def __init__(self, steps, types, arg_slots, out_slots, out_spec, grad_fns, requires, checks):
        self.steps, self.types, self.n_slots, self.arg_slots = steps, types, len(types), arg_slots
        self.out_slots, self.out_spec, self.grad_fns, self.checks = out_slots, out_spec, grad_fns, checks
        self.requires = requires  # per output: whether the plain call's requires grad

    def run(self, tensors: list):
        from graphnn.compiler.pytree import unflatten
        from graphnn.core.tensor import Tensor, check_view_current

        for t in tensors:
            if t._view_gen is not None:
                check_view_current(t, None)
        env: list = [None] * self.n_slots
        values: list = [None] * self.n_slots  # recorded values (slots that require grad, and leaves read by them)
        grad = is_grad_enabled()
        needs: set = set()
        for s, t in zip(self.arg_slots, tensors):
            env[s] = t._data
            if grad and t._requires_grad:
                needs.add(s)
        for pos, check in self.checks:
            check(env[self.arg_slots[pos]])
        try:
            scope = current_scope()
            for node, ins, outs, run, record in self.steps:
                results = run(node, [env[s] for s in ins])
                if record and needs and not needs.isdisjoint(ins):
                    rec = Node(node.op, (), node.attrs, [o.type for o in node.outputs])
                    rec.inputs = [values[s] or self._leaf(s, env, values, tensors) for s in ins]
                    rec.meta["scope"] = scope
                    for s, o, a in zip(outs, rec.outputs, results):
                        o.data = a
                        values[s] = o
                        if o.type.dtype in FLOAT_DTYPES:
                            needs.add(s)
                for s, a in zip(outs, results):
                    env[s] = a
        except (ArithmeticError, IndexError, ValueError, TypeError, RuntimeError):
            return _FAILED  # (the function itself raises its own error)
        made: dict = {}
        functions: dict = {}  # per template: the Functions made for this call
        leaves = []
        for s, template, wanted in zip(self.out_slots, self.grad_fns, self.requires):
            t = made.get(s)
            if t is None:
                if s in needs and wanted:  # (wanted: a detach() inside is a stop_gradient node when traced)
                    t = made[s] = Tensor._recorded(env[s], values[s])
                    t.grad_fn = _instantiate(template, tensors, functions)
                else:
                    t = made[s] = Tensor._wrap(env[s])
            leaves.append(t)
        if INFERENCE_REGIONS[0] and is_inference_mode_enabled():  # (inference tensors, as the plain call's)
            for t in leaves:
                t._inference = True
        return unflatten(self.out_spec, leaves)

    def _leaf(self, s: int, env: list, values: list, tensors: list) -> Value:
        """The recorded value of slot s read by a recorded node: an argument's eager value, or a constant."""
        if s in self.arg_slots:
            v = tensors[self.arg_slots.index(s)]._eager_value()
        else:
            v = Value(self.types[s])
            v.data = env[s]
        values[s] = v
        return v


def _build(fn, args: tuple, kwargs: dict, result, tensors: list) -> _Plan | None:
    """The plan of fn's trace on these arguments (the tensor ones: `tensors`), or None when the trace is not a
    function of the arguments alone; `result` is what the plain call returned (its outputs' grad_fn graphs, down to
    the arguments, are the ones the replay makes)."""
    from graphnn.compiler.program import trace_function
    from graphnn.compiler.pytree import flatten

    # Warnings the trace raises are noted and not shown (the plain call showed them). warnings.warn is swapped
    # rather than the filters changed: any filter change makes Python show again every warning already shown once.
    warned, warn, warn_explicit = [], warnings.warn, warnings.warn_explicit
    warnings.warn = warnings.warn_explicit = lambda *a, **k: warned.append(a)
    try:
        tracer, spec, leaves, finals = trace_function(fn, args, kwargs, {}, getattr(fn, "__name__", "composite"))
    except Exception:  # noqa: BLE001  (anything the trace cannot follow: the function keeps running as it is)
        return None
    finally:
        warnings.warn, warnings.warn_explicit = warn, warn_explicit
    if warned:
        return None  # (a call that warns must keep warning: the replay would skip the function's own code)
    g = tracer.graph
    if (
        finals
        or tracer.updates
        or tracer.grad_writes
        or tracer.did_backward
        or tracer.used_grad
        or tracer.retained
        or tracer.scalars
    ):
        return None
    if tracer.epoch_guards or tracer.guards:
        return None
    slots = {v.id: i for i, v in enumerate(g.inputs)}
    arg_inputs = [v for v in g.inputs if v.meta.get("kind", "input") == "input"]
    arg_slots = [slots[v.id] for v in arg_inputs]
    is_arg = set(arg_slots)
    out_values = []
    for t in leaves:
        if getattr(t, "_trace", None) is not tracer or t._value is None:
            return None  # a tensor the trace did not compute (a constant made inside, an argument returned)
        out_values.append(t._value)
    needed: set = set()
    stack = list(out_values)
    while stack:
        v = stack.pop()
        if v.producer is not None and v.producer.id not in needed:
            needed.add(v.producer.id)
            stack.extend(v.producer.inputs)
        elif v.producer is None and slots[v.id] not in is_arg:
            return None  # reads a graph input other than the arguments (its .grad)
    steps = []
    for n in g.nodes:
        if n.id not in needed:
            continue
        if get_op(n.op).view and any(o in out_values for o in n.outputs):
            base = n.inputs[0]
            if base.producer is None or get_op(base.producer.op).view:
                return None  # (an output viewing an argument: the plain call keeps the view relation)
        for o in n.outputs:
            slots[o.id] = len(slots)
        # an op surely too small for native code (decided by its types, fixed for the signature) runs its reference
        # kernel directly; others go through native_eager as eager ops do
        d = get_op(n.op)
        small = not native_eager.eligible(d) or native_eager.surely_small(d, n, [v.type for v in n.inputs])
        run = run_node if small else native_eager.run
        # (computed under no_grad() inside the function, or detached: never recorded, and neither are ops reading
        # only such values)
        record = not n.meta.get("nograd") and "detach" not in d.view
        steps.append((n, [slots[v.id] for v in n.inputs], [slots[o.id] for o in n.outputs], run, record))
    if any(slots[v.id] in is_arg for v in out_values):
        return None
    arg_pos = {v.id: i for i, v in enumerate(arg_inputs)}
    checks = [(arg_pos[g.inputs[i].id], check) for i, check in tracer.checks if g.inputs[i].id in arg_pos]
    if len(checks) != len(tracer.checks):
        return None
    plain: list = []
    try:
        flatten(result, plain)
    except Exception:  # noqa: BLE001
        return None
    if len(plain) != len(leaves):
        return None
    arg_fns = {}
    for i, t in enumerate(tensors):
        f = t.grad_fn if t.grad_fn is not None else t._accumulate
        if f is not None:
            arg_fns[id(f)] = i
    templates = []
    for t in plain:
        f = getattr(t, "grad_fn", None)
        template = _template(f, arg_fns) if f is not None else None
        if f is not None and template is None:
            return None
        templates.append(template)
    types = [None] * len(slots)
    for v in g.inputs:
        types[slots[v.id]] = v.type
    for n, _, outs, _, _ in steps:
        for o, s in zip(n.outputs, outs):
            types[s] = o.type
    requires = [bool(getattr(t, "requires_grad", False)) for t in plain]
    return _Plan(steps, types, arg_slots, [slots[v.id] for v in out_values], spec, templates, requires, checks)


MAX_TEMPLATE = 256  # autograd functions of one output's grad_fn graph, at most


def _template(f, arg_fns: dict):
    """The plain call's grad_fn graph of one output, down to the arguments' functions: (the root's index, nodes),
    node = (Function class name, edges), edge = None | ("arg", argument index, n) | ("node", node index, n); None
    when it reaches a leaf that is not an argument, or is too large."""
    from graphnn.autograd import AccumulateGrad

    nodes: list = []
    memo: dict = {}

    def visit(g):
        if id(g) in memo:
            return memo[id(g)]
        if isinstance(g, AccumulateGrad) or len(nodes) >= MAX_TEMPLATE:
            raise LookupError
        edges = []
        for e in g.next_functions:
            fn, n = e if isinstance(e, tuple) else (e, 0)
            if fn is None:
                edges.append(None)
            elif id(fn) in arg_fns:
                edges.append(("arg", arg_fns[id(fn)], n))
            else:
                edges.append(("node", visit(fn), n))
        memo[id(g)] = len(nodes)
        nodes.append((type(g).__name__, edges))
        return memo[id(g)]

    try:
        return visit(f), nodes
    except LookupError:
        return None


def _instantiate(template, tensors: list, functions: dict):
    """The grad_fn of a replayed output: the template's functions anew, edges into this call's arguments."""
    from graphnn.autograd import edge, function_class

    root, nodes = template
    made = functions.setdefault(id(template), [None] * len(nodes))
    for i, (name, edges) in enumerate(nodes):
        if made[i] is None:
            made[i] = function_class(name)(
                tuple(
                    (None, 0) if e is None else (edge(tensors[e[1]])[0], e[2]) if e[0] == "arg" else (made[e[1]], e[2])
                    for e in edges
                )
            )
    return made[root]
