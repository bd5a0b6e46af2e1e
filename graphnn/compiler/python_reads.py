"""Python values a trace read, guarded so that a change traces again (as torch.compile's guards do).

A trace bakes in the plain Python values it computed with (numbers, strings, flags): a module attribute such as a
sampling temperature, a global step counter the compiled function reads. So that compiled calls follow such a value
as eager code does, the trace records which ones it read and the program is reused only while they still hold
their values at the end of the trace:

- module attributes: while a trace runs, reads of plain instance attributes of Modules are recorded (Module's
  attribute lookup is wrapped for the duration of tracing); a module assigning such an attribute moves the
  tracer's epoch (Module.__setattr__ -> module_changed), so these guards are only checked again after a change;
- globals and closure variables of the compiled function itself (its code and the code nested in it), checked
  at every call.

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
    """What a guard compares: type and repr (NaN equals itself; 1, 1.0 and True differ, as they may trace apart)."""
    return (type(v), repr(v)) if isinstance(v, PLAIN) else ("object", id(v))


def _reading(self, name):
    v = object.__getattribute__(self, name)
    if type(v) in PLAIN and name[:2] != "__":
        from . import tracer as _tracer

        tr = _tracer.current()
        if tr is not None and name in object.__getattribute__(self, "__dict__"):
            tr.plain_reads.setdefault((id(self), name), (self, name))
    return v


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

    for module, name in tracer.plain_reads.values():
        v = module.__dict__.get(name, _MISSING)
        if not isinstance(v, PLAIN):  # (now a tensor or another object the trace stored: not a value it read)
            continue
        key = value_key(v)
        _tracer.TRACED_MODULES.add(module)
        tracer.keepalive.append(module)
        tracer.epoch_guard(lambda m=module, n=name: value_key(m.__dict__.get(n, _MISSING)), key)


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


def _names(code) -> set:
    names = set(code.co_names)
    for c in code.co_consts:
        if isinstance(c, types.CodeType):
            names |= _names(c)
    return names


def global_guards(fn, tracer) -> None:
    """Guards, checked at every call, on the plain globals and closure variables fn's own code reads."""
    f = _python_function(fn)
    if f is None:
        return
    g = f.__globals__
    for name in sorted(_names(f.__code__)):
        v = g.get(name, _MISSING)
        if isinstance(v, PLAIN):
            tracer.guard(lambda g=g, n=name: value_key(g.get(n, _MISSING)), value_key(v))
    for name, cell in zip(f.__code__.co_freevars, f.__closure__ or ()):
        try:
            v = cell.cell_contents
        except ValueError:  # (not bound yet)
            continue
        if isinstance(v, PLAIN):
            tracer.guard(lambda c=cell: value_key(c.cell_contents), value_key(v))


def host_random_state() -> tuple:
    """A fingerprint of NumPy's global generator and Python's random module (a trace that draws from them bakes the
    numbers in: see trace_function)."""
    import random

    import numpy as np

    kind, keys, pos, *_ = np.random.get_state()
    return kind, int(pos), hash(keys.tobytes()), hash(random.getstate())
