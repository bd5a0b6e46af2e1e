"""Python values a trace read, guarded so that a change traces again (as torch.compile's guards do).

A trace bakes in the plain Python values it computed with (numbers, strings, flags): a module attribute such as a
sampling temperature, a global step counter the compiled function reads. So that compiled calls follow such a value
as eager code does, the trace records which ones it read and the program is reused only while they still hold
their values at the end of the trace:

- module attributes: while a trace runs, reads of plain instance attributes of Modules are recorded (Module's
  attribute lookup is wrapped for the duration of tracing); a module assigning such an attribute moves the
  tracer's epoch (Module.__setattr__ -> module_changed), so these guards are only checked again after a change;
- globals and closure variables of the compiled function itself (its code and the code nested in it), checked
  at every call;
- the plain entries of the data objects those globals and closure variables hold (a dict, a dataclass instance,
  a namespace: `x / cfg.temperature`, `lr = sched["lr"]`), checked at every call.

A compiled function whose trace changes such plain state (a step counter kept in a global or a dict) cannot be
compiled as it is: compiled calls would not repeat the change. Its change is undone and it runs eagerly, with a
TraceWarning saying which value changed (program.py).

Guards take the value at the end of the trace: a forward that counts its own calls traces once (the count stays
where tracing left it, which python_state reports), instead of tracing again at every call.
"""

from __future__ import annotations

import threading
import types

PLAIN = (bool, int, float, str, type(None))
_MISSING = object()
_lock = threading.Lock()
_active = [0]  # traces running (in any thread) with Module's attribute lookup wrapped


def value_key(v) -> tuple:
    """What a guard compares: type and repr for plain values, tuples of them and NumPy scalars (NaN equals itself;
    1, 1.0 and True differ, as they may trace apart); the identity of anything else."""
    if _is_value(v):
        return (type(v), repr(v))
    return ("object", id(v))


def _is_value(v) -> bool:
    if isinstance(v, PLAIN):
        return True
    if type(v) is tuple:
        return all(isinstance(x, PLAIN) for x in v)
    return type(v).__module__ == "numpy" and hasattr(v, "dtype") and getattr(v, "ndim", 1) == 0


_INTERNALS = frozenset(
    {"_parameters", "_buffers", "_modules", "_non_persistent_buffers_set", "_scope_name", "training", "__dict__"}
)


def _reading(self, name):
    v = object.__getattribute__(self, name)
    if name[:2] != "__" and name not in _INTERNALS:
        from . import tracer as _tracer

        tr = _tracer.current()
        if tr is not None:
            if name in object.__getattribute__(self, "__dict__"):
                tr.plain_reads.setdefault((id(self), name), (self, name))
            elif _is_value(v):  # a class-level default (`temperature = 1.0` in the class body)
                tr.class_reads.setdefault((id(self), name), (self, name))
    return v


_TENSOR: list = []


def _tensor_type():
    if not _TENSOR:
        from graphnn.core.tensor import Tensor

        _TENSOR.append(Tensor)
    return _TENSOR[0]


def start() -> None:
    """Record module attribute reads (while at least one trace runs)."""
    from graphnn.nn.modules.module import Module

    with _lock:
        _active[0] += 1
        if _active[0] == 1:
            Module.__getattribute__ = _reading


def stop() -> None:
    from graphnn.nn.modules.module import Module

    with _lock:
        _active[0] -= 1
        if _active[0] == 0:
            del Module.__getattribute__


def attribute_guards(tracer) -> None:
    """Epoch guards on the plain module attributes the trace read, at their values now."""
    from . import tracer as _tracer

    for module, name in tracer.class_reads.values():  # (a class attribute changes without the module knowing)
        tracer.keepalive.append(module)
        tracer.guard(lambda m=module, n=name: value_key(getattr(m, n, _MISSING)), value_key(getattr(module, name)))
    for module, name in tracer.plain_reads.values():
        v = module.__dict__.get(name, _MISSING)
        if isinstance(v, _tensor_type()) and v._trace is not None:  # (a tensor the trace stored: not one it read)
            continue
        if _is_data(v) and _plain_items(v) is not None:  # a dict or list of settings: changed in place too
            tracer.guard(lambda o=v: _plain_items(o), _plain_items(v))
        key = value_key(v)  # (a tensor, a function, another object: which one)
        _tracer.TRACED_MODULES.add(module)
        tracer.keepalive.append(module)
        tracer.epoch_guard(lambda m=module, n=name: value_key(m.__dict__.get(n, _MISSING)), key)
        if key[0] == "object":
            tracer.keepalive.append(v)  # (so that its id is not reused while the guard compares ids)


def _python_function(fn):
    """The Python function whose code a compiled callable runs first (a function, a method's function, a module's
    forward), or None."""
    for _ in range(4):
        if isinstance(fn, types.FunctionType):
            return fn
        inner = getattr(fn, "__func__", None)  # a bound method's function
        fn = inner if inner is not None else getattr(type(fn), "forward", None)  # a module's forward
        if fn is None:
            return None
    return None


def _names(code, f=None, depth: int = 2) -> set:
    """The global names the code (and the code nested in it) reads (LOAD_GLOBAL: not the attribute names that share
    co_names, such as `opt.step`), and, `depth` levels down, those read by the user's functions it calls through
    globals of the same module (a helper reading an annealed TEMPERATURE)."""
    import dis

    names: set = set()
    stack = [code]
    while stack:
        c = stack.pop()
        stack += [k for k in c.co_consts if isinstance(k, types.CodeType)]
        names.update(x.argval for x in dis.get_instructions(c) if x.opname in ("LOAD_GLOBAL", "LOAD_NAME"))
    if f is not None and depth > 0:
        g = f.__globals__
        for name in list(names):
            v = g.get(name)
            if isinstance(v, types.FunctionType) and v.__globals__ is g and v is not f:
                names |= _names(v.__code__, v, depth - 1)
    return names


def global_guards(fn, tracer) -> None:
    """Guards, checked at every call, on the plain globals and closure variables fn's own code reads."""
    f = _python_function(fn)
    if f is None:
        return
    g = f.__globals__
    for name in sorted(_names(f.__code__, f)):
        v = g.get(name, _MISSING)
        if _guarded_by_value_or_identity(v):
            tracer.guard(lambda g=g, n=name: value_key(g.get(n, _MISSING)), value_key(v))
            tracer.keepalive.append(v)  # (an identity compared: the object stays, so its id is not reused)
    for name, cell in zip(f.__code__.co_freevars, f.__closure__ or ()):
        try:
            v = cell.cell_contents
        except ValueError:  # (not bound yet)
            continue
        if _guarded_by_value_or_identity(v):
            tracer.guard(lambda c=cell: value_key(c.cell_contents), value_key(v))
            tracer.keepalive.append(v)
    owner = getattr(fn, "__self__", None)  # a compiled bound method: the modules and optimizers its object holds
    if owner is not None and hasattr(owner, "__dict__") and not _is_module(owner):
        held = lambda o=owner: tuple((k, id(x)) for k, x in vars(o).items() if _is_module(x) or _is_optimizer(x))  # noqa: E731
        tracer.guard(held, held())
        tracer.keepalive.append(owner)


def _guarded_by_value_or_identity(v) -> bool:
    """A global or closure value guarded by its value (plain values) or identity (a model, an optimizer, a tensor,
    a function: rebinding the name to another object traces again); not Python modules, classes, data objects
    (guarded by their entries: data_guards) or names that are not bound."""
    if (
        v is _MISSING
        or isinstance(v, (types.ModuleType, type))
        or callable(getattr(v, "__call__", None))
        and (type(v).__module__ or "").startswith("builtins")
    ):
        return False
    return _is_value(v) or not _is_data(v)


def _is_optimizer(v) -> bool:
    from graphnn.optim.optimizer import Optimizer

    return isinstance(v, Optimizer)


MAX_DATA_ITEMS = 64  # data objects with more plain entries are not guarded (a vocabulary is not a config)


def _is_data(v) -> bool:
    """A container of plain values a function may read settings from: a dict, a list, a namespace, a dataclass or
    another instance of a user's class (not a module, a tensor, a function or a class; nothing of graphnn's)."""
    t = type(v)
    if t is dict or t is list or t is types.SimpleNamespace:
        return True
    if isinstance(v, type):  # a user's class: its plain class attributes (`K.scale`)
        return not (v.__module__ or "").startswith(("graphnn", "builtins", "numpy", "torch"))
    if isinstance(v, (types.ModuleType, types.FunctionType, types.MethodType)) or not hasattr(v, "__dict__"):
        return False
    mod = t.__module__ or ""
    return mod == "argparse" or not (mod.startswith(("graphnn", "builtins", "numpy")) or _is_module(v))


def _is_module(v) -> bool:
    from graphnn.nn.modules.module import Module

    return isinstance(v, Module)


def _plain_items(v):
    """The plain entries of a data object as ((key, value_key), ...), or None when it has too many."""
    out = tuple((k, value_key(x)) for k, x in _items(v) if isinstance(x, PLAIN))
    return out if len(out) <= MAX_DATA_ITEMS else None


def _items(v):
    t = type(v)
    return v.items() if t is dict else enumerate(v) if t is list else vars(v).items()


def data_snapshot(fn) -> list:
    """What the user function fn can change of plain Python state, before tracing it: [(label, holder, key,
    value)] for its plain globals and closure variables and the plain entries of the data objects they hold
    (graphnn's own functions: none)."""
    f = _python_function(fn)
    if f is None or (f.__module__ or "").startswith("graphnn."):
        return []
    g = f.__globals__
    out: list = []
    found = [(name, g, name) for name in sorted(_names(f.__code__, f)) if name in g]
    found += [(name, cell, None) for name, cell in zip(f.__code__.co_freevars, f.__closure__ or ())]
    for name, holder, key in found:
        try:
            v = holder[key] if key is not None else holder.cell_contents
        except ValueError:  # (a closure variable not bound yet)
            continue
        if isinstance(v, PLAIN):
            out.append((name, holder, key, v))
        elif _is_module(v):  # a model the function runs: its modules' plain attributes (a counter in forward)
            for prefix, m in v.named_modules():
                where = f"{name}.{prefix}" if prefix else name
                out += [
                    (f"{where}.{k}", m, k, x)
                    for k, x in vars(m).items()
                    if isinstance(x, PLAIN) and k not in _INTERNALS and k[:2] != "__"
                ]
        elif _is_data(v) and _plain_items(v) is not None:
            label = "{}[{!r}]" if type(v) in (dict, list) else "{}.{}"
            out += [(label.format(name, k), v, k, x) for k, x in _items(v) if isinstance(x, PLAIN)]
            out.append((name, v, _ALL, _shape(v)))  # (entries added or removed)
    return out


_ALL = object()  # the key of a data object's whole set of plain entries in a snapshot


def _shape(v):
    """A container's length (a list) or keys (a dict, an object's attributes)."""
    return len(v) if type(v) is list else tuple(k for k, _ in _items(v))


def _current(holder, key):
    if key is _ALL:
        return _shape(holder)
    if key is None:
        return holder.cell_contents
    if isinstance(holder, dict):
        return holder.get(key, _MISSING)
    if isinstance(holder, list):
        return holder[key] if key < len(holder) else _MISSING
    return getattr(holder, key, _MISSING)


def changed_state(snapshot: list) -> list:
    """Labels 'name: old -> new' of the snapshot's entries that differ now."""
    out = []
    for label, holder, key, old in snapshot:
        now = _current(holder, key)
        if key is _ALL:
            if now != old and not any(x.startswith(label) for x in out):
                out.append(f"{label}: entries added or removed")
        elif value_key(now) != value_key(old):
            out.append(f"{label}: {old!r} -> {'(deleted)' if now is _MISSING else repr(now)}")
    return out


def restore_state(snapshot: list) -> None:
    """Put the snapshot's plain values back (a trace's Python side effects undone before the call runs eagerly)."""
    for _label, holder, key, old in snapshot:
        if key is _ALL:  # entries the trace added: removed
            if isinstance(holder, list):
                del holder[old:]
            else:
                for k in set(_shape(holder)) - set(old):
                    holder.pop(k) if isinstance(holder, dict) else delattr(holder, k)
            continue
        if value_key(_current(holder, key)) == value_key(old):
            continue
        if key is None:
            holder.cell_contents = old
        elif isinstance(holder, (dict, list)):
            if isinstance(holder, list) and key >= len(holder):
                continue
            holder[key] = old
        else:
            setattr(holder, key, old)


def data_guards(tracer, fn) -> None:
    """Guards, checked at every call, on the plain entries of the data objects (dicts, dataclass instances,
    namespaces) fn's own code names as globals or closure variables, at their values now: the entries the code
    reads by a constant key (`cfg["lr"]`, `cfg.get("lr")`, `cfg.lr`, `hist[-1]`) when that is all it does with the
    object (a counter kept beside the settings does not trace again), else all of them."""
    f = _python_function(fn)
    keys = _read_keys(f) if f is not None else {}
    for label, holder, key, _old in data_snapshot(fn):
        if key is not _ALL:
            continue
        wanted = keys.get(label)
        if wanted is None:
            tracer.guard(lambda o=holder: _plain_items(o), _plain_items(holder))
            continue
        for k in wanted:
            v = _current(holder, k)
            if isinstance(v, PLAIN):  # (a method, a nested object: not a value the trace computed with)
                tracer.guard(lambda o=holder, k=k: value_key(_current(o, k)), value_key(v))


_LOADS = ("LOAD_GLOBAL", "LOAD_DEREF", "LOAD_NAME", "LOAD_CLASSDEREF")


def _read_keys(f) -> dict:
    """name -> the constant keys f's code (and the code nested in it) reads from the object named so: attributes,
    constant subscripts, .get(constant); None for a name used any other way (passed on, iterated, indexed by a
    variable)."""
    import dis

    out: dict = {}
    stack = [f.__code__]
    while stack:
        code = stack.pop()
        stack += [c for c in code.co_consts if isinstance(c, types.CodeType)]
        ins = [x for x in dis.get_instructions(code) if x.opname not in ("CACHE", "EXTENDED_ARG")]
        for i, x in enumerate(ins):
            if x.opname not in _LOADS or out.get(x.argval, ()) is None:
                continue
            nxt = ins[i + 1] if i + 1 < len(ins) else None
            nxt2 = ins[i + 2] if i + 2 < len(ins) else None
            key = _MISSING
            if nxt is not None and nxt.opname in ("LOAD_ATTR", "LOAD_METHOD"):
                if nxt.argval == "get" and nxt2 is not None and nxt2.opname == "LOAD_CONST":
                    key = nxt2.argval
                elif nxt.argval not in ("items", "keys", "values", "update", "pop", "setdefault", "copy"):
                    key = nxt.argval
            elif nxt is not None and nxt.opname == "LOAD_CONST" and nxt2 is not None:
                if nxt2.opname == "BINARY_SUBSCR" or (nxt2.opname == "BINARY_OP" and "[" in (nxt2.argrepr or "")):
                    key = nxt.argval
            if key is _MISSING:
                out[x.argval] = None
            else:
                out.setdefault(x.argval, set()).add(key)
    return out


def host_random_state() -> tuple:
    """A fingerprint of NumPy's global generator and Python's random module (a trace that draws from them bakes the
    numbers in: see trace_function)."""
    import random

    import numpy as np

    kind, keys, pos, *_ = np.random.get_state()
    return kind, int(pos), hash(keys.tobytes()), hash(random.getstate())
