"""The op registry: each primitive is defined once, with everything graphnn needs of it.

An OpDef holds
  infer(types, attrs)          -> output TensorType(s)            (shape/dtype rule)
  ref(arrays, attrs)           -> output ndarray(s)               (NumPy reference kernel; for an elementwise op
                                  it defaults to evaluating `scalar` with NumPy)
  grad(b, node, cotangents)    -> cotangent Value per input, or None (zero)   (gradient rule in IR ops;
                                  grad=None: the op has no rule, and differentiating through it raises MissingGradient)
  pattern                      -> fusion pattern (see PATTERNS)
and how the later stages treat it:
  scalar(s, *xs)               elementwise ops: one element as an expression of the scalar language (ir/scalar.py),
                               which codegen compiles; `operands` says which dtype the inputs are converted to first
  lowering                     other ops computed element by element inside a kernel: the name of their element
                               rule in codegen (index remaps, reductions, windows, gathers)
  schedule                     ops with a kernel schedule of their own (GEMM, scatter-add, ...): its family name
  monoid                       reductions: (identity, combine(s, acc, x)) in the scalar language; identity
                               "lowest" is the dtype's smallest value
  remap                        a pure index remap (reshape, transpose, ...): always computed inline by its consumers
  reads_once                   a consumer that reads each element of its input once per output element
  reads_views                  its schedule reads float operands in place through strided views (ir/views.py): index
                               remaps of a buffer feeding it (transpose, slice, reshape, ...) are not copied first
  fixed_attrs                  attributes that are never sizes (window geometry, axes, permutations): dynamic-shape
                               unification (ir/unify.py) never fits them as functions of the batch size; graphs that
                               differ in them are different programs
  int_to_float                 a floating-point op PyTorch also applies to integer and bool tensors (sqrt, exp,
                               sigmoid, ...): the user API converts such inputs to the default float dtype first
  slow_reference               its NumPy reference is many NumPy calls (windows, offsets), slow at any size: eager code
                               runs it as native code once hot, however cheap (graphnn/core/native_eager.py)
  index_checked                its kernels check data-dependent indices (a bad one is an IndexError after the call)
  host                         runs on the Python side: compiled code calls back into its reference kernel at its place
                               (codegen/host.py), a kernel of its own (define it with pattern "opaque")
  communicates                 a collective: it exchanges data with the other processes of the group (ir/collective.py),
                               so it is never folded at compile time, and every process must run it in the same order
  roundoff                     rounding-error rule (ir/roundoff.py; elementwise ops: derived from `scalar`)
  flops(node)                  floating-point operations (a multiply-add counts 2): summary and cost models
  torch_name                   PyTorch's grad_fn name for results of the op
  view                         the result may share its first input's storage (eager NumPy views): the PyTorch
                               functions that make such views, for messages ("view/reshape/flatten/...")
  api                          names under which graphnn exposes an elementwise op: graphnn.<name>(...) and
                               Tensor.<name>(...) (graphnn.ops installs them)
  rows(node, batched, rows)    row rule: its attributes when it computes `rows` rows of a batch (ir/rows.py), None when
                               an output row reads other rows; unset: derived from the pattern (elementwise ops,
                               reductions that keep axis 0); threads then run a scan of such ops on their own rows
  fuzz                         what the differential fuzzer must know (Fuzz)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from .blas import use_blas_threads
from .graph import Node, Value
from .symbolic import Sym
from .types import TensorType

# TVM's op patterns, from most to least fusable.
PATTERNS = ("elementwise", "broadcast", "injective", "reduce", "out_fusable", "opaque")


class IRError(ValueError):
    """An op was applied to inputs it does not accept (names the op and the shapes)."""


class IRIndexError(IRError, IndexError):
    """An IRError for a dimension or position out of range (an IndexError, as PyTorch raises there)."""


class LinAlgError(RuntimeError):
    """A matrix a linear-algebra op cannot factor or invert (singular, not positive-definite): torch.linalg's
    LinAlgError, which the eager (OpError) and compiled (HostCallError) errors of such ops also are."""


class MissingGradient(NotImplementedError):
    """An op has no gradient rule for the requested input."""


@dataclass(frozen=True)
class Fuzz:
    """Traits the fuzzer reads. `generator` names a tools.fuzz_gen family that draws the op's operands and
    attributes (None: the generic one for elementwise/broadcast ops of this arity); `domain` the operand values
    the op is meant for, one for all operands or one per operand: "any", "pos" (positive: log, sqrt, a pow base),
    "away" (from 0: a divisor); `kinks` where the result jumps or kinks, so inexact operands must stay away from
    there: "zero" (at 0: relu, abs, sign, logical ops), "ties" (where two operands are equal: comparisons,
    maximum), "reduce_ties" / "pool_ties" (where a reduction's or pooling window's top two values tie),
    "sort_ties" (where any two values of a row along the op's axis tie: sorting),
    "cast" (casts: at 0 to bool, at integers to int64), "integers" (rounding: at integers and halves), "quotients"
    (fmod: where x / y is an integer), "poles" (the gamma family: at 0 and the negative integers); `nonfinite`: may
    give Inf/NaN from finite operands (log 0, x / 0); `singular`: operand values where the result or its derivative is infinite or the domain
    ends (+-1 for atanh, asin, acos, erfinv; 1 for acosh), which inexact operands must stay farther from than
    their rounding error (compiled code may round them onto the point: tanh saturating to exactly 1);
    `value_errors`: the reference rejects some operand values (negative integer powers);
    `smooth`: differentiable at generic operands, so finite differences check its gradient; `exact`: compiled
    code matches NumPy bit for bit (data movement, selection); `body`: may appear in a scan body; `heavy`: drawn
    half as often; `skip`: not drawn at all (needs context the fuzzer lacks)."""

    generator: str | None = None
    domain: object = "any"
    kinks: str = ""
    nonfinite: bool = False
    singular: tuple = ()
    value_errors: bool = False
    smooth: bool = False
    exact: bool = False
    body: bool = False
    heavy: bool = False
    skip: bool = False


def _size(shape) -> int:
    return math.prod(shape) if shape else 1


def default_flops(node: Node) -> int:
    """One operation per output element (elementwise), per input element (reductions); 0 for data movement."""
    pattern = get_op(node.op).pattern
    if pattern == "reduce":
        return _size(node.inputs[0].shape)
    if pattern in ("elementwise", "broadcast"):
        return _size(node.outputs[0].shape)
    return 0


@dataclass
class OpDef:
    name: str
    infer: Callable
    ref: Callable
    grad: Callable | None
    pattern: str
    num_inputs: int | None = None  # None: variadic
    doc: str = ""
    scalar: Callable | None = None
    operands: object = "out"
    lowering: str | None = None
    schedule: str | None = None
    monoid: tuple | None = None
    remap: bool = False
    reads_once: bool = False
    reads_views: bool = False
    slow_reference: bool = False
    int_to_float: bool = False
    fixed_attrs: tuple = ()
    index_checked: bool = False
    communicates: bool = False
    host: bool = False
    roundoff: Callable | None = None
    flops: Callable = default_flops
    torch_name: str | None = None
    api: tuple = ()
    view: str = ""
    rows: Callable | None = None
    fuzz: Fuzz = field(default_factory=Fuzz)

    def infer_types(self, types: list, attrs: dict) -> list:
        out = self.infer(types, attrs)
        return list(out) if isinstance(out, (list, tuple)) else [out]

    def run(self, arrays: list, attrs: dict) -> list:
        """The reference kernel's results; a heavy op (one with a schedule) first sets NumPy's BLAS threads
        (blas.py: one by default)."""
        if self.schedule is not None:
            use_blas_threads()
        out = self.ref(arrays, attrs)
        return list(out) if isinstance(out, (list, tuple)) else [out]

    def operand_dtypes(self, in_dtypes: list, out_dtype: str) -> list:
        """The dtype each input is converted to before `scalar` sees it."""
        mode = self.operands
        if callable(mode):
            return list(mode(in_dtypes, out_dtype))
        if mode == "out":
            return [out_dtype] * len(in_dtypes)
        if mode == "promoted":
            from .types import promote

            common = in_dtypes[0]
            for d in in_dtypes[1:]:
                common = promote(common, d)
            return [common] * len(in_dtypes)
        return list(in_dtypes)  # "none"

    def compute_dtype(self, in_dtypes: list, out_dtype: str) -> str:
        """`s.dtype` of the scalar expression: the operands' common dtype ("promoted", or "none": the first
        input's), else the result's."""
        if self.operands in ("promoted", "none") and in_dtypes:
            return self.operand_dtypes(in_dtypes, out_dtype)[0]
        return out_dtype


OPS: dict[str, OpDef] = {}


def register(
    name: str,
    *,
    infer: Callable,
    ref: Callable | None = None,
    grad: Callable | None,
    pattern: str,
    num_inputs: int | None = None,
    doc: str = "",
    **traits,
) -> OpDef:
    """Define primitive `name` (see OpDef for the traits). An elementwise op given only `scalar` gets a reference
    kernel that evaluates the expression with NumPy."""
    if name in OPS:
        raise ValueError(f"op {name!r} registered twice")
    if pattern not in PATTERNS:
        raise ValueError(f"unknown fusion pattern {pattern!r}")
    unknown = set(traits) - set(OpDef.__dataclass_fields__)
    if unknown:
        raise TypeError(f"register({name!r}): unknown traits {sorted(unknown)}")
    d = OpDef(name, infer, ref, grad, pattern, num_inputs, doc, **traits)
    if d.ref is None:
        if d.scalar is None:
            raise ValueError(f"op {name!r} needs a reference kernel (ref) or a scalar expression")
        d.ref = _scalar_reference(d)
    OPS[name] = d
    return d


def _scalar_reference(d: OpDef) -> Callable:
    """A NumPy reference kernel from an elementwise op's scalar expression."""
    from .scalar import evaluate

    def ref(arrays, attrs):
        out = d.infer_types([to_type(a) for a in arrays], attrs)[0]
        dts = d.operand_dtypes([to_type(a).dtype for a in arrays], out.dtype)
        args = [np.asarray(a).astype(t, copy=False) for a, t in zip(arrays, dts)]
        compute = d.compute_dtype([to_type(a).dtype for a in arrays], out.dtype)
        result = evaluate(d.scalar, compute, attrs, args)
        return np.broadcast_to(result, out.shape).astype(out.dtype)

    return ref


def node_flops(node: Node) -> int:
    """Estimated floating-point operations of one node (its definition's cost rule)."""
    f = get_op(node.op).flops(node)
    return f if isinstance(f, Sym) else int(f)


def graph_flops(graph) -> int:
    """Estimated floating-point operations of a whole graph."""
    return sum(node_flops(n) for n in graph.nodes)


def family(node: Node) -> str | None:
    """The element rule family of a node's op (OpDef.lowering): passes that pattern-match index remaps use it."""
    return get_op(node.op).lowering


def get_op(name: str) -> OpDef:
    try:
        return OPS[name]
    except KeyError:
        raise IRError(f"unknown op {name!r}") from None


def describe(op: str, types: list, attrs: dict) -> str:
    shown = {k: v for k, v in attrs.items() if not isinstance(v, np.ndarray) and not hasattr(v, "ir_key")}
    return f"{op}({', '.join(str(t) for t in types)})" + (f" with {shown}" if shown else "")


_INFERRED: dict = {}  # (op, input types, attributes) -> output types: rules are pure, eager ops repeat
_KEYABLE = (int, float, str, bool, type(None), tuple)
MAX_INFERRED = 1 << 16


def infer_node(op: str, types: list, attrs: dict) -> list:
    """Run an op's shape/dtype rule, turning any failure into an IRError naming op and shapes. Results are
    remembered for attributes of plain values (an eager loop applies the same ops to the same types each step)."""
    key = None
    try:
        key = (op, *types, *[(k, type(v), v) for k, v in attrs.items() if type(v) in _KEYABLE or _unkeyable()])
        out = _INFERRED.get(key)
    except (TypeError, _Unkeyable):
        key = out = None
    if out is not None:
        return list(out)
    out = _infer(op, types, attrs)
    if key is not None:
        if len(_INFERRED) >= MAX_INFERRED:
            _INFERRED.clear()
        _INFERRED[key] = tuple(out)
    return out


class _Unkeyable(Exception):
    pass


def _unkeyable():
    raise _Unkeyable


def _infer(op: str, types: list, attrs: dict) -> list:
    d = get_op(op)
    if d.num_inputs is not None and len(types) != d.num_inputs:
        raise IRError(f"{op} takes {d.num_inputs} inputs, got {len(types)}")
    try:
        return d.infer_types(types, attrs)
    except IRError:
        raise
    except IndexError as e:
        raise IRIndexError(f"{describe(op, types, attrs)}: {e}") from None
    except (ValueError, TypeError, KeyError) as e:
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
        vals = [
            v if isinstance(v, Value) else self.scalar(v, ref.dtype if ref is not None else "float32") for v in inputs
        ]
        outs = self._emit(op, vals, attrs)
        return outs[0] if len(outs) == 1 else tuple(outs)

    def scalar(self, x, dtype: str) -> Value:
        return self._emit(
            "full", [], {"value": float(x) if dtype in ("float32", "float64") else int(x), "shape": (), "dtype": dtype}
        )[0]

    def full(self, value, shape, dtype) -> Value:
        return self._emit("full", [], {"value": value, "shape": tuple(shape), "dtype": dtype})[0]

    def __getattr__(self, op: str):
        if op.startswith("_") or op not in OPS:
            raise AttributeError(op)
        method = lambda self, *inputs, **attrs: self.emit(op, *inputs, **attrs)
        setattr(Emitter, op, method)  # later `b.<op>` lookups find it on the class, without this hook
        return getattr(self, op)


class GraphEmitter(Emitter):
    """Emits nodes at the end of a graph. With `fold`, each node is simplified as it is emitted (the local identities
    of passes.simplify: x*1, transpose(transpose(x)), ...) and scalar constants are emitted once: an eager
    backward() builds and runs its gradient graph without the pass pipeline, so this keeps it small."""

    def __init__(self, graph, meta: dict | None = None, fold: bool = False):
        self.graph = graph
        self.meta = meta or {}
        self.fold = fold
        self._scalars: dict = {}

    def scalar(self, x, dtype: str) -> Value:
        if not self.fold:
            return super().scalar(x, dtype)
        key = (type(x), repr(x), dtype)  # repr: -0.0 and 0.0 are equal keys otherwise
        v = self._scalars.get(key)
        if v is None:
            v = self._scalars[key] = super().scalar(x, dtype)
        return v

    def _emit(self, op, inputs, attrs):
        node = make_node(op, inputs, attrs)
        if self.fold and len(node.outputs) == 1:
            from .passes.simplify import local_rewrite

            r = local_rewrite(node)
            if isinstance(r, Value):
                return [r]
            if isinstance(r, Node):
                node = r
        self.graph.nodes.append(node)
        node.meta.update(self.meta)
        return node.outputs


def to_type(a: np.ndarray) -> TensorType:
    from .types import canonical_dtype

    return TensorType(a.shape, canonical_dtype(a.dtype))
