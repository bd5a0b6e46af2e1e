"""Custom autograd functions (subclasses of graphnn.autograd.Function with static forward and backward), as PyTorch's.

`MyFn.apply(*args)` runs forward without recording its ops; when an input requires grad, one node of the opaque op
`call` stands for the whole function in the recorded graph. Its gradient rule emits another `call` node whose
kernel runs the user's backward on the cotangents, so backward() runs the Python backward where the gradient
graph needs it. Inside graphnn.compile a custom function whose inputs need gradients is refused with a clear error
(its backward is Python code run at backward time, which a compiled step cannot call).
"""

from __future__ import annotations

import itertools
import threading

import numpy as np

from graphnn.compiler.tracer import Tracer
from graphnn.core.dispatch import Scalar
from graphnn.ir.graph import Node
from graphnn.ir.types import FLOAT_DTYPES, TensorType

_ids = itertools.count()


class FunctionCtx:
    """The `ctx` of a custom function: what forward saves for backward."""

    def __init__(self, needs_input_grad: tuple):
        self.needs_input_grad = needs_input_grad
        self.saved_tensors: tuple = ()
        self.non_differentiable: set = set()
        self.materialize_grads = True

    def save_for_backward(self, *tensors) -> None:
        self.saved_tensors = tuple(tensors)

    def mark_non_differentiable(self, *tensors) -> None:
        self.non_differentiable.update(id(t) for t in tensors)

    def mark_dirty(self, *tensors) -> None:
        """Accepted: the inputs changed in place are tensors like any other here."""

    def set_materialize_grads(self, value: bool) -> None:
        self.materialize_grads = bool(value)

    @property
    def saved_variables(self) -> tuple:
        return self.saved_tensors


def _tensor_cls():
    from graphnn.core.tensor import Tensor

    return Tensor


class _Forward:
    """attrs['fn'] of the node standing for a custom function call (the `call` op's protocol)."""

    raw_outputs: list = []

    def __init__(self, cls, ctx: FunctionCtx, args: tuple, kwargs: dict, positions: list, out_types: list, n_out=None):
        self.cls, self.ctx, self.args, self.kwargs = cls, ctx, args, kwargs
        self.positions = positions  # index in args of each tensor input (the node's inputs)
        self.types = out_types
        # the function's outputs come first; a traced call's node outputs the saved tensors after them
        self.n_out = len(out_types) if n_out is None else n_out
        self.key = f"custom_function<{cls.__qualname__}#{next(_ids)}>"

    def ir_key(self) -> str:
        return self.key

    def out_types(self, types: list) -> list:
        return list(self.types)

    def _args(self, arrays: list) -> tuple:
        """The call's arguments with its tensor ones holding `arrays`."""
        args = list(self.args)
        for p, a in zip(self.positions, arrays):
            args[p] = _tensor_cls()._wrap(a)
        return tuple(args)

    def run(self, arrays: list) -> list:
        """The forward again (the recorded values are normally kept, so this runs only if they were not)."""
        out = _run_forward(self.cls, FunctionCtx(self.ctx.needs_input_grad), self._args(arrays), self.kwargs)
        return [t._data for t in _tensors(out)]

    def _backward(self, in_types: list):
        return _Backward(self, in_types)

    def grad(self, b, node, cts: list) -> list:
        n = self.n_out
        cts = [ct if ct is not None else b.full(0.0, o.shape, o.dtype) for ct, o in zip(cts[:n], node.outputs[:n])]
        once = getattr(self.cls.backward, "once_differentiable", False)
        if getattr(INLINE_BACKWARD, "on", False) and type(self) is _Forward and not once:
            inline = _inline_backward(self, b, node, cts)
            if inline is not None:
                return inline
        backward = self._backward([v.type for v in node.inputs])
        outs = b.emit("call", *(list(node.outputs[n:]) + cts), fn=backward)
        outs = list(outs) if isinstance(outs, tuple) else [outs]
        return [g if v.type.is_float else None for g, v in zip(outs, node.inputs)]


# .on: an eager backward with create_graph builds its gradient graph in this thread: a custom function's backward
# is then traced into that graph (its ops differentiable again: double backward), not run as an opaque call.
INLINE_BACKWARD = threading.local()


def _inline_backward(f: _Forward, b, node, cts: list) -> list | None:
    """The gradients of a custom function's inputs as graph values: its backward traced into b's graph, the saved
    tensors standing for the call's inputs and outputs (others are constants). None when its backward cannot be
    traced (it needs concrete values): the call then stays opaque."""
    from graphnn.core.tensor import TraceError

    Tensor = _tensor_cls()
    tr = _InlineTracer(b.graph)
    known = {id(f.args[p]): v for p, v in zip(f.positions, node.inputs)}
    known.update({id(t): v for t, v in zip(f.raw_outputs, node.outputs)})

    def stand_in(x):
        v = known.get(id(x)) if isinstance(x, Tensor) else None
        return x if v is None else Tensor._symbolic(v, tr, x.requires_grad or x.grad_fn is not None)

    ctx = f.ctx
    kept = dict(ctx.__dict__)
    ctx.saved_tensors = tuple(stand_in(t) for t in kept.get("saved_tensors", ()))
    for k, x in kept.items():
        if k != "saved_tensors":
            setattr(ctx, k, stand_in(x))
    try:
        with tr:
            grads = f.cls.backward(ctx, *[Tensor._symbolic(c, tr, c.type.is_float) for c in cts])
            grads = grads if isinstance(grads, tuple) else (grads,)
            if len(grads) != len(f.args):
                return None  # (the opaque call reports the error)
            out = []
            for p, v in zip(f.positions, node.inputs):
                g = grads[p]
                if g is None or not v.type.is_float:
                    out.append(None)
                    continue
                if tuple(g.shape) != tuple(v.shape):
                    return None
                out.append(tr.lift(g if g.dtype_name == v.dtype else g.type_as_dtype(v.dtype)))
            return out
    except (TraceError, NotImplementedError, TypeError):  # (NumPy or Python arithmetic on a traced tensor)
        return None  # (the opaque call runs the same backward on values: a real error of the user's shows there)
    finally:
        ctx.__dict__.clear()
        ctx.__dict__.update(kept)


class _InlineTracer(Tracer):
    """Traces into an existing gradient graph; a concrete tensor becomes an input holding its value."""

    def __init__(self, graph):
        super().__init__(graph.name)
        self.graph = graph

    def lift(self, t):
        fresh = not isinstance(t, Scalar) and t._trace is not self and id(t) not in self.current
        v = super().lift(t)
        if fresh and v.producer is None and getattr(v, "data", None) is None:
            v.data = t._data
        return v


class _Backward:
    """attrs['fn'] of the node running a custom function's backward on its outputs' cotangents."""

    def __init__(self, forward: _Forward, in_types: list):
        self.forward, self.types = forward, in_types
        self.key = forward.key + ".backward"

    def ir_key(self) -> str:
        return self.key

    def out_types(self, types: list) -> list:
        return list(self.types)

    def run(self, arrays: list) -> list:
        from graphnn.core.grad_mode import no_grad

        f = self.forward
        Tensor = _tensor_cls()
        with no_grad():
            grads = f.cls.backward(f.ctx, *[Tensor._wrap(a) for a in arrays])
        grads = grads if isinstance(grads, tuple) else (grads,)
        n_args = len(f.args)
        if len(grads) != n_args:
            raise RuntimeError(
                f"function {f.cls.__name__}Backward returned an incorrect number of gradients (expected {n_args}, "
                f"got {len(grads)})"
            )
        out = []
        for p, t in zip(f.positions, self.types):
            g = grads[p]
            if g is None:
                out.append(np.zeros(t.shape, t.dtype))
                continue
            a = np.asarray(g._data if isinstance(g, Tensor) else g)
            if a.shape != t.shape:
                raise RuntimeError(
                    f"Function {f.cls.__name__}Backward returned an invalid gradient at index {p} - got "
                    f"{list(a.shape)} but expected shape compatible with {list(t.shape)}"
                )
            out.append(a.astype(t.dtype, copy=False))
        return out

    def grad(self, b, node, cts: list) -> list:
        from graphnn.compiler import tracer as _tr
        from graphnn.core.tensor import TraceError
        from graphnn.ir.registry import MissingGradient

        if _tr.current() is not None:  # (inside graphnn.compile: the call runs eagerly, where backward is traced in)
            raise TraceError(
                f"create_graph through custom function {self.forward.cls.__name__} inside graphnn.compile: its "
                "backward runs as an opaque call there"
            )
        raise MissingGradient(
            f"the backward of custom function {self.forward.cls.__name__} is not differentiable here "
            "(create_graph through a custom autograd.Function)"
        )


def _tensors(out) -> list:
    Tensor = _tensor_cls()
    items = out if isinstance(out, (tuple, list)) else (out,)
    return [t for t in items if isinstance(t, Tensor)]


def apply_custom(cls, args: tuple, kwargs: dict):
    """cls.apply(*args, **kwargs) for a custom Function subclass."""
    from graphnn.autograd import edge, function_class
    from graphnn.compiler import tracer as _tracer
    from graphnn.core.grad_mode import is_grad_enabled

    Tensor = _tensor_cls()
    positions = [i for i, a in enumerate(args) if isinstance(a, Tensor)]
    inputs = [args[i] for i in positions]
    needs = tuple(isinstance(a, Tensor) and a.requires_grad for a in args)
    ctx = FunctionCtx(needs)
    record = is_grad_enabled() and any(needs)
    if record and (_tracer.current() is not None or any(t._trace is not None for t in inputs)):
        return _traced(cls, ctx, args, kwargs, positions)
    out = _run_forward(cls, ctx, args, kwargs)
    if not record:
        return out
    outs = _tensors(out)
    if not outs:
        return out
    fn = _Forward(cls, ctx, args, kwargs, positions, [TensorType(tuple(t.shape), t.dtype_name) for t in outs])
    # (the tensors forward returned: saved ones stand for the call's outputs in a double backward)
    fn.raw_outputs = outs
    node = Node("call", [t._eager_value() for t in inputs], {"fn": fn}, fn.types)
    grad_fn = function_class(f"{cls.__name__}Backward")(tuple(edge(t) for t in inputs))
    wrapped = {}
    for v, t in zip(node.outputs, outs):
        v.data = t._data
        if t.dtype_name in FLOAT_DTYPES and id(t) not in ctx.non_differentiable:
            w = Tensor._recorded(t._data, v)
            w.grad_fn = grad_fn
        else:
            w = Tensor._wrap(t._data)
        wrapped[id(t)] = w
    if isinstance(out, (tuple, list)):
        return type(out)(wrapped.get(id(o), o) for o in out)
    return wrapped[id(out)]


def _run_forward(cls, ctx: FunctionCtx, args: tuple, kwargs: dict):
    """cls's forward without recording (PyTorch 2's style: forward without ctx, then setup_context)."""
    from graphnn.core.grad_mode import no_grad

    with no_grad():
        setup = getattr(cls, "setup_context", None)
        if setup is not None and getattr(setup, "__func__", setup) is not _base_setup_context():
            out = cls.forward(*args, **kwargs)
            cls.setup_context(ctx, args, out)
            return out
        return cls.forward(ctx, *args, **kwargs)


class _HostForward(_Forward):
    """attrs['fn'] of a traced custom function call: outputs the function's outputs, then the saved tensors."""

    stray: tuple = ()  # names of the tensors forward keeps as ctx attributes (outputs after the saved tensors)
    saved_objects: list | None = None  # per saved tensor: the tensor itself when it is not the trace's, else None

    def run(self, arrays: list) -> list:
        ctx = FunctionCtx(self.ctx.needs_input_grad)
        ctx.__dict__.update({k: v for k, v in self.ctx.__dict__.items() if k != "saved_tensors"})
        outs = _tensors(_run_forward(self.cls, ctx, self._args(arrays), self.kwargs))
        kept = [getattr(ctx, k)._data for k in self.stray]
        return [t._data for t in outs] + [t._data for t in ctx.saved_tensors] + kept

    def _backward(self, in_types: list):
        return _HostBackward(self, in_types)


class _HostBackward(_Backward):
    """Runs a traced custom function's backward on (saved tensors, cotangents)."""

    def run(self, arrays: list) -> list:
        f = self.forward
        n_res = len(arrays) - f.n_out
        n_saved = n_res - len(f.stray)
        ctx = f.ctx
        wrap = _tensor_cls()._wrap
        kept = ctx.saved_tensors, {k: getattr(ctx, k) for k in f.stray}
        # (a saved tensor from outside the trace, such as a parameter, is that tensor, as PyTorch unpacks a saved
        # leaf: a backward may differentiate with respect to it, the adjoint method's autograd.grad(out, params))
        objects = f.saved_objects or [None] * n_saved
        ctx.saved_tensors = tuple(wrap(a) if o is None else o for o, a in zip(objects, arrays[:n_saved]))
        for k, a in zip(f.stray, arrays[n_saved:n_res]):
            setattr(ctx, k, wrap(a))
        try:
            return super().run(arrays[n_res:])
        finally:
            ctx.saved_tensors = kept[0]
            ctx.__dict__.update(kept[1])


def _traced(cls, ctx: FunctionCtx, args: tuple, kwargs: dict, positions: list):
    """A custom function called inside graphnn.compile with inputs that need gradients: forward runs once on the
    symbolic tensors (its ops are left unused) to find the outputs' and the saved tensors' types; the call itself is
    a `call` node run on the host."""
    from graphnn.core.dispatch import apply

    Tensor = _tensor_cls()
    out = _run_forward(cls, ctx, args, kwargs)
    outs = _tensors(out)
    # tensors kept as ctx attributes (`ctx.mask = mask`) travel as saved tensors do: outputs of the forward call
    stray = tuple(k for k, v in ctx.__dict__.items() if k != "saved_tensors" and isinstance(v, Tensor))
    saved = list(ctx.saved_tensors) + [getattr(ctx, k) for k in stray]
    types = [TensorType(tuple(t.shape), t.dtype_name) for t in outs + saved]
    fn = _HostForward(cls, ctx, args, kwargs, positions, types, n_out=len(outs))
    fn.stray = stray
    # (a leaf that requires grad, such as a parameter: a backward may differentiate with respect to it; other tensors
    # from outside the trace may be changed in place by it, so they are the values the forward saw)
    fn.saved_objects = [
        t if t._trace is None and t.requires_grad and t.grad_fn is None else None for t in ctx.saved_tensors
    ]
    results = apply("call", [args[p] for p in positions], {"fn": fn}, name=f"{cls.__name__}Backward")
    results = list(results) if isinstance(results, tuple) else [results]
    mapped = {id(t): r for t, r in zip(outs, results)}
    if isinstance(out, (tuple, list)):
        return type(out)(mapped.get(id(o), o) for o in out)
    return mapped[id(out)]


def _base_setup_context():
    from graphnn.autograd import Function

    return Function.__dict__["setup_context"].__func__
