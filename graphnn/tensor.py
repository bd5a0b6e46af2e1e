"""Tensor: an n-dimensional array that records the IR of the ops applied to it."""
from __future__ import annotations

import numbers

import numpy as np

from graphnn.ir.ops._util import norm_axes
from graphnn.ir.types import TensorType, canonical_dtype

from . import _random
from ._dispatch import apply, relabel
from ._grad_mode import no_grad
from .dtypes import dtype_of as _dtype_obj, to_dtype


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


class TraceError(RuntimeError):
    """A concrete value was asked of a tensor that only exists symbolically inside graphnn.compile."""


def check_dim(dim: int, ndim: int, what: str, t) -> int:
    """dim normalized to [0, ndim); out of range is PyTorch's IndexError, naming the op, the shape and the line."""
    n = max(ndim, 1)
    if not -n <= dim < n:
        from ._dispatch import located

        raise IndexError(located(f"{what}({t._type}): dimension out of range (expected to be in range of "
                                 f"[{-n}, {n - 1}], but got {dim})"))
    return dim % n


def escaped_message(t) -> str:
    """Why a symbolic tensor of a finished trace has no value (it escaped graphnn.compile's tracing)."""
    p = t._value.producer if t._value is not None else None
    origin = f"the result of {p.op}" + (f" in module {p.meta['scope']}" if p.meta.get("scope") else "") if p else "an input"
    return (f"({t._type}, {origin}) was computed while graphnn.compile traced the model and has no value: the Python "
            "code of a compiled function runs only when it is traced, so tensors it stores (on a module, in a list) "
            "are symbolic; return them from the compiled function instead")


_NATIVE_DTYPES = frozenset(np.dtype(n) for n in ("float32", "float64", "int64", "bool"))


class Tensor:
    """A graphnn tensor. `Tensor(2, 3)` allocates (zero-filled); `Tensor([[1, 2]])` takes data (float32)."""

    __array_priority__ = 1000

    def __init__(self, *args, dtype=None, requires_grad: bool = False):
        dt = to_dtype(dtype) if dtype is not None else getattr(type(self), "_default_dtype", "float32")
        if len(args) == 1 and isinstance(args[0], np.ndarray) and dtype is None and type(self) is Tensor:
            data = args[0]
        elif len(args) == 1 and not isinstance(args[0], numbers.Integral):
            src = args[0]._data if isinstance(args[0], Tensor) else args[0]
            data = np.array(src, dtype=dt)
        elif all(isinstance(a, numbers.Integral) for a in args):
            data = np.zeros(tuple(int(a) for a in args), dtype=dt)
        elif len(args) == 1 and isinstance(args[0], (tuple, list, Size)):
            data = np.array(args[0], dtype=dt)
        else:
            raise TypeError(f"Tensor() takes sizes or data, got {args!r}")
        self._init(np.asarray(data, order="C"), requires_grad)

    def _init(self, data, requires_grad=False):
        if data is not None and data.dtype not in _NATIVE_DTYPES:
            data = data.astype(canonical_dtype(data.dtype))
        self._data = data
        self._value = None
        self._trace = None
        self._accumulate = None
        self._grad = None
        self.grad_fn = None
        self.requires_grad = bool(requires_grad)
        return self

    @classmethod
    def _wrap(cls, data: np.ndarray, requires_grad: bool = False) -> "Tensor":
        t = Tensor.__new__(Tensor)
        return t._init(data, requires_grad)

    @classmethod
    def _symbolic(cls, value, tracer, requires_grad: bool) -> "Tensor":
        t = Tensor.__new__(Tensor)
        t._init(None, requires_grad)
        t._value, t._trace = value, tracer
        return t

    # -- identity and metadata --------------------------------------------------
    @property
    def _type(self) -> TensorType:
        return self._value.type if self._data is None else TensorType(self._data.shape, self._data.dtype.name)

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

    nelement = numel

    def __len__(self) -> int:
        if not self.shape:
            raise TypeError("len() of a 0-d tensor")
        return self.shape[0]

    @property
    def grad(self):
        return self._grad

    @grad.setter
    def grad(self, value) -> None:
        from . import _tracer

        tr = _tracer.current()
        if tr is not None:
            tr.note_grad_write(self)
        self._grad = value

    @property
    def is_leaf(self) -> bool:
        return self.grad_fn is None

    @property
    def device(self) -> str:
        return "cpu"

    def _eager_value(self):
        """The IR value standing for this tensor in recorded graphs (a leaf value for leaf tensors)."""
        if self._value is None:
            from graphnn.ir.graph import Value

            v = Value(self._type)
            v.data = self._data
            if self.requires_grad:
                v.meta["tensor"] = self
                self._value = v
            return v
        return self._value

    def _concrete(self, what: str) -> np.ndarray:
        if self._data is None:
            from ._dispatch import located

            if self._trace is not None and not self._trace.active:
                raise TraceError(located(f"{what}: this tensor {escaped_message(self)}"))
            raise TraceError(located(f"{what} needs a concrete value, but this tensor is symbolic inside graphnn.compile; "
                                     "return it from the compiled function and read it outside"))
        return self._data

    # -- conversion -------------------------------------------------------------------------
    def numpy(self) -> np.ndarray:
        if self.requires_grad:
            raise RuntimeError("Can't call numpy() on Tensor that requires grad. Use tensor.detach().numpy() instead.")
        return self._concrete("numpy()")

    def item(self):
        d = self._concrete("item()")
        if d.size != 1:
            raise ValueError(f"only one element tensors can be converted to Python scalars (shape {d.shape})")
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
            return f"tensor(<symbolic {self._type}>)"
        body = np.array2string(self._data, separator=", ", precision=4, prefix="tensor(")
        extra = ""
        if self.dtype_name not in ("float32", "int64", "bool"):
            extra += f", dtype=graphnn.{self.dtype_name}"
        if self.grad_fn is not None:
            extra += f", grad_fn=<{self.grad_fn.name()}>"
        elif self.requires_grad:
            extra += ", requires_grad=True"
        return f"tensor({body}{extra})"

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]

    def __hash__(self):
        return id(self)

    # -- autograd -------------------------------------------------------------------------------
    def backward(self, gradient=None, retain_graph=None, create_graph=False) -> None:
        from .autograd import backward

        backward([self], [gradient], retain_graph=retain_graph)

    def requires_grad_(self, requires_grad: bool = True) -> "Tensor":
        if requires_grad and self.dtype_name not in ("float32", "float64"):
            raise RuntimeError("only Tensors of floating point dtype can require gradients")
        self.requires_grad = requires_grad
        return self

    def detach(self) -> "Tensor":
        if self._trace is not None:
            return apply("stop_gradient", [self])
        return Tensor._wrap(self._data)

    def detach_(self) -> "Tensor":
        self.grad_fn, self._value, self.requires_grad = None, None, False
        return self

    def retain_grad(self) -> None:
        pass

    @property
    def data(self) -> "Tensor":
        """The same storage, detached from autograd."""
        return self.detach()

    @data.setter
    def data(self, value) -> None:
        self._assign_data(value._data if isinstance(value, Tensor) else np.asarray(value, self.dtype_name))

    def _assign_data(self, arr: np.ndarray) -> None:
        self._data = np.asarray(arr, order="C")
        if self.grad_fn is None:
            self._value = None

    def _assign(self, src) -> "Tensor":
        """In-place update with the value of `src` (recorded as a state update when tracing)."""
        from . import _tracer

        tr = _tracer.current()
        if tr is not None:
            tr.assign(self, src if isinstance(src, Tensor) else tensor(src, dtype=self.dtype_name))
            return self
        arr = src._concrete("in-place update") if isinstance(src, Tensor) else np.asarray(src)
        self._data[...] = arr
        return self

    # -- in-place helpers (run without recording, like PyTorch's under no_grad) ---------------------------
    def _inplace(self, result) -> "Tensor":
        if self.requires_grad and self.is_leaf and _grad_enabled():
            raise RuntimeError("a leaf Variable that requires grad is being used in an in-place operation.")
        return self._assign(result)

    def zero_(self):
        with no_grad():
            return self._inplace(zeros_like(self))

    def fill_(self, value):
        with no_grad():
            return self._inplace(full_like(self, value))

    def copy_(self, src):
        with no_grad():
            return self._inplace(broadcast_to(as_tensor(src, self.dtype_name), tuple(self.shape)))

    def add_(self, other, alpha=1):
        with no_grad():
            return self._inplace(self + other * alpha if alpha != 1 else self + other)

    def sub_(self, other, alpha=1):
        with no_grad():
            return self._inplace(self - other * alpha if alpha != 1 else self - other)

    def mul_(self, other):
        with no_grad():
            return self._inplace(self * other)

    def div_(self, other):
        with no_grad():
            return self._inplace(self / other)

    def clamp_(self, min=None, max=None):
        with no_grad():
            return self._inplace(self.clamp(min, max))

    def uniform_(self, a=0.0, b=1.0):
        self._data[...] = _random.generator().uniform(a, b, self.shape)
        return self

    def normal_(self, mean=0.0, std=1.0):
        self._data[...] = _random.generator().normal(mean, std, self.shape)
        return self

    def random_(self, low=None, high=None):
        if high is None:
            low, high = 0, (low if low is not None else 2 ** 24)
        self._data[...] = _random.generator().integers(low, high, self.shape)
        return self

    # -- dtype -------------------------------------------------------------------------------------------------
    def to(self, *args, **kwargs) -> "Tensor":
        dt = kwargs.get("dtype")
        for a in args:
            if not isinstance(a, str) or a not in ("cpu",):
                dt = a
        return self if dt is None else self.type_as_dtype(to_dtype(dt))

    def type_as_dtype(self, dt: str) -> "Tensor":
        return self if dt == self.dtype_name else apply("cast", [self], {"dtype": dt})

    def float(self):
        return self.type_as_dtype("float32")

    def double(self):
        return self.type_as_dtype("float64")

    def long(self):
        return self.type_as_dtype("int64")

    def int(self):
        return self.type_as_dtype("int64")

    def bool(self):
        return self.type_as_dtype("bool")

    def cpu(self):
        return self

    def clone(self):
        return apply("add", [self, 0]) if self.dtype_name != "bool" else self.type_as_dtype("bool")

    def contiguous(self):
        return self

    # -- arithmetic -------------------------------------------------------------------------------------------
    def __add__(self, o): return apply("add", [self, o])
    def __radd__(self, o): return apply("add", [o, self])
    def __sub__(self, o): return apply("sub", [self, o])
    def __rsub__(self, o): return apply("sub", [o, self])
    def __mul__(self, o): return apply("mul", [self, o])
    def __rmul__(self, o): return apply("mul", [o, self])
    def __truediv__(self, o): return _true_div(self, o)
    def __rtruediv__(self, o): return _true_div(o, self)
    def __pow__(self, o): return apply("pow", [self, o])
    def __rpow__(self, o): return apply("pow", [o, self])
    def __neg__(self): return apply("neg", [self])
    def __abs__(self): return apply("abs", [self])
    def __matmul__(self, o): return matmul(self, o)
    def __rmatmul__(self, o): return matmul(o, self)
    def __gt__(self, o): return apply("gt", [self, o])
    def __ge__(self, o): return apply("ge", [self, o])
    def __lt__(self, o): return apply("lt", [self, o])
    def __le__(self, o): return apply("le", [self, o])
    def __eq__(self, o): return apply("eq", [self, o])
    def __ne__(self, o): return apply("ne", [self, o])
    def __and__(self, o): return apply("logical_and", [self, o])
    def __or__(self, o): return apply("logical_or", [self, o])
    def __invert__(self): return apply("eq", [self, False])

    __iadd__ = add_
    __isub__ = sub_
    __imul__ = mul_
    __itruediv__ = div_

    def add(self, o, alpha=1): return self + (o * alpha if alpha != 1 else o)
    def sub(self, o, alpha=1): return self - (o * alpha if alpha != 1 else o)
    def mul(self, o): return self * o
    def div(self, o): return self / o
    def pow(self, o): return self ** o
    def neg(self): return -self
    def abs(self): return apply("abs", [self])
    def exp(self): return apply("exp", [self])
    def log(self): return apply("log", [self])
    def sqrt(self): return apply("sqrt", [self])
    def tanh(self): return apply("tanh", [self])
    def sigmoid(self): return apply("sigmoid", [self])
    def relu(self): return apply("relu", [self])
    def sign(self): return apply("sign", [self])
    def matmul(self, o): return matmul(self, o)
    def mm(self, o): return matmul(self, o)
    def eq(self, o): return self == o
    def ne(self, o): return self != o
    def gt(self, o): return self > o
    def lt(self, o): return self < o
    def ge(self, o): return self >= o
    def le(self, o): return self <= o

    def clamp(self, min=None, max=None):
        # As PyTorch's, the gradient passes where min <= x <= max (the bounds included), NaN propagates.
        out = self
        if min is not None:
            out = apply("select", [out < min, min, out], name="ClampBackward1")
        if max is not None:
            out = apply("select", [out > max, max, out], name="ClampBackward1")
        return out

    clip = clamp

    # -- reductions ---------------------------------------------------------------------------------------------
    def sum(self, dim=None, keepdim=False, dtype=None):
        x = self.type_as_dtype(to_dtype(dtype)) if dtype is not None else self
        if x.dtype_name == "bool":
            x = x.long()
        return apply("sum", [x], {"axes": _axes(dim), "keepdims": keepdim}, name="SumBackward0" if dim is None else "SumBackward1")

    def mean(self, dim=None, keepdim=False):
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
            return -apply("max", [-self], {"axes": None, "keepdims": False})
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
        return reshape(self, shape, "ReshapeAliasBackward0")

    def view_as(self, other):
        return self.view(tuple(other.shape))

    def flatten(self, start_dim=0, end_dim=-1):
        nd = self.ndim
        if nd == 0:
            return self.reshape(1)
        s, e = check_dim(start_dim, nd, "flatten", self), check_dim(end_dim, nd, "flatten", self)
        n = 1
        for d in self.shape[s:e + 1]:
            n *= d
        return reshape(self, tuple(self.shape[:s]) + (n,) + tuple(self.shape[e + 1:]), "ViewBackward0")

    def unsqueeze(self, dim):
        d = check_dim(dim, self.ndim + 1, "unsqueeze", self)
        shape = list(self.shape)
        shape.insert(d, 1)
        return reshape(self, tuple(shape), "UnsqueezeBackward0")

    def squeeze(self, dim=None):
        if dim is None:
            shape = tuple(s for s in self.shape if s != 1)
        else:
            d = check_dim(dim, self.ndim, "squeeze", self)
            shape = tuple(s for i, s in enumerate(self.shape) if not (i == d and s == 1))
        return reshape(self, shape, "SqueezeBackward0")

    def permute(self, *dims):
        if len(dims) == 1 and isinstance(dims[0], (tuple, list)):
            dims = tuple(dims[0])
        perm = tuple(check_dim(d, self.ndim, "permute", self) for d in dims)
        return apply("transpose", [self], {"perm": perm}, name="PermuteBackward0")

    def transpose(self, dim0, dim1):
        perm = list(range(self.ndim))
        a, b = check_dim(dim0, self.ndim, "transpose", self), check_dim(dim1, self.ndim, "transpose", self)
        perm[a], perm[b] = perm[b], perm[a]
        return apply("transpose", [self], {"perm": tuple(perm)}, name="TransposeBackward0")

    def t(self):
        if self.ndim < 2:
            return self
        return apply("transpose", [self], {"perm": (1, 0)}, name="TBackward0")

    @property
    def T(self):
        return self.permute(*reversed(range(self.ndim)))

    def expand(self, *shape):
        if len(shape) == 1 and isinstance(shape[0], (tuple, list, Size)):
            shape = tuple(shape[0])
        lead = len(shape) - self.ndim
        full = tuple(self.shape[i - lead] if s == -1 else s for i, s in enumerate(shape))
        return broadcast_to(self, full)

    def expand_as(self, other):
        return broadcast_to(self, tuple(other.shape))

    def __getitem__(self, key):
        return _getitem(self, key)

    def narrow(self, dim, start, length):
        return narrow(self, dim, start, length)

    def chunk(self, chunks, dim=0):
        n = self.shape[dim]
        step = -(-n // chunks)
        return tuple(narrow(self, dim, s, min(step, n - s)) for s in range(0, n, step))

    def split(self, split_size, dim=0):
        n = self.shape[dim]
        sizes = [split_size] * (n // split_size) + ([n % split_size] if n % split_size else []) \
            if isinstance(split_size, int) else list(split_size)
        out, s = [], 0
        for k in sizes:
            out.append(narrow(self, dim, s, k))
            s += k
        return tuple(out)

    def norm(self, p=2, dim=None, keepdim=False):
        if p != 2:
            return (self.abs() ** p).sum(dim, keepdim) ** (1.0 / p)
        return (self * self).sum(dim, keepdim).sqrt()

    def var(self, dim=None, unbiased=True, keepdim=False):
        axes = norm_axes(_axes(dim), self.ndim)
        n = 1
        for a in axes:
            n *= self.shape[a]
        d = self - self.mean(dim, keepdim=True)
        return (d * d).sum(dim, keepdim) / max(n - 1 if unbiased else n, 1)

    def std(self, dim=None, unbiased=True, keepdim=False):
        return self.var(dim, unbiased, keepdim).sqrt()

    def softmax(self, dim):
        from .nn.functional import softmax

        return softmax(self, dim)

    def log_softmax(self, dim):
        from .nn.functional import log_softmax

        return log_softmax(self, dim)

    def where(self, cond, other):
        return apply("select", [cond, self, other])

    def masked_fill(self, mask, value):
        return apply("select", [mask, value, self])

    def index_select(self, dim, index):
        """The entries at `index` (1-D or 0-d int64) along `dim`, copied exactly (a gather, any dtype)."""
        from graphnn.ir.registry import IRError

        from ._dispatch import op_error

        from ._tracer import check_values

        d = check_dim(dim, self.ndim, "index_select", self)
        index = as_tensor(index)
        n = self.shape[d]
        call = f"index_select(input {self._type}, dim {dim}, index {index._type})"
        if index.dtype_name != "int64" or index.ndim > 1:
            raise op_error(IRError(f"{call}: index must be a 1-D int64 tensor"))

        def check(idx):  # named with the caller's line, now and at every compiled call (the kernel checks too)
            bad = (idx < 0) | (idx >= n)
            if bad.any():
                raise op_error(IRError(f"{call}: index {int(idx[bad].flat[0])} is out of range for dimension {d} "
                                       f"of size {n}"))
        check_values(index, check)
        if index.ndim == 0:
            index = index.reshape((1,))
        return apply("take", [self, index], {"axis": d}, name="IndexSelectBackward0")

    def gather(self, dim, index):
        """out[..i..] = self[..index[..i..]..] with the index replacing position `dim` (torch.gather)."""
        d = check_dim(dim, self.ndim, "gather", self)
        return apply("take_along", [self, as_tensor(index)], {"axis": d}, name="GatherBackward0")

    def repeat(self, *sizes):
        sizes = _shape_args(sizes)
        x = self.reshape((1,) * (len(sizes) - self.ndim) + tuple(self.shape))
        inter, full_shape = [], []
        for r, s in zip(sizes, x.shape):
            inter += [1, s]
            full_shape += [r, s]
        y = broadcast_to(x.reshape(tuple(inter)), tuple(full_shape))
        return y.reshape(tuple(r * s for r, s in zip(sizes, x.shape)))


def _grad_enabled() -> bool:
    from ._grad_mode import is_grad_enabled

    return is_grad_enabled()


class _MinMax(tuple):
    """(values, indices) as returned by max(dim) / min(dim) (a namedtuple for graphnn.compile's results)."""

    _fields = ("values", "indices")

    def __new__(cls, values, indices):
        return super().__new__(cls, (values, indices))

    values = property(lambda self: self[0])
    indices = property(lambda self: self[1])


def _pick(x: Tensor, dim: int, keepdim: bool, idx: Tensor, name: str) -> "_MinMax":
    """(values, indices) of max(dim) / min(dim) from the kept-dim arg-indices `idx`. As in PyTorch, the gradient
    reaches only the element at the index, also when several elements are equal."""
    d = dim % x.ndim
    pos = Tensor._wrap(np.arange(x.shape[d], dtype=np.int64).reshape((-1,) + (1,) * (x.ndim - 1 - d)))
    values = relabel(apply("select", [pos == idx, x, 0]).sum(d, keepdim), name, [x])
    return _MinMax(values, idx if keepdim else idx.squeeze(d))


def _axes(dim):
    if dim is None:
        return None
    return tuple(dim) if isinstance(dim, (tuple, list)) else (dim,)


def _true_div(a, b):
    ta = a if isinstance(a, Tensor) else None
    tb = b if isinstance(b, Tensor) else None
    for t in (ta, tb):
        if t is not None and t.dtype_name in ("int64", "bool"):
            if t is ta:
                a = ta.float()
            else:
                b = tb.float()
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
    return apply("reshape", [x], {"shape": shape}, name=name)


def broadcast_to(x: Tensor, shape: tuple) -> Tensor:
    return apply("broadcast_to", [x], {"shape": tuple(shape)}, name="ExpandBackward0")


def matmul(a, b) -> Tensor:
    a, b = as_tensor(a), as_tensor(b)
    if a.ndim == 1 and b.ndim == 1:
        return (a * b).sum()
    if a.ndim == 1:
        return apply("matmul", [a.unsqueeze(0), b]).squeeze(-2)
    if b.ndim == 1:
        return apply("matmul", [a, b.unsqueeze(-1)]).squeeze(-1)
    return apply("matmul", [a, b], name="MmBackward0" if a.ndim == b.ndim == 2 else "BmmBackward0")


def _getitem(x: Tensor, key) -> Tensor:
    if not isinstance(key, tuple):
        key = (key,)
    if any(isinstance(k, Tensor) for k in key):
        raise NotImplementedError("indexing with tensors is not supported yet; use index_select or gather")
    if Ellipsis in key:
        i = key.index(Ellipsis)
        fill = x.ndim - (len(key) - 1 - key.count(None))
        key = key[:i] + (slice(None),) * fill + key[i + 1:]
    starts, stops, steps, final = [], [], [], []
    d = 0
    for k in key:
        if k is None:
            final.append(1)
            continue
        n = x.shape[d]
        if isinstance(k, (int, np.integer)):
            i = int(k)
            if not -n <= i < n:
                raise IndexError(f"index {i} is out of bounds for dimension {d} with size {n}")
            i %= n
            starts.append(i), stops.append(i + 1), steps.append(1)
        elif isinstance(k, slice):
            s, e, p = k.indices(n)
            if p < 0:
                raise ValueError("negative slice steps are not supported")
            e = max(e, s)
            starts.append(s), stops.append(e), steps.append(p)
            final.append(max(0, -(-(e - s) // p)))
        else:
            raise TypeError(f"unsupported index {k!r}")
        d += 1
    for n in x.shape[d:]:
        starts.append(0), stops.append(n), steps.append(1)
        final.append(n)
    out = x
    if (starts, stops, steps) != ([0] * x.ndim, list(x.shape), [1] * x.ndim):
        out = apply("slice", [x], {"starts": tuple(starts), "stops": tuple(stops), "steps": tuple(steps)},
                    name="SliceBackward0")
    if tuple(final) != tuple(out.shape):
        out = reshape(out, tuple(final), "SelectBackward0")
    return out


# -- factories ----------------------------------------------------------------------------------------------------
def _shape_args(size) -> tuple:
    if len(size) == 1 and isinstance(size[0], (tuple, list, Size)):
        return tuple(size[0])
    return tuple(int(s) for s in size)


def tensor(data, dtype=None, requires_grad: bool = False) -> Tensor:
    """A new tensor holding a copy of `data` (float data becomes float32 unless dtype says otherwise)."""
    keep = isinstance(data, (np.ndarray, np.generic))  # NumPy data keeps its dtype, as torch.tensor does
    if isinstance(data, Tensor):
        arr = np.array(data._concrete("tensor()"))
        keep = True
    else:
        arr = np.array(data)
    if dtype is not None:
        arr = arr.astype(to_dtype(dtype))
    elif arr.dtype.kind == "f" and not (keep and arr.dtype == np.float64):
        arr = arr.astype(np.float32)
    elif arr.dtype.kind in "iu":
        arr = arr.astype(np.int64)
    t = Tensor._wrap(np.asarray(arr, order="C"))
    if requires_grad:
        t.requires_grad_(True)
    return t


def as_tensor(x, dtype=None) -> Tensor:
    if isinstance(x, Tensor):
        return x if dtype is None else x.type_as_dtype(to_dtype(dtype))
    return tensor(x, dtype=dtype)


def from_numpy(a: np.ndarray) -> Tensor:
    """A tensor sharing memory with a NumPy array."""
    return Tensor._wrap(a)


def random_tensor(shape: tuple, dtype: str, sample) -> Tensor:
    """A tensor of random values from `sample()`: drawn now in eager code, drawn at every call when compiled."""
    from . import _tracer

    tr = _tracer.current()
    if tr is not None:
        return tr.fresh(TensorType(tuple(shape), dtype), sample, "random")
    return Tensor._wrap(sample())


def _factory(fill, random: bool = False):
    def make(*size, dtype=None, requires_grad=False, **_):
        shape, dt = _shape_args(size), to_dtype(dtype) if dtype is not None else "float32"
        t = random_tensor(shape, dt, lambda: fill(shape, dt)) if random else Tensor._wrap(fill(shape, dt))
        return t.requires_grad_(True) if requires_grad else t
    return make


zeros = _factory(lambda s, d: np.zeros(s, d))
ones = _factory(lambda s, d: np.ones(s, d))
empty = _factory(lambda s, d: np.zeros(s, d))
randn = _factory(lambda s, d: _random.generator().standard_normal(s).astype(d), random=True)
rand = _factory(lambda s, d: _random.generator().random(s).astype(d), random=True)


def full(size, fill_value, dtype=None, requires_grad=False) -> Tensor:
    dt = to_dtype(dtype) if dtype is not None else ("float32" if isinstance(fill_value, float) else "int64")
    return Tensor._wrap(np.full(tuple(size), fill_value, dt))


def randint(low, high=None, size=None, dtype=None) -> Tensor:
    if high is None:
        low, high = 0, low
    dt = to_dtype(dtype) if dtype else "int64"
    return random_tensor(tuple(size), dt, lambda: _random.generator().integers(low, high, tuple(size)).astype(dt))


def arange(start, end=None, step=1, dtype=None, requires_grad=False) -> Tensor:
    if end is None:
        start, end = 0, start
    if dtype is None:
        dtype = "int64" if all(isinstance(v, numbers.Integral) for v in (start, end, step)) else "float32"
    return Tensor._wrap(np.arange(start, end, step).astype(to_dtype(dtype)))


def linspace(start, end, steps, dtype=None) -> Tensor:
    return Tensor._wrap(np.linspace(start, end, steps).astype(to_dtype(dtype) if dtype else "float32"))


def zeros_like(t: Tensor, dtype=None) -> Tensor:
    return Tensor._wrap(np.zeros(tuple(t.shape), to_dtype(dtype) if dtype else t.dtype_name))


def ones_like(t: Tensor, dtype=None) -> Tensor:
    return Tensor._wrap(np.ones(tuple(t.shape), to_dtype(dtype) if dtype else t.dtype_name))


def full_like(t: Tensor, value, dtype=None) -> Tensor:
    return Tensor._wrap(np.full(tuple(t.shape), value, to_dtype(dtype) if dtype else t.dtype_name))


def randn_like(t: Tensor) -> Tensor:
    return randn(*t.shape, dtype=t.dtype_name)


def rand_like(t: Tensor) -> Tensor:
    return rand(*t.shape, dtype=t.dtype_name)


def eye(n, m=None, dtype=None) -> Tensor:
    return Tensor._wrap(np.eye(n, m, dtype=to_dtype(dtype) if dtype else "float32"))


class FloatTensor(Tensor):
    _default_dtype = "float32"


class DoubleTensor(Tensor):
    _default_dtype = "float64"


class LongTensor(Tensor):
    _default_dtype = "int64"


class BoolTensor(Tensor):
    _default_dtype = "bool"


def cat(tensors, dim: int = 0) -> Tensor:
    """Concatenate along `dim`: each piece is placed into the result's shape (slice_grad) and the pieces summed."""
    tensors = [as_tensor(t) for t in tensors]
    if not tensors:
        raise ValueError("cat expects a non-empty list of tensors")
    ref = tensors[0]
    d = dim % ref.ndim
    for t in tensors[1:]:
        if t.ndim != ref.ndim or any(a != b for i, (a, b) in enumerate(zip(t.shape, ref.shape)) if i != d):
            raise ValueError(f"cat: sizes of tensors must match except in dimension {d}: "
                             f"{[tuple(t.shape) for t in tensors]}")
    total = sum(t.shape[d] for t in tensors)
    shape = list(ref.shape)
    shape[d] = total
    out, offset = None, 0
    for t in tensors:
        if t.shape[d] == 0:
            continue
        starts = tuple(offset if i == d else 0 for i in range(ref.ndim))
        piece = apply("slice_grad", [t], {"shape": tuple(shape), "starts": starts, "steps": (1,) * ref.ndim})
        out = piece if out is None else out + piece
        offset += t.shape[d]
    return relabel(out, "CatBackward0", tensors)


def stack(tensors, dim: int = 0) -> Tensor:
    tensors = [as_tensor(t) for t in tensors]
    d = dim % (tensors[0].ndim + 1)
    return relabel(cat([t.unsqueeze(d) for t in tensors], d), "StackBackward0", tensors)


def narrow(x: Tensor, dim: int, start: int, length: int) -> Tensor:
    d = check_dim(dim, x.ndim, "narrow", x)
    size = x.shape[d]
    begin = start + size if -size <= start < 0 else start
    if not (0 <= begin <= size and 0 <= length and begin + length <= size):
        from ._dispatch import op_error
        from graphnn.ir.registry import IRError

        raise op_error(IRError(f"narrow({x._type}, dim {dim}, start {start}, length {length}): "
                               f"start + length exceeds dimension size {size}"))
    key = [slice(None)] * x.ndim
    key[d] = slice(begin, begin + length)
    return x[tuple(key)]
