"""Tensor: an n-dimensional array that records the IR of the ops applied to it."""

from __future__ import annotations

import copy
import math
import numbers
import warnings
import weakref

import numpy as np

from graphnn.ir.graph import Value
from graphnn.ir.ops._util import norm_axes
from graphnn.ir.registry import get_op
from graphnn.ir.types import TensorType, canonical_dtype, promote

from graphnn.core import random as _random
from graphnn.compiler import tracer as _tracer
from graphnn.core.dispatch import OpError, apply, located, relabel
from graphnn.core.grad_mode import INFERENCE_REGIONS, is_inference_mode_enabled
from graphnn.core.device import CPU, check_device, is_device
from graphnn.core import dtypes as _half_dtypes
from graphnn.core.complex_tensor import ComplexTensor
from graphnn.core.complex_tensor import matmul as complex_matmul
from graphnn.core.dtypes import dtype_of as _dtype_obj, get_default_dtype, to_dtype
from graphnn.core.sym_number import SymNumber


_DTYPE_NAMES = {np.dtype(n): n for n in ("float32", "float64", "int64", "bool")}


class Size(tuple):
    """Shape of a tensor (a tuple that prints like PyTorch's)."""

    def __repr__(self) -> str:
        return f"graphnn.Size({list(self)})"

    def numel(self) -> int:
        n = 1
        for s in self:
            n *= s
        return n

    def __getitem__(self, i):
        r = tuple.__getitem__(self, i)
        return Size(r) if isinstance(i, slice) else r  # (x.shape[1:].numel(), as PyTorch)

    def __add__(self, other):
        if not isinstance(other, tuple):
            return NotImplemented
        return Size(tuple(self) + tuple(other))

    def __radd__(self, other):
        if not isinstance(other, tuple):
            return NotImplemented
        return Size(tuple(other) + tuple(self))

    def __mul__(self, n):
        return Size(tuple(self) * n)

    __rmul__ = __mul__


class TraceError(RuntimeError):
    """A concrete value was asked of a tensor that only exists symbolically inside graphnn.compile."""


def check_dim(dim: int, ndim: int, what: str, t) -> int:
    """dim normalized to [0, ndim); out of range is PyTorch's IndexError, naming the op, the shape and the line."""
    n = max(ndim, 1)
    if not -n <= dim < n:
        from graphnn.core.dispatch import located

        raise IndexError(
            located(
                f"{what}({t._type}): dimension out of range (expected to be in range of [{-n}, {n - 1}], but got {dim})"
            )
        )
    return dim % n


def escaped_message(t) -> str:
    """Why a symbolic tensor of a finished trace has no value (it escaped graphnn.compile's tracing)."""
    p = t._value.producer if t._value is not None else None
    origin = (
        f"the result of {p.op}" + (f" in module {p.meta['scope']}" if p.meta.get("scope") else "") if p else "an input"
    )
    return (
        f"({t._type}, {origin}) was computed while graphnn.compile traced the model and has no value: the Python "
        "code of a compiled function runs only when it is traced, so tensors it stores (on a module, in a list) "
        "are symbolic; return them from the compiled function instead"
    )


# PyTorch's names of the dtypes in its messages (tensor types; C types of gradients).
_TORCH_TYPE = {"float32": "Float", "float64": "Double", "int64": "Long", "bool": "Bool"}
_C_TYPE = {"float32": "float", "float64": "double", "int64": "long int", "bool": "bool"}
_CATEGORY = {"bool": 0, "int64": 1, "float32": 2, "float64": 2}

_NATIVE_DTYPES = frozenset(np.dtype(n) for n in ("float32", "float64", "int64", "bool"))


_NOT_COMPARED = (str, bytes, list, tuple, dict, set)  # operands of == and != that give Python's answer, not a tensor


class Tensor:
    """A graphnn tensor. `Tensor(2, 3)` allocates (zero-filled); `Tensor([[1, 2]])` takes data (float32)."""

    __array_priority__ = 1000

    # Storage sharing (views, see _mark_view) and in-place bookkeeping; class defaults, set per instance when used.
    _base = None  # a view: the tensor whose storage it shows (detach / .data aliases too)
    _alias = False  # a full, non-differentiable alias (detach, .data, stop_gradient) rather than a view
    _view_op = None  # the op that made the view (named in errors)
    _grad_hooks = None  # gradient hooks (register_hook): a list, per tensor when used
    _view_gen = None  # rebinding count of the base when the view was taken (a later rebinding makes it stale)
    _view_src = None  # the tensor this view was taken of (its base, or another view of it)
    _view_fns = None  # (get(src) -> view, put(src, new view value) -> new src value): in-place ops on the view
    _view_key = None  # for indexing views: the index, to recognize `x[k] op= v` (see indexing.setitem)
    _vc = None  # [version, rebindings] of the storage, shared by a base and its views (see _counter)
    _retains_grad = False  # retain_grad() was called: backward sets .grad of this non-leaf
    _grad_of = None  # inside a trace: the tensor whose .grad this symbolic tensor was read from
    _captured = False  # a trace captured it: changing requires_grad must invalidate compiled code
    _temporary = False  # made by a factory while graphnn.compile traced (see _note_temporary)

    def __init__(self, *args, dtype=None, requires_grad: bool = False):
        dt = (
            to_dtype(dtype) if dtype is not None else getattr(type(self), "_default_dtype", None) or get_default_dtype()
        )
        if not args:  # Tensor(): an empty 1-d tensor, as PyTorch's
            data = np.zeros((0,), dtype=dt)
        elif len(args) == 1 and isinstance(args[0], np.ndarray) and dtype is None and type(self) is Tensor:
            data = args[0]
        elif len(args) == 1 and isinstance(args[0], Size):  # Tensor(x.size()): a tensor of that shape
            data = np.zeros(tuple(int(a) for a in args[0]), dtype=dt)
        elif len(args) == 1 and not isinstance(args[0], numbers.Integral):
            src = args[0]._data if isinstance(args[0], Tensor) else args[0]
            data = np.array(src, dtype=dt)
        elif all(isinstance(a, numbers.Integral) for a in args):
            data = np.zeros(tuple(int(a) for a in args), dtype=dt)
        elif len(args) == 1 and isinstance(args[0], (tuple, list)):
            data = np.array(args[0], dtype=dt)
        else:
            raise TypeError(f"Tensor() takes sizes or data, got {args!r}")
        self._init(np.asarray(data, order="C"), requires_grad)

    def __reduce_ex__(self, protocol):
        """Pickled (graphnn.save of a whole object, a DataLoader worker's batch) as its values, its requires_grad
        flag, its class and public attributes: a view or a result of recorded ops arrives as a leaf of its own, as
        PyTorch's do."""
        if type(self).__reduce__ is not Tensor.__reduce__:  # (a subclass with its own: a sparse tensor)
            return self.__reduce__()
        extra = {k: v for k, v in self.__dict__.items() if not k.startswith("_") and k != "grad_fn"}
        if self.__dict__.get("_is_buffer"):
            extra["_is_buffer"] = True
        data = np.array(self._concrete("pickling a tensor"))
        return (_unpickle_tensor, (type(self), data, self._requires_grad, extra))

    def __deepcopy__(self, memo):
        """A copy of everything, gradient and autograd links included (copy.deepcopy of a model in training)."""
        new = type(self).__new__(type(self))
        memo[id(self)] = new
        new.__dict__.update(copy.deepcopy(self.__dict__, memo))
        return new

    def _init(self, data, requires_grad=False):
        if data is not None and data.dtype not in _NATIVE_DTYPES:
            data = data.astype(canonical_dtype(data.dtype))
        self._data = data
        self._value = None
        self._trace = None
        self._accumulate = None
        self._grad = None
        self.grad_fn = None
        self._requires_grad = bool(requires_grad)
        return self

    @classmethod
    def _wrap(cls, data: np.ndarray, requires_grad: bool = False) -> "Tensor":
        t = Tensor.__new__(Tensor)
        return t._init(data, requires_grad)

    @classmethod
    def _recorded(cls, data: np.ndarray, value) -> "Tensor":
        """A tensor that requires grad standing for recorded value `value` (which holds `data`), with a fresh version
        counter: backward checks that its storage was not overwritten since."""
        t = Tensor.__new__(Tensor)._init(data, True)
        t._value = value
        t._vc = vc = [0, 0]
        value.meta["ver"] = (vc, 0)
        return t

    @classmethod
    def _symbolic(cls, value, tracer, requires_grad: bool) -> "Tensor":
        t = Tensor.__new__(Tensor)
        t._init(None, requires_grad)
        t._value, t._trace = value, tracer
        return t

    # -- identity and metadata --------------------------------------------------
    @property
    def _type(self) -> TensorType:
        return self._value.type if self._data is None else TensorType(self._data.shape, self.dtype_name)

    @property
    def dtype_name(self) -> str:
        if self._data is None:
            return self._value.type.dtype
        return _DTYPE_NAMES.get(self._data.dtype) or self._data.dtype.name

    @property
    def dtype(self):
        return _dtype_obj(self.dtype_name)

    @property
    def shape(self) -> Size:
        return Size(self._value.type.shape if self._data is None else self._data.shape)

    def size(self, dim: int | None = None):
        return self.shape if dim is None else self.shape[dim]

    def dim(self) -> int:
        return len(self.shape)

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def numel(self) -> int:
        return self.shape.numel()

    def is_floating_point(self) -> bool:
        return self.dtype_name in ("float32", "float64")

    def element_size(self) -> int:
        return int(np.dtype(self.dtype_name).itemsize)

    nelement = numel

    def __len__(self) -> int:
        if not self.shape:
            raise TypeError("len() of a 0-d tensor")
        return self.shape[0]

    @property
    def requires_grad(self) -> bool:
        return self._requires_grad

    @requires_grad.setter
    def requires_grad(self, value) -> None:
        value = bool(value)
        if value == self._requires_grad:
            tr = _tracer.current()
            if tr is not None and self._data is not None:  # (set by the traced code: set at every call too)
                tr.note_flag(self, "requires_grad", value)
            self._traced_leaf(value)
            return
        if self.grad_fn is not None:
            raise RuntimeError(
                "you can only change requires_grad flags of leaf variables. If you want to use a "
                "computed variable in a subgraph that doesn't require differentiation use "
                "var_no_grad = var.detach()."
            )
        if value and self.dtype_name not in ("float32", "float64"):
            raise RuntimeError("only Tensors of floating point dtype can require gradients")
        self._requires_grad = value
        tr = _tracer.current()
        if tr is not None and self._data is not None:
            tr.note_flag(self, "requires_grad", value)
        if self._captured:
            _tracer.state_changed()  # compiled code traced with the old flag must trace again
        self._traced_leaf(value)

    def _traced_leaf(self, requires_grad: bool) -> None:
        """A leaf made inside graphnn.compile that requires grad (`xa = x.clone(); xa.requires_grad = True`,
        x.detach().requires_grad_()): backward sets its .grad (tensors compared by identity: `in` compares
        values)."""
        tr = self._trace
        if requires_grad and tr is not None and tr.active and self.grad_fn is None:
            if not any(t is self for t in tr.retained):
                tr.retained.append(self)
            if id(self) in tr.arg_index:  # (an argument: the caller's tensor requires grad after each call too)
                tr.arg_requires_grad.add(tr.arg_index[id(self)])

    @property
    def grad(self):
        g = self._grad
        if self._data is not None and (g is None or g._data is not None):
            tr = _tracer.current()
            if tr is not None:  # a concrete tensor's .grad read while tracing: bound at every call, not baked in
                return tr.read_grad(self)
        if g is None and self.grad_fn is not None and not self._retains_grad:
            warnings.warn(
                "the .grad of a tensor that is not a leaf is read: backward() does not fill it in (call "
                ".retain_grad() on the tensor before backward() to keep it; or read the .grad of the leaf tensor)",
                UserWarning,
                stacklevel=2,
            )
        return g

    @grad.setter
    def grad(self, value) -> None:
        if value is not None:
            if not isinstance(value, Tensor):
                raise TypeError(
                    f"assigned grad expected to be a Tensor or None but got grad of type {type(value).__name__}"
                )
            if tuple(value.shape) != tuple(self.shape):
                raise RuntimeError(
                    f"attempting to assign a gradient of size '{list(value.shape)}' to a tensor of size "
                    f"'{list(self.shape)}'. Please ensure that the gradient and the tensor are the same "
                    "size"
                )
            if value.dtype_name != self.dtype_name:
                raise RuntimeError(
                    f"attempting to assign a gradient with dtype '{_C_TYPE[value.dtype_name]}' to a "
                    f"tensor with grad_dtype '{_TORCH_TYPE[self.dtype_name]}'. The gradient must match "
                    "the tensor's grad_dtype (defaults to the tensor's dtype)."
                )
        tr = _tracer.current()
        if tr is not None:
            tr.note_grad_write(self)
        self._grad = value

    @property
    def is_leaf(self) -> bool:
        return self.grad_fn is None

    _inference = False  # made by an eager op or factory inside inference_mode()

    def is_inference(self) -> bool:
        """Whether an op or factory made this tensor inside inference_mode() (as PyTorch's inference tensors)."""
        return self._inference

    @property
    def device(self):
        """The device holding the tensor: always the CPU (graphnn.device('cpu'))."""
        return CPU

    @property
    def is_cuda(self) -> bool:
        return False

    def get_device(self) -> int:
        return -1

    def _eager_value(self):
        """The IR value standing for this tensor in recorded graphs (a leaf value for leaf tensors)."""
        if self._value is None:
            from graphnn.ir.graph import Value

            v = Value(self._type)
            v.data = self._data
            vc = self._counter()
            v.meta["ver"] = (vc, vc[0])  # backward checks that the storage was not overwritten since
            if self.requires_grad:
                v.meta["tensor"] = self
                self._value = v
            return v
        return self._value

    def _concrete(self, what: str) -> np.ndarray:
        if self._data is None:
            from graphnn.core.dispatch import located

            if self._trace is not None and not self._trace.active:
                raise TraceError(located(f"{what}: this tensor {escaped_message(self)}"))
            raise TraceError(
                located(
                    f"{what} needs a concrete value, but this tensor is symbolic inside graphnn.compile; "
                    "return it from the compiled function and read it outside"
                )
            )
        tr = _tracer.current()
        if tr is not None and tr.active:  # a buffer's .item() in a compiled call: the trace holds for this value
            try:
                tr.read_value(self)
            except TraceError as e:
                from graphnn.core.dispatch import located

                raise TraceError(located(f"{what} {e}")) from None
        return self._data

    # -- conversion -------------------------------------------------------------------------
    def numpy(self, *, force: bool = False) -> np.ndarray:
        if force:  # (detached; graphnn's tensors are already on the CPU)
            return self.detach()._concrete("numpy()")
        if self.requires_grad:
            raise RuntimeError("Can't call numpy() on Tensor that requires grad. Use tensor.detach().numpy() instead.")
        return self._concrete("numpy()")

    def item(self):
        d = self._concrete("item()")
        if d.size != 1:  # (PyTorch's RuntimeError)
            raise RuntimeError(f"a Tensor with {d.size} elements cannot be converted to Scalar (shape {d.shape})")
        return d.reshape(()).item()

    def tolist(self):
        return self._concrete("tolist()").tolist()

    def __float__(self):
        return float(self.item())

    def __int__(self):
        return int(self.item())

    def __bool__(self):
        return bool(self.item())

    def __index__(self):
        return int(self.item())

    def __array__(self, dtype=None, copy=None):
        d = self._concrete("conversion to NumPy")
        return d if dtype is None else d.astype(dtype)

    def __repr__(self) -> str:
        if self._data is None:
            tr = self._trace
            if tr is not None and tr.active and tr is _tracer.current():
                # printed inside graphnn.compile: the values of every call are wanted (torch.compile breaks its graph
                # there), so the trace needs them: the call runs eagerly (TraceError)
                self._concrete("printing a tensor")
            return f"tensor(<symbolic {self._type}>)"
        from graphnn.core.printing import tensor_repr

        extra = [f"grad_fn=<{self.grad_fn.name()}>"] if self.grad_fn is not None else []
        return tensor_repr(self._data, self.dtype_name, extra or (["requires_grad=True"] if self.requires_grad else []))

    def __format__(self, format_spec: str) -> str:
        """A 0-d tensor formats as its number ('{:.4f}'.format(loss)), as in PyTorch; others (and symbolic ones,
        inside graphnn.compile) as objects do."""
        if self.ndim == 0 and (self._data is not None or format_spec):
            return self.item().__format__(format_spec)  # (symbolic inside graphnn.compile: TraceError, see __repr__)
        return object.__format__(self, format_spec)

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]

    def __hash__(self):
        return id(self)

    # -- autograd -------------------------------------------------------------------------------
    def backward(self, gradient=None, retain_graph=None, create_graph=False, inputs=None) -> None:
        from graphnn.autograd import backward

        backward([self], [gradient], retain_graph=retain_graph, create_graph=create_graph, inputs=inputs)

    def requires_grad_(self, requires_grad: bool = True) -> "Tensor":
        if requires_grad and self.dtype_name not in ("float32", "float64"):
            raise RuntimeError("only Tensors of floating point dtype can require gradients")
        self.requires_grad = requires_grad  # (the setter registers a leaf made inside graphnn.compile)
        return self

    def detach(self) -> "Tensor":
        """A tensor sharing this one's storage, without gradient (PyTorch's detach: in-place changes of either
        show in the other, and count as changes of both for backward's checks)."""
        if self._trace is not None or _tracer.current() is not None:
            return apply("stop_gradient", [self])
        out = Tensor._wrap(self._data)
        _mark_view(out, self, "stop_gradient", None)
        return out

    def detach_(self) -> "Tensor":
        if self._base is not None and not self._alias:
            raise RuntimeError("Can't detach views in-place. Use detach() instead.")
        if self._trace is not None:  # (inside graphnn.compile: it keeps its traced value, cut from the gradient)
            self._value = apply("stop_gradient", [self])._value
            self.grad_fn, self._requires_grad = None, False
            return self
        self.grad_fn, self._value, self._requires_grad = None, None, False
        if self._captured:
            _tracer.state_changed()
        return self

    def retain_grad(self) -> None:
        """After backward(), this non-leaf tensor's .grad holds its gradient (a no-op on leaves, as in PyTorch)."""
        if not self.requires_grad:
            raise RuntimeError("can't retain_grad on Tensor that has requires_grad=False")
        if self.grad_fn is None:
            return
        self._retains_grad = True
        if self._trace is not None:
            self._trace.retained.append(self)
        elif self._value is not None:
            self._value.meta["retain"] = weakref.ref(self)

    @property
    def retains_grad(self) -> bool:
        return self._retains_grad and self.grad_fn is not None

    @property
    def data(self) -> "Tensor":
        """The same storage, detached from autograd (in-place changes through it are invisible to backward's
        version checks, as with PyTorch's .data)."""
        if self._trace is not None or _tracer.current() is not None:
            return apply("stop_gradient", [self])
        out = Tensor._wrap(self._data)
        _mark_view(out, self, "stop_gradient", None)
        out._vc = None  # its own version counter
        return out

    @data.setter
    def data(self, value) -> None:
        tr = _tracer.current()
        if tr is not None and isinstance(value, Tensor) and value._data is None:  # (`w.data *= mask` in a trace)
            if tuple(value.shape) != tuple(self.shape) or value.dtype_name != self.dtype_name:
                raise NotImplementedError(
                    located(
                        f".data = a tensor of another shape or dtype ({value._type} for {self._type}) inside "
                        "graphnn.compile is not supported"
                    )
                )
            tr.assign(self, value)  # a state update, written back at every call
            tr.data_set.add(id(self))  # (gradients reach the new value, as they reach the leaf's new data eagerly)
            return
        self._assign_data(value._data if isinstance(value, Tensor) else np.asarray(value, self.dtype_name))

    def _assign_data(self, arr: np.ndarray) -> None:
        self._data = np.asarray(arr, order="C")
        if self.grad_fn is None:
            self._value = None

    def _assign(self, src) -> "Tensor":
        """State update with the value of `src`, without autograd (optimizer steps, running statistics): written in
        place now, or recorded as a state update when tracing."""
        tr = _tracer.current()
        if tr is not None:
            tr.assign(self, src if isinstance(src, Tensor) else tensor(src, dtype=self.dtype_name))
            return self
        arr = src._concrete("in-place update") if isinstance(src, Tensor) else np.asarray(src)
        self._data[...] = arr
        self._bump()
        return self

    # -- in-place ops ------------------------------------------------------------------------------------------
    # An in-place op computes its new value with the ordinary (recorded) op, then the tensor stands for that value:
    # its storage is overwritten (eager) or its traced value renamed, and its grad_fn is the op's, as in PyTorch.
    # Under no_grad nothing is recorded (optimizer-style updates). A leaf that requires grad refuses (outside
    # no_grad); views, whose base would have to change too, are refused where that matters (see _view_inplace).
    def _counter(self) -> list:
        """[version, rebindings] of this tensor's storage, shared with its views."""
        vc = self._vc
        if vc is None:
            vc = self._vc = [0, 0]
        return vc

    @property
    def _version(self) -> int:
        """How many times the storage was written in place (PyTorch's tensor._version)."""
        return 0 if self._vc is None else self._vc[0]

    def _bump(self, rebound: bool = False) -> None:
        """Note an in-place write of the storage: graph values recorded before it no longer hold (backward refuses
        to use them), and leaves sharing it record a new value from now on. `rebound`: the tensor now stands for a
        new autograd value (views taken before do not follow)."""
        vc = self._vc
        if vc is not None:
            vc[0] += 1
            if rebound:
                vc[1] += 1
        if self.grad_fn is None:
            self._value = None
        base = self._base
        if base is not None and base._vc is vc and base.grad_fn is None:
            base._value = None

    def _inplace_op(
        self, name: str, compute, fn_name: str | None = None, cast: bool = False, view_leaf: bool = False
    ) -> "Tensor":
        """Apply the in-place op `name`; compute() returns its new value (an ordinary op on self). fn_name: the
        grad_fn name when the new value overwrites self (copy_, fill_, zero_); cast: any dtype converts (copy_);
        view_leaf: the op writes a view of self (x[k] = v), named so in the error on a leaf that requires grad."""
        grad = _grad_enabled()
        tr = _tracer.current()
        view = self._base is not None and not self._alias
        if grad and not view and self.requires_grad and self.grad_fn is None:
            what = "a view of a leaf Variable" if view_leaf else "a leaf Variable"
            raise RuntimeError(located(f"{name}: {what} that requires grad is being used in an in-place operation."))
        snap = None
        if grad and tr is None and self._value is None and self._data is not None:
            # A tensor without a graph value (no grad): its uses by this op read one Value, which _write turns into
            # a copy of the overwritten data when the op is recorded (its gradient may need it, as PyTorch's
            # in-place ops keep the original when their gradient needs it).
            snap = self._value = Value(self._type)
            snap.data = self._data
        try:
            result = self._conformed(compute(), name, cast)
        finally:
            if snap is not None:
                self._value = None
        if fn_name is not None and grad and (self.requires_grad or result.requires_grad):
            # self's old value is replaced (zero gradient) by result's: one new recorded value, named as PyTorch
            result = apply("select", [_true(), result, self], name=fn_name)
        if view:
            self._view_inplace(name, result, grad, tr, snap)
        else:
            self._rebind(name, result, tr, snap)
        return self

    def _rebind(self, name: str, result: "Tensor", tr, snap=None) -> None:
        """This tensor (not a view) now stands for `result`: its storage is overwritten (eager) or its traced value
        renamed (inside graphnn.compile)."""
        if tr is None:
            self._write(name, result, snap)
            return
        symbolic = self._trace is tr
        if symbolic and self.grad_fn is not None and not result.requires_grad:
            # PyTorch keeps the autograd history (and changes only the data): a traced value cannot do both yet (a
            # graph break: the call runs eagerly, where it can)
            raise TraceError(
                located(
                    f"{name}: in-place op without gradient (under no_grad) on a tensor computed with gradient inside "
                    "graphnn.compile is not supported yet; compute the new value out of place, or detach() first"
                )
            )
        tr.inplace(self, result)
        # (a captured tensor's flags are the caller's, unchanged; a factory's tensor made in this trace is the traced
        # code's own: `total = zeros(()); total += loss; total.backward()`, until the trace ends)
        if result.requires_grad and (symbolic or self._temporary):
            self.grad_fn, self._requires_grad = result.grad_fn, True
            if not symbolic:
                tr.grad_temporaries.append(self)

    def _conformed(self, result, name: str, cast: bool = False) -> "Tensor":
        """The new value of an in-place op, in this tensor's shape and dtype (PyTorch's errors otherwise)."""
        result = as_tensor(result)
        if tuple(result.shape) != tuple(self.shape):
            try:
                shape = tuple(np.broadcast_shapes(tuple(result.shape), tuple(self.shape)))
            except ValueError:
                shape = tuple(result.shape)
            if shape != tuple(self.shape):
                raise RuntimeError(
                    located(
                        f"{name}: output with shape {list(self.shape)} doesn't match the broadcast shape {list(shape)}"
                    )
                )
            result = broadcast_to(result, tuple(self.shape))
        if result.dtype_name != self.dtype_name:
            if not cast and _CATEGORY[result.dtype_name] > _CATEGORY[self.dtype_name]:
                raise RuntimeError(
                    located(
                        f"{name}: result type {_TORCH_TYPE[result.dtype_name]} can't be cast to "
                        f"the desired output type {_TORCH_TYPE[self.dtype_name]}"
                    )
                )
            result = result.type_as_dtype(self.dtype_name)
        return result

    def _write(self, name: str, result: "Tensor", snap=None) -> None:
        """Eager: overwrite the storage with result; with a gradient, this tensor now stands for result's value,
        and its old value, as the graph recorded it, keeps the old data (a copy)."""
        data = self._data
        if not data.flags.writeable:
            raise RuntimeError(
                located(
                    f"{name}: the tensor's memory is read-only (e.g. expand()ed, or a read-only "
                    "NumPy array) and cannot be written in place"
                )
            )
        if result.requires_grad:
            for old in (self._value, snap):
                if old is not None and old.data is not None and np.may_share_memory(old.data, data):
                    old.data = np.array(old.data)
                    old.meta["ver"] = ([0, 0], 0)
        data[...] = result._data
        if result.requires_grad:
            fn = result.grad_fn
            self._value, self.grad_fn, self._requires_grad = result._value, fn, True
            self._bump(rebound=True)
            if self._retains_grad:
                self._value.meta["retain"] = weakref.ref(self)
        else:
            self._bump()

    def _view_inplace(self, name: str, result: "Tensor", grad: bool, tr, snap=None) -> None:
        """An in-place op on a view changes its base too. Without autograd or tracing it writes the shared memory;
        otherwise the base's new value is computed functionally (the view's new value put back into the base:
        new_base = where(region, result, base) for a slice) and the base stands for it, as after an in-place op of
        its own, while the view stands for `result`."""
        base = self._base
        graph = tr is not None or self._trace is not None
        graph = graph or (grad and (self.requires_grad or base.requires_grad or result.requires_grad))
        if not graph:
            if base._data is None or not np.may_share_memory(self._data, base._data):
                raise NotImplementedError(
                    located(
                        f"{name}: in-place op on a view of a tensor (the result of {_view_names(self._view_op)}) whose "
                        "memory is a copy, not the tensor's storage, is not supported yet; compute the new value out "
                        "of place instead"
                    )
                )
            self._write(name, result)
            return
        chain = _view_chain(self)
        if chain is None:
            where = "inside graphnn.compile" if tr is not None else "when the tensor or the view requires grad"
            raise NotImplementedError(
                located(
                    f"{name}: in-place op on a view of a tensor (the result of {_view_names(self._view_op)}) is not "
                    f"supported {where}; compute the new value out of place (e.g. with torch.where or torch.cat)"
                )
            )
        if grad and base.requires_grad and base.grad_fn is None and not base._alias:
            raise RuntimeError(
                located(f"{name}: a view of a leaf Variable that requires grad is being used in an in-place operation.")
            )
        base_snap = None
        if grad and tr is None and base._value is None and base._data is not None:
            base_snap = base._value = Value(base._type)  # as snap in _inplace_op: the base's old value, read once
            base_snap.data = base._data
        try:
            new_base = relabel(_push(base, chain, result), "CopySlices", [base, result])
        finally:
            if base_snap is not None:
                base._value = None
        if tr is None:
            self._write_view(name, result, new_base, (snap, base_snap))
            return
        if base._trace is tr and base.grad_fn is not None and not new_base.requires_grad:
            raise NotImplementedError(
                located(
                    f"{name}: in-place op without gradient (under no_grad) on a view of a tensor computed with "
                    "gradient inside graphnn.compile is not supported yet; compute the new value out of place"
                )
            )
        base._rebind(name, new_base, tr)
        _refresh_views_between(self, new_base, tr)
        v = tr.lift(result)
        if self._trace is tr:
            self._value = v
            if result.requires_grad:
                self.grad_fn, self._requires_grad = result.grad_fn, True
            self._view_gen = tr.rebinds.get(id(base), 0)
        else:  # a concrete view captured by the trace: its reads give the new value from now on
            tr.current[id(self)] = v
            tr.view_gens[id(self)] = tr.rebinds.get(id(base), 0)

    def _write_view(self, name: str, result: "Tensor", new_base: "Tensor", snaps: tuple) -> None:
        """Eager, with autograd: write result into the view's memory; the base now stands for new_base's value and
        the view for result's (recorded values that read the old memory keep a copy of it)."""
        base = self._base
        data = base._data
        if not data.flags.writeable:
            raise RuntimeError(
                located(
                    f"{name}: the tensor's memory is read-only (e.g. expand()ed, or a read-only "
                    "NumPy array) and cannot be written in place"
                )
            )
        for old in snaps + (self._value, base._value):
            if old is not None and old.data is not None and np.may_share_memory(old.data, data):
                old.data = np.array(old.data)
                old.meta["ver"] = ([0, 0], 0)
        self._data[...] = result._data
        base._value, base.grad_fn, base._requires_grad = new_base._value, new_base.grad_fn, new_base.requires_grad
        base._bump(rebound=True)
        _refresh_views_between(self, new_base, None)
        self._value, self.grad_fn, self._requires_grad = result._value, result.grad_fn, result.requires_grad
        self._view_gen = self._vc[1]

    def zero_(self):
        return self._inplace_op("zero_", lambda: zeros_like(self), "ZeroBackward0")

    def fill_(self, value):
        if isinstance(value, Tensor):
            if value.ndim:
                raise RuntimeError(
                    f"fill_ only supports 0-dimension value tensor but got tensor with {value.ndim} dimensions."
                )
            return self._inplace_op("fill_", lambda: value, "FillBackward3", cast=True)
        return self._inplace_op("fill_", lambda: full_like(self, value), "FillBackward2")

    def resize_(self, *sizes, memory_format=None) -> "Tensor":
        """The tensor with the new shape (eager code): its elements in order, as many as fit, then zeros (PyTorch
        leaves those uninitialized). `x.resize_(n).fill_(v)` and `x.resize_as_(y).copy_(y)` in older programs."""
        shape = tuple(sizes[0]) if len(sizes) == 1 and isinstance(sizes[0], (tuple, list)) else tuple(sizes)
        shape = tuple(int(n) for n in shape)
        if any(n < 0 for n in shape):
            raise RuntimeError(f"resize_: negative size in {list(shape)} (tensor {self._type})")
        if shape == tuple(self.shape):
            return self
        if self.requires_grad:
            raise RuntimeError("resize_: cannot resize variables that require grad")
        if self._data is None or _tracer.current() is not None:
            raise TraceError(
                f"resize_ of {self._type} to {list(shape)} changes a tensor's shape in place, which graphnn.compile "
                "cannot trace (create the tensor with its shape instead)"
            )
        if self._base is not None:
            raise RuntimeError(f"resize_: cannot resize a view ({self._type} to {list(shape)})")
        flat = self._data.reshape(-1)
        new = np.zeros(math.prod(shape), dtype=flat.dtype)
        k = min(new.size, flat.size)
        new[:k] = flat[:k]
        self._assign_data(new.reshape(shape))
        self._bump(rebound=True)
        return self

    def resize_as_(self, other, memory_format=None) -> "Tensor":
        return self.resize_(tuple(other.shape))

    def copy_(self, src, non_blocking: bool = False):
        return self._inplace_op(
            "copy_",
            lambda: src if isinstance(src, Tensor) else as_tensor(src, self.dtype_name),
            "CopyBackwards",
            cast=True,
        )

    def add_(self, other, alpha=1):
        return self._inplace_op("add_", lambda: self.add(other, alpha))

    def sub_(self, other, alpha=1):
        return self._inplace_op("sub_", lambda: self.sub(other, alpha))

    def mul_(self, other):
        return self._inplace_op("mul_", lambda: self * other)

    def div_(self, other):
        return self._inplace_op("div_", lambda: self / other)

    def pow_(self, exponent):
        return self._inplace_op("pow_", lambda: self**exponent)

    def clamp_(self, min=None, max=None):
        return self._inplace_op("clamp_", lambda: self.clamp(min, max))

    clip_ = clamp_

    def clamp_min_(self, min):
        return self._inplace_op("clamp_min_", lambda: self.clamp(min=min))

    def clamp_max_(self, max):
        return self._inplace_op("clamp_max_", lambda: self.clamp(max=max))

    def neg_(self):
        return self._inplace_op("neg_", lambda: -self)

    def abs_(self):
        return self._inplace_op("abs_", lambda: self.abs())

    def exp_(self):
        return self._inplace_op("exp_", lambda: self.exp())

    def log_(self):
        return self._inplace_op("log_", lambda: self.log())

    def sqrt_(self):
        return self._inplace_op("sqrt_", lambda: self.sqrt())

    def tanh_(self):
        return self._inplace_op("tanh_", lambda: self.tanh())

    def sigmoid_(self):
        return self._inplace_op("sigmoid_", lambda: self.sigmoid())

    def relu_(self):
        return self._inplace_op("relu_", lambda: self.relu())

    def masked_fill_(self, mask, value):
        return self._inplace_op("masked_fill_", lambda: self.masked_fill(mask, value))

    def uniform_(self, a=0.0, b=1.0, *, generator=None):
        shape, dt = tuple(self.shape), self.dtype_name
        return self._inplace_op(
            "uniform_",
            lambda: random_tensor(shape, dt, lambda: _random.generator(generator).uniform(a, b, shape).astype(dt)),
            "UniformBackward0",
        )

    def normal_(self, mean=0.0, std=1.0, *, generator=None):
        shape, dt = tuple(self.shape), self.dtype_name
        return self._inplace_op(
            "normal_",
            lambda: random_tensor(shape, dt, lambda: _random.generator(generator).normal(mean, std, shape).astype(dt)),
            "NormalBackward0",
        )

    def random_(self, low=None, high=None, *, generator=None):
        if high is None:
            low, high = 0, (low if low is not None else 2**24)
        shape, dt = tuple(self.shape), self.dtype_name
        return self._inplace_op(
            "random_",
            lambda: random_tensor(
                shape, dt, lambda: _random.generator(generator).integers(low, high, shape).astype(dt)
            ),
            "RandomBackward0",
        )

    # -- dtype and device --------------------------------------------------------------------------------------
    def to(self, *args, **kwargs) -> "Tensor":
        """to(dtype), to(device), to(device, dtype), to(other tensor), to(device=..., dtype=..., copy=...): this
        tensor when nothing changes, else a converted copy. A device other than the CPU is an error naming it."""
        dt, dev = kwargs.pop("dtype", None), kwargs.pop("device", None)
        copy = kwargs.pop("copy", False)
        for k in ("non_blocking", "memory_format"):
            kwargs.pop(k, None)
        if kwargs:
            raise TypeError(f"to() got an unexpected keyword argument '{next(iter(kwargs))}'")
        for a in args:
            if isinstance(a, Tensor):
                dt, dev = a.dtype, a.device
            elif isinstance(a, bool):
                continue  # non_blocking / copy given by position
            elif is_device(a) or isinstance(a, int):
                dev = a
            else:
                dt = a
        check_device(dev, "to")
        out = self if dt is None else self.type_as_dtype(to_dtype(dt))
        return out.clone() if copy and out is self else out

    def cuda(self, device=None, non_blocking: bool = False):
        check_device(device if device is not None else "cuda", "cuda")

    def cpu(self):
        return self

    def pin_memory(self, device=None):
        """Pinned memory serves copies to an accelerator: none is available, an error as in PyTorch."""
        raise RuntimeError(located("pin_memory: no accelerator is available (graphnn computes on the CPU only)"))

    def is_pinned(self, device=None) -> bool:
        return False

    def type_as_dtype(self, dt: str) -> "Tensor":
        return self if dt == self.dtype_name else apply("cast", [self], {"dtype": dt})

    def type_as(self, other: "Tensor") -> "Tensor":
        return self.type_as_dtype(other.dtype_name)

    def type(self, dtype=None, non_blocking: bool = False, **kwargs):
        """Without dtype, the legacy type name ('graphnn.FloatTensor'); with a dtype, a legacy tensor class or its
        name ('torch.LongTensor'), this tensor cast to it."""
        if dtype is None:
            return f"graphnn.{_LEGACY_NAMES.get(self.dtype_name, 'Tensor')}"
        return self.type_as_dtype(_legacy_dtype(dtype))

    def float(self):
        return self.type_as_dtype("float32")

    def double(self):
        return self.type_as_dtype("float64")

    def half(self):
        """float16 is computed as float32 here (as .to(graphnn.float16) does, with its warning)."""
        return self.to(_half_dtypes.float16)

    def bfloat16(self):
        """bfloat16 is computed as float32 here (as .to(graphnn.bfloat16) does, with its warning)."""
        return self.to(_half_dtypes.bfloat16)

    def long(self):
        return self.type_as_dtype("int64")

    def int(self):
        return self.type_as_dtype("int64")

    def short(self):
        return self.type_as_dtype("int64")

    def char(self):
        return self.type_as_dtype("int64")

    def byte(self):
        """uint8 in PyTorch; int64 here (the same values)."""
        return self.type_as_dtype("int64")

    def bool(self):
        return self.type_as_dtype("bool")

    def clone(self, *, memory_format=None):
        """A copy (never the tensor itself, so in-place ops on it leave this one alone); memory_format is accepted
        (graphnn's tensors are row-major)."""
        if self.dtype_name == "bool":
            return apply("ne", [self, False])
        return apply("add", [self, 0], name="CloneBackward0")

    def contiguous(self, memory_format=None):
        """This tensor when its elements are laid out in order, else a copy (as PyTorch: in-place changes of the
        result then leave this tensor alone). Inside graphnn.compile every view counts as not in order."""
        if self._data is None or _tracer.current() is not None:
            return self if self._base is None or self._alias else self.clone()
        if self._data.flags.c_contiguous:
            return self
        out = self.clone()
        arr = np.ascontiguousarray(out._data)  # (NumPy lays a copy out like its source)
        out._data = arr
        if out._value is not None and out._value.producer is not None:
            out._value.data = arr
        return out

    def is_contiguous(self, memory_format=None) -> bool:
        return self._data is not None and bool(self._data.flags.c_contiguous)

    def new_tensor(self, data, dtype=None, device=None, requires_grad: bool = False) -> "Tensor":
        return tensor(
            data, dtype=dtype if dtype is not None else self.dtype_name, device=device, requires_grad=requires_grad
        )

    def new_zeros(self, *size, dtype=None, device=None, requires_grad: bool = False) -> "Tensor":
        return zeros(*size, dtype=dtype or self.dtype_name, device=device, requires_grad=requires_grad)

    def new_ones(self, *size, dtype=None, device=None, requires_grad: bool = False) -> "Tensor":
        return ones(*size, dtype=dtype or self.dtype_name, device=device, requires_grad=requires_grad)

    def new_empty(self, *size, dtype=None, device=None, requires_grad: bool = False) -> "Tensor":
        return empty(*size, dtype=dtype or self.dtype_name, device=device, requires_grad=requires_grad)

    def new_full(self, size, fill_value, dtype=None, device=None, requires_grad: bool = False) -> "Tensor":
        return full(size, fill_value, dtype=dtype or self.dtype_name, device=device, requires_grad=requires_grad)

    # -- arithmetic -------------------------------------------------------------------------------------------
    # (a complex operand, a Python complex or a ComplexTensor, makes the result complex: core/complex_tensor.py)
    def __add__(self, o):
        return _as_complex(self) + o if isinstance(o, _COMPLEX) else apply("add", [self, o])

    def __radd__(self, o):
        return o + _as_complex(self) if isinstance(o, _COMPLEX) else apply("add", [o, self])

    def __sub__(self, o):
        return _as_complex(self) - o if isinstance(o, _COMPLEX) else apply("sub", [self, o])

    def __rsub__(self, o):
        return o - _as_complex(self) if isinstance(o, _COMPLEX) else apply("sub", [o, self])

    def __mul__(self, o):
        return _as_complex(self) * o if isinstance(o, _COMPLEX) else apply("mul", [self, o])

    def __rmul__(self, o):
        return o * _as_complex(self) if isinstance(o, _COMPLEX) else apply("mul", [o, self])

    def __truediv__(self, o):
        return _as_complex(self) / o if isinstance(o, _COMPLEX) else _true_div(self, o)

    def __rtruediv__(self, o):
        return o / _as_complex(self) if isinstance(o, _COMPLEX) else _true_div(o, self)

    def __pow__(self, o):
        return _pow(self, o)

    def __rpow__(self, o):
        return _pow(o, self)

    def __neg__(self):
        return apply("neg", [self])

    def __abs__(self):
        return apply("abs", [self])

    def __matmul__(self, o):
        return matmul(self, o)

    def __rmatmul__(self, o):
        return matmul(o, self)

    def __gt__(self, o):
        return apply("gt", [self, o])

    def __ge__(self, o):
        return apply("ge", [self, o])

    def __lt__(self, o):
        return apply("lt", [self, o])

    def __le__(self, o):
        return apply("le", [self, o])

    def __eq__(self, o):
        if o is None or isinstance(o, _NOT_COMPARED):  # (PyTorch: not comparable, Python's identity test: False)
            return NotImplemented
        return apply("eq", [self, o])

    def __ne__(self, o):
        if o is None or isinstance(o, _NOT_COMPARED):
            return NotImplemented
        return apply("ne", [self, o])

    def __and__(self, o):
        return _bitwise("bitwise_and", self, o)

    def __rand__(self, o):
        return _bitwise("bitwise_and", o, self)

    def __or__(self, o):
        return _bitwise("bitwise_or", self, o)

    def __ror__(self, o):
        return _bitwise("bitwise_or", o, self)

    def __xor__(self, o):
        return _bitwise("bitwise_xor", self, o)

    def __rxor__(self, o):
        return _bitwise("bitwise_xor", o, self)

    def __invert__(self):
        return _bitwise("bitwise_not", self)

    def logical_not(self):
        return apply("eq", [self.bool() if self.dtype_name != "bool" else self, False])

    def logical_and(self, other):
        return apply("logical_and", [self.bool(), as_tensor(other).bool()])

    def logical_or(self, other):
        return apply("logical_or", [self.bool(), as_tensor(other).bool()])

    __iadd__ = add_
    __isub__ = sub_
    __imul__ = mul_
    __itruediv__ = div_

    def add(self, other, alpha=1):
        return self + (other * alpha if alpha != 1 else other)

    def sub(self, other, alpha=1):
        return self - (other * alpha if alpha != 1 else other)

    def mul(self, other):
        return self * other

    def div(self, other, *, rounding_mode=None):
        if rounding_mode is not None:
            from graphnn.core.math_ops import divide

            return divide(self, other, rounding_mode=rounding_mode)
        return self / other

    def pow(self, exponent):
        return _pow(self, exponent)

    def neg(self):
        return -self

    def abs(self):
        return apply("abs", [self])

    def exp(self):
        return apply("exp", [self])

    def log(self):
        return apply("log", [self])

    def sqrt(self):
        return apply("sqrt", [self])

    def tanh(self):
        return apply("tanh", [self])

    def sigmoid(self):
        return apply("sigmoid", [self])

    def relu(self):
        return apply("relu", [self])

    def sign(self):
        return apply("sign", [self])

    def matmul(self, other):
        return matmul(self, other)

    def mm(self, mat2):
        for what, t in (("self", self), ("mat2", mat2)):
            if isinstance(t, Tensor) and t.ndim != 2:
                raise RuntimeError(located(f"mm: {what} must be a matrix, got a {t.ndim}-d tensor {tuple(t.shape)}"))
        return matmul(self, mat2)

    def eq(self, other):
        return self == other

    def ne(self, other):
        return self != other

    def gt(self, other):
        return self > other

    def lt(self, other):
        return self < other

    def ge(self, other):
        return self >= other

    def le(self, other):
        return self <= other

    def clamp(self, min=None, max=None):
        # As PyTorch's, the gradient passes where min <= x <= max (the bounds included), NaN propagates.
        if min is None and max is None:
            raise RuntimeError(located("clamp: At least one of 'min' or 'max' must not be None"))
        out = self
        if min is not None:
            out = apply("select", [_bound_wins(out < min, out, min), min, out], name="ClampBackward1")
        if max is not None:
            out = apply("select", [_bound_wins(out > max, out, max), max, out], name="ClampBackward1")
        return out

    clip = clamp

    # -- reductions ---------------------------------------------------------------------------------------------
    def sum(self, dim=None, keepdim=False, dtype=None):
        x = self.type_as_dtype(to_dtype(dtype)) if dtype is not None else self
        if x.dtype_name == "bool":
            x = x.long()
        return apply(
            "sum",
            [x],
            {"axes": _axes(dim), "keepdims": keepdim},
            name="SumBackward0" if dim is None else "SumBackward1",
        )

    def mean(self, dim=None, keepdim=False, *, dtype=None):
        if dtype is not None:  # the input is cast first, as PyTorch's
            return self.to(dtype).mean(dim, keepdim)
        if not self.is_floating_point():
            raise RuntimeError(
                located(
                    "mean(): could not infer output dtype. Input dtype must be either a floating point or complex "
                    f"dtype. Got: {_TORCH_TYPE.get(self.dtype_name, self.dtype_name)}"
                )
            )
        axes = norm_axes(_axes(dim), self.ndim)
        n = 1
        for a in axes:
            n *= self.shape[a]
        s = apply("sum", [self], {"axes": axes, "keepdims": keepdim})
        return relabel(apply("div", [s, float(n)]), "MeanBackward0" if dim is None else "MeanBackward1", [self])

    def max(self, dim=None, keepdim=False):
        if isinstance(dim, Tensor):
            return apply("maximum", [self, dim])
        if dim is None:
            return apply("max", [self], {"axes": None, "keepdims": False}, name="MaxBackward1")
        return _pick(self, dim, keepdim, self.argmax(dim, True), "MaxBackward0")

    def min(self, dim=None, keepdim=False):
        if isinstance(dim, Tensor):
            return apply("minimum", [self, dim])
        if dim is None:
            return relabel(-apply("max", [-self], {"axes": None, "keepdims": False}), "MinBackward1", [self])
        return _pick(self, dim, keepdim, self.argmin(dim, True), "MinBackward0")

    def amax(self, dim=None, keepdim=False):
        return apply("max", [self], {"axes": _axes(dim), "keepdims": keepdim})

    def argmax(self, dim=None, keepdim=False):
        if dim is None:
            return apply("argmax", [self.reshape(-1)], {"axis": 0, "keepdims": False})
        return apply("argmax", [self], {"axis": dim, "keepdims": keepdim})

    def argmin(self, dim=None, keepdim=False):
        return (-self).argmax(dim, keepdim)

    # -- shape ---------------------------------------------------------------------------------------------------
    def view(self, *shape):
        if len(shape) == 1 and not isinstance(shape[0], int):
            if isinstance(shape[0], (tuple, list, Size)):
                shape = tuple(shape[0])
            else:
                return self.type_as_dtype(to_dtype(shape[0]))
        return reshape(self, shape, "ViewBackward0")

    def reshape(self, *shape):
        if len(shape) == 1 and isinstance(shape[0], (tuple, list, Size)):
            shape = tuple(shape[0])
        # (PyTorch's names: a view where the layout allows one, else a copy viewed)
        return reshape(self, shape, "ViewBackward0" if self.is_contiguous() else "UnsafeViewBackward0")

    def view_as(self, other):
        return self.view(tuple(other.shape))

    def flatten(self, start_dim=0, end_dim=-1):
        nd = self.ndim
        if nd == 0:
            return self.reshape(1)
        s, e = check_dim(start_dim, nd, "flatten", self), check_dim(end_dim, nd, "flatten", self)
        n = 1
        for d in self.shape[s : e + 1]:
            n *= d
        return reshape(self, tuple(self.shape[:s]) + (n,) + tuple(self.shape[e + 1 :]), "ViewBackward0")

    def unsqueeze(self, dim):
        d = check_dim(dim, self.ndim + 1, "unsqueeze", self)
        shape = list(self.shape)
        shape.insert(d, 1)
        return reshape(self, tuple(shape), "UnsqueezeBackward0")

    def squeeze(self, dim=None):
        if dim is None:
            shape = tuple(s for s in self.shape if s != 1)
        else:
            dims = {
                check_dim(d, self.ndim, "squeeze", self) for d in (dim if isinstance(dim, (tuple, list)) else [dim])
            }
            shape = tuple(s for i, s in enumerate(self.shape) if not (i in dims and s == 1))
        return reshape(self, shape, "SqueezeBackward0")

    def permute(self, *dims):
        if len(dims) == 1 and isinstance(dims[0], (tuple, list)):
            dims = tuple(dims[0])
        perm = tuple(check_dim(d, self.ndim, "permute", self) for d in dims)
        return transpose(self, perm, "PermuteBackward0")

    def transpose(self, dim0, dim1):
        perm = list(range(self.ndim))
        a, b = check_dim(dim0, self.ndim, "transpose", self), check_dim(dim1, self.ndim, "transpose", self)
        perm[a], perm[b] = perm[b], perm[a]
        return transpose(self, tuple(perm), "TransposeBackward0")

    def t(self):
        if self.ndim < 2:
            return self
        return transpose(self, (1, 0), "TBackward0")

    @property
    def T(self):
        if self.ndim != 2:
            warnings.warn(
                f"x.T on a {self.ndim}-d tensor (reversing all its dimensions) is deprecated in PyTorch: use x.mT to "
                "transpose batches of matrices, or x.permute(...) to reverse the dimensions",
                UserWarning,
                stacklevel=2,
            )
        return self.permute(*reversed(range(self.ndim)))

    @property
    def mT(self):  # noqa: N802 (PyTorch's name)
        """The transpose of the last two dimensions (of each matrix in a batch)."""
        if self.ndim < 2:
            raise RuntimeError(
                f"tensor.mT is only supported on matrices or batches of matrices. Got {self.ndim}-D tensor."
            )
        return self.transpose(-2, -1)

    @property
    def mH(self):  # noqa: N802
        """The conjugate transpose of each matrix: mT (graphnn's tensors are real)."""
        return self.mT

    @property
    def H(self):  # noqa: N802
        """The conjugate transpose of a matrix: its transpose (graphnn's tensors are real)."""
        if self.ndim not in (0, 2):
            raise RuntimeError(f"tensor.H is only supported on matrices (2-D tensors). Got {self.ndim}-D tensor.")
        return self.T if self.ndim else self

    def apply_(self, callable):  # noqa: A002
        """Replace every element by callable(element), in place (eager only; slow, as in PyTorch)."""
        from graphnn.core.grad_mode import no_grad

        data = self._concrete("apply_")
        out = np.vectorize(callable, otypes=[data.dtype])(data) if data.size else data
        with no_grad():
            self.copy_(Tensor(np.asarray(out, data.dtype)))
        return self

    def expand(self, *shape):
        if len(shape) == 1 and isinstance(shape[0], (tuple, list, Size)):
            shape = tuple(shape[0])
        lead = len(shape) - self.ndim
        full = tuple(self.shape[i - lead] if s == -1 else s for i, s in enumerate(shape))
        return broadcast_to(self, full)

    def expand_as(self, other):
        return broadcast_to(self, tuple(other.shape))

    def __getitem__(self, key):
        from graphnn.core.indexing import getitem

        return getitem(self, key)

    def __setitem__(self, key, value) -> None:
        from graphnn.core.indexing import setitem

        setitem(self, key, value)

    def narrow(self, dim, start, length):
        return narrow(self, dim, start, length)

    def chunk(self, chunks, dim=0):
        d = check_dim(dim, self.ndim, "chunk", self)
        if not isinstance(chunks, numbers.Integral) or chunks <= 0:
            raise RuntimeError(located(f"chunk expects `chunks` to be greater than 0, got: {chunks}"))
        n = self.shape[d]
        if n == 0:
            return (self,) * int(chunks)
        step = -(-n // chunks)
        return tuple(relabel(narrow(self, d, s, min(step, n - s)), "SplitBackward0", [self]) for s in range(0, n, step))

    def split(self, split_size, dim=0):
        d = check_dim(dim, self.ndim, "split", self)
        n = self.shape[d]
        if isinstance(split_size, numbers.Integral):
            split_size = int(split_size)
            if split_size < 0:
                raise RuntimeError(
                    located(f"split expects split_size be non-negative, but got split_size={split_size}")
                )
            if split_size == 0:
                if n != 0:
                    raise RuntimeError(
                        located(f"split_size can only be 0 if dimension size is 0, but got dimension size of {n}")
                    )
                return (self,)
            sizes = [split_size] * (n // split_size) + ([n % split_size] if n % split_size else [])
        else:
            sizes = [int(k) for k in split_size]
            if sum(sizes) != n or any(k < 0 for k in sizes):
                raise RuntimeError(
                    located(
                        f"split_with_sizes expects split_sizes to sum exactly to {n} (input "
                        f"tensor's size at dimension {d}), but got split_sizes={sizes}"
                    )
                )
        name = "SplitBackward0" if isinstance(split_size, numbers.Integral) else "SplitWithSizesBackward0"
        out, s = [], 0
        for k in sizes:
            out.append(relabel(narrow(self, d, s, k), name, [self]))
            s += k
        return tuple(out)

    def norm(self, p="fro", dim=None, keepdim=False, dtype=None):
        """torch.norm: a vector norm over dim (all elements when None); 'fro' is the 2-norm; 'nuc' is the matrix
        norm over the two dimensions dim (the last two when None)."""
        from graphnn.linalg import matrix_norm, vector_norm

        if p == "nuc":
            return matrix_norm(self, "nuc", (-2, -1) if dim is None else dim, keepdim, dtype=dtype)
        return vector_norm(self, 2 if p in ("fro", None) else p, dim, keepdim, dtype=dtype)

    def var(self, dim=None, unbiased=True, keepdim=False, *, correction=None):
        return relabel(_var(self, dim, unbiased, keepdim, correction, "var"), "VarBackward0", [self])

    def std(self, dim=None, unbiased=True, keepdim=False, *, correction=None):
        return std_of_var(_var(self, dim, unbiased, keepdim, correction, "std"))

    def softmax(self, dim, dtype=None):
        from graphnn.nn.functional import softmax

        return softmax(self, dim, dtype=dtype)

    def log_softmax(self, dim, dtype=None):
        from graphnn.nn.functional import log_softmax

        return log_softmax(self, dim, dtype=dtype)

    def logsumexp(self, dim, keepdim=False):
        """log(sum(exp(self))) over dim, computed around the largest element (a row of -inf gives -inf)."""
        peak = [apply("stop_gradient", [self.amax(dim, keepdim=k)]) for k in (True, False)]
        peak = [apply("select", [m.abs() == math.inf, 0.0, m]) for m in peak]  # (inf - inf would be NaN)
        total = (self - peak[0]).exp().sum(dim, keepdim).log()
        return apply("add", [total, peak[0] if keepdim else peak[1]], name="LogsumexpBackward0")

    def where(self, cond, other):
        return apply("select", [cond, self, other])

    def masked_fill(self, mask, value):
        """self with value where mask is True (mask: bool, broadcast to self; value: a number or a 0-d tensor)."""
        mask = as_tensor(mask)
        if mask.dtype_name != "bool":
            raise RuntimeError(
                located(f"masked_fill_ only supports boolean masks, but got mask with dtype {_C_TYPE[mask.dtype_name]}")
            )
        if isinstance(value, Tensor) and value.ndim:
            raise RuntimeError(
                located(
                    "masked_fill_ only supports a 0-dimensional value tensor, but got tensor with "
                    f"{value.ndim} dimension(s)."
                )
            )
        value = value.type_as_dtype(self.dtype_name) if isinstance(value, Tensor) else _number_as(value, self)
        return apply("select", [mask, value, self], name="MaskedFillBackward0")

    def index_select(self, dim, index):
        """The entries at `index` (1-D or 0-d int64) along `dim`, copied exactly (a gather, any dtype)."""
        from graphnn.ir.registry import IRError

        from graphnn.core.dispatch import op_error

        from graphnn.compiler.tracer import check_values

        d = check_dim(dim, self.ndim, "index_select", self)
        index = as_tensor(index)
        n = self.shape[d]
        call = f"index_select(input {self._type}, dim {dim}, index {index._type})"
        if index.dtype_name != "int64" or index.ndim > 1:
            raise op_error(IRError(f"{call}: index must be a 1-D int64 tensor"))

        def check(idx):  # named with the caller's line, now and at every compiled call (the kernel checks too)
            bad = (idx < 0) | (idx >= n)
            if bad.any():
                raise op_error(
                    IRError(f"{call}: index {int(idx[bad].flat[0])} is out of range for dimension {d} of size {n}")
                )

        check_values(index, check)
        if index.ndim == 0:
            index = index.reshape((1,))
        return apply("take", [self, index], {"axis": d}, name="IndexSelectBackward0")

    def gather(self, dim, index):
        """out[..i..] = self[..index[..i..]..] with the index replacing position `dim` (torch.gather)."""
        d, index = _ops().checked_index(self, dim, index, "gather")
        return apply("take_along", [self, index], {"axis": d}, name="GatherBackward0")

    # -- sorting, scans, scatter, triangles, batched products (graphnn.core.tensor_ops) -------------------------
    def sort(self, dim=-1, descending=False, stable=False):
        return _ops().sort(self, dim, descending, stable)

    def argsort(self, dim=-1, descending=False, stable=False):
        return _ops().argsort(self, dim, descending, stable)

    def msort(self):
        return _ops().msort(self)

    def topk(self, k, dim=-1, largest=True, sorted=True):  # noqa: A002
        return _ops().topk(self, k, dim, largest, sorted)

    def cumsum(self, dim, dtype=None):
        return _ops().cumsum(self, dim, dtype)

    def cumsum_(self, dim, dtype=None):
        return self._inplace_op("cumsum_", lambda: _ops().cumsum(self, dim, dtype))

    def tril(self, diagonal=0):
        return _ops().tril(self, diagonal)

    def triu(self, diagonal=0):
        return _ops().triu(self, diagonal)

    def tril_(self, diagonal=0):
        return self._inplace_op("tril_", lambda: _ops().tril(self, diagonal))

    def triu_(self, diagonal=0):
        return self._inplace_op("triu_", lambda: _ops().triu(self, diagonal))

    def scatter(self, dim, index, src=None, value=None, reduce=None):
        return _ops().scatter(self, dim, index, src, value, reduce)

    def scatter_(self, dim, index, src=None, value=None, reduce=None):
        return self._inplace_op("scatter_", lambda: _ops().scatter(self, dim, index, src, value, reduce))

    def scatter_add(self, dim, index, src):
        return _ops().scatter_add(self, dim, index, src)

    def scatter_add_(self, dim, index, src):
        return self._inplace_op("scatter_add_", lambda: _ops().scatter_add(self, dim, index, src))

    def bmm(self, other):
        return _ops().bmm(self, other)

    def baddbmm(self, batch1, batch2, *, beta=1, alpha=1):
        return _ops().baddbmm(self, batch1, batch2, beta=beta, alpha=alpha)

    def baddbmm_(self, batch1, batch2, *, beta=1, alpha=1):
        return self._inplace_op("baddbmm_", lambda: _ops().baddbmm(self, batch1, batch2, beta=beta, alpha=alpha))

    def unbind(self, dim=0):
        return _ops().unbind(self, dim)

    def select(self, dim, index):
        d = check_dim(dim, self.ndim, "select", self)
        return self[(slice(None),) * d + (index,)]

    def multinomial(self, num_samples, replacement=False, *, generator=None):
        return _ops().multinomial(self, num_samples, replacement, generator=generator)

    def repeat(self, *sizes):
        sizes = _shape_args(sizes)
        x = self.reshape((1,) * (len(sizes) - self.ndim) + tuple(self.shape))
        inter, full_shape = [], []
        for r, s in zip(sizes, x.shape):
            inter += [1, s]
            full_shape += [r, s]
        y = broadcast_to(x.reshape(tuple(inter)), tuple(full_shape))
        # a new tensor, as PyTorch's (the reshape may still view this one, or broadcast it read-only)
        out = y.reshape(tuple(r * s for r, s in zip(sizes, x.shape))).clone()
        return relabel(out, "RepeatBackward0", [self])


def _ops():
    from graphnn.core import tensor_ops

    return tensor_ops


def _inplace_method(name: str):
    def method(self):
        return self._inplace_op(name + "_", lambda: getattr(self, name)())

    method.__name__ = method.__qualname__ = name + "_"
    return method


# In-place forms of elementwise ops whose out-of-place form graphnn.ops installs (Tensor.sin, ...).
for _name in ("sin", "cos", "erf", "erfc", "erfinv", "lgamma", "digamma", "rsqrt", "log1p", "expm1", "sign"):
    setattr(Tensor, _name + "_", _inplace_method(_name))


def zero_grad_in_place(p: Tensor) -> None:
    """zero_grad(set_to_none=False): p.grad zeroed in place as PyTorch's (references to it see zeros), detached;
    inside a trace (a .grad without data) a new zero tensor."""
    g = p.grad
    if g._data is not None and g._trace is None and _tracer.current() is None:
        from graphnn.core.grad_mode import no_grad

        g.grad_fn, g._value, g._requires_grad = None, None, False  # (detached, as PyTorch's)
        with no_grad():
            g.zero_()
        return
    p.grad = Tensor._wrap(np.zeros(tuple(p.shape), p.dtype_name))


def std_of_var(v: Tensor) -> Tensor:
    """sqrt(v) whose gradient is 0 where v is 0 (a constant slice), as PyTorch's std (not 0 * inf = NaN)."""
    zero = v == 0.0
    return apply("select", [zero, 0.0, apply("sqrt", [apply("select", [zero, 1.0, v])])], name="StdBackward0")


def _var(x: Tensor, dim, unbiased, keepdim, correction, what: str) -> Tensor:
    """Variance with Bessel's correction (PyTorch's rule: NaN, with a warning, when the degrees of freedom are <= 0).
    Float32 data is reduced in float64 and rounded once, as PyTorch's CPU kernel accumulates: a float32 mean of values
    near 1e5 is off by ~1e-2, which every deviation inherits (var 1e-3 off, relative)."""
    if x.dtype_name == "float32":
        return _var(x.type_as_dtype("float64"), dim, unbiased, keepdim, correction, what).type_as_dtype("float32")
    axes = norm_axes(_axes(dim), x.ndim)
    n = 1
    for a in axes:
        n *= x.shape[a]
    if correction is None:
        correction = 1 if unbiased else 0
    d = x - x.mean(dim, keepdim=True)
    dof = n - correction
    if dof <= 0:
        import warnings

        warnings.warn(
            f"{what}(): degrees of freedom is <= 0. Correction should be strictly less than the reduction "
            "factor (input numel divided by output numel).",
            UserWarning,
            stacklevel=3,
        )
        return (d * d).sum(dim, keepdim) / 0.0  # 0 / 0: NaN, as PyTorch
    return (d * d).sum(dim, keepdim) / dof


def _pow(base, exponent) -> Tensor:
    """base ** exponent; an integer tensor to a negative Python integer is PyTorch's error (in both modes)."""
    if (
        isinstance(exponent, numbers.Integral)
        and not isinstance(exponent, bool)
        and exponent < 0
        and isinstance(base, Tensor)
        and base.dtype_name in ("int64", "bool")
    ):
        raise RuntimeError(located("Integers to negative integer powers are not allowed."))
    # PyTorch's names: tensor ** number, tensor ** tensor, number ** tensor
    name = "PowBackward1" if isinstance(exponent, Tensor) else "PowBackward0"
    if not isinstance(base, Tensor):
        name = "PowBackward2"
    return apply("pow", [base, exponent], name=name)


def _bitwise(op: str, *args) -> Tensor:
    """&, |, ^ and ~: bitwise on int64 tensors, logical on bool ones; floats are a TypeError, as in PyTorch."""
    for x in args:
        if isinstance(x, Tensor) and x.dtype_name not in ("int64", "bool") or isinstance(x, float):
            what = x.dtype_name if isinstance(x, Tensor) else "float"
            raise TypeError(located(f"{op}: bitwise ops take integer or bool tensors, got {what}"))
    return apply(op, list(args))


_TRUE = None


def _number_as(value, t: Tensor):
    """A Python number converted to t's dtype as PyTorch converts a fill value (floats to integers toward zero; an
    infinite or NaN value for an integer tensor is an overflow error)."""
    if t.dtype_name == "bool":
        return bool(value)
    if t.dtype_name == "int64" and not isinstance(value, (bool, numbers.Integral)):
        if not math.isfinite(value):
            raise RuntimeError(located(f"value cannot be converted to type int64_t without overflow: {value}"))
        return int(value)
    return value


def _true() -> Tensor:
    """A constant True (0-d bool tensor)."""
    global _TRUE
    if _TRUE is None:
        _TRUE = Tensor._wrap(np.array(True))
    return _TRUE


def _view_names(op: str) -> str:
    """The PyTorch functions that make views like op's (its definition's `view`)."""
    return get_op(op).view or op


def _mark_view(out: Tensor, src: Tensor, op: str, tracer) -> None:
    """`out`, the result of `op`, shows the storage of `src` (as NumPy views do eagerly): note its base, share the
    version counter, and remember the base's rebinding count (a later in-place rebinding of the base makes the
    view stale, which is refused where it would be silently wrong)."""
    if tracer is None and not np.may_share_memory(out._data, src._data):
        return  # NumPy copied (a reshape of a non-contiguous view, as PyTorch's reshape copies): not a view
    alias = get_op(op).pattern == "elementwise"  # the same elements (detach): an alias
    if alias:
        base = src._base if src._alias else src
    else:
        base = src._base if (src._base is not None and not src._alias) else src
    out._base, out._alias, out._view_op = base, alias, op
    if tracer is not None:
        out._view_gen = tracer.rebinds.get(id(base), 0)
        return
    vc = src._counter()
    out._vc = vc
    out._view_gen = vc[1]
    if out._value is not None and out._value.producer is not None:
        out._value.meta["ver"] = (vc, vc[0])


def check_view_current(t: Tensor, tracer) -> None:
    """A view used after its base was rebound in place (an in-place op that changed its autograd or traced value)
    takes its value from the base again, as in PyTorch (refused when the view cannot be taken again: see
    _view_chain)."""
    base = t._base
    if tracer is not None:
        if t._trace is tracer:
            stale = tracer.rebinds.get(id(base), 0) != t._view_gen
        else:  # a concrete view captured by the trace: its base must not have been updated since its value
            stale = tracer.rebinds.get(id(base), 0) != tracer.view_gens.get(id(t), 0)
        where = "inside graphnn.compile"
    else:
        if t._alias or t._vc is None or not _grad_enabled():
            return
        stale = t._vc[1] != t._view_gen
        where = "with gradients"
    if stale and not _view_again(t, tracer):
        how = _view_names(t._view_op)
        raise NotImplementedError(
            located(
                f"this tensor is a view (the result of {how}) of a tensor that an in-place op changed after the view was "
                f"taken; views do not follow such changes {where} yet: take the view again after the in-place op"
            )
        )


def _view_chain(view: Tensor):
    """[(get, put)] from the view's base down to the view (see Tensor._view_fns), or None when some view on the way
    cannot be written back (e.g. an expand())."""
    links, t = [], view
    while t is not view._base:
        if t._view_fns is None or t._view_src is None:
            return None
        links.append(t._view_fns)
        t = t._view_src
    return links[::-1]


def _view_again(t: Tensor, tr) -> bool:
    """Give the stale view t its value taken from its base's current value again (False when some view between
    cannot be taken again)."""
    chain = _view_chain(t)
    if chain is None:
        return False
    value = t._base
    for get, _ in chain:
        value = get(value)
    _take_value(t, value, t._base, tr)
    return True


def _take_value(t: Tensor, value: Tensor, base: Tensor, tr) -> None:
    """View t of `base` now stands for `value` (its view of the base's current value)."""
    if tr is None:
        t._value, t.grad_fn, t._requires_grad = value._value, value.grad_fn, value.requires_grad
        t._view_gen = t._vc[1]
    elif t._trace is tr:
        t._value, t._view_gen = tr.lift(value), tr.rebinds.get(id(base), 0)
        if value.requires_grad:
            t.grad_fn, t._requires_grad = value.grad_fn, True
    else:  # a concrete view captured by the trace
        tr.current[id(t)] = tr.lift(value)
        tr.view_gens[id(t)] = tr.rebinds.get(id(base), 0)


def _refresh_views_between(view: Tensor, new_base: Tensor, tr) -> None:
    """After an in-place op through `view` gave its base the value new_base, the views `view` was taken from (flat in
    `flat = x.reshape(-1); flat[2:4] += 1`) stand for their new values too, each its view of the one above, so
    they stay usable (traced, or with autograd) as in PyTorch."""
    between, t = [], view._view_src
    while t is not None and t is not view._base:
        between.append(t)
        t = t._view_src
    value = new_base
    for t in reversed(between):
        value = t._view_fns[0](value)
        _take_value(t, value, view._base, tr)


def _push(src: Tensor, chain: list, value: Tensor) -> Tensor:
    """src's new value when the view at the end of `chain` takes `value`."""
    if not chain:
        return value
    get, put = chain[0]
    return put(src, _push(get(src), chain[1:], value))


def _grad_enabled() -> bool:
    from graphnn.core.grad_mode import is_grad_enabled

    return is_grad_enabled()


def _pick(x: Tensor, dim: int, keepdim: bool, idx: Tensor, name: str) -> tuple:
    """(values, indices) of max(dim) / min(dim) from the kept-dim arg-indices `idx`. As in PyTorch, the gradient
    reaches only the element at the index, also when several elements are equal."""
    d = dim % x.ndim
    pos = Tensor._wrap(np.arange(x.shape[d], dtype=np.int64).reshape((-1,) + (1,) * (x.ndim - 1 - d)))
    values = relabel(apply("select", [pos == idx, x, 0]).sum(d, keepdim), name, [x])
    from graphnn.core.tensor_ops import max_result, min_result

    return (max_result if name.startswith("Max") else min_result)(values, idx if keepdim else idx.squeeze(d))


def _axes(dim):
    if dim is None:
        return None
    return tuple(dim) if isinstance(dim, (tuple, list)) else (dim,)


def _bound_wins(beyond, x, bound):
    """Where clamp takes the bound: x beyond it, or (NaN propagating, as PyTorch's) a NaN bound."""
    if isinstance(bound, Tensor) and bound.is_floating_point():
        return beyond | (bound != bound)
    if isinstance(bound, float) and bound != bound:
        return x == x  # (x's own NaNs stay: NaN either way)
    return beyond


def _true_div(a, b):
    """a / b: integer and bool operands divide as floats of the dtype PyTorch's promotion gives the pair (an int
    tensor over a float64 0-d tensor: float64), the default float dtype when that is an integer dtype."""
    if any(isinstance(t, Tensor) and t.dtype_name in ("int64", "bool") for t in (a, b)):
        from graphnn.core.extra_api import result_type

        want = result_type(a, b).name
        want = want if want in ("float32", "float64") else get_default_dtype()
        a, b = (
            t.type_as_dtype(want) if isinstance(t, Tensor) and t.dtype_name in ("int64", "bool") else t for t in (a, b)
        )
    return apply("div", [a, b])


def reshape(x: Tensor, shape: tuple, name: str = "ViewBackward0") -> Tensor:
    shape = tuple(int(s) for s in shape)
    if shape.count(-1) > 1:
        raise RuntimeError("only one dimension can be inferred")
    if -1 in shape:
        known = 1
        for s in shape:
            if s != -1:
                known *= s
        n = x.numel()
        if known == 0 or n % known:
            raise RuntimeError(f"shape '{list(shape)}' is invalid for input of size {n}")
        shape = tuple(n // known if s == -1 else s for s in shape)
    out = apply("reshape", [x], {"shape": shape}, name=name)
    if out._base is not None and out is not x:  # a view: in-place ops on it reshape their result back
        out._view_src = x
        out._view_fns = (lambda t: reshape(t, shape, name), lambda t, v: reshape(v, tuple(t.shape), "ViewBackward0"))
    return out


def transpose(x: Tensor, perm: tuple, name: str) -> Tensor:
    """x with its axes permuted (a view: in-place ops on it permute their result back)."""
    out = apply("transpose", [x], {"perm": tuple(perm)}, name=name)
    if out._base is not None and out is not x:
        inv = tuple(int(i) for i in np.argsort(perm))
        out._view_src = x
        out._view_fns = (lambda t: transpose(t, perm, name), lambda t, v: transpose(v, inv, "PermuteBackward0"))
    return out


def broadcast_to(x: Tensor, shape: tuple) -> Tensor:
    return apply("broadcast_to", [x], {"shape": tuple(shape)}, name="ExpandBackward0")


def matmul(a, b) -> Tensor:
    if isinstance(a, ComplexTensor) or isinstance(b, ComplexTensor):
        return complex_matmul(a, b)
    a, b = as_tensor(a), as_tensor(b)
    if a.dtype_name == b.dtype_name == "int64":  # integer products (counts, one-hots): in float64, then rounded back,
        return matmul(a.double(), b.double()).round().long()  # exact while the sums stay below 2**53
    # (PyTorch's grad_fn names: its matmul folds batched operands into views of mm / bmm)
    if a.ndim == 1 and b.ndim == 1:
        return relabel((a * b).sum(), "DotBackward0", [a, b])
    if a.ndim == 1:
        out = apply("matmul", [a.unsqueeze(0), b]).squeeze(-2)
        return relabel(out, "SqueezeBackward4" if b.ndim == 2 else "UnsafeViewBackward0", [a, b])
    if b.ndim == 1:
        out = apply("matmul", [a, b.unsqueeze(-1)]).squeeze(-1)
        return relabel(out, "MvBackward0" if a.ndim == 2 else "UnsafeViewBackward0", [a, b])
    return apply("matmul", [a, b], name="MmBackward0" if a.ndim == b.ndim == 2 else "UnsafeViewBackward0")


# -- factories ----------------------------------------------------------------------------------------------------
def _shape_args(size) -> tuple:
    if len(size) == 1 and isinstance(size[0], (tuple, list, Size)):
        return tuple(size[0])
    return tuple(int(s) for s in size)


def _made(t: Tensor, requires_grad: bool, device, what: str) -> Tensor:
    """A new tensor from a factory: on the CPU (any other device is an error naming it), requiring grad if asked."""
    check_device(device, what)
    _note_temporary(t)
    return t.requires_grad_(True) if requires_grad else t


def _note_temporary(t: Tensor) -> None:
    """A factory's tensor made while graphnn.compile traces is the function's own (`total = torch.zeros(())` before
    `total += loss`): each call starts from its initial value, so in-place ops on it are not written back into it."""
    if _tracer.current() is not None:
        t._temporary = True
    if INFERENCE_REGIONS[0] and is_inference_mode_enabled():
        t._inference = True


def _unpickle_tensor(cls, data: np.ndarray, requires_grad: bool, extra: dict) -> Tensor:
    t = cls.__new__(cls)
    t._init(data, requires_grad)
    t.__dict__.update(extra)
    return t


_COMPLEX = (complex, ComplexTensor)  # operands that make arithmetic complex


def _as_complex(t: Tensor):
    """A real tensor as a complex one (imaginary part 0), for arithmetic with a complex operand."""
    return ComplexTensor._from(t if t.is_floating_point() else t.float(), 0.0)


def tensor(data, dtype=None, device=None, requires_grad: bool = False, pin_memory: bool = False) -> Tensor:
    """A new tensor holding a copy of `data`. Without dtype, a NumPy array or tensor keeps its dtype; in a list,
    Python floats count as the default dtype and NumPy / tensor values as their own, the widest float winning (as
    PyTorch infers)."""
    check_device(device, "tensor")
    if isinstance(data, SymNumber):  # (a number argument traced as a graph input: its 0-d tensor)
        want = to_dtype(dtype) if dtype is not None else ("int64" if data.kind is int else get_default_dtype())
        return data.as_tensor(want).clone().requires_grad_(requires_grad)
    if isinstance(data, Tensor):
        warnings.warn(
            "tensor(t) of a tensor t copies it: t.detach().clone() (and .requires_grad_(True)) says so directly",
            UserWarning,
            stacklevel=2,
        )
        arr = np.array(data._concrete("tensor()"))
        want = arr.dtype
    elif isinstance(data, (np.ndarray, np.generic)):
        arr = np.array(data)
        want = arr.dtype
    else:
        arr = np.array(data)
        want = _float_leaves_dtype(data) if arr.dtype.kind == "f" else None
    if arr.dtype.kind == "c" or getattr(dtype, "is_complex", False):
        from graphnn.core import complex_tensor

        double = getattr(dtype, "name", None) == "complex128" or (dtype is None and arr.dtype == np.complex128)
        wide = double and (
            dtype is not None or isinstance(data, (np.ndarray, np.generic)) or get_default_dtype() == "float64"
        )
        return complex_tensor.from_numpy(arr.astype(np.complex128 if wide else np.complex64), requires_grad)
    if dtype is not None:
        arr = arr.astype(to_dtype(dtype))
    elif arr.dtype.kind == "f":
        keep = want is not None and np.dtype(want).name in ("float32", "float64")
        arr = arr.astype(want if keep else get_default_dtype())
    elif arr.dtype.kind in "iu":
        arr = arr.astype(np.int64)
    return _made(Tensor._wrap(np.asarray(arr, order="C")), requires_grad, None, "tensor")


def _float_leaves_dtype(data):
    """The float dtype PyTorch infers for a nested list: the widest of its float leaves, Python floats counting as
    the default dtype, NumPy values and tensors as their own (None: no float leaf)."""
    widest = None
    stack_ = [data]
    while stack_:
        x = stack_.pop()
        if isinstance(x, (list, tuple)):
            stack_.extend(x)
            continue
        if isinstance(x, Tensor):
            d = np.dtype(x.dtype_name)
        elif isinstance(x, (np.ndarray, np.generic)):
            d = x.dtype
        elif isinstance(x, float):
            d = np.dtype(get_default_dtype())
        else:
            continue
        if d.kind == "f" and (widest is None or d.itemsize > widest.itemsize):
            widest = d
    return widest


def as_tensor(x, dtype=None, device=None) -> Tensor:
    """x as a tensor, without a copy where one is not needed: a tensor itself, or a C-contiguous NumPy array of one
    of graphnn's dtypes, whose memory the tensor shares (as PyTorch's as_tensor)."""
    check_device(device, "as_tensor")
    if isinstance(x, Tensor):
        return x if dtype is None else x.type_as_dtype(to_dtype(dtype))
    if (
        type(x) is np.ndarray
        and x.flags.c_contiguous
        and x.dtype.name in ("float32", "float64", "int64", "bool")
        and (dtype is None or to_dtype(dtype) == x.dtype.name)
    ):
        return Tensor._wrap(x)
    return tensor(x, dtype=dtype)


def from_numpy(a: np.ndarray) -> Tensor:
    """A tensor sharing memory with a NumPy array (float32, float64, int64, bool); an array of a dtype graphnn lacks
    (int32, float16, ...) is copied into the dtype computing it, with a warning that memory is not shared."""
    t = Tensor._wrap(a)
    if isinstance(a, np.ndarray) and t._data is not None and t._data.dtype != a.dtype:
        warnings.warn(
            f"from_numpy: graphnn has no {a.dtype.name}: the tensor is a copy of the array in {t.dtype_name}, so "
            "changes to one do not show in the other (PyTorch shares the memory)",
            UserWarning,
            stacklevel=2,
        )
    return t


def random_tensor(shape: tuple, dtype: str, sample) -> Tensor:
    """A tensor of random values from `sample()`: drawn now in eager code, drawn at every call when compiled."""
    from graphnn.compiler import tracer as _tracer

    tr = _tracer.current()
    if tr is not None:
        return tr.fresh(TensorType(tuple(shape), dtype), sample, "random")
    return Tensor._wrap(sample())


def _factory(name: str, fill, random: bool = False):
    def make(
        *sizes,
        size=None,
        dtype=None,
        device=None,
        requires_grad=False,
        layout=None,
        pin_memory=False,
        generator=None,
        out=None,
        memory_format=None,
    ):
        check_device(device, name)
        if size is not None:  # zeros(size=(2, 3)), as PyTorch's keyword
            if sizes:
                raise TypeError(f"{name}() got the size both by position and as a keyword")
            sizes = (size,)
        shape = _shape_args(sizes)
        if dtype is not None and _is_complex(dtype):  # real and imaginary parts as a last dimension of 2
            from .complex_tensor import ComplexTensor

            real = "float32" if str(dtype).endswith("64") or str(dtype).endswith("cfloat") else "float64"
            ri = make(*shape, 2, dtype=real, device=device, generator=generator)
            if name == "ones":
                ri = ri * Tensor._wrap(np.array([1.0, 0.0], real))
            elif name == "randn":  # (each part of variance 1/2, as PyTorch's complex normal)
                ri = ri * float(np.sqrt(0.5))
            return ComplexTensor(ri.detach()).requires_grad_(requires_grad)
        dt = to_dtype(dtype) if dtype is not None else get_default_dtype()
        if random:
            t = random_tensor(shape, dt, lambda: fill(shape, dt, generator))
        else:
            t = Tensor._wrap(fill(shape, dt))
            _note_temporary(t)
        return t.requires_grad_(True) if requires_grad else t

    make.__name__ = make.__qualname__ = name
    return make


def _is_complex(dtype) -> bool:
    return str(getattr(dtype, "name", dtype)).replace("graphnn.", "") in (
        "complex64",
        "complex128",
        "cfloat",
        "cdouble",
    )


zeros = _factory("zeros", lambda s, d: np.zeros(s, d))
ones = _factory("ones", lambda s, d: np.ones(s, d))
empty = _factory("empty", lambda s, d: np.zeros(s, d))
randn = _factory("randn", lambda s, d, g: _random.generator(g).standard_normal(s).astype(d), random=True)
rand = _factory("rand", lambda s, d, g: _random.generator(g).random(s).astype(d), random=True)


def _fill_dtype(value) -> str:
    """PyTorch's dtype for a fill value: bool, int64 for integers, float32 otherwise."""
    if isinstance(value, (bool, np.bool_)):
        return "bool"
    return "int64" if isinstance(value, (numbers.Integral, np.integer)) else get_default_dtype()


def full(size, fill_value, *, dtype=None, device=None, requires_grad=False, layout=None, out=None) -> Tensor:
    if isinstance(fill_value, Tensor):
        fill_value = fill_value.item()
    dt = to_dtype(dtype) if dtype is not None else _fill_dtype(fill_value)
    return _made(Tensor._wrap(np.full(_shape_args((size,)), fill_value, dt)), requires_grad, device, "full")


def randint(low, high=None, size=None, *, dtype=None, device=None, requires_grad=False, generator=None) -> Tensor:
    """Integers drawn uniformly from [low, high): `randint(high, size)` or `randint(low, high, size)`."""
    check_device(device, "randint")
    if size is None and isinstance(high, (tuple, list)):  # randint(high, size)
        low, high, size = 0, low, high
    if high is None:
        low, high = 0, low
    if size is None:
        raise TypeError("randint() missing required argument 'size'")
    dt = to_dtype(dtype) if dtype else "int64"
    shape = _shape_args((size,))
    return random_tensor(shape, dt, lambda: _random.generator(generator).integers(low, high, shape).astype(dt))


def randperm(n: int, *, generator=None, dtype=None, device=None, requires_grad=False, layout=None) -> Tensor:
    """A random permutation of 0 .. n-1, drawn from `generator` (a graphnn.Generator) or graphnn's generator."""
    check_device(device, "randperm")
    dt = to_dtype(dtype) if dtype else "int64"
    rng = (lambda: generator._rng) if generator is not None else _random.generator
    return random_tensor((int(n),), dt, lambda: rng().permutation(int(n)).astype(dt))


def _bound(v):
    """A range bound or step given as a one-element tensor (arange(lengths.max())): its Python number."""
    return v.item() if isinstance(v, Tensor) else v


def arange(start, end=None, step=1, *, dtype=None, device=None, requires_grad=False, layout=None, out=None) -> Tensor:
    start, end, step = _bound(start), _bound(end), _bound(step)
    if end is None:
        start, end = 0, start
    if dtype is None:
        dtype = "int64" if all(isinstance(v, numbers.Integral) for v in (start, end, step)) else get_default_dtype()
    if step == 0:
        raise RuntimeError(located("arange: step must be nonzero"))
    if (end - start) * step < 0:
        raise RuntimeError(
            located(f"arange: upper bound and larger bound inconsistent with step sign ({start}, {end}, {step})")
        )
    return _made(Tensor._wrap(np.arange(start, end, step).astype(to_dtype(dtype))), requires_grad, device, "arange")


def linspace_values(start, end, steps: int, dtype: str) -> np.ndarray:
    """PyTorch's linspace values: in the dtype's own arithmetic, start + i * step for the first half and
    end - (steps - 1 - i) * step for the rest (so both ends are exact)."""
    steps = int(steps)
    if steps < 0:
        raise RuntimeError(f"linspace: number of steps must be non-negative, got {steps}")
    if dtype not in ("float32", "float64"):
        return np.linspace(start, end, steps).astype(dtype)
    a, b = np.asarray(start, dtype), np.asarray(end, dtype)
    if steps <= 1:
        return np.full(steps, a, dtype)
    step = (b - a) / np.asarray(steps - 1, dtype)
    # each value is one fused multiply-add (no rounding of the product): emulated in a wider type
    wide = np.float64 if dtype == "float32" else np.longdouble
    i = np.arange(steps)
    half = steps // 2
    lo = wide(a) + wide(step) * i[:half].astype(wide)
    hi = wide(b) - wide(step) * (steps - 1 - i[half:]).astype(wide)
    return np.concatenate([lo, hi]).astype(dtype)


def linspace(start, end, steps, *, dtype=None, device=None, requires_grad=False, layout=None, out=None) -> Tensor:
    arr = linspace_values(start, end, steps, to_dtype(dtype) if dtype else get_default_dtype())
    return _made(Tensor._wrap(arr), requires_grad, device, "linspace")


def _like(name: str, fill):
    def make(t: Tensor, *args, dtype=None, device=None, requires_grad=False, layout=None, memory_format=None):
        dt = to_dtype(dtype) if dtype is not None else t.dtype_name
        return _made(fill(tuple(t.shape), dt, *args), requires_grad, device, name)

    make.__name__ = make.__qualname__ = name
    return make


zeros_like = _like("zeros_like", lambda s, d: Tensor._wrap(np.zeros(s, d)))
ones_like = _like("ones_like", lambda s, d: Tensor._wrap(np.ones(s, d)))
empty_like = _like("empty_like", lambda s, d: Tensor._wrap(np.zeros(s, d)))
full_like = _like("full_like", lambda s, d, value: Tensor._wrap(np.full(s, value, d)))


def _randint_like(s: tuple, d: str, low, high=None) -> Tensor:
    return randint(low, high, s, dtype=d)


randn_like = _like("randn_like", lambda s, d: randn(*s, dtype=d))
randint_like = _like("randint_like", _randint_like)
rand_like = _like("rand_like", lambda s, d: rand(*s, dtype=d))


def eye(n, m=None, *, dtype=None, device=None, requires_grad=False, layout=None, out=None) -> Tensor:
    arr = np.eye(n, m, dtype=to_dtype(dtype) if dtype else get_default_dtype())
    return _made(Tensor._wrap(arr), requires_grad, device, "eye")


_LEGACY_NAMES = {"float32": "FloatTensor", "float64": "DoubleTensor", "int64": "LongTensor", "bool": "BoolTensor"}


def _legacy_dtype(spec) -> str:
    """The dtype a Tensor.type() argument names: a dtype, a legacy class (graphnn.LongTensor) or its name."""
    if isinstance(spec, type) and issubclass(spec, Tensor):
        return getattr(spec, "_default_dtype", None) or "float32"
    if isinstance(spec, str) and spec.endswith("Tensor"):
        if ".cuda." in spec:
            check_device("cuda", "type")
        names = {v: k for k, v in _LEGACY_NAMES.items()}
        names.update(dict.fromkeys(("IntTensor", "ShortTensor", "CharTensor", "ByteTensor"), "int64"))
        names.update(dict.fromkeys(("HalfTensor", "BFloat16Tensor"), "float32"))
        name = spec.rsplit(".", 1)[-1]
        if name not in names:
            raise ValueError(located(f"type: invalid type {spec!r}"))
        return names[name]
    return to_dtype(spec)


class _LegacyClass(type):
    """The metaclass of the legacy tensor classes: `isinstance(x, torch.FloatTensor)` holds for every tensor of that
    dtype, as in PyTorch, not only for tensors the class constructed."""

    def __instancecheck__(cls, obj) -> bool:
        own = cls.__dict__.get("_default_dtype")
        if own is None:  # (IntTensor, ByteTensor, ...: computed as int64, told apart by their class alone)
            return type.__instancecheck__(cls, obj)
        return isinstance(obj, Tensor) and obj.dtype_name == own


class FloatTensor(Tensor, metaclass=_LegacyClass):
    _default_dtype = "float32"


class DoubleTensor(Tensor, metaclass=_LegacyClass):
    _default_dtype = "float64"


class LongTensor(Tensor, metaclass=_LegacyClass):
    _default_dtype = "int64"


class BoolTensor(Tensor, metaclass=_LegacyClass):
    _default_dtype = "bool"


# PyTorch's other legacy constructors, in the dtypes graphnn computes them in (narrow integers as int64, half
# precision as float32: the values kept)
class IntTensor(LongTensor):
    pass


class ShortTensor(LongTensor):
    pass


class CharTensor(LongTensor):
    pass


class ByteTensor(LongTensor):
    pass


class HalfTensor(FloatTensor):
    pass


class BFloat16Tensor(FloatTensor):
    pass


def cat(tensors, dim: int = 0) -> Tensor:
    """Concatenate along `dim` (one concat op; operands of different dtypes are promoted first, as in PyTorch)."""
    tensors = [as_tensor(t) for t in tensors]
    if not tensors:
        raise ValueError("cat expects a non-empty list of tensors")
    ref = tensors[0]
    if ref.ndim == 0:
        raise ValueError("cat: zero-dimensional tensor cannot be concatenated")
    d = dim % ref.ndim
    for t in tensors[1:]:
        if t.ndim != ref.ndim or any(a != b for i, (a, b) in enumerate(zip(t.shape, ref.shape)) if i != d):
            raise OpError(
                located(
                    f"cat: sizes of tensors must match except in dimension {d}: {[tuple(t.shape) for t in tensors]}"
                )
            )
    want = promote(*(t.dtype_name for t in tensors))
    pieces = [t.type_as_dtype(want) for t in tensors if t.shape[d] != 0] or [tensors[0].type_as_dtype(want)]
    return apply("concat", pieces, {"axis": d}, name="CatBackward0")


def stack(tensors, dim: int = 0) -> Tensor:
    tensors = [as_tensor(t) for t in tensors]
    if not tensors:
        raise RuntimeError("stack expects a non-empty TensorList")
    for i, t in enumerate(tensors[1:], 1):
        if tuple(t.shape) != tuple(tensors[0].shape):
            raise OpError(
                located(
                    f"stack expects each tensor to be equal size, but got {list(tensors[0].shape)} at entry 0 and "
                    f"{list(t.shape)} at entry {i}"
                )
            )
    d = dim % (tensors[0].ndim + 1)
    return relabel(cat([t.unsqueeze(d) for t in tensors], d), "StackBackward0", tensors)


def narrow(x: Tensor, dim: int, start: int, length: int) -> Tensor:
    d = check_dim(dim, x.ndim, "narrow", x)
    size = x.shape[d]
    begin = start + size if -size <= start < 0 else start
    if not (0 <= begin <= size and 0 <= length and begin + length <= size):
        from graphnn.core.dispatch import op_error
        from graphnn.ir.registry import IRError

        raise op_error(
            IRError(
                f"narrow({x._type}, dim {dim}, start {start}, length {length}): "
                f"start + length exceeds dimension size {size}"
            )
        )
    key = [slice(None)] * x.ndim
    key[d] = slice(begin, begin + length)
    return x[tuple(key)]
