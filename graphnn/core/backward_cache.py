"""Reuse of eager gradient graphs.

An eager `backward()` differentiates the graph its forward pass recorded. A training loop records the same graph at
every step - the same ops, attributes, types and connections, only the arrays differ - so differentiating it again
gives the same gradient graph. Recorded graphs are therefore keyed by their structure; the first backward() of a
structure builds the gradient graph as usual and keeps its gradient nodes as a program whose inputs are the
forward values they read (by position in the recorded graph) and the seeds. Later backward() calls of that
structure run the program on the new step's arrays, and after GRAPHNN_HOT_BACKWARD of them it runs as native code
(compiled as graphnn.compile compiles graphs): a whole eager backward becomes one native call.

Only what decides the gradient graph is in the key, so reuse is exact: vjp rules read types and attributes, never
arrays. An object attribute is keyed by the identity of what it stands for when it says (`cache_identity()`: a call
of graphnn.compile's code is keyed by its compiled program), and the kept program refers to such objects weakly
(`weakened()`), so a cache never keeps compiled code alive; the program is dropped once one of them is gone.
Recorded graphs with gradient hooks, array attributes of more than a few elements, other object attributes (custom
autograd functions; a scan's body is keyed by its structural hash) or higher-order gradients (create_graph) are not
cached.
"""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict

import numpy as np

from graphnn.ir import config
from graphnn.ir.extract import extract
from graphnn.ir.graph import Graph
from graphnn.ir.ops.scan import Body

MAX_KEPT = 32  # programs kept (least recently used dropped)
SMALL_ARRAY = 16  # array attributes up to this size are part of a key (larger ones make a graph uncached)

_lock = threading.Lock()
_programs: OrderedDict = OrderedDict()  # structure key -> Program
_SCALAR_TYPES = (int, str, bool, type(None))


def _attr_key(attrs: dict, idents: list):
    """A hashable, exact form of a node's attributes, or None when they cannot be keyed cheaply; the objects keyed by
    identity are appended to `idents`."""
    if not attrs:
        return ()
    out = []
    for name, x in attrs.items():
        t = type(x)
        if t in _SCALAR_TYPES:
            out.append((name, x))
        elif t is float or t is tuple or t is list:
            out.append((name, repr(x)))  # repr: tells -0.0 from 0.0, and NaN equals itself
        elif isinstance(x, np.ndarray):
            if x.size > SMALL_ARRAY:
                return None
            out.append((name, x.dtype.str, x.shape, x.tobytes()))
        elif isinstance(x, Body):  # a scan's body: pure IR, keyed by its structure
            out.append((name, "body", x.key))
        elif hasattr(x, "cache_identity"):  # (a compiled call: its program)
            ident = x.cache_identity()
            idents.append(ident)
            out.append((name, type(x).__name__, id(ident)))
        else:  # other objects (a custom op): not kept alive by a cache
            return None
    return tuple(out)


def structure_key(nodes: list, targets: list, seeds: list) -> tuple:
    """(key, position of each value by id, the values by position, the objects keyed by identity) of a recorded
    graph (its nodes in creation order), the values whose gradients are wanted and the seed arrays. Values are
    numbered in the order the nodes read and compute them, leaves included, so the numbering follows the structure
    only. key None: not cacheable."""
    pos: dict = {}
    values: list = []
    parts: list = []
    idents: list = []
    for n in nodes:
        a = _attr_key(n.attrs, idents)
        if a is None:
            return None, pos, values, idents
        refs = []
        for v in n.inputs:
            r = pos.get(v.id)
            if r is None:  # a leaf, first read here
                r = pos[v.id] = len(values)
                values.append(v)
                parts.append(v.type)
            refs.append(r)
        parts.append((n.op, a, tuple(refs), tuple(o.type for o in n.outputs)))
        for o in n.outputs:
            pos[o.id] = len(values)
            values.append(o)
    parts.append(tuple(pos.get(v.id, -1) for v in targets))
    parts.append(tuple((s.shape, s.dtype.str) for s in seeds))
    return tuple(parts), pos, values, idents


class Program:
    """The gradient nodes of one recorded-graph structure, as a graph of the forward values they read."""

    def __init__(self, graph: Graph, reads: list, present: list, idents: list):
        self.graph = graph
        self.idents = [weakref.ref(o) for o in idents]  # the key's objects: alive while the program is valid
        self.reads = reads  # per graph input: a position in the recorded graph, or -1 - i for seed i
        self.present = present  # indices of the targets that have a gradient (the graph's outputs, in order)
        self.hits = 0
        self.native = None  # CompiledGraph once compiled; False when it cannot be
        self.lock = threading.Lock()

    def gather(self, by_position: list, seeds: list) -> tuple:
        """(the recorded values read, their arrays and the seed arrays, in the program's input order)."""
        values, arrays = [], []
        for r in self.reads:
            if r < 0:
                arrays.append(seeds[-1 - r])
            else:
                v = by_position[r]
                values.append(v)
                arrays.append(v.data)
        return values, arrays

    def run(self, arrays: list, run_node) -> list:
        from graphnn.ir.interpreter import interpret

        self.hits += 1
        native = self.native
        hot = config.get("GRAPHNN_HOT_BACKWARD")
        if native is None and self.hits >= hot:
            with self.lock:
                if self.native is None:
                    self.native = _compile(self.graph)
                native = self.native
        if native:
            from graphnn.compiler.program import run_native

            return run_native(native, arrays)
        # (the inputs' types are the key's: unchecked)
        return interpret(self.graph, arrays, None, run_node, checked=False)


def _compile(graph: Graph):
    """The program's native code (optimized and lowered as graphnn.compile does), False when it has none or when
    it calls back into Python (a compiled call's backward: native code around it only adds a host call's cost)."""
    from graphnn.codegen import CompiledGraph, LoweringError
    from graphnn.compiler.program import _lowered, _optimized
    from graphnn.ir.registry import get_op

    if any(get_op(n.op).host for n in graph.nodes):
        return False

    try:
        return CompiledGraph(_lowered(_optimized(graph)))
    except (LoweringError, NotImplementedError):
        return False


def lookup(key) -> Program | None:
    if key is None or not config.get("GRAPHNN_HOT_BACKWARD"):
        return None
    with _lock:
        p = _programs.get(key)
        if p is not None:
            if not all(r() is not None for r in p.idents):  # (its id now names another object)
                del _programs[key]
                return None
            _programs.move_to_end(key)
        return p


def store(key, g: Graph, recorded: set, pos: dict, seeds: list, grads: list, idents: list) -> None:
    """Keep the gradient nodes of g (the gradient graph just built and pruned, whose nodes are the recorded ones,
    ids in `recorded`, and the gradient nodes after them) as the program of `key`, whose objects keyed by identity
    are `idents`."""
    if key is None or not config.get("GRAPHNN_HOT_BACKWARD"):
        return
    seed_pos = {v.id: i for i, v in enumerate(seeds)}
    reads, seen = [], set()

    def read(v) -> None:
        if v.id in seen or (v.producer is not None and v.producer.id not in recorded):
            return
        seen.add(v.id)
        if v.id in seed_pos:
            reads.append((v, -1 - seed_pos[v.id]))
        elif v.id in pos:
            reads.append((v, pos[v.id]))
        else:
            raise LookupError(v)  # a value from outside the recorded graph (not expected): do not cache

    try:
        for n in g.nodes:
            if n.id not in recorded:
                for v in n.inputs:
                    read(v)
        for v in g.outputs:
            read(v)
    except LookupError:
        return
    prog = extract(g, [v for v, _ in reads], list(g.outputs), "backward")
    for v in prog.inputs:  # no references to this step's tensors or versions
        v.meta.clear()
    for n in prog.nodes:
        kept = {k: n.meta[k] for k in ("phase", "scope") if k in n.meta}
        n.meta.clear()
        n.meta.update(kept)
        for name, x in n.attrs.items():
            if hasattr(x, "weakened"):
                n.attrs[name] = x.weakened()
            elif not (type(x) in _SCALAR_TYPES or isinstance(x, (float, tuple, list, np.ndarray, Body))):
                return  # an object the program would keep alive
    program = Program(prog, [r for _, r in reads], [i for i, gr in enumerate(grads) if gr is not None], idents)
    with _lock:
        _programs[key] = program
        while len(_programs) > MAX_KEPT:
            _programs.popitem(last=False)


def clear() -> None:
    """Forget every program (tests)."""
    with _lock:
        _programs.clear()
