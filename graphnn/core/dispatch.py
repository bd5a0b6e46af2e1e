"""The single entry point through which every tensor op runs.

Eager: the op's NumPy reference kernel computes the value now and, when gradients are wanted, an IR node is
recorded. Tracing (inside graphnn.compile): only the IR node is emitted.
"""

from __future__ import annotations

import numbers

import numpy as np

from graphnn.ir.graph import Node, Value
from graphnn.core import native_eager
from graphnn.core.dtypes import get_default_dtype
from graphnn.ir.registry import IRError, LinAlgError, describe, get_op, infer_node
from graphnn.ir.types import FLOAT_DTYPES, TensorType

from graphnn.compiler import tracer as _tracer
from graphnn.core.sym_number import SymNumber
from graphnn.core.grad_mode import (
    INFERENCE_REGIONS,
    current_scope,
    is_grad_enabled,
    is_inference_mode_enabled,
    model_frame,
    recording_sources,
    user_frame,
)

# PyTorch's grad_fn names for ops applied directly.


def grad_fn_name(op: str) -> str:
    """PyTorch's grad_fn name for results of `op` (its definition's torch_name, else derived from the op)."""
    return get_op(op).torch_name or op.title().replace("_", "") + "Backward0"


class OpError(ValueError, RuntimeError):
    """An op got inputs it cannot accept. The message names the op, the shapes and the user's source line. A
    ValueError, and a RuntimeError as PyTorch raises for the same inputs (`except RuntimeError` catches it)."""


class IndexOpError(OpError, IndexError):
    """An index out of range, found by compiled code (the message names the op, the traced line and the call)."""


class LinAlgOpError(OpError, LinAlgError):
    """A matrix a linear-algebra op cannot handle (singular, not positive-definite)."""


class IndexRangeError(IndexError, RuntimeError):
    """An index of gather / scatter out of range: an IndexError, and a RuntimeError as PyTorch raises there."""


def located(msg: str, scope: str | None = None) -> str:
    """`msg` followed by the module scope and the user's source line (file:line: code)."""
    where = user_frame()
    scope = current_scope() if scope is None else scope
    if scope:
        msg += f" [in module {scope}]"
    if where:
        msg += f"\n  at {where}"
    return msg


def op_error(e: Exception) -> OpError:
    """The user-facing error of an op's failure (an IndexError too when the cause was one: a dim out of range)."""
    return (IndexOpError if isinstance(e, IndexError) else OpError)(located(str(e)))


def check_concrete(op: str, args: list) -> None:
    """Eager ops need values: a symbolic tensor outside its trace escaped from graphnn.compile."""
    for i, t in enumerate(args):
        if getattr(t, "_data", 0) is None:
            from graphnn.core.tensor import TraceError, escaped_message

            raise TraceError(located(f"{op}: operand {i} {escaped_message(t)}"))


class Scalar:
    """A Python number used as an operand: it takes the dtype of the tensor it meets."""

    def __init__(self, value, dtype: str):
        self.value, self.dtype = value, dtype


def _scalar(x, ref: str | None):
    """A number operand: a Scalar, or for a number argument traced as a graph input (SymNumber) its 0-d tensor in
    the dtype the number would take."""
    if isinstance(x, SymNumber):
        return x.as_tensor(scalar_dtype(0.0 if x.kind is float else 0, ref))
    if not isinstance(x, numbers.Number):  # (None or a hook's stray RemovableHandle: not NaN, not float()'s error)
        raise TypeError(f"expected a tensor or a number as an operand, got {type(x).__name__}")
    return Scalar(x, scalar_dtype(x, ref))


_PY_OPERANDS = (int, float, bool)
_NUMPY = (np.integer, np.floating, np.ndarray)


def _plain_operand(x, tm):
    """A NumPy operand as PyTorch takes it: a NumPy integer or float scalar is the Python number it holds (so
    `int64 tensor + np.int64(1)` stays int64), a NumPy array a tensor of its dtype. (np.bool_ keeps its
    own way: PyTorch reads it as a float.)"""
    if isinstance(x, (np.integer, np.floating)):
        return x.item()
    if isinstance(x, np.ndarray):
        return tm.tensor(x)
    return x


def scalar_dtype(x, other_dtype: str | None) -> str:
    if isinstance(x, bool):
        return other_dtype or "bool"
    if isinstance(x, int):
        return other_dtype if other_dtype in ("float32", "float64", "int64") else "int64"
    return other_dtype if other_dtype in ("float32", "float64") else get_default_dtype()


def promotes(op: str) -> bool:
    """Does op bring its tensor operands to one dtype (an elementwise op of two or more operands; for select, the
    operands after the condition)? Such ops follow PyTorch's rule for 0-d tensors below."""
    d = get_op(op)
    return d.scalar is not None and (d.num_inputs or 0) >= 2


_ORDER = {"bool": 0, "int64": 1, "float32": 2, "float64": 3}


def _category(dt: str) -> int:
    return 2 if dt in ("float32", "float64") else _ORDER[dt]


def _combine(higher: str | None, lower: str | None) -> str | None:
    """PyTorch's combine_categories: dimensioned tensors decide the dtype unless a 0-d tensor has a higher
    category (bool < integer < floating)."""
    if higher is None:
        return lower
    if lower is None or _category(higher) >= 2:
        return higher
    if higher == "bool" or _category(lower) >= 2:
        return max(higher, lower, key=_ORDER.get)
    return higher


def _promote_zero_dim(op: str, inputs: list) -> list:
    """Cast tensor operands to PyTorch's result dtype when a 0-d tensor meets a dimensioned tensor of the same
    category (float32 tensor * float64 0-d tensor is float32, as in PyTorch; the IR alone would give float64)."""
    Tensor = _tensor.Tensor
    # operands the op converts to a fixed dtype (select's bool condition) take no part in the promotion
    fixed = get_op(op).operand_dtypes(["int64"] * len(inputs), "float64")
    first = 1 if fixed and fixed[0] == "bool" else 0
    ts = [t for t in inputs[first:] if isinstance(t, Tensor)]
    if len(ts) < 2:
        return inputs
    dts = {t.dtype_name for t in ts}
    if len(dts) == 1 or all(t.ndim for t in ts) or not any(t.ndim for t in ts):
        return inputs
    dim = max((t.dtype_name for t in ts if t.ndim), key=_ORDER.get)
    zero = max((t.dtype_name for t in ts if not t.ndim), key=_ORDER.get)
    want = _combine(dim, zero)
    return inputs[:first] + [
        t.type_as_dtype(want) if isinstance(t, Tensor) and t.dtype_name != want else t for t in inputs[first:]
    ]


op_observer = None  # set by graphnn.profiler while it records: op_observer(op, inputs) -> done(results)

_tensor = None  # the graphnn.core.tensor module (which imports this one), bound on first use


def _tensor_module():
    global _tensor
    import importlib

    _tensor = importlib.import_module(__package__ + ".tensor")
    return _tensor


def _operands(inputs: list, tm, tracer):
    """(tensor operands, their dtypes), their views checked current; None when a NumPy scalar or array is among
    the operands."""
    Tensor = tm.Tensor
    tensors, dts = [], []
    for t in inputs:
        if isinstance(t, Tensor):
            if t._view_gen is not None:
                tm.check_view_current(t, tracer)
            tensors.append(t)
            dts.append(t.dtype_name)
        elif type(t) not in _PY_OPERANDS and isinstance(t, _NUMPY):
            return None
    return tensors, dts


def apply(op: str, inputs: list, attrs: dict | None = None, name: str | None = None):
    """Run (or trace) `op` on tensors / Python numbers; returns a Tensor or a tuple of Tensors."""
    done = op_observer(op, inputs) if op_observer is not None else None  # the profiler: one global check
    tm = _tensor or _tensor_module()
    Tensor = tm.Tensor
    d = get_op(op)

    attrs = attrs or {}
    tracer = _tracer.current()
    found = _operands(inputs, tm, tracer)
    if found is None:  # (NumPy operands: as PyTorch takes them)
        inputs = [_plain_operand(t, tm) for t in inputs]
        found = _operands(inputs, tm, tracer)
    tensors, dts = found
    # (torch.sqrt(int tensor): float32; an int tensor / a float64 0-d tensor is float64 by promotion)
    if d.int_to_float and dts and not any(x in FLOAT_DTYPES for x in dts):
        want = get_default_dtype()
        inputs = [t.type_as_dtype(want) if isinstance(t, Tensor) else t for t in inputs]
        tensors = [t for t in inputs if isinstance(t, Tensor)]
        dts = [t.dtype_name for t in tensors]
    edges = None
    if len(dts) > 1 and d.scalar is not None and (d.num_inputs or 0) >= 2 and any(x != dts[-1] for x in dts):
        promoted = _promote_zero_dim(op, inputs)
        if promoted is not inputs:
            edges, inputs = tensors, promoted
            tensors = [t for t in inputs if isinstance(t, Tensor)]
            dts = [t.dtype_name for t in tensors]
    if len(tensors) == len(inputs):
        args = inputs
    else:  # Python numbers take the dtype of the first non-bool tensor (select's condition does not decide it)
        ref = next((x for x in dts if x != "bool"), dts[0] if dts else None)
        try:
            args = [t if isinstance(t, Tensor) else _scalar(t, ref) for t in inputs]
        except TypeError as e:
            raise TypeError(located(f"{op}: {e}")) from None
    # (detach's op: its result never requires grad, also inside graphnn.compile)
    needs_grad = is_grad_enabled() and any(t._requires_grad for t in tensors) and "detach" not in d.view
    if tracer is not None:
        outs = _trace_node(tracer, d, op, args, attrs, needs_grad, Tensor)
    else:
        outs = _run_eager(d, op, args, attrs, needs_grad, Tensor)
    if d.view and isinstance(inputs[0], Tensor):
        tm._mark_view(outs[0], inputs[0], op, tracer)
    if needs_grad:
        from graphnn.autograd import make_grad_fn

        fn = make_grad_fn(name or grad_fn_name(op), edges if edges is not None else tensors)
        for t in outs:
            if t._requires_grad:
                t.grad_fn = fn
    if done is not None:
        done(outs)
    return outs[0] if len(outs) == 1 else tuple(outs)


def _trace_node(tracer, d, op: str, args: list, attrs: dict, needs_grad: bool, Tensor) -> list:
    """Emit `op` into the trace's graph; returns symbolic tensors."""
    vals = [tracer.lift(t) for t in args]
    try:
        node = tracer.graph.add_node(op, vals, attrs)
    except IRError as e:
        raise op_error(e) from None
    node.meta["scope"] = current_scope()
    if d.index_checked:  # its native code reports bad indices with the user's line
        node.meta["source"] = user_frame()
    elif recording_sources():
        node.meta["source"] = model_frame()
    if not is_grad_enabled():
        node.meta["nograd"] = True
    return [Tensor._symbolic(o, tracer, needs_grad and o.type.is_float) for o in node.outputs]


def _run_eager(d, op: str, args: list, attrs: dict, needs_grad: bool, Tensor) -> list:
    """Compute `op` now with its reference kernel; with `needs_grad`, record its node (inputs, values)."""
    arrays, types = [], []
    for i, t in enumerate(args):
        if isinstance(t, Tensor):
            a = t._data
            if a is None:
                check_concrete(op, args)
            arrays.append(a)
            types.append(TensorType(a.shape, t.dtype_name))
        else:
            arrays.append(np.array(t.value, dtype=t.dtype))
            types.append(TensorType((), t.dtype))
    try:
        out_types = infer_node(op, types, attrs)
    except IRError as e:
        raise op_error(e) from None
    node = Node(op, (), attrs, out_types)
    try:
        results = native_eager.run(node, arrays)
    except IndexError as e:  # an index out of range: also an IndexError, as in PyTorch
        raise IndexOpError(located(f"{describe(op, types, attrs)}: {e}")) from None
    except np.linalg.LinAlgError as e:  # a singular matrix: also torch.linalg.LinAlgError
        raise LinAlgOpError(located(f"{describe(op, types, attrs)}: {e}")) from None
    except (ValueError, TypeError) as e:
        raise op_error(IRError(f"{describe(op, types, attrs)}: {e}")) from None
    if needs_grad:
        node.inputs = [
            t._eager_value() if isinstance(t, Tensor) else _const_value(a, ty) for t, a, ty in zip(args, arrays, types)
        ]
        node.meta["scope"] = current_scope()
    outs = []
    for o, a in zip(node.outputs, results):
        if needs_grad:
            o.data = a
        outs.append(Tensor._recorded(a, o) if needs_grad and o.type.dtype in FLOAT_DTYPES else Tensor._wrap(a))
    if INFERENCE_REGIONS[0] and is_inference_mode_enabled():  # (made inside inference_mode: inference tensors)
        for t in outs:
            t._inference = True
    return outs


def _const_value(a: np.ndarray, type_: TensorType | None = None) -> Value:
    """A recorded constant operand (a Python number's array), of type `type_` when the caller knows it."""
    if type_ is None:
        from graphnn.ir.registry import to_type

        type_ = to_type(a)
    v = Value(type_)
    v.data = a
    return v


def relabel(out, name: str, inputs: list):
    """Give the result of a composite function PyTorch's grad_fn name and edges."""
    if getattr(out, "requires_grad", False) and out._trace is None:
        from graphnn.autograd import make_grad_fn

        out.grad_fn = make_grad_fn(name, [t for t in inputs if t is not None and hasattr(t, "requires_grad")])
    return out
