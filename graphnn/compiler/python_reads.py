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


MODULE_INTERNALS = frozenset(  # a Module's own bookkeeping in its __dict__, not values a forward computes with
    {
        "_parameters",
        "_buffers",
        "_modules",
        "_buffer_names",
        "_non_persistent_buffers_set",
        "_scope_name",
        "training",
        "_forward_pre_hooks",
        "_forward_hooks",
        "_hooks_with_kwargs",
    }
)


def _reading(self, name):
    v = object.__getattribute__(self, name)
    if name[:2] != "__" and name not in MODULE_INTERNALS:
        from . import tracer as _tracer

        tr = _tracer.current()
        if tr is not None:
            if getattr(v, "_trace", None) is tr:
                pass  # (a value this trace computed and set, as weight_norm's hook sets module.weight: not a read)
            elif name in object.__getattribute__(self, "__dict__"):
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


_patched: dict = {}  # user class -> traces watching its instances' attribute reads


def _watching(self, name):
    v = object.__getattribute__(self, name)
    if name[:2] != "__":
        from . import tracer as _tracer

        tr = _tracer.current()
        if tr is not None and id(self) in tr.watched:
            tr.obj_reads.setdefault(id(self), set()).add(name)
    return v


def _watchable(v) -> bool:
    """A user object whose attribute reads a trace can record: an instance of a Python class (a config dataclass,
    argparse's Namespace, a trainer) that keeps object's attribute lookup."""
    t = type(v)
    return (
        _is_data(v)
        and t not in (dict, list, types.SimpleNamespace)
        and not isinstance(v, type)
        and t.__getattribute__ in (object.__getattribute__, _watching)
    )


def watch(tracer, objects: list) -> list:
    """Record, while tracing, which attributes of these objects the traced code reads (through any function), for
    guards on exactly those (data_guards); returns the classes to unwatch afterwards."""
    classes = []
    with _lock:
        for v in objects:
            if not _watchable(v):
                continue
            tracer.watched[id(v)] = v
            t = type(v)
            if t not in classes:
                classes.append(t)
                if _patched.get(t, 0) == 0:
                    t.__getattribute__ = _watching
                _patched[t] = _patched.get(t, 0) + 1
    return classes


def unwatch(classes: list) -> None:
    with _lock:
        for t in classes:
            _patched[t] -= 1
            if _patched[t] == 0:
                del _patched[t]
                del t.__getattribute__


def note_replaced(tracer, snapshot: list) -> None:
    """Entries of the data the traced code reaches (a trainer object's attributes, a global dict's items) that held a
    tensor and now hold one the trace computed (`self.avg = 0.9 * self.avg + 0.1 * loss`, `metrics["loss"] = loss`):
    stores, set to their values after every call (Tracer.note_stored), not changes of Python state."""
    T = _tensor_type()
    for _label, holder, key, old in snapshot:
        if key is not _ALL:
            continue
        for k, x in old[2]:
            now = _current(holder, k)
            if isinstance(x, T) and isinstance(now, T) and now._trace is tracer and now._value is not None:
                place = ("item", id(holder), k) if isinstance(holder, (dict, list)) else (id(holder), k)
                tracer.note_stored(holder, k, now, x, place)


def watched_guards(tracer) -> None:
    """Guards on the plain attributes the trace read from the watched objects, at their values now (not those it
    stores into: a new tensor at every call)."""
    stored = tracer.stored_places()
    for i, names in tracer.obj_reads.items():
        obj = tracer.watched[i]
        for name in sorted(names):
            if (i, name) in stored:
                continue
            v = getattr(obj, name, _MISSING)
            if _is_value(v) or v is _MISSING or (isinstance(v, _tensor_type()) and v._trace is None):
                tracer.guard(lambda o=obj, n=name: value_key(getattr(o, n, _MISSING)), value_key(v))
                tracer.keepalive.append(v)  # (a tensor's identity compared: it stays alive)
            elif type(v) in (dict, list):  # (`trainer.cfg["scale"]`: which dict, and its plain entries)
                tracer.guard(lambda o=obj, n=name: _nested_key(getattr(o, n, _MISSING)), _nested_key(v))
                tracer.keepalive.append(v)


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
    """Guards, checked at every call, on the plain globals and closure variables fn's own code reads (not for
    graphnn's own functions, whose module constants do not change: a replayed GELU reads sqrt(1/2))."""
    f = _python_function(fn)
    ours = f is not None and (f.__module__ or "").startswith("graphnn.")  # (a graphnn module compiled: its hooks)
    if f is None or ours and not _is_module(fn):
        return
    for h in ([] if ours else [f]) + reached_functions(fn):
        _function_guards(h, tracer)
    owner = getattr(fn, "__self__", None)  # a compiled bound method: the modules and optimizers its object holds
    if owner is not None and hasattr(owner, "__dict__") and not _is_module(owner):
        held = lambda o=owner: tuple((k, id(x)) for k, x in vars(o).items() if _is_module(x) or _is_optimizer(x))  # noqa: E731
        tracer.guard(held, held())
        tracer.keepalive.append(owner)


def _function_guards(f, tracer) -> None:
    """Guards on the plain globals and closure variables function f's code reads (values or identities)."""
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
    if t is dict:
        return v.items()
    if t is list:
        return enumerate(v)
    if isinstance(v, type):  # (a class: its own attributes, not the __dict__ / __weakref__ descriptors and the like)
        return [(k, x) for k, x in vars(v).items() if not (k[:2] == "__" and k[-2:] == "__")]
    return vars(v).items()


def _models_reached(fn, f) -> list:
    """The models fn reaches before it runs: itself, the globals and closure variables its code names, its object's
    attributes, and the entries of the dicts and lists those hold."""
    seen = [fn] + [f.__globals__[n] for n in _names(f.__code__, f) if n in f.__globals__]
    seen += [c.cell_contents for c in f.__closure__ or ()] if _bound(f) else []
    owner = getattr(fn, "__self__", None)
    seen += list(vars(owner).values()) if owner is not None and hasattr(owner, "__dict__") else []
    seen += [x for v in seen if type(v) in (dict, list) for _, x in _items(v)]
    out, ids = [], set()
    for v in seen:
        if _is_module(v) and id(v) not in ids:
            ids.add(id(v))
            out.append(v)
    return out


def reached_functions(fn) -> list:
    """The user's functions a call of fn runs besides its own code that are known before it runs: the forward
    methods and the hooks (forward, pre-forward, backward, global) of the models it reaches. Their globals and
    closure variables are snapshotted and guarded as fn's own (a hook appending to a global list, one scaling by
    a global setting)."""
    from graphnn.nn.modules.module import _GLOBAL, _HOOK_TABLES

    f = _python_function(fn)
    if f is None:
        return []
    found = [h for table in _GLOBAL.values() for h in table.values()]
    for root in _models_reached(fn, f):
        for m in root.modules():
            found.append(type(m).forward)
            found += [h for t in _HOOK_TABLES for h in (m.__dict__.get(t) or {}).values()]
    out = []
    for h in found:
        g = _python_function(h)
        if g is not None and g is not f and g not in out and not (g.__module__ or "").startswith("graphnn."):
            out.append(g)
    return out


def _function_values(f, label: str) -> list:
    """[(label, holder, key)] of the globals f's code reads and of its closure variables (holder: its globals'
    dict, key the name; or the cell, key None)."""
    g = f.__globals__
    out = [(label.format(name), g, name) for name in sorted(_names(f.__code__, f)) if name in g]
    return out + [(label.format(name), cell, None) for name, cell in zip(f.__code__.co_freevars, f.__closure__ or ())]


def data_snapshot(fn, args: tuple = ()) -> list:
    """What the user function fn can change of plain Python state, before tracing it: [(label, holder, key,
    value)] for its plain globals and closure variables, the plain entries of the data objects they hold, of the
    object of a compiled bound method and of the data objects passed as arguments (a cache object a model extends),
    one level into the lists and dicts those hold (graphnn's own functions: none)."""
    f = _python_function(fn)
    ours = f is not None and (f.__module__ or "").startswith("graphnn.")  # (a graphnn module compiled: its hooks)
    if f is None or ours and not _is_module(fn):
        return []
    out: list = []
    found = [] if ours else _function_values(f, "{}")
    for h in reached_functions(fn):  # (labels that are not identifiers: data_guards guards them whole)
        seen = {(id(holder), key) for _, holder, key in found}  # (by identity: cells compare their contents)
        found += [e for e in _function_values(h, h.__qualname__ + ": {}") if (id(e[1]), e[2]) not in seen]
    for name, holder, key in found:
        try:
            v = holder[key] if key is not None else holder.cell_contents
        except ValueError:  # (a closure variable not bound yet)
            continue
        if isinstance(v, PLAIN):
            out.append((name, holder, key, v))
        elif _is_module(v):
            _add_module(out, name, v)
        elif _is_optimizer(v):
            _add_optimizer(out, name, v)
        else:
            _add_data(out, name, v, 1)
    owner = getattr(fn, "__self__", None)
    if owner is not None and not _is_module(owner):
        _add_data(out, "self", owner, 1)
    for i, a in enumerate(args):
        if _is_optimizer(a):
            _add_optimizer(out, f"argument {i}", a)
        elif not isinstance(a, PLAIN) and not _is_module(a):
            _add_data(out, f"argument {i}", a, 1)
    return out


def _add_optimizer(out: list, label: str, opt) -> None:
    """An optimizer the function steps: the plain entries of its param groups and of its per-parameter state (a
    custom optimizer's `state["step"] += 1`, a step setting `group["lr"]`), which compiled calls would not change."""
    for i, g in enumerate(opt.param_groups):
        out += [(f"{label}.param_groups[{i}][{k!r}]", g, k, x) for k, x in g.items() if isinstance(x, PLAIN)]
    out.append((f"{label}.state", opt, _OPT_STATE, _plain_state(opt)))


_OPT_STATE = object()  # the key of an optimizer's plain per-parameter state in a snapshot


def _whole_state(opt) -> bool:
    """Is opt a user's optimizer (its own step()): then every entry of its per-parameter state is compared, tensors
    by identity, for its step may create the state lazily (`if "buf" not in state: state["buf"] = ...`), a test
    compiled calls would not make again (graphnn's optimizers guard their state themselves)."""
    step = getattr(type(opt), "step", None)
    return not (getattr(step, "__module__", "") or "").startswith("graphnn.")


def _plain_state(opt) -> tuple:
    """The per-parameter state dicts of an optimizer that hold plain entries: ((id(p), ((key, value_key), ...), a
    copy of the dict), ...) (tensors, updated in place by compiled code, are left out of the comparison); for a
    user's optimizer every dict, with every entry (tensors by identity: see _whole_state)."""
    whole = _whole_state(opt)
    out = []
    for p, st in list(opt.state.items()):
        if isinstance(st, dict):
            entries = tuple(
                (k, value_key(x) if isinstance(x, PLAIN) else ("object", id(x)))
                for k, x in st.items()
                if whole or isinstance(x, PLAIN)
            )
            if entries or whole:
                out.append((id(p), entries, dict(st)))
    return tuple(out)


def _restore_plain_state(opt, old: tuple) -> None:
    """Undo a trace's changes of an optimizer's plain state: dicts it gave plain entries are put back as they were,
    or dropped when the trace made them (the eager call makes them again); a user's optimizer's dicts all."""
    whole = _whole_state(opt)
    before = {pid: copy for pid, _, copy in old}
    for p in [p for p in opt.state if id(p) not in before]:
        st = opt.state[p]
        if isinstance(st, dict) and (whole or any(isinstance(x, PLAIN) for x in st.values())):
            del opt.state[p]
    for p, st in list(opt.state.items()):
        if id(p) in before and isinstance(st, dict):
            st.clear()
            st.update(before[id(p)])


def _add_data(out: list, label: str, v, depth: int) -> None:
    """A data object's plain entries, its set of entries (which keys, which objects), and, `depth` levels down,
    the lists, dicts and data objects it holds."""
    if not _is_data(v) or _plain_items(v) is None:
        return
    fmt = "{}[{!r}]" if type(v) in (dict, list) else "{}.{}"
    out += [(fmt.format(label, k), v, k, x) for k, x in _items(v) if isinstance(x, PLAIN)]
    out.append((label, v, _ALL, _shape(v)))  # (entries added, removed or replaced by other objects)
    if depth > 0:
        for k, x in list(_items(v)):
            if _is_module(x):  # (a trainer's model)
                _add_module(out, fmt.format(label, k), x)
            elif _is_optimizer(x):  # (a trainer's optimizer)
                _add_optimizer(out, fmt.format(label, k), x)
            elif not isinstance(x, PLAIN) and not isinstance(x, type) and (type(x) in (list, dict) or _is_data(x)):
                _add_data(out, fmt.format(label, k), x, depth - 1)


def _add_module(out: list, label: str, module) -> None:
    """A model the function runs: its modules' plain attributes (a counter kept in forward) and the lists and dicts
    they hold (a policy's saved log-probabilities appended to by the step)."""
    for prefix, m in module.named_modules():
        where = f"{label}.{prefix}" if prefix else label
        for k, x in vars(m).items():
            if k in MODULE_INTERNALS or k[:2] == "__":
                continue
            if isinstance(x, PLAIN):
                out.append((f"{where}.{k}", m, k, x))
            elif type(x) in (list, dict):
                _add_data(out, f"{where}.{k}", x, 0)


_ALL = object()  # the key of a data object's whole set of entries in a snapshot


def _shape(v):
    """A container's length (a list) or keys (a dict, an object's attributes), and which objects its entries that
    are not plain values are (a tensor replaced by the trace's)."""
    items = list(_items(v))
    size = len(v) if type(v) is list else tuple(k for k, _ in items)
    copy = _Copy(v) if type(v) in (list, dict) else None
    return size, tuple(id(x) for _, x in items if not isinstance(x, PLAIN)), _Objects(items), copy


class _Copy:
    """A shallow copy of a list or dict, to put back what a trace removed (compared equal to any other: a snapshot
    compares sizes and identities, not contents)."""

    def __init__(self, v):
        self.items = list(v) if type(v) is list else dict(v)

    def __eq__(self, other):
        return True

    def __hash__(self):
        return 0


class _Objects(tuple):
    """The (key, object) entries of a container that are not plain values, compared by identity only (a snapshot
    keeps them to put them back; equality of the objects themselves is never asked)."""

    def __new__(cls, items):
        return super().__new__(cls, [(k, x) for k, x in items if not isinstance(x, PLAIN)])

    def __eq__(self, other):
        return True

    def __hash__(self):
        return 0


def _current(holder, key):
    if key is _ALL:
        return _shape(holder)
    if key is _OPT_STATE:
        return _plain_state(holder)
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
        elif key is _OPT_STATE:
            if [(i, v) for i, v, _ in now] != [(i, v) for i, v, _ in old]:
                out.append(f"{label}: plain entries (numbers kept in the state) changed")
        elif value_key(now) != value_key(old):
            out.append(f"{label}: {old!r} -> {'(deleted)' if now is _MISSING else repr(now)}")
    return out


def restore_state(snapshot: list) -> None:
    """Put the snapshot's plain values back (a trace's Python side effects undone before the call runs eagerly)."""
    for _label, holder, key, old in snapshot:
        if key is _OPT_STATE:
            _restore_plain_state(holder, old)
            continue
        if key is _ALL:  # entries the trace added: removed; objects it replaced: put back
            if old[3] is not None:  # (a list or dict: as it was, entries the trace removed included)
                if isinstance(holder, list):
                    holder[:] = old[3].items
                else:
                    holder.clear()
                    holder.update(old[3].items)
                continue
            if isinstance(holder, list):
                del holder[old[0] :]
            else:
                for k in set(_shape(holder)[0]) - set(old[0]):
                    holder.pop(k) if isinstance(holder, dict) else delattr(holder, k)
            for k, x in old[2]:
                if isinstance(holder, (dict, list)):
                    if holder[k] is not x:
                        holder[k] = x
                elif getattr(holder, k, None) is not x:
                    setattr(holder, k, x)
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
    owner = getattr(fn, "__self__", None)
    self_name = f.__code__.co_varnames[0] if f is not None and owner is not None and f.__code__.co_argcount else None
    keys = _read_keys(f, self_name) if f is not None else {}
    for label, holder, key, _old in data_snapshot(fn):
        if (
            key is _ALL
            and ": " in label
            and label.rpartition(": ")[2].isidentifier()
            and id(holder) not in tracer.watched
        ):
            tracer.guard(lambda o=holder: _plain_items(o), _plain_items(holder))  # (read by a hook or a forward)
            continue
        if key is not _ALL or id(holder) in tracer.watched or not label.isidentifier() or label == "self":
            continue  # (entries nested in other objects are snapshotted for changes, not guarded: a history list)
        wanted = keys.get(label)
        if wanted is None:
            tracer.guard(lambda o=holder: _plain_items(o), _plain_items(holder))
            continue
        stored = tracer.stored_places()
        for k in wanted:
            v = _current(holder, k)
            if (id(holder), k) in stored:
                continue  # (a place the trace stores a tensor into: see Tracer.bind_stored)
            if isinstance(v, PLAIN) or isinstance(v, _tensor_type()):  # (a tensor: which one; not a method)
                tracer.guard(lambda o=holder, k=k: value_key(_current(o, k)), value_key(v))
                tracer.keepalive.append(v)
            elif _is_data(v) and not isinstance(v, type):
                # a container one level down (`groups[0]["scale"]`, `trainer.cfg["scale"]`): which one, and its
                # plain entries
                tracer.guard(lambda o=holder, k=k: _nested_key(_current(o, k)), _nested_key(v))
                tracer.keepalive.append(v)
            elif v is not _MISSING and not isinstance(v, type):
                # a model, an optimizer, a function held by the dict (`state["opt"] = SGD(...)` between phases):
                # which one, as a global's identity is guarded
                tracer.guard(lambda o=holder, k=k: value_key(_current(o, k)), value_key(v))
                tracer.keepalive.append(v)


def _nested_key(v) -> tuple:
    return (id(v), _plain_items(v) if _is_data(v) else None)


_LOADS = ("LOAD_GLOBAL", "LOAD_DEREF", "LOAD_NAME", "LOAD_CLASSDEREF")


def _read_keys(f, self_name: str | None = None) -> dict:
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
            if x.opname == "LOAD_FAST" and x.argval == self_name and code is f.__code__:
                x = x._replace(argval="self")  # (a compiled bound method's object, snapshotted as "self")
            elif x.opname not in _LOADS:
                continue
            if out.get(x.argval, ()) is None:
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


def drew_numbers(snapshot: list, fn) -> bool:
    """Were numbers drawn since host_random_snapshot(fn) gave `snapshot` from NumPy's global generator, Python's
    random module or a generator object fn reaches (a trace that draws from them bakes the numbers in: see
    trace_function)? graphnn's own generator is left out: a trace's draws from it are its random inputs."""
    from graphnn.core import random as graphnn_random

    def prints(snap: list) -> list:
        return [_fingerprint(state) for g, state in snap if g is not graphnn_random]

    return prints(snapshot) != prints(host_random_snapshot(fn))


def _fingerprint(state):
    """A generator state in comparable form (a Mersenne Twister's key array by its bytes)."""
    import numpy as np

    if isinstance(state, tuple) and len(state) > 1 and isinstance(state[1], np.ndarray):
        return (state[0], hash(state[1].tobytes())) + tuple(state[2:])
    return repr(state)


def _state(g):
    """The state of a generator object (NumPy's Generator or RandomState, or Python's random.Random)."""
    import random

    import numpy as np

    if isinstance(g, np.random.Generator):
        return g.bit_generator.state
    return g.getstate() if isinstance(g, random.Random) else g.get_state()


def host_random_snapshot(fn) -> list:
    """[(generator, state)] of Python's, NumPy's and graphnn's global generators and the generator objects fn reaches
    (np.random.default_rng(), RandomState, random.Random held by a global, a closure variable, the compiled method's
    object or an object one of those holds), to put back with restore_host_random when a trace stops (the eager
    call then draws the same numbers), or to compare with drew_numbers."""
    import random

    import numpy as np

    from graphnn.core import random as graphnn_random  # (a DataLoader's shuffle draws its seed from graphnn's)

    return [
        (random, random.getstate()),
        (np.random, np.random.get_state()),
        (graphnn_random, graphnn_random.get_rng_state()),
    ] + [(g, _state(g)) for g in _generators(fn)]


def restore_host_random(snapshot: list) -> None:
    import random

    import numpy as np

    from graphnn.core import random as graphnn_random

    for g, state in snapshot:
        if g is graphnn_random:
            g.set_rng_state(state)
        elif isinstance(g, np.random.Generator):
            g.bit_generator.state = state
        elif g is random or isinstance(g, random.Random):
            g.setstate(state)
        else:  # (NumPy's global generator or a RandomState)
            g.set_state(state)


def _generators(fn) -> list:
    """The random generator objects fn reaches (see host_random_snapshot)."""
    import random

    import numpy as np

    f = _python_function(fn) if fn is not None else None
    if f is None or (f.__module__ or "").startswith("graphnn."):
        return []
    kinds = (np.random.Generator, np.random.RandomState, random.Random)
    seen = [f.__globals__[n] for n in _names(f.__code__, f) if n in f.__globals__]
    seen += [c.cell_contents for c in f.__closure__ or () if c.cell_contents is not None] if _bound(f) else []
    owner = getattr(fn, "__self__", None) or (fn if _is_module(fn) else None)
    seen += [owner] if owner is not None else []
    found, ids = [], set()
    for x in seen + [v for x in seen if hasattr(x, "__dict__") and not isinstance(x, type) for v in vars(x).values()]:
        if isinstance(x, kinds) and id(x) not in ids and x is not random._inst:
            ids.add(id(x))
            found.append(x)
    return found


def _bound(f) -> bool:
    """Are all of f's closure cells bound (reading an unbound one raises)?"""
    try:
        [c.cell_contents for c in f.__closure__ or ()]
    except ValueError:
        return False
    return True
