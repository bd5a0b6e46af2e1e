"""One graph for every batch size: `unify(g1, g2)` turns two graphs traced at two batch sizes into one symbolic
graph (every integer that differs is fitted as a*N + b, ir/symbolic.py), and `size_of(sym, g)` checks a third
trace against it and finds its N."""

from __future__ import annotations

import numpy as np

from .graph import Graph, Node
from .ops.scan import Body
from .registry import get_op
from .symbolic import MIN_N, Quot, Sym, _make
from .types import TensorType


class _Mismatch(Exception):
    pass


def _is_int(x) -> bool:
    return isinstance(x, (int, np.integer)) and not isinstance(x, (bool, np.bool_))


def _fit(a, b, n1: int, n2: int, rep: int):
    """The symbolic form of something that is a at N = n1 and b at N = n2."""
    if _is_int(a) and _is_int(b):
        if a == b:
            return int(a)
        k, r = divmod(int(b) - int(a), n2 - n1)
        if r:
            raise _Mismatch(a, b)
        return _make([int(a) - k * n1, k], rep)
    if type(a) is not type(b):
        raise _Mismatch(a, b)
    if isinstance(a, (tuple, list)):
        if len(a) != len(b):
            raise _Mismatch(a, b)
        out = [_fit(x, y, n1, n2, rep) for x, y in zip(a, b)]
        return tuple(out) if isinstance(a, tuple) else out
    if isinstance(a, dict):
        if a.keys() != b.keys():
            raise _Mismatch(a, b)
        return {k: _fit(a[k], b[k], n1, n2, rep) for k in a}
    if isinstance(a, Body):  # a scan's body
        return a if a == b else Body(_unify(a.graph, b.graph, n1, n2))
    if isinstance(a, np.ndarray):
        if a.dtype != b.dtype or a.shape != b.shape or not np.array_equal(a, b, equal_nan=a.dtype.kind == "f"):
            raise _Mismatch("array")
        return b
    if isinstance(a, float):
        if a == b or (a != a and b != b):
            return b
        if a.is_integer() and b.is_integer() and max(abs(a), abs(b)) < 2**53:  # a count as a float (a mean's N)
            return _fit(int(a), int(b), n1, n2, rep)
        q = _quotient(a, b, n1, n2, rep)
        if q is not None:
            return q
        raise _Mismatch(a, b)
    if a != b:
        raise _Mismatch(a, b)
    return b


def _quotient(a: float, b: float, n1: int, n2: int, rep: int) -> Quot | None:
    """a and b as m / (m - 1) or 1 / m, rounded to float32 or float64, for a count m fitted as a*N + b: the constants
    passes fold from counts (an unbiased variance's factor, a mean's gradient)."""
    if a < 0 and b < 0:  # -(1 / m) as the gradient of a negated mean
        q = _quotient(-a, -b, n1, n2, rep)
        return None if q is None else Quot(-q.num, q.den, q.dtype)
    if not (a == a and b == b and 0 < a and 0 < b):
        return None
    forms = (
        (lambda x: 1 / x, lambda m: (1, m)),  # 1 / m
        (lambda x: x / (x - 1) if x > 1 else 0, lambda m: (m, m - 1)),  # m / (m - 1)
    )
    for count, parts in forms:
        ma, mb = round(count(a)), round(count(b))
        if not (2 <= ma < 2**24 and 2 <= mb < 2**24):
            continue
        for dt in ("float32", "float64"):
            if Quot.of(*parts(ma), dt) == a and Quot.of(*parts(mb), dt) == b:
                try:
                    m = _fit(ma, mb, n1, n2, rep)
                except _Mismatch:
                    continue
                if isinstance(m, Sym):
                    return Quot(*parts(m), dt)
    return None


def _agrees(s, x, n: int) -> bool:
    """Is the concrete x what the symbolic s is at N = n?"""
    if isinstance(s, (Sym, Quot)):
        return (_is_int(x) or isinstance(x, float)) and s.at(n) == x
    if _is_int(s):
        return _is_int(x) and s == x
    if type(s) is not type(x):
        return False
    if isinstance(s, (tuple, list)):
        return len(s) == len(x) and all(_agrees(a, b, n) for a, b in zip(s, x))
    if isinstance(s, dict):
        return s.keys() == x.keys() and all(_agrees(s[k], x[k], n) for k in s)
    if isinstance(s, Body):
        return s == x or _graph_agrees(s.graph, x.graph, n)
    if isinstance(s, np.ndarray):
        return s.dtype == x.dtype and s.shape == x.shape and np.array_equal(s, x, equal_nan=s.dtype.kind == "f")
    if isinstance(s, float):
        return s == x or (s != s and x != x)
    return s == x


def _same_structure(g1: Graph, g2: Graph) -> bool:
    if (len(g1.inputs), len(g1.nodes), len(g1.outputs)) != (len(g2.inputs), len(g2.nodes), len(g2.outputs)):
        return False
    pos1 = {v.id: i for i, v in enumerate(g1.values())}
    pos2 = {v.id: i for i, v in enumerate(g2.values())}
    for a, b in zip(g1.inputs, g2.inputs):
        if a.dtype != b.dtype or len(a.shape) != len(b.shape) or a.meta.get("kind") != b.meta.get("kind"):
            return False
    for n1, n2 in zip(g1.nodes, g2.nodes):
        if n1.op != n2.op or len(n1.inputs) != len(n2.inputs) or len(n1.outputs) != len(n2.outputs):
            return False
        if [pos1[v.id] for v in n1.inputs] != [pos2[v.id] for v in n2.inputs]:
            return False
        if any(a.dtype != b.dtype or len(a.shape) != len(b.shape) for a, b in zip(n1.outputs, n2.outputs)):
            return False
        if any(n1.attrs.get(k) != n2.attrs.get(k) for k in get_op(n1.op).fixed_attrs):
            return False  # (a pooling's kernel, a sum's axes: not a function of the batch size)
    keys = lambda g: set(g.meta) - {"dynamic"}  # noqa: E731
    return [pos1[v.id] for v in g1.outputs] == [pos2[v.id] for v in g2.outputs] and keys(g1) == keys(g2)


def batch_sizes(g1: Graph, g2: Graph) -> tuple | None:
    """(n1, n2): the first input dimension whose size differs between the two graphs, or None."""
    for a, b in zip(g1.inputs, g2.inputs):
        for x, y in zip(a.shape, b.shape):
            if x != y:
                return (x, y) if min(x, y) >= MIN_N else None
    return None


def unify(g1: Graph, g2: Graph) -> Graph | None:
    """One graph for every batch size from traces g1 and g2 of the same program at two sizes: a copy of g2 whose
    differing integers (shapes, attributes, meta, the bodies of scans) are fitted as a*N + b, generated for N =
    g2's size; None when the graphs differ otherwise or a difference is not of that form."""
    sizes = batch_sizes(g1, g2)
    if sizes is None:
        return None
    try:
        out = _unify(g1, g2, *sizes)  # (which checks the structure)
    except _Mismatch:
        return None
    out.meta["dynamic"] = sizes[1]
    return out


def _unify(g1: Graph, g2: Graph, n1: int, n2: int) -> Graph:
    if not _same_structure(g1, g2):
        raise _Mismatch("structure")
    fit = lambda a, b: _fit(a, b, n1, n2, n2)  # noqa: E731
    out = Graph(g2.name)
    out.meta = fit(g1.meta, g2.meta)
    vmap: dict = {}
    for a, b in zip(g1.inputs, g2.inputs):
        v = out.add_input(TensorType(fit(a.shape, b.shape), b.dtype), b.name, b.meta.get("kind", "input"))
        v.meta.update(b.meta)
        vmap[b.id] = v
    for m1, m2 in zip(g1.nodes, g2.nodes):
        types = [TensorType(fit(a.shape, b.shape), b.dtype) for a, b in zip(m1.outputs, m2.outputs)]
        node = Node(m2.op, [vmap[v.id] for v in m2.inputs], fit(m1.attrs, m2.attrs), types)
        node.meta.update(m2.meta)
        for o, no in zip(m2.outputs, node.outputs):
            no.name = o.name
            no.meta.update(o.meta)
            vmap[o.id] = no
        out.nodes.append(node)
    out.outputs = [vmap[v.id] for v in g2.outputs]
    return out


def size_of(sym: Graph, g: Graph) -> int | None:
    """N at which g is the symbolic graph sym (every integer agreeing), or None."""
    dims = ((s, x) for a, b in zip(sym.inputs, g.inputs) for s, x in zip(a.shape, b.shape))
    s, x = next(((s, x) for s, x in dims if isinstance(s, Sym) and len(s.coefs) == 2), (None, None))
    if s is None:
        return None
    n, r = divmod(x - s.coefs[0], s.coefs[1])  # x = a*N + b
    return n if r == 0 and n >= MIN_N and _graph_agrees(sym, g, n) else None


def _graph_agrees(sym: Graph, g: Graph, n: int) -> bool:
    if not _same_structure(sym, g):
        return False
    meta = {k: v for k, v in sym.meta.items() if k != "dynamic"}
    gmeta = {k: v for k, v in g.meta.items() if k != "dynamic"}
    if not _agrees(meta, gmeta, n):
        return False
    for a, b in zip(sym.values(), g.values()):
        if not _agrees(a.shape, b.shape, n):
            return False
    return all(_agrees(m.attrs, m2.attrs, n) for m, m2 in zip(sym.nodes, g.nodes))
