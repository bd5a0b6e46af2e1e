"""Graph, Node and Value: the IR every stage of graphnn works on.

A Graph is a list of inputs, a topologically ordered list of nodes and a list of outputs.
Each Node applies one registered primitive op to input Values and defines output Values.
"""

from __future__ import annotations

import hashlib
import itertools
from typing import Iterable

import numpy as np

from .types import TensorType

_ids = itertools.count()


class Value:
    """An SSA value: produced by exactly one node (or a graph input)."""

    __slots__ = ("type", "producer", "index", "name", "data", "meta", "id", "__weakref__")

    def __init__(self, type: TensorType, producer: "Node | None" = None, index: int = 0, name: str | None = None):
        self.type = type
        self.producer = producer
        self.index = index
        self.name = name
        self.data = None  # eager value, when the value was computed eagerly
        self.meta: dict = {}
        self.id = next(_ids)

    @property
    def shape(self) -> tuple:
        return self.type.shape

    @property
    def dtype(self) -> str:
        return self.type.dtype

    def __repr__(self) -> str:
        return f"Value({self.name or self.id}: {self.type})"


class Node:
    """One application of a primitive op."""

    __slots__ = ("op", "inputs", "attrs", "outputs", "meta", "id")

    def __init__(self, op: str, inputs: list, attrs: dict, out_types: list):
        self.op = op
        self.inputs = list(inputs)
        self.attrs = dict(attrs)
        self.outputs = [Value(t, self, i) for i, t in enumerate(out_types)]
        self.meta: dict = {}
        self.id = next(_ids)

    @property
    def output(self) -> Value:
        return self.outputs[0]

    def __repr__(self) -> str:
        return f"Node({self.op}, {[str(v.type) for v in self.inputs]} -> {[str(v.type) for v in self.outputs]})"


def format_attr(v) -> str:
    if isinstance(v, np.ndarray):
        digest = hashlib.sha256(np.ascontiguousarray(v).tobytes()).hexdigest()[:8]
        if v.size <= 4:  # shape and dtype too: [[]] or [1.0] alone do not identify an array
            return f"array<{v.dtype}{list(v.shape)}>({v.tolist()})"
        return f"array<{v.dtype}{list(v.shape)}#{digest}>"
    if hasattr(v, "ir_key"):
        return v.ir_key()
    if isinstance(v, float):
        return repr(float(v))
    return repr(v)


class Graph:
    """A function in the IR: inputs -> nodes (topological order) -> outputs."""

    def __init__(self, name: str = "graph"):
        self.name = name
        self.inputs: list[Value] = []
        self.nodes: list[Node] = []
        self.outputs: list[Value] = []
        self.meta: dict = {}

    # -- construction -------------------------------------------------
    def add_input(self, type: TensorType, name: str | None = None, kind: str = "input") -> Value:
        v = Value(type, None, 0, name)
        v.meta["kind"] = kind
        self.inputs.append(v)
        return v

    def add_node(self, op: str, inputs: list, attrs: dict | None = None) -> Node:
        from .registry import make_node

        node = make_node(op, inputs, attrs or {})
        self.nodes.append(node)
        return node

    def emit(self, op: str, *inputs: Value, **attrs) -> Value:
        """Append one node and return its first output."""
        return self.add_node(op, list(inputs), attrs).outputs[0]

    # -- queries -------------------------------------------------------
    def users(self) -> dict:
        """Map value id -> list of (node, input position) that read it."""
        uses: dict = {}
        for n in self.nodes:
            for i, v in enumerate(n.inputs):
                uses.setdefault(v.id, []).append((n, i))
        return uses

    def values(self) -> Iterable[Value]:
        yield from self.inputs
        for n in self.nodes:
            yield from n.outputs

    def replace_uses(self, old: Value, new: Value) -> None:
        """Make every reader of `old` (nodes and graph outputs) read `new` instead."""
        for n in self.nodes:
            n.inputs = [new if v is old else v for v in n.inputs]
        self.outputs = [new if v is old else v for v in self.outputs]

    def copy(self) -> "Graph":
        """A structural copy with fresh Values and Nodes (data and meta carried over). Each copied node's
        meta["origin"] names the node it descends from (the first original's id), which links stages."""
        g = Graph(self.name)
        g.meta = dict(self.meta)
        vmap: dict = {}
        for v in self.inputs:
            nv = g.add_input(v.type, v.name, v.meta.get("kind", "input"))
            nv.meta.update(v.meta)
            nv.data = v.data
            vmap[v.id] = nv
        for n in self.nodes:
            nn_ = Node(n.op, [vmap[v.id] for v in n.inputs], n.attrs, [o.type for o in n.outputs])
            nn_.meta.update(n.meta)
            nn_.meta.setdefault("origin", n.id)
            for o, no in zip(n.outputs, nn_.outputs):
                no.name, no.data = o.name, o.data
                no.meta.update(o.meta)
                vmap[o.id] = no
            g.nodes.append(nn_)
        g.outputs = [vmap[v.id] for v in self.outputs]
        return g

    # -- text form and hash ---------------------------------------------
    def _names(self) -> dict:
        names: dict = {}
        used: set = set()
        for i, v in enumerate(self.values()):
            base = v.name or str(i)
            name = base if base not in used else f"{base}.{i}"
            used.add(name)
            names[v.id] = name
        return names

    def to_text(self, anonymous: bool = False) -> str:
        """Readable text form; with anonymous=True, value names are positional (used for hashing)."""
        if anonymous:
            names = {v.id: str(i) for i, v in enumerate(self.values())}
        else:
            names = self._names()
        fmt = lambda v: "%" + names.get(v.id, f"?{v.id}")  # noqa: E731
        head = ", ".join(
            f"{fmt(v)}: {v.type}" + ("" if anonymous else f" [{v.meta.get('kind', 'input')}]") for v in self.inputs
        )
        lines = [f"graph {self.name if not anonymous else ''}({head}) {{"]
        for n in self.nodes:
            outs = ", ".join(f"{fmt(o)}: {o.type}" for o in n.outputs)
            args = ", ".join(fmt(v) for v in n.inputs)
            attrs = ", ".join(f"{k}={format_attr(a)}" for k, a in sorted(n.attrs.items()))
            line = f"  {outs} = {n.op}({args})" + (f" {{{attrs}}}" if attrs else "")
            if not anonymous and n.meta.get("scope"):
                line += f"  # {n.meta['scope']}"
            lines.append(line)
        lines.append("  return " + ", ".join(fmt(v) for v in self.outputs))
        lines.append("}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.to_text()

    svg_renderer = None  # Graph -> SVG text; graphnn.viz installs its drawing (ir/ imports nothing above it)

    def _repr_svg_(self) -> str | None:
        """Jupyter display: the graph drawn by graphnn.viz (Graphviz layout), once graphnn.viz is imported."""
        return Graph.svg_renderer(self) if Graph.svg_renderer is not None else None

    def structural_hash(self) -> str:
        """Deterministic hash of the graph's structure, types and attributes (not names or data of inputs)."""
        return hashlib.sha256(self.to_text(anonymous=True).encode()).hexdigest()[:24]
