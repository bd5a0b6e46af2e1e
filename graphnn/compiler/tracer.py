"""Tracing: running user code on symbolic tensors to build one IR graph (used by graphnn.compile).

Concrete tensors met during tracing (parameters, buffers, optimizer state, gradients) become graph inputs,
bound at call time through accessors. In-place updates (in-place ops, `Tensor._assign`) of captured tensors and
of the call's arguments, and `.grad` writes (of captured tensors and arguments), become graph outputs that the
runtime writes back, so a whole training step is one graph.

A trace depends on properties of what it captured beyond shapes and dtypes: whether a tensor requires grad (and
is a leaf), whether its `.grad` is None, which tensor a module attribute holds. Each is guarded; the guards that
only change through graphnn calls (requires_grad, module attributes) are checked again only after such a change
(`state_changed()` moves a global epoch), so the per-call fast path stays a few identity tests.

Python numbers that change between calls without changing the computation (an optimizer's lr, momentum, betas,
which schedulers move) are not baked in: `scalar_input` makes each a 0-d graph input read from Python at every call.
"""

from __future__ import annotations

import threading
import weakref

import numpy as np

from graphnn.ir.graph import Graph
from graphnn.ir.registry import GraphEmitter

from . import python_reads

_state = threading.local()

# Moved by every change that may invalidate a trace's epoch guards (requires_grad flags, module attributes).
EPOCH = [0]


def state_changed() -> None:
    EPOCH[0] += 1


# Modules whose attributes some trace read (only their changes move EPOCH; building other modules does not).
TRACED_MODULES: weakref.WeakSet = weakref.WeakSet()


def module_changed(module) -> None:
    if module in TRACED_MODULES:
        EPOCH[0] += 1


def current():
    return getattr(_state, "tracer", None)


class ArgGrad:
    """Binding of a graph input holding `.grad` of the call's i-th tensor argument (bound from the arguments)."""

    __slots__ = ("index",)

    def __init__(self, index: int):
        self.index = index

    def __call__(self):
        raise TypeError("the .grad of a compiled call's argument is bound from the call's arguments")


_ABSENT = object()  # (a guarded dict entry that was removed)


def _filled(cell) -> bool:
    try:
        cell.cell_contents
    except ValueError:  # (an empty cell)
        return False
    return True


class ArgumentIsState(Exception):
    """Raised while tracing: the argument at this leaf position is also reached as state (see Tracer.arg_as_state);
    the compiled function traces again, keyed by that argument's identity."""

    def __init__(self, position: int):
        super().__init__(position)
        self.position = position


class Tracer:
    def __init__(self, name: str = "traced", names: dict | None = None):
        self.graph = Graph(name)
        self.names = names or {}
        self.bindings: list = []  # per graph input: accessor () -> Tensor giving its runtime value
        self.input_of: dict = {}  # id(tensor) -> graph input Value
        self.current: dict = {}  # id(tensor) -> Value holding the tensor's value now (after updates)
        self.updates: dict = {}  # id(tensor) -> (tensor, Value): state to write back
        self.temporaries: dict = {}  # id(tensor) -> (tensor, Value): factory tensors of this trace changed in place
        self.grad_temporaries: list = []  # those given a value that requires grad (their flags reset at the end)
        self.ended_grad_temporaries: set = set()  # ids of those, once the trace is over
        self.end_guards: list = []  # accessors whose guards take the value at the trace's end (guard_at_end)
        self.versions: dict = {}  # id(captured tensor) -> the values it held, when changed in place (an SGD step)
        self.arg_versions: dict = {}  # id(argument leaf) -> the values it held, changed in place without gradient
        self.grad_writes: dict = {}  # id(tensor) -> (tensor, grad before tracing)
        self.guards: list = []  # (accessor, expected): must hold for the trace to be reused
        self.epoch_guards: list = []  # (accessor, expected) checked again only when EPOCH moved (see state_changed)
        self._attr_guarded: set = set()
        self.free_places: set = set()  # (id(holder), name) of places bound by bind_stored (no identity guard)
        self._none_guarded: set = set()
        self._value_guarded: set = set()  # ids of concrete tensors whose value the trace read (read_value)
        self._entries_guarded: set = set()  # (id(dict), key) read by the trace (guard_entry)
        self.arg_syms: list = []  # the symbolic tensor of each tensor argument, in signature order
        self.arg_index: dict = {}  # id(symbolic argument) -> its position in arg_syms
        self.arg_grads0: list = []  # .grad of each symbolic argument when tracing began
        self.arg_objects: dict = {}  # id(concrete argument) -> its leaf position, for arguments given stand-ins
        self.grad_inputs: dict = {}  # id(tensor) -> graph input holding its .grad before the call
        self.grad_reads: dict = {}  # id(tensor) -> symbolic tensor standing for that .grad
        self.retained: list = []  # symbolic tensors whose retain_grad() was called
        self.arg_requires_grad: set = set()  # positions of arguments the traced code called requires_grad_() on
        self.rebinds: dict = {}  # id(tensor) -> in-place rebindings so far (views taken before are stale)
        self.view_gens: dict = {}  # id(concrete alias) -> rebindings of its base its traced value reflects
        self.did_backward = False
        self.used_grad = False
        self.checks: list = []  # (graph input position, fn(array)): validates that input at every call
        self.scalars: dict = {}  # key -> symbolic 0-d tensor of a scalar_input
        self.keepalive: list = []
        self.active = False  # inside `with tracer:` (symbolic tensors of a finished trace have no value)
        self.plain_reads: dict = {}  # (id(module), name) -> (module, name): plain attributes read (python_reads)
        self.class_reads: dict = {}  # (id(module), name) -> (module, name): class-level defaults read (python_reads)
        self.host_calls: list = []  # (fn, args, kwargs): Python-only calls compiled calls repeat (defer_host_call)
        self.stored: dict = {}  # key -> (module, name, tensor) / (dict or list, key, tensor): traced tensors stored
        self.stored_over: dict = {}  # key -> what the place held before the trace first stored there
        self.hooks_run: dict = {}  # id(hook) -> forward hook that ran while tracing (see collect_hook_stores)
        self.data_set: set = set()  # ids of captured leaves whose .data the trace set (Tensor.data's setter)
        self.flags_set: dict = {}  # (id(obj), flag) -> (obj, flag, value): requires_grad / training set by the trace
        self.preset: set = set()  # ids of the tensors and modules whose flag the trace set before it read it
        self.watched: dict = {}  # id(object) -> user data object whose attribute reads are recorded (python_reads)
        self.obj_reads: dict = {}  # id(object) -> names of its attributes the trace read

    def __enter__(self):
        self._prev = current()
        _state.tracer = self
        self.active = True
        python_reads.start()
        return self

    def __exit__(self, *exc):
        python_reads.stop()
        _state.tracer = self._prev
        self.active = False
        return False

    # -- inputs ---------------------------------------------------------------------------------------
    def add_input(self, type_, name: str, kind: str, accessor):
        v = self.graph.add_input(type_, name, kind)
        self.bindings.append(accessor)
        return v

    def arg(self, t, name: str):
        """A symbolic tensor for an explicit argument of the traced call (its .grad, when set, is an input too)."""
        from graphnn.core.tensor import Tensor

        self.arg_objects.setdefault(id(t), len(self.arg_syms))
        v = self.add_input(t._type, name, "input", None)
        sym = Tensor._symbolic(v, self, t.requires_grad)
        sym._grad_hooks = t._grad_hooks  # its gradient hooks (register_hook) run in the traced backward
        self.input_of[id(sym)] = v
        self.arg_index[id(sym)] = len(self.arg_syms)
        if t.requires_grad and t._grad is not None and t._grad._data is not None:
            gv = self.add_input(t._grad._type, name + ".grad", "grad", ArgGrad(len(self.arg_syms)))
            sym._grad = Tensor._symbolic(gv, self, False)
        self.arg_syms.append(sym)
        self.arg_grads0.append(sym._grad)
        return sym

    def arg_as_state(self, t, name: str):
        """An argument that the traced code also reaches as state (an image optimized by an optimizer that the
        compiled step calls): the function gets the tensor itself, as a captured leaf whose value is fed from the
        argument's position (the compiled function keys its calls by this argument's identity)."""
        from graphnn.core.tensor import Tensor

        v = self.add_input(t._type, name, "input", None)
        self.keepalive.append(t)
        self.input_of[id(t)] = self.current[id(t)] = v
        self.arg_syms.append(Tensor._symbolic(v, self, False))  # (a stand-in nothing uses: keeps leaf positions)
        self.arg_grads0.append(None)
        return t

    def _not_an_argument(self, t) -> None:
        """t, a concrete tensor the traced code reached, is also an argument that got a symbolic stand-in: trace
        again with the tensor itself in its place (see arg_as_state)."""
        position = self.arg_objects.get(id(t))
        if position is not None and id(t) not in self.input_of:
            raise ArgumentIsState(position)

    def guard(self, accessor, expected) -> None:
        self.guards.append((accessor, expected))

    def guard_at_end(self, accessor) -> None:
        """A guard expecting the value accessor() has when the trace ends (a step may change what it reads and put
        it back, as a wrapper zeroing a group's weight decay around its base optimizer's step)."""
        self.end_guards.append(accessor)

    def guard_entry(self, d: dict, key, value) -> None:
        """The trace read d[key] (a param group's lr in a custom optimizer): it holds while that entry keeps its
        value (compared as python_reads.value_key: plain values by value, objects by identity)."""
        if (id(d), key) in self._entries_guarded:
            return
        self._entries_guarded.add((id(d), key))
        self.keepalive.append(d)
        self.guard(lambda: python_reads.value_key(dict.get(d, key, _ABSENT)), python_reads.value_key(value))

    def read_value(self, t) -> None:
        """The trace reads the concrete value of t, a tensor that is not one of its symbolic values (`.item()`,
        `bool()`, `.tolist()` of a buffer): the trace holds for that value only, so it is guarded. A value the trace
        itself changed exists only as a graph value: reading it is a TraceError (the call runs eagerly)."""
        from graphnn.core.tensor import TraceError

        if id(t) in self.updates:
            raise TraceError(
                "reads the value of a tensor that this compiled call changed in place; read it before the change "
                "or outside the compiled function"
            )
        if id(t) not in self._value_guarded:
            self._value_guarded.add(id(t))
            self.keepalive.append(t)
            value = ValueOf(t)
            self.guard(value, value())

    def note_flag(self, obj, flag: str, value) -> None:
        """The trace sets obj.<flag> (a tensor's requires_grad, a module's training): compiled calls set it too (after
        their native code, as a host call), and a flag set before the trace read it is not guarded (a GAN step that
        freezes the other network first, a step calling model.train())."""
        if not self.flags_set:
            self.host_calls.append((self._apply_flags, (), {}))
        self.flags_set[(id(obj), flag)] = (obj, flag, value)
        if flag == "training" or id(obj) not in self.current:
            self.preset.add(id(obj))

    def _apply_flags(self) -> None:
        for obj, flag, value in self.flags_set.values():
            if flag == "training":
                object.__setattr__(obj, "training", value)
            else:
                obj.requires_grad = value

    def note_stored(self, module, name: str, value, before=None, key=None) -> None:
        """module.<name> = value while tracing (or a container's entry: `key` ("item", id, name)): a tensor of this
        trace is set to its value after every call (a hook recomputing module.weight, as prune's; a running average
        kept on the module), anything else forgets an earlier such assignment. `before` is what the place held: a
        tensor the trace read from there is read from the place at every call (see bind_stored)."""
        key = (id(module), name) if key is None else key
        if getattr(value, "_trace", None) is self:
            self.stored[key] = (module, name, value)
            self.keepalive.append(module)
            self.stored_over.setdefault(key, before)
        else:
            self.stored.pop(key, None)

    def stored_places(self) -> set:
        """(id(holder), name) of every place the trace stores a tensor into (no guard on what they hold)."""
        return {(id(h), n) for h, n, _ in self.stored.values()}

    def bind_stored(self) -> None:
        """Tensors the trace read from a place it then stores into (`self.avg = 0.9 * self.avg + 0.1 * x`): each call
        stores a new tensor there, so the input is the tensor at that place at call time (guarded by its shape and
        dtype), not the one captured when tracing, which later calls would read again."""
        for key, (holder, name, _) in self.stored.items():
            old = self.stored_over.get(key)
            if getattr(old, "_data", None) is None:
                continue
            self.free_places.add((id(holder), name))
            at = AtPlace(holder, name)
            at.put(old)  # (until the first call stores its result there: what the first call reads; no state change)
            v = self.input_of.get(id(old))
            i = self.graph.inputs.index(v) if v is not None else None
            if i is None or not (isinstance(self.bindings[i], Captured) and self.bindings[i].tensor is old):
                continue
            self.bindings[i] = at
            self.guards = [(acc, e) for acc, e in self.guards if not (isinstance(acc, SameArray) and acc.tensor is old)]
            self.guard(SameArray(at, old), True)

    def collect_hook_stores(self, result) -> None:
        """Tensors of this trace that forward hooks put into dicts or lists (`feats[name] = output.detach()`; the
        containers found in the hooks' closures, globals and objects, and one level inside them): set to their values
        after every call, as module attributes are (see note_stored). The result's own containers are not state."""
        if not self.hooks_run:
            return
        from graphnn.core.tensor import Tensor

        own, stack = set(), [result]
        while stack:
            x = stack.pop()
            if isinstance(x, (list, tuple, dict)) and id(x) not in own:
                own.add(id(x))
                stack.extend(x.values() if isinstance(x, dict) else x)
        roots = []
        for hook in self.hooks_run.values():
            fn = getattr(hook, "func", hook)  # (functools.partial)
            roots += [c.cell_contents for c in (getattr(fn, "__closure__", None) or ()) if _filled(c)]
            roots += list(getattr(hook, "args", ())) + list(getattr(hook, "keywords", {}).values())
            owner = getattr(fn, "__self__", None)
            roots += list(vars(owner).values()) if hasattr(owner, "__dict__") else []
            names = getattr(getattr(fn, "__code__", None), "co_names", ())
            roots += [fn.__globals__[n] for n in names if n in getattr(fn, "__globals__", {})]
        seen = set()

        def scan(c, depth: int) -> None:
            if not isinstance(c, (dict, list)) or id(c) in seen or id(c) in own:
                return
            seen.add(id(c))
            for k, v in list(c.items()) if isinstance(c, dict) else list(enumerate(c)):
                if isinstance(v, Tensor) and v._trace is self and v._value is not None:
                    self.stored[("item", id(c), k)] = (c, k, v)
                    self.keepalive.append(c)
                elif depth:
                    scan(v, depth - 1)

        for r in roots:
            scan(r, 1)

    def epoch_guard(self, accessor, expected) -> None:
        self.epoch_guards.append((accessor, expected))

    def attr_guard(self, module, table: str, name: str, value) -> None:
        """The trace read module.<name> (a parameter, buffer or submodule): it must be the same object at calls."""
        key = (id(module), table, name)
        if key not in self._attr_guarded:
            self._attr_guarded.add(key)
            self.keepalive.append(module)
            TRACED_MODULES.add(module)
            free = (
                self.free_places
            )  # (filled by bind_stored: a buffer the trace stores into holds a new tensor each call)
            self.epoch_guard(
                lambda m=module, d=table, n=name, v=value: m.__dict__[d].get(n) is v or (id(m), n) in free, True
            )

    def module_guard(self, module, what: str, accessor, expected) -> None:
        """The trace depended on accessor(module) == expected (e.g. the forward hooks it ran): checked again when a
        traced module changed (module_changed), tracing again when it no longer holds."""
        key = (id(module), what)
        if key not in self._attr_guarded:
            self._attr_guarded.add(key)
            self.keepalive.append(module)
            TRACED_MODULES.add(module)
            self.epoch_guard(lambda m=module: accessor(m) == expected, True)

    def check_input(self, t, fn) -> None:
        """Run fn on the value of `t` at every call of the compiled code, when `t` is an input of this trace."""
        for i, v in enumerate(self.graph.inputs):
            if v is t._value:
                self.checks.append((i, fn))
                return

    def lift(self, t):
        """The graph value for an operand: symbolic tensors map to themselves, concrete ones are captured."""
        from graphnn.core.dispatch import Scalar

        if isinstance(t, Scalar):
            return self.graph.emit("full", value=t.value, shape=(), dtype=t.dtype)
        if t._trace is self:
            return t._value
        if t._data is None and not (t._trace is not None and t._trace.active):
            from graphnn.core.dispatch import located
            from graphnn.core.tensor import TraceError, escaped_message

            raise TraceError(located(f"this tensor {escaped_message(t)}"))
        # Concrete tensors, and symbolic tensors of an enclosing trace (a scan body traced inside
        # graphnn.compile), are captured as inputs bound to that tensor.
        if t._base is not None:
            from graphnn.core.tensor import check_view_current

            check_view_current(t, self)
        key = id(t)
        if key not in self.current:
            self._not_an_argument(t)
            kind = "param" if t.requires_grad else "const"
            name = self.names.get(key) or f"{kind}{len(self.graph.inputs)}"
            v = self.add_input(t._type, name, kind, Captured(t))
            self.keepalive.append(t)
            self.input_of[key] = v
            self.current[key] = v
            if t._data is not None:
                t._captured = True
                self.guard(SameArray(Captured(t)), True)
                # gradients, leaf checks and the split into forward and backward depend on these flags (unless
                # the trace itself set requires_grad first: then every call does)
                flags = (t._requires_grad, t.grad_fn is None)
                if key in self.preset:
                    self.epoch_guard(lambda t=t: t.grad_fn is None, flags[1])
                else:
                    self.epoch_guard(lambda t=t: (t._requires_grad, t.grad_fn is None), flags)
        return self.current[key]

    def scalar_input(self, key, read, name: str, dtype: str = "float64"):
        """A 0-d graph input holding the Python number `read()` returns at each call (e.g. an optimizer's lr, read
        from its param group): changing the number needs no new trace. One input per `key` in a trace."""
        sym = self.scalars.get(key)
        if sym is None:
            from graphnn.core.tensor import Tensor
            from graphnn.ir.types import TensorType

            v = self.add_input(TensorType((), dtype), name, "hyper", ScalarRead(read, dtype))
            sym = self.scalars[key] = Tensor._symbolic(v, self, False)
        return sym

    def fresh(self, type_, sample, name: str):
        """A graph input drawn anew at every call (random masks, randn inside compiled code)."""
        from graphnn.core.tensor import Tensor

        v = self.add_input(type_, f"{name}{len(self.graph.inputs)}", "random", lambda: Tensor._wrap(sample()))
        return Tensor._symbolic(v, self, False)

    def lift_grad(self, t):
        """The value of `t.grad` as it was before tracing (an input bound to whatever tensor .grad holds at a call)."""
        key = id(t)
        if key not in self.grad_inputs:
            g = t._grad
            v = self.add_input(g._type, (self.names.get(key) or "p") + ".grad", "grad", lambda t=t: t._grad)
            self.guard(SameArray(lambda t=t: t._grad), True)
            self.keepalive.append(t)
            self.grad_inputs[key] = v
        return self.grad_inputs[key]

    def read_grad(self, t):
        """`t.grad` read while tracing, for a concrete tensor t: None (guarded) or a symbolic tensor bound to the
        .grad of each call (not the tensor object .grad held when traced, which later steps replace)."""
        from graphnn.core.tensor import Tensor

        key = id(t)
        self._not_an_argument(t)
        g = t._grad
        if key in self.grad_writes:  # set in this trace (e.g. by zero_grad): that value
            return g
        if g is None:
            if key not in self._none_guarded:
                self._none_guarded.add(key)
                self.keepalive.append(t)
                self.guard(lambda t=t: t._grad is None, True)
            return None
        if key not in self.grad_reads:
            sym = Tensor._symbolic(self.lift_grad(t), self, False)
            sym._grad_of = t
            self.grad_reads[key] = sym
        return self.grad_reads[key]

    # -- state changes ------------------------------------------------------------------------------------
    def assign(self, t, src) -> None:
        """State update (optimizer step, running statistics): t takes the value of src, without autograd."""
        from graphnn.core.tensor import broadcast_to

        if tuple(src.shape) != tuple(t.shape):
            src = broadcast_to(src, tuple(t.shape))
        if src.dtype_name != t.dtype_name:
            src = src.type_as_dtype(t.dtype_name)
        self._set(t, self.lift(src))

    def inplace(self, t, result) -> None:
        """An in-place op on t (not a view; see Tensor._inplace_op): t now stands for `result` (same shape and
        dtype), a detach()/.data alias's base too."""
        v = self.lift(result)
        base = t._base if t._alias else None
        if base is not None:
            if base._data is None and not (base._trace is self and base.grad_fn is None):
                # an alias of a value computed with gradient in this trace: its autograd history would have to stay
                from graphnn.core.dispatch import located

                raise NotImplementedError(
                    located(
                        "in-place op on a detached alias (detach() / .data) of a tensor computed with gradient inside "
                        "graphnn.compile is not supported yet; compute the new value out of place instead"
                    )
                )
            self.lift(base)
            self._set(base, v)
            if t._trace is not self:  # a concrete alias captured by the trace: its reads give v from now on
                self.current[id(t)] = v
                self.view_gens[id(t)] = self.rebinds[id(base)]
                return
        self._set(t, v)
        if t._view_gen is not None:  # t itself follows its own update
            t._view_gen = self.rebinds.get(id(t._base), 0)

    def _set(self, t, v) -> None:
        key = id(t)
        if t._trace is self:  # a value of this trace: rename it (an argument's update is written back)
            if key in self.arg_index and t.requires_grad and t.grad_fn is None and v.type.is_float:
                # an argument leaf changed in place without gradient (under no_grad, through .data) stays the same
                # leaf, as a captured one does (below): gradients of later uses reach it through its new value
                v = self.graph.emit("stop_gradient", v)
                self.arg_versions.setdefault(key, [self.input_of[key]]).append(v)
            t._value = v
            if key in self.arg_index:
                self.updates[key] = (t, v)
            owner = t._grad_of
            if owner is not None and owner._grad is not t:  # an in-place op on a .grad read here: a .grad write
                self.note_grad_write(owner)
                owner._grad = t
        else:
            self.lift(t)
            if t.requires_grad and t.grad_fn is None and not t._temporary and v.type.is_float:
                # a leaf changed in place (an optimizer step, max_norm's renormalization) stays a leaf: its new
                # value is where gradients of later uses stop, as each value it holds is differentiated on its own
                v = self.graph.emit("stop_gradient", v)
            self.versions.setdefault(key, [self.current[key]]).append(v)
            self.current[key] = v
            if not t._temporary:  # (a factory's tensor made in this trace starts from its initial value each call)
                self.updates[key] = (t, v)
            else:  # (unless it outlives the call: see keep_escaped)
                self.temporaries[key] = (t, v)
        self.rebinds[key] = self.rebinds.get(key, 0) + 1

    def note_grad_write(self, t) -> None:
        if t._trace is self:  # a symbolic tensor's .grad (an argument's): read back by finish()
            return
        self._not_an_argument(t)
        if id(t) not in self.grad_writes:
            self.grad_writes[id(t)] = (t, t._grad)
            self.keepalive.append(t)

    def backward(self, root, gradient=None) -> None:
        """loss.backward() inside a trace: emit the gradient graph and set each leaf's .grad symbolically."""
        from graphnn.core.tensor import Tensor

        g = self.graph
        b = GraphEmitter(g, {"phase": "backward"})
        if not root.requires_grad:
            raise RuntimeError("element 0 of tensors does not require grad and does not have a grad_fn")
        self.did_backward = True
        if gradient is None:
            if root.numel() != 1:
                from graphnn.autograd import implicit_grad_error

                raise implicit_grad_error(root)
            seed = b.full(1.0, tuple(root.shape), root.dtype_name)
        else:
            seed = self.lift(gradient)
        # A leaf's gradient is taken with respect to every value it held in this trace: changed in place without
        # gradient (an optimizer step, `w.data = ...`) it is still the same leaf, as eagerly, and a second loss
        # computed after an update reaches the new value (n_critic steps, or inner SGD steps, in one compiled call).
        leaves = [
            (t, v)
            for key, t in ((id(t), t) for t in self.keepalive)
            if key in self.input_of and t.requires_grad and not (t._temporary and t.grad_fn is not None)
            for v in ([self.current[key]] if key in self.data_set else self.versions.get(key, [self.input_of[key]]))
        ]  # (`w.data = w * 2`: the new value alone, which may be computed from the old one with gradient; a tensor
        # made in this trace and given a gradient history in place, `zeros(n, d).index_add_(0, i, msg)`, is no leaf)
        seen = set()
        leaves = [(t, v) for t, v in leaves if not ((id(t), v.id) in seen or seen.add((id(t), v.id)))]
        from graphnn.autograd import vjp_located

        # symbolic tensors: the arguments that require grad, and non-leaves whose retain_grad() was called
        syms = [
            (s, v)
            for s in self.arg_syms
            if s.requires_grad
            for v in self.arg_versions.get(id(s), [self.input_of[id(s)]])
        ]
        syms += [(s, s._value) for s in self.retained if s.requires_grad]
        hooks = self.grad_hooks(leaves + syms)
        grads = vjp_located(g, [self.lift(root)], [seed], [v for _, v in leaves] + [v for _, v in syms], b, hooks=hooks)
        for (s, _), gv in zip(syms, grads[len(leaves) :]):
            if gv is None:
                continue
            prev = s._grad
            new = gv if prev is None else b.add(self.lift(prev), gv)
            s._grad = Tensor._symbolic(new, self, False)
        for (t, _), gv in zip(leaves, grads):
            if gv is not None:
                self.accumulate_grad(t, gv, b)
        from graphnn.autograd import notify_backward

        notify_backward([t for (t, _), gv in zip(leaves, grads) if gv is not None])

    def accumulate_grad(self, t, gv, b=None) -> None:
        """t.grad += gradient value gv, symbolically, as backward() accumulates into a leaf from outside the trace
        (a parameter, an argument): its .grad before the call is read as state."""
        from graphnn.core.hooks import run_post_accumulate_hooks
        from graphnn.core.tensor import Tensor

        b = b or GraphEmitter(self.graph, {"phase": "backward"})
        if id(t) in self.grad_writes:
            prev = t._grad
            prev_v = None if prev is None else self.lift(prev)
        else:
            prev_v = None if t._grad is None else self.lift_grad(t)
            if t._grad is None and not t._temporary:  # (a factory's tensor made in the trace starts afresh)
                self.guard(lambda t=t: t._grad is None, True)
        new = gv if prev_v is None else b.add(prev_v, gv)
        t.grad = Tensor._symbolic(new, self, False)
        run_post_accumulate_hooks(t)  # (traced too: an optimizer stepped in backward)

    def grad(self, outputs: list, inputs: list, grad_outputs: list, create_graph: bool) -> list:
        """autograd.grad inside a trace: the gradient values of `inputs` as symbolic tensors (None where an input
        does not reach the outputs). With create_graph they are differentiable like any traced value (a later
        backward() differentiates through the gradient nodes); without, they are constants (stop_gradient)."""
        from graphnn.autograd import implicit_grad_error, vjp_located
        from graphnn.core.tensor import Tensor

        b = GraphEmitter(self.graph, {"phase": "backward"})
        seeds = []
        for t, go in zip(outputs, grad_outputs):
            if go is None:
                if t.numel() != 1:
                    raise implicit_grad_error(t)
                seeds.append(b.full(1.0, tuple(t.shape), t.dtype_name))
            else:
                seeds.append(self.lift(go))
        self.used_grad = True  # (autograd.grad: no .grad written; results may still be differentiable)
        pairs = [(t, self.lift(t)) for t in inputs]
        hooks = self.grad_hooks(pairs)
        grads = vjp_located(self.graph, [self.lift(t) for t in outputs], seeds, [v for _, v in pairs], b, hooks=hooks)
        out = []
        for gv in grads:
            if gv is None:
                out.append(None)
            elif create_graph and gv.type.is_float:
                out.append(Tensor._symbolic(gv, self, True))
            else:
                out.append(Tensor._symbolic(b.stop_gradient(gv), self, False))
        return out

    def grad_hooks(self, tensors: list) -> dict:
        """value id -> vjp hook running the tensor's gradient hooks (Tensor.register_hook) on the symbolic
        cotangent: what they compute becomes part of the traced gradient. The hooks of tensors captured from
        outside are guarded (registering or removing one traces again)."""
        from graphnn.core.hooks import USED, call_hooks
        from graphnn.core.tensor import Tensor

        def make(fns):
            return lambda ct: self.lift(call_hooks(fns, Tensor._symbolic(ct, self, False), ct.type))

        out = {}
        for t, v in tensors:
            fns = t._grad_hooks
            if t._trace is not self:  # (register_hook and remove move EPOCH for captured tensors)
                self.epoch_guard(lambda t=t: tuple(t._grad_hooks or ()), tuple(fns or ()))
            if fns:
                out[v.id] = make(fns)
        for v in self.graph.inputs + [o for n in self.graph.nodes for o in n.outputs] if USED[0] else ():
            if v.meta.get("hooks") and v.id not in out:
                out[v.id] = make(v.meta["hooks"])
        return out

    def finish(self) -> tuple:
        """Restore every .grad touched while tracing; return [(tensor, final grad Tensor or None)]. The arguments'
        changed .grads are listed in arg_grad_finals: [(argument position, final grad Tensor or None)]."""
        finals = []
        for t, original in self.grad_writes.values():
            finals.append((t, t._grad))
            t._grad = original
        # (keys only from now on: a program keeps its tracer, and the .grads seen while tracing need not live on)
        self.grad_writes = dict.fromkeys(self.grad_writes)
        self.arg_grad_finals = [(i, s._grad) for i, s in enumerate(self.arg_syms) if s._grad is not self.arg_grads0[i]]
        python_reads.attribute_guards(self)
        self.guards += [(accessor, accessor()) for accessor in self.end_guards]
        self.end_guards = []
        return finals

    def end_temporaries(self) -> None:
        """The trace is over: factory tensors it gave values requiring grad are plain tensors again (outside, one
        kept as state is the caller's, as a captured tensor is)."""
        self.ended_grad_temporaries = {id(t) for t in self.grad_temporaries}  # (results among them need grad)
        for t in self.grad_temporaries:
            t.grad_fn, t._requires_grad = None, False
        self.grad_temporaries = []

    def keep_escaped(self, result) -> None:
        """Factory tensors made in this trace and changed in place start afresh at each call, unless the traced code
        stored them where they outlive the call (a custom optimizer's `self.state[p]["buf"] = torch.zeros_like(p)`,
        a module attribute, a list kept by the caller): those are state, their updates written back as any captured
        tensor's. Stored means referred to by a dict or list other than the tracer's own and the result's."""
        if not self.temporaries:
            return
        import gc

        temps = [t for t, _ in self.temporaries.values()]
        own = {id(x) for x in vars(self).values()}
        own.add(id(temps))
        stack = [result]
        while stack:  # containers of the returned tree are not state
            x = stack.pop()
            if isinstance(x, (list, tuple, dict)) and id(x) not in own:
                own.add(id(x))
                stack.extend(x.values() if isinstance(x, dict) else x)
        for r in gc.get_referrers(*temps):
            if id(r) in own or not isinstance(r, (dict, list)):
                continue
            held = {id(x) for x in (r.values() if isinstance(r, dict) else r)}
            for key in held & self.temporaries.keys():
                self.updates[key] = self.temporaries.pop(key)
                if not self.temporaries:
                    return

    def has_arg_effects(self) -> bool:
        """Does the trace update an argument in place or set an argument's .grad?"""
        return bool(self.arg_grad_finals) or any(k in self.arg_index for k in self.updates)


def defer_host_call(fn, args: tuple, kwargs: dict) -> bool:
    """While tracing: record fn(*args, **kwargs), a call that only changes Python state (an LR scheduler's step),
    to run after the native code at every call of the compiled function instead of once now, and return True;
    False (the caller runs it now) outside traces or when an argument is a tensor (its value is not known here)."""
    tr = current()
    if tr is None:
        return False
    from graphnn.core.tensor import Tensor

    if any(isinstance(a, Tensor) for a in list(args) + list(kwargs.values())):
        return False
    tr.host_calls.append((fn, args, kwargs))
    return True


def check_values(t, fn) -> None:
    """fn(array) raises for invalid values of `t` (e.g. out-of-range indices): run now on a concrete tensor, and at
    every call of the compiled code on a symbolic one that is an input of the trace."""
    if t._data is not None:
        fn(t._data)
    elif t._trace is not None:
        from graphnn.core.grad_mode import current_scope, scope

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


class ScalarRead:
    """Binding of a scalar_input: the number read() gives now, as a 0-d array (the last one's again while the number
    is unchanged: compiled code never writes its inputs)."""

    __slots__ = ("read", "dtype", "_last")

    def __init__(self, read, dtype: str):
        self.read, self.dtype, self._last = read, dtype, (None, None)

    def __call__(self):
        v = self.read()
        last = self._last
        if last[1] is not None and type(v) is type(last[0]) and v == last[0]:
            return last[1]
        from graphnn.core.tensor import Tensor

        t = Tensor._wrap(np.array(v, self.dtype))
        t._data.flags.writeable = False
        self._last = (v, t)
        return t


class AtPlace:
    """Accessor: the tensor a module attribute or a container entry holds now (see Tracer.bind_stored)."""

    __slots__ = ("holder", "name")

    def __init__(self, holder, name):
        self.holder, self.name = holder, name

    def __call__(self):
        h = self.holder
        if isinstance(h, (dict, list)):
            try:
                return h[self.name]
            except (KeyError, IndexError):
                return None
        if not hasattr(h, "__dict__"):
            return getattr(h, self.name, None)
        return self._table().get(self.name)

    def _table(self) -> dict:
        """Where the holder keeps the attribute: a module's buffer table for a buffer, else its __dict__."""
        buffers = self.holder.__dict__.get("_buffers")
        return buffers if isinstance(buffers, dict) and self.name in buffers else self.holder.__dict__

    def put(self, value) -> None:
        if isinstance(self.holder, dict):
            dict.__setitem__(self.holder, self.name, value)  # (a param group's __setitem__ would note a store)
        elif isinstance(self.holder, list):
            self.holder[self.name] = value
        elif hasattr(self.holder, "__dict__"):
            self._table()[self.name] = value
        else:
            setattr(self.holder, self.name, value)


class SameValues:
    """Guard: a captured tensor whose values the trace read (a bool mask's True positions) still holds them."""

    __slots__ = ("tensor", "values")

    def __init__(self, tensor):
        self.tensor, self.values = tensor, np.array(tensor._data)

    def __call__(self) -> bool:
        d = self.tensor._data
        return d is not None and d.shape == self.values.shape and bool(np.array_equal(d, self.values))


class ValueOf:
    """Guard accessor: a tensor's current value (shape, dtype and bytes), compared with the one a trace read."""

    def __init__(self, t):
        self.t = t

    def __call__(self) -> tuple:
        d = self.t._data
        return (d.shape, d.dtype.str, d.tobytes()) if d is not None else None


class SameArray:
    """Guard: the tensor an accessor returns still has the shape and dtype it had when traced.

    Checked at every call, so it remembers the last array that passed: an unchanged array is one identity test.
    For a captured tensor (a parameter, whose array it holds anyway) the reference is strong and Program's fast
    check reads it (`last`); for other accessors (a `.grad`, replaced at every step) it is weak, so a program kept
    for later does not keep an old gradient's memory alive."""

    def __init__(self, accessor, t=None):
        self.accessor = accessor
        self.tensor = accessor.tensor if isinstance(accessor, Captured) else None  # for Program's fast check
        t = accessor() if t is None else t  # (t: what the accessor held when traced)
        self.shape, self.dtype = tuple(t.shape), t._data.dtype if t._data is not None else None
        self._remember(t._data)

    def _remember(self, d) -> None:
        if self.tensor is not None:
            self.last = d
        else:
            self._last = _weak(d)

    def __call__(self) -> bool:
        t = self.accessor()
        d = t._data if t is not None else None
        if d is not None and d is (self.last if self.tensor is not None else self._last()):
            return True
        if d is None or d.shape != self.shape or d.dtype != self.dtype:
            return False
        self._remember(d)
        return True


def _dead():
    return None


def _weak(a):
    """A weak reference to array a (a function returning None for None)."""
    return weakref.ref(a) if a is not None else _dead
