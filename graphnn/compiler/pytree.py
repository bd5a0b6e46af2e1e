"""Arguments and results of compiled calls as pytrees: tensors nested in tuples, lists, dicts and namedtuples.

A call's *signature* is a hashable key of its argument trees: the containers' types, lengths and dict keys (in
order), each tensor leaf's shape, dtype and requires_grad (for compiled functions, also whether the .grad of a
leaf that requires grad is None: a traced backward() accumulates into it), and the value of every other leaf (a
constant baked into the trace). A namedtuple's fields named in its `_pytree_static_fields` are constants too, tensors
included (keyed by their values: PackedSequence's batch sizes, which give its data's shape). Tensor leaves are collected in one order (arguments first to last, depth first),
the order of the traced graph's inputs.
"""

from __future__ import annotations

import inspect
from collections import OrderedDict, defaultdict

from graphnn.core.tensor import Tensor

_KINDS: dict = {}  # type -> "seq" (tuple, list), "named" (namedtuple), "map" (dict), or None (a leaf)
_STATIC: dict = {}  # namedtuple type -> positions of its fields that are constants of a trace


class BadLeaf(Exception):
    """A leaf that is neither a tensor, a container nor hashable (signature() raises it; callers add the path)."""


def _kind(cls) -> str | None:
    """How a type is traversed: tuple and list (and subclasses), namedtuples (tuples with _fields, rebuilt from
    their fields), dicts (and subclasses: OrderedDict, defaultdict); None for leaves."""
    kind = _KINDS.get(cls, False)
    if kind is False:
        if issubclass(cls, tuple) and hasattr(cls, "_fields"):
            kind = "named"
        elif issubclass(cls, (tuple, list)):
            kind = "seq"
        else:
            kind = "map" if issubclass(cls, dict) else None
        _KINDS[cls] = kind
    return kind


def _static(cls) -> frozenset:
    """Positions of a namedtuple's fields that are constants of a trace (its `_pytree_static_fields`)."""
    static = _STATIC.get(cls)
    if static is None:
        names = getattr(cls, "_pytree_static_fields", ())
        static = _STATIC[cls] = frozenset(cls._fields.index(n) for n in names)
    return static


def _static_key(a) -> tuple:
    """The key of a static field: a tensor by its values, anything else as a constant."""
    if isinstance(a, Tensor):
        d = a._concrete("a constant field of a compiled call's argument")
        return (Tensor, d.shape, d.dtype.str, d.tobytes())
    return _constant_key(a)


def is_container(obj) -> bool:
    return _kind(type(obj)) is not None


def _escaped(t: Tensor):
    from graphnn.core.dispatch import located
    from graphnn.core.tensor import TraceError, escaped_message

    return TraceError(located(f"compiled call: argument {escaped_message(t)}"))


def _constant_key(a) -> tuple:
    """A constant leaf's key: its type and value (so True, 1 and 1.0 differ; -0.0 and nan are keyed by repr); a
    data object (a config dataclass, a namespace, a user's object) by identity and its plain entries, which the
    trace may read (hashable or not)."""
    from .python_reads import _is_data, _plain_items, _watchable

    if not isinstance(a, (int, float, str, bytes, type(None))) and _is_data(a):
        if _watchable(a):  # (which object: the attributes a trace reads from it are guarded, see watch)
            return ("data", type(a), id(a))
        items = _plain_items(a)
        if items is not None:  # (and which tensors it holds: `ns.b = new tensor` traces again)
            held = tuple((k, id(v)) for k, v in vars(a).items() if isinstance(v, Tensor))
            return ("data", type(a), id(a), items, held)
    try:
        hash(a)
    except TypeError:
        raise BadLeaf(a) from None
    if type(a) is float and not (a == a and a):
        return (float, repr(a))
    return (type(a), a)


def leaf_key(a, leaves: list, grads: bool = False):
    """Key of one argument tree; its tensors are appended to `leaves`.

    Tensors give (shape, dtype, requires_grad) (the shape tuple tells them apart), plus, with `grads`, whether the
    .grad of a tensor that requires grad is None; containers (type, children), constants (type, value): disjoint
    forms, as a constant's type is never a container type."""
    if isinstance(a, Tensor):
        d = a._data
        if d is None:
            raise _escaped(a)
        leaves.append(a)
        rg = a._requires_grad
        if grads and rg:
            return (d.shape, d.dtype, rg, a._grad is None)
        return (d.shape, d.dtype, rg)
    cls = type(a)
    kind = _kind(cls)
    if kind is None:
        return _constant_key(a)
    if kind == "map":
        return (
            cls,
            tuple([(k, leaf_key(v, leaves, grads)) for k, v in a.items()]),
            getattr(a, "default_factory", None),
        )
    static = _static(cls) if kind == "named" else ()
    if static:
        return (cls, tuple([_static_key(o) if i in static else leaf_key(o, leaves, grads) for i, o in enumerate(a)]))
    return (cls, tuple([leaf_key(o, leaves, grads) for o in a]))


def numbers_erased(key):
    """A signature key with the values of its int, float and bool constants left out: keys that differ only in
    numbers (a timestep passed as a Python int, teacher-forcing flags as a tuple of bools) have the same erased
    key."""
    if type(key) is tuple:
        if len(key) == 2 and key[0] in (int, float, bool):
            return (key[0],)
        return tuple([numbers_erased(k) for k in key])
    return key


DYNAMIC = "dynamic"  # the value of a number argument passed as a graph input (see number_leaves)


def _number_pairs(key, fn):
    """key rebuilt with each (type, value) pair of an int, float or bool argument replaced by fn(pair), in argument
    order (the entries of data objects, keyed by identity and value, are not arguments: left as they are)."""
    if type(key) is not tuple:
        return key
    if len(key) == 2 and key[0] in (int, float, bool):
        return fn(key)
    if key and key[0] == "data":
        return key
    return tuple([_number_pairs(k, fn) for k in key])


def number_leaves(key) -> list:
    """The (type, value) pairs of a signature key's int, float and bool arguments, in argument order."""
    out: list = []
    _number_pairs(key, lambda pair: out.append(pair) or pair)
    return out


def numbers_dynamic(key, positions: frozenset) -> tuple:
    """(key with the numbers at `positions` (of number_leaves) keyed by their type only, their values)."""
    values: list = []
    count = [0]

    def erase(pair):
        count[0] += 1
        if count[0] - 1 not in positions:
            return pair
        v = pair[1]
        values.append(float(v) if pair[0] is float and v != DYNAMIC else v)  # (nan and zeros are keyed by repr)
        return (pair[0], DYNAMIC)

    return _number_pairs(key, erase), values


def map_numbers(args: tuple, kwargs: dict, fn) -> tuple:
    """(args, kwargs) with each int, float and bool leaf x replaced by fn(position, x), positions counted as
    number_leaves counts the key's numbers (a namedtuple's static fields count too, but stay as they are)."""
    count = [0]

    def walk(a, static: bool = False):
        if isinstance(a, Tensor):
            return a
        cls = type(a)
        if cls in (int, float, bool):
            count[0] += 1
            return a if static else fn(count[0] - 1, a)
        kind = _kind(cls)
        if kind is None:
            return a
        if kind == "map":
            return _rebuild(cls, [(k, walk(v)) for k, v in a.items()], getattr(a, "default_factory", None))
        st = _static(cls) if kind == "named" else ()
        return _rebuild(cls, [walk(o, i in st) for i, o in enumerate(a)])

    return tuple(walk(a) for a in args), {k: walk(v) for k, v in kwargs.items()}


def signature(args: tuple, kwargs: dict, leaves: list, grads: bool = False) -> tuple:
    """Key of a call's arguments (keyword arguments in call order); tensor leaves are appended to `leaves`."""
    key = tuple([leaf_key(a, leaves, grads) for a in args])
    if kwargs:
        return key, tuple([(k, leaf_key(v, leaves, grads)) for k, v in kwargs.items()])
    return key, ()


# -- rebuilding and results ------------------------------------------------------------------------------------
def _rebuild(cls, items: list, like=None):
    """A container of type cls holding items (pairs for mappings); `like` gives a defaultdict's factory.

    Subclasses are rebuilt through their constructor (graphnn.Size, namedtuples, OrderedDict); one whose
    constructor takes other arguments (a tuple subclass with its own __new__, say) through its base type's."""
    if cls is tuple or cls is list or cls is dict:
        return cls(items)
    kind = _kind(cls)
    try:
        if kind == "named":
            return cls(*items)
        if kind == "map" and issubclass(cls, defaultdict):
            return cls(like, items)
        return cls(items)
    except TypeError:
        if issubclass(cls, tuple):
            return tuple.__new__(cls, items)
        obj = cls.__new__(cls)
        (list if issubclass(cls, list) else dict).__init__(obj, items)
        return obj


def map_tensors(obj, fn, path: str = ""):
    """The same tree with each tensor leaf t replaced by fn(t, path) (path names the leaf, e.g. 'hc_1_w')."""
    if isinstance(obj, Tensor):
        return fn(obj, path)
    cls = type(obj)
    kind = _kind(cls)
    if kind == "map":
        pairs = [(k, map_tensors(v, fn, f"{path}_{k}")) for k, v in obj.items()]
        return _rebuild(cls, pairs, getattr(obj, "default_factory", None))
    if kind is not None:
        static = _static(cls) if kind == "named" else ()
        return _rebuild(cls, [o if i in static else map_tensors(o, fn, f"{path}_{i}") for i, o in enumerate(obj)])
    return obj


def changed_copy(original, copy, inputs: frozenset = frozenset()) -> bool:
    """Did code change `copy`, made from `original` by map_tensors (entries added to a list or a dict argument,
    removed, or replaced by other objects), which compiled calls would not change again? `inputs`: ids of the
    SymNumbers that number arguments were replaced by (see map_numbers)."""
    if isinstance(original, Tensor):
        return False
    kind = _kind(type(original))
    if kind == "map":
        if list(original.keys()) != list(copy.keys()):
            return True
        return any(changed_copy(v, copy[k], inputs) for k, v in original.items())
    if kind is not None:
        if len(original) != len(copy):
            return True
        return any(changed_copy(o, c, inputs) for o, c in zip(original, copy))
    return original is not copy and id(copy) not in inputs


def flatten(obj, leaves: list):
    """The structure of a result tree, with tensors replaced by ('leaf', i) and collected in `leaves`; a dataclass
    result (a model's output record, also one that is a mapping as transformers' ModelOutput) by its fields; an
    object of a class marked `_pytree_object` (a distribution, a transform) by its attributes."""
    if isinstance(obj, Tensor):
        leaves.append(obj)
        return ("leaf", len(leaves) - 1)
    cls = type(obj)
    if hasattr(cls, "__dataclass_fields__") and not isinstance(obj, type):
        import dataclasses

        return ("dc", cls, [(f.name, flatten(getattr(obj, f.name), leaves)) for f in dataclasses.fields(obj)])
    if getattr(cls, "_pytree_object", False) and not isinstance(obj, type):  # (a policy's Categorical, Normal)
        return ("obj", cls, [(k, flatten(v, leaves)) for k, v in vars(obj).items()])
    kind = _kind(cls)
    if kind == "map":
        return ("map", cls, [(k, flatten(v, leaves)) for k, v in obj.items()], getattr(obj, "default_factory", None))
    if kind is not None:
        static = _static(cls) if kind == "named" else ()
        return ("seq", cls, [("const", o) if i in static else flatten(o, leaves) for i, o in enumerate(obj)])
    return ("const", obj)


def unflatten(spec, leaves: list):
    """The result tree of a structure from flatten(), with new tensor leaves."""
    kind = spec[0]
    if kind == "leaf":
        return leaves[spec[1]]
    if kind == "seq":
        return _rebuild(spec[1], [unflatten(s, leaves) for s in spec[2]])
    if kind == "map":
        return _rebuild(spec[1], [(k, unflatten(s, leaves)) for k, s in spec[2]], spec[3])
    if kind == "dc":
        return _rebuild_dataclass(spec[1], [(k, unflatten(s, leaves)) for k, s in spec[2]])
    if kind == "obj":
        obj = spec[1].__new__(spec[1])
        obj.__dict__.update((k, unflatten(s, leaves)) for k, s in spec[2])
        return obj
    return spec[1]


def _rebuild_dataclass(cls, fields: list):
    """A dataclass instance with these field values, built without calling its __init__ (frozen ones too); one that
    is a mapping also holds its fields that are not None as items, as ModelOutput does."""
    obj = cls.__new__(cls)
    for name, value in fields:
        object.__setattr__(obj, name, value)
        if isinstance(obj, dict) and value is not None:
            (OrderedDict if isinstance(obj, OrderedDict) else dict).__setitem__(obj, name, value)
    return obj


# -- errors ---------------------------------------------------------------------------------------------------
def _children(obj) -> list:
    """(path suffix, child) of a container."""
    kind = _kind(type(obj))
    if kind == "map":
        return [(f"[{k!r}]", v) for k, v in obj.items()]
    if kind == "named":
        return [(f".{f}", o) for f, o in zip(type(obj)._fields, obj)]
    return [(f"[{i}]", o) for i, o in enumerate(obj)]


def _find_bad(obj, path: str):
    """(path, leaf) of the first leaf that is neither a tensor, a container nor hashable, or None."""
    if isinstance(obj, Tensor):
        return None
    if is_container(obj):
        for suffix, child in _children(obj):
            bad = _find_bad(child, path + suffix)
            if bad is not None:
                return bad
        return None
    try:
        hash(obj)
    except TypeError:
        return path, obj
    return None


def _positional_names(fn, n: int) -> list:
    """Names of the first n positional parameters of fn (`args[i]` past them or when unknown)."""
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        params = []
    names = [p.name for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    star = next((p.name for p in params if p.kind == p.VAR_POSITIONAL), "args")
    return [names[i] if i < len(names) else f"{star}[{i - len(names)}]" for i in range(n)]


def bad_argument(fn, args: tuple, kwargs: dict) -> TypeError:
    """The TypeError for an argument leaf that cannot be part of a signature, naming its path (e.g. hc[1]['w'])."""
    named = list(zip(_positional_names(fn, len(args)), args)) + list(kwargs.items())
    for name, a in named:
        bad = _find_bad(a, name)
        if bad is not None:
            path, leaf = bad
            return TypeError(
                f"graphnn.compile: argument {path} is a {type(leaf).__name__}, neither a tensor, a tuple, list, dict "
                "or namedtuple of arguments, nor a hashable constant (non-tensor arguments are baked into the trace, "
                "keyed by value)"
            )
    return TypeError("graphnn.compile: an argument is neither a tensor, a container of arguments nor hashable")
