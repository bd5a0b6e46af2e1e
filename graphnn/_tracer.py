"""Tracing: running user code on symbolic tensors to build one IR graph (used by graphnn.compile).

Concrete tensors met during tracing (parameters, buffers, optimizer state, gradients) become graph inputs,
bound at call time through accessors. In-place updates (`Tensor._assign`) and `.grad` writes become graph
outputs that the runtime writes back, so a whole training step is one graph.
"""
from __future__ import annotations

import threading

from graphnn.ir.graph import Graph
from graphnn.ir.registry import GraphEmitter

_state = threading.local()


def current():
    return getattr(_state, "tracer", None)


class Tracer:
    def __init__(self, name: str = "traced", names: dict | None = None):
        self.graph = Graph(name)
        self.names = names or {}
        self.bindings: list = []      # per graph input: accessor () -> Tensor giving its runtime value
        self.input_of: dict = {}      # id(tensor) -> graph input Value
        self.current: dict = {}       # id(tensor) -> Value holding the tensor's value now (after updates)
        self.updates: dict = {}       # id(tensor) -> (tensor, Value): state to write back
        self.grad_writes: dict = {}   # id(tensor) -> (tensor, grad before tracing)
        self.guards: list = []        # (accessor, expected): must hold for the trace to be reused
        self.checks: list = []        # (graph input position, fn(array)): validates that input at every call
        self.keepalive: list = []
        self.active = False           # inside `with tracer:` (symbolic tensors of a finished trace have no value)

    def __enter__(self):
        self._prev = current()
        _state.tracer = self
        self.active = True
        return self

    def __exit__(self, *exc):
        _state.tracer = self._prev
        self.active = False
        return False

    # -- inputs ---------------------------------------------------------------------------------------
    def add_input(self, type_, name: str, kind: str, accessor):
        v = self.graph.add_input(type_, name, kind)
        self.bindings.append(accessor)
        return v

    def arg(self, t, name: str):
        """A symbolic tensor for an explicit argument of the traced call."""
        from .tensor import Tensor

        v = self.add_input(t._type, name, "input", None)
        return Tensor._symbolic(v, self, t.requires_grad)

    def guard(self, accessor, expected) -> None:
        self.guards.append((accessor, expected))

    def check_input(self, t, fn) -> None:
        """Run fn on the value of `t` at every call of the compiled code, when `t` is an input of this trace."""
        for i, v in enumerate(self.graph.inputs):
            if v is t._value:
                self.checks.append((i, fn))
                return

    def lift(self, t):
        """The graph value for an operand: symbolic tensors map to themselves, concrete ones are captured."""
        from ._dispatch import Scalar

        if isinstance(t, Scalar):
            return self.graph.emit("full", value=t.value, shape=(), dtype=t.dtype)
        if t._trace is self:
            return t._value
        if t._data is None and not (t._trace is not None and t._trace.active):
            from ._dispatch import located
            from .tensor import TraceError, escaped_message

            raise TraceError(located(f"this tensor {escaped_message(t)}"))
        # Concrete tensors, and symbolic tensors of an enclosing trace (a scan body traced inside
        # graphnn.compile), are captured as inputs bound to that tensor.
        key = id(t)
        if key not in self.current:
            kind = "param" if t.requires_grad else "const"
            name = self.names.get(key) or f"{kind}{len(self.graph.inputs)}"
            v = self.add_input(t._type, name, kind, Captured(t))
            self.keepalive.append(t)
            self.input_of[key] = v
            self.current[key] = v
            if t._data is not None:
                self.guard(SameArray(Captured(t)), True)
        return self.current[key]

    def fresh(self, type_, sample, name: str):
        """A graph input drawn anew at every call (random masks, randn inside compiled code)."""
        from .tensor import Tensor

        v = self.add_input(type_, f"{name}{len(self.graph.inputs)}", "random", lambda: Tensor._wrap(sample()))
        return Tensor._symbolic(v, self, False)

    def lift_grad(self, t):
        """The value of `t.grad` as it was before tracing (captured through an accessor)."""
        g = t._grad
        v = self.add_input(g._type, (self.names.get(id(t)) or "p") + ".grad", "grad", lambda t=t: t._grad)
        self.guard(SameArray(lambda t=t: t._grad), True)
        return v

    # -- state changes ------------------------------------------------------------------------------------
    def assign(self, t, src) -> None:
        from .tensor import broadcast_to

        if tuple(src.shape) != tuple(t.shape):
            src = broadcast_to(src, tuple(t.shape))
        if src.dtype_name != t.dtype_name:
            src = src.type_as_dtype(t.dtype_name)
        v = self.lift(src)
        if t._trace is self:  # an in-place op on a value computed in this trace: just rename it
            t._value = v
            return
        self.lift(t)
        self.current[id(t)] = v
        self.updates[id(t)] = (t, v)

    def note_grad_write(self, t) -> None:
        if id(t) not in self.grad_writes:
            self.grad_writes[id(t)] = (t, t._grad)
            self.keepalive.append(t)

    def backward(self, root, gradient=None) -> None:
        """loss.backward() inside a trace: emit the gradient graph and set each leaf's .grad symbolically."""
        from .tensor import Tensor

        g = self.graph
        b = GraphEmitter(g, {"phase": "backward"})
        if gradient is None:
            if root.numel() != 1:
                from .autograd import implicit_grad_error

                raise implicit_grad_error(root)
            seed = b.full(1.0, tuple(root.shape), root.dtype_name)
        else:
            seed = self.lift(gradient)
        leaves = [(t, self.input_of[key]) for key, t in ((id(t), t) for t in self.keepalive)
                  if key in self.input_of and t.requires_grad]
        seen = set()
        leaves = [(t, v) for t, v in leaves if not (id(t) in seen or seen.add(id(t)))]
        from .autograd import vjp_located

        grads = vjp_located(g, [root._value], [seed], [v for _, v in leaves], b)
        for (t, _), gv in zip(leaves, grads):
            if gv is None:
                continue
            if id(t) in self.grad_writes:
                prev = t._grad
                prev_v = None if prev is None else self.lift(prev)
            else:
                prev_v = None if t._grad is None else self.lift_grad(t)
                if t._grad is None:
                    self.guard(lambda t=t: t._grad is None, True)
            new = gv if prev_v is None else b.add(prev_v, gv)
            t.grad = Tensor._symbolic(new, self, False)

    def finish(self) -> tuple:
        """Restore every .grad touched while tracing; return [(tensor, final grad Tensor or None)]."""
        finals = []
        for t, original in self.grad_writes.values():
            finals.append((t, t._grad))
            t._grad = original
        return finals


def check_values(t, fn) -> None:
    """fn(array) raises for invalid values of `t` (e.g. out-of-range indices): run now on a concrete tensor, and at
    every call of the compiled code on a symbolic one that is an input of the trace."""
    if t._data is not None:
        fn(t._data)
    elif t._trace is not None:
        from ._grad_mode import current_scope, scope

        def in_scope(a, name=current_scope()):  # errors at call time name the module, as when tracing
            with scope(name):
                fn(a)
        t._trace.check_input(t, in_scope)


class Captured:
    """Accessor of a tensor captured by a trace (a parameter or constant): always that tensor object."""

    __slots__ = ("tensor",)

    def __init__(self, tensor):
        self.tensor = tensor

    def __call__(self):
        return self.tensor


class SameArray:
    """Guard: the tensor an accessor returns still has the shape and dtype it had when traced.

    Checked at every call, so it remembers the last array that passed: an unchanged array is one identity test."""

    def __init__(self, accessor):
        self.accessor = accessor
        self.tensor = accessor.tensor if isinstance(accessor, Captured) else None  # for Program's fast check
        t = accessor()
        self.shape, self.dtype = tuple(t.shape), t._data.dtype if t._data is not None else None
        self.last = t._data

    def __call__(self) -> bool:
        t = self.accessor()
        d = t._data if t is not None else None
        if d is self.last and d is not None:
            return True
        if d is None or d.shape != self.shape or d.dtype != self.dtype:
            return False
        self.last = d
        return True

