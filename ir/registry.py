"""The op registry: each primitive is defined once, with every rule graphnn needs for it.

An OpDef holds
  infer(types, attrs)          -> output TensorType(s)            (shape/dtype rule)
  ref(arrays, attrs)           -> output ndarray(s)               (NumPy reference kernel)
  grad(b, node, cotangents)    -> cotangent Value per input, or None (zero)   (gradient rule in IR ops;
                                  grad=None: the op has no rule, and differentiating through it raises MissingGradient)
  pattern                      -> fusion pattern (see PATTERNS)
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from .graph import Node, Value
from .types import TensorType

# TVM's op patterns, from most to least fusable.
PATTERNS = ("elementwise", "broadcast", "injective", "reduce", "out_fusable", "opaque")


class IRError(ValueError):
    """An op was applied to inputs it does not accept (names the op and the shapes)."""


class MissingGradient(NotImplementedError):
    """An op has no gradient rule for the requested input."""


@dataclass
class OpDef:
    name: str
    infer: Callable
    ref: Callable
    grad: Callable | None
    pattern: str
    num_inputs: int | None = None  # None: variadic
    doc: str = ""
    extra: dict = field(default_factory=dict)

    def infer_types(self, types: list, attrs: dict) -> list:
        out = self.infer(types, attrs)
        return list(out) if isinstance(out, (list, tuple)) else [out]

    def run(self, arrays: list, attrs: dict) -> list:
        out = self.ref(arrays, attrs)
        return list(out) if isinstance(out, (list, tuple)) else [out]


OPS: dict[str, OpDef] = {}


def register(name: str, *, infer: Callable, ref: Callable, grad: Callable | None, pattern: str,
             num_inputs: int | None = None, doc: str = "", **extra) -> OpDef:
    if name in OPS:
        raise ValueError(f"op {name!r} registered twice")
    if pattern not in PATTERNS:
        raise ValueError(f"unknown fusion pattern {pattern!r}")
    OPS[name] = OpDef(name, infer, ref, grad, pattern, num_inputs, doc, extra)
    return OPS[name]


def get_op(name: str) -> OpDef:
    try:
        return OPS[name]
    except KeyError:
        raise IRError(f"unknown op {name!r}") from None


def describe(op: str, types: list, attrs: dict) -> str:
    shown = {k: v for k, v in attrs.items() if not isinstance(v, np.ndarray) and not hasattr(v, "ir_key")}
    return f"{op}({', '.join(str(t) for t in types)})" + (f" with {shown}" if shown else "")


def infer_node(op: str, types: list, attrs: dict) -> list:
    """Run an op's shape/dtype rule, turning any failure into an IRError naming op and shapes."""
    d = get_op(op)
    if d.num_inputs is not None and len(types) != d.num_inputs:
        raise IRError(f"{op} takes {d.num_inputs} inputs, got {len(types)}")
    try:
        return d.infer_types(types, attrs)
    except IRError:
        raise
    except (ValueError, TypeError, IndexError, KeyError) as e:
        raise IRError(f"{describe(op, types, attrs)}: {e}") from None


def make_node(op: str, inputs: list, attrs: dict) -> Node:
    return Node(op, inputs, attrs, infer_node(op, [v.type for v in inputs], attrs))


class Emitter:
    """Emits IR ops; gradient rules are written against this interface.

    `b.add(x, y)` emits op "add". Python numbers become scalar constants of the other operand's dtype.
    Subclasses decide where nodes go (a Graph) by overriding `_emit`.
    """

    def _emit(self, op: str, inputs: list, attrs: dict) -> list:
        raise NotImplementedError

    def emit(self, op: str, *inputs, **attrs):
        vs = [v for v in inputs if isinstance(v, Value)]
        ref = next((v for v in vs if v.dtype != "bool"), vs[0] if vs else None)
        vals = [v if isinstance(v, Value) else self.scalar(v, ref.dtype if ref is not None else "float32") for v in inputs]
        outs = self._emit(op, vals, attrs)
        return outs[0] if len(outs) == 1 else tuple(outs)

    def scalar(self, x, dtype: str) -> Value:
        return self._emit("full", [], {"value": float(x) if dtype in ("float32", "float64") else int(x), "shape": (), "dtype": dtype})[0]

    def full(self, value, shape, dtype) -> Value:
        return self._emit("full", [], {"value": value, "shape": tuple(shape), "dtype": dtype})[0]

    def __getattr__(self, op: str):
        if op.startswith("_") or op not in OPS:
            raise AttributeError(op)
        return lambda *inputs, **attrs: self.emit(op, *inputs, **attrs)


class GraphEmitter(Emitter):
    """Emits nodes at the end of a graph."""

    def __init__(self, graph, meta: dict | None = None):
        self.graph = graph
        self.meta = meta or {}

    def _emit(self, op, inputs, attrs):
        node = self.graph.add_node(op, inputs, attrs)
        node.meta.update(self.meta)
        return node.outputs


def to_type(a: np.ndarray) -> TensorType:
    from .types import canonical_dtype

    return TensorType(a.shape, canonical_dtype(a.dtype))
