"""PyTorch's top-level names that are other spellings of graphnn's functions, its constants, window functions,
scatter-into-a-copy functions and process-wide settings that programs call (`torch.pi`, `torch.concat`,
`torch.exp_(x)`, `torch.hann_window(400)`, `torch.set_num_interop_threads(1)`)."""

from __future__ import annotations

import math
import warnings
from builtins import range as range_

import numpy as np

# other spellings of graphnn functions: name -> graphnn's name
FUNCTION_ALIASES = {"concat": "cat", "concatenate": "cat"}
ALIASES = {  # (also Tensor methods)
    "greater": "gt",
    "greater_equal": "ge",
    "less": "lt",
    "less_equal": "le",
    "not_equal": "ne",
    "absolute": "abs",
}

CONSTANTS = {"pi": math.pi, "e": math.e, "inf": math.inf, "nan": math.nan, "newaxis": None}


def _g():
    import graphnn

    return graphnn


def _window(name: str, window_length: int, periodic: bool, dtype, requires_grad: bool, values):
    """A window of `window_length` points from values(M) (the M-point symmetric window, in float64); periodic:
    the first window_length points of the (window_length + 1)-point one, as for spectral analysis."""
    if not isinstance(window_length, (int, np.integer)) or isinstance(window_length, bool) or window_length < 0:
        raise RuntimeError(f"{name} requires non-negative window_length, got window_length={window_length}")
    g = _g()
    dtype = dtype if dtype is not None else g.get_default_dtype()
    if not getattr(dtype, "is_floating_point", False):
        raise RuntimeError(f"{name} expects floating point dtypes, got: {dtype}")
    n = int(window_length)
    if n <= 1:
        w = np.ones(n)
    else:
        m = n + 1 if periodic else n
        w = values(m)[:n]
    return g.tensor(w, dtype=dtype, requires_grad=requires_grad)


def _cosine_sum(coeffs):
    def values(m):
        x = 2 * np.pi * np.arange(m) / (m - 1)
        return sum(((-1) ** k) * a * np.cos(k * x) for k, a in enumerate(coeffs))

    return values


def hann_window(
    window_length: int, periodic: bool = True, *, dtype=None, layout=None, device=None, requires_grad=False
):
    """0.5 - 0.5 cos(2 pi n / (M - 1))."""
    return _window("hann_window", window_length, periodic, dtype, requires_grad, _cosine_sum((0.5, 0.5)))


def hamming_window(
    window_length: int,
    periodic: bool = True,
    alpha: float = 0.54,
    beta: float = 0.46,
    *,
    dtype=None,
    layout=None,
    device=None,
    requires_grad=False,
):
    """alpha - beta cos(2 pi n / (M - 1))."""
    return _window("hamming_window", window_length, periodic, dtype, requires_grad, _cosine_sum((alpha, beta)))


def blackman_window(
    window_length: int, periodic: bool = True, *, dtype=None, layout=None, device=None, requires_grad=False
):
    """0.42 - 0.5 cos(2 pi n / (M - 1)) + 0.08 cos(4 pi n / (M - 1))."""
    return _window("blackman_window", window_length, periodic, dtype, requires_grad, _cosine_sum((0.42, 0.5, 0.08)))


def bartlett_window(
    window_length: int, periodic: bool = True, *, dtype=None, layout=None, device=None, requires_grad=False
):
    """1 - |2n / (M - 1) - 1| (triangular)."""
    return _window(
        "bartlett_window",
        window_length,
        periodic,
        dtype,
        requires_grad,
        lambda m: 1 - np.abs(2 * np.arange(m) / (m - 1) - 1),
    )


def kaiser_window(
    window_length: int,
    periodic: bool = True,
    beta: float = 12.0,
    *,
    dtype=None,
    layout=None,
    device=None,
    requires_grad=False,
):
    """I0(beta sqrt(1 - (2n / (M - 1) - 1)^2)) / I0(beta)."""
    return _window("kaiser_window", window_length, periodic, dtype, requires_grad, lambda m: np.kaiser(m, beta))


def rsub(input, other, alpha=1):
    """other - alpha * input."""
    return other - (input * alpha if alpha != 1 else input)


def scalar_tensor(s, *, dtype=None, layout=None, device=None, requires_grad=False, pin_memory=False):
    """A 0-d tensor holding the number s (of the default float dtype unless dtype says otherwise)."""
    g = _g()
    return g.tensor(float(s) if dtype is None else s, dtype=dtype, requires_grad=requires_grad)


def _range(start=0, end=None, step=1, *, dtype=None, layout=None, device=None, requires_grad=False):
    """Deprecated in PyTorch: the points start, start + step, ... up to and including end (default float dtype)."""
    if end is None:
        start, end = 0, start
    if step == 0:
        raise RuntimeError("range: step must be nonzero")
    warnings.warn(
        "range (torch.range) is deprecated: unlike Python's range it includes `end`; arange stops before it",
        UserWarning,
        stacklevel=2,
    )
    count = int(math.floor((end - start) / step)) + 1
    g = _g()
    values = start + step * np.arange(max(count, 0), dtype=np.float64)
    return g.tensor(values, dtype=dtype if dtype is not None else g.get_default_dtype(), requires_grad=requires_grad)


def is_nonzero(input) -> bool:
    """bool of a one-element tensor (an error for any other size, as in PyTorch)."""
    if input.numel() != 1:
        if input.numel() == 0:
            raise RuntimeError("Boolean value of Tensor with no values is ambiguous")
        raise RuntimeError("Boolean value of Tensor with more than one value is ambiguous")
    return bool(input.item())


def typename(obj) -> str:
    """'torch.FloatTensor'-style name of a tensor's type, else the object's qualified class name."""
    from graphnn.core.tensor import Tensor

    if isinstance(obj, Tensor):
        return obj.type()
    t = type(obj)
    return t.__name__ if t.__module__ in ("builtins", "__builtin__") else f"{t.__module__}.{t.__qualname__}"


def unravel_index(indices, shape) -> tuple:
    """The per-dimension coordinates (int64 tensors, one per dimension of shape) of flat indices into shape."""
    g = _g()
    from graphnn.core.tensor import Tensor

    shape = (shape,) if isinstance(shape, (int, np.integer)) else tuple(int(s) for s in shape)
    idx = np.asarray(indices.numpy() if isinstance(indices, Tensor) else indices)
    if idx.dtype.kind not in "iu":
        raise TypeError("unravel_index: expected 'indices' to be an integer tensor")
    size = int(np.prod(shape))
    if (idx < -size).any() or (idx >= size).any():
        raise RuntimeError(f"unravel_index: index out of bounds for a tensor of shape {list(shape)}")
    return tuple(g.tensor(c, dtype=g.int64) for c in np.unravel_index(np.where(idx < 0, idx + size, idx), shape))


def select_scatter(input, src, dim: int, index: int):
    """A copy of input with src written into input.select(dim, index) (differentiable in both)."""
    out = input.clone()
    out.select(dim, index).copy_(src)
    return out


def slice_scatter(input, src, dim: int = 0, start=None, end=None, step: int = 1):
    """A copy of input with src written into the slice start:end:step along dim."""
    out = input.clone()
    key = [slice(None)] * input.dim()
    key[dim] = slice(start, end, step)
    out[tuple(key)] = src
    return out


def diagonal_scatter(input, src, offset: int = 0, dim1: int = 0, dim2: int = 1):
    """A copy of input with src written into its diagonal (offset, dim1, dim2)."""
    out = input.clone()
    out.diagonal(offset, dim1, dim2).copy_(src)
    return out


def from_dlpack(ext):
    """A tensor sharing the memory of an object with __dlpack__ (a NumPy array, another library's CPU tensor)."""
    g = _g()
    return g.as_tensor(np.from_dlpack(ext))


_SETTINGS = {"interop_threads": 1, "warn_always": False}


def set_num_interop_threads(n: int) -> None:
    """Accepted (graphnn runs no inter-op thread pool): get_num_interop_threads() returns it."""
    if int(n) < 1:
        raise RuntimeError("Expected positive number of threads")
    _SETTINGS["interop_threads"] = int(n)


def get_num_interop_threads() -> int:
    return _SETTINGS["interop_threads"]


def set_warn_always(b: bool) -> None:
    _SETTINGS["warn_always"] = bool(b)


def is_warn_always_enabled() -> bool:
    return _SETTINGS["warn_always"]


def set_flush_denormal(mode: bool) -> bool:
    """False: graphnn's kernels keep denormal numbers (IEEE arithmetic), so flushing them is not supported."""
    return False


def set_anomaly_enabled(mode: bool, check_nan: bool = True) -> None:
    from graphnn import autograd

    autograd.set_detect_anomaly(mode)


def is_anomaly_enabled() -> bool:
    from graphnn import autograd

    return autograd.is_anomaly_enabled()


def is_anomaly_check_nan_enabled() -> bool:
    return is_anomaly_enabled()


def set_default_tensor_type(t) -> None:
    """Deprecated in PyTorch: 'torch.FloatTensor' / 'torch.DoubleTensor' (or the classes) set the default float
    dtype."""
    g = _g()
    name = t if isinstance(t, str) else getattr(t, "__name__", str(t))
    base = name.rsplit(".", 1)[-1]
    dtypes = {"FloatTensor": g.float32, "DoubleTensor": g.float64}
    if base not in dtypes:
        raise TypeError(f"set_default_tensor_type: only floating-point CPU types are supported, got {name}")
    g.set_default_dtype(dtypes[base])


def get_default_device():
    return _g().device("cpu")


def set_default_device(device) -> None:
    """Only the CPU (or None) is accepted: graphnn runs on the CPU."""
    if device is not None and str(_g().device(device)).split(":")[0] != "cpu":
        raise RuntimeError(f"set_default_device: graphnn runs on the CPU only, not on {device}")


FUNCTIONS = {
    f.__name__: f
    for f in (
        hann_window,
        hamming_window,
        blackman_window,
        bartlett_window,
        kaiser_window,
        rsub,
        scalar_tensor,
        is_nonzero,
        typename,
        unravel_index,
        select_scatter,
        slice_scatter,
        diagonal_scatter,
        from_dlpack,
        set_num_interop_threads,
        get_num_interop_threads,
        set_warn_always,
        is_warn_always_enabled,
        set_flush_denormal,
        set_anomaly_enabled,
        is_anomaly_enabled,
        is_anomaly_check_nan_enabled,
        set_default_tensor_type,
        get_default_device,
        set_default_device,
    )
}
FUNCTIONS["range"] = _range
METHODS = {n: FUNCTIONS[n] for n in ("select_scatter", "slice_scatter", "diagonal_scatter", "is_nonzero")}


def sum_to_size(self, *size):
    """self summed over the dimensions where `size` (to which self broadcasts) is 1 or missing."""
    size = tuple(size[0]) if len(size) == 1 and isinstance(size[0], (tuple, list)) else tuple(size)
    shape = tuple(self.shape)
    lead = len(shape) - len(size)
    if lead < 0 or any(s not in (1, d) for s, d in zip(size, shape[lead:])):
        raise RuntimeError(f"sum_to_size: size {list(size)} is not expandable to size {list(shape)}")
    out = self.sum(dim=tuple(range_(lead))) if lead else self
    dims = tuple(i for i, (s, d) in enumerate(zip(size, shape[lead:])) if s == 1 and d != 1)
    return out.sum(dim=dims, keepdim=True) if dims else out


def _imag(self):
    raise RuntimeError("imag is not implemented for tensors with non-complex dtypes.")


METHODS.update(
    {
        "as_strided": lambda self, size, stride, storage_offset=0: _g().as_strided(self, size, stride, storage_offset),
        "sum_to_size": sum_to_size,
        "split_with_sizes": lambda self, split_sizes, dim=0: self.split(list(split_sizes), dim),
        "unsafe_split": lambda self, split_size, dim=0: self.split(split_size, dim),
        "unsafe_chunk": lambda self, chunks, dim=0: self.chunk(chunks, dim),
        "adjoint": lambda self: self.transpose(-2, -1),
        "to_sparse_coo": lambda self: self.to_sparse(),
        "hardshrink": lambda self, lambd=0.5: _g().nn.functional.hardshrink(self, lambd),
        "prelu": lambda self, weight: _g().nn.functional.prelu(self, weight),
        "real": property(lambda self: self, doc="self: a real tensor is its own real part"),
        "imag": property(_imag),
        **{
            flag: property(lambda self, v=value: v)
            for flag, value in (
                ("is_cpu", True),
                ("is_meta", False),
                ("is_quantized", False),
                ("is_nested", False),
                ("is_mkldnn", False),
                ("is_sparse_csr", False),
            )
        },
    }
)
# in-place comparisons and logical / bitwise ops: x.eq_(y) writes x == y in x's dtype
INPLACE = (
    "eq",
    "ne",
    "lt",
    "le",
    "gt",
    "ge",
    "greater",
    "greater_equal",
    "less",
    "less_equal",
    "not_equal",
    "logical_and",
    "logical_or",
    "logical_xor",
    "logical_not",
    "bitwise_and",
    "bitwise_or",
    "bitwise_xor",
    "bitwise_not",
    "bitwise_left_shift",
    "bitwise_right_shift",
    "absolute",
)


def _method_call(name: str):
    def fn(input, *args, **kwargs):
        return getattr(input, name)(*args, **kwargs)

    fn.__name__ = fn.__qualname__ = name
    fn.__doc__ = f"input.{name}(...)"
    return fn


def install(module) -> None:
    """Add the names above to graphnn (keeping any it defines), aliases as both functions and Tensor methods, and
    graphnn.<name>_(input, ...) for each in-place Tensor method whose out-of-place form is a graphnn function
    (`torch.relu_(x)`, `torch.exp_(x)`)."""
    from graphnn.core.install import install as put
    from graphnn.core.tensor import Tensor

    both = {a: getattr(module, n) for a, n in ALIASES.items()}
    functions = {**FUNCTIONS, **{a: getattr(module, n) for a, n in FUNCTION_ALIASES.items()}}
    put(module, both, INPLACE, functions=functions, methods=METHODS)
    for name, value in CONSTANTS.items():
        if not hasattr(module, name):
            setattr(module, name, value)
    inplace = {
        n: _method_call(n)
        for n in dir(Tensor)
        if n.endswith("_") and not n.startswith("_") and callable(getattr(module, n[:-1], None))
    }
    put(module, functions=inplace)


def foreach(op: str):
    """torch._foreach_<op>(tensors, *args): Tensor.<op> applied to each tensor, a list or tuple argument of the same
    length giving one value per tensor (`_foreach_add_(ps, gs, alpha=0.1)`, `_foreach_mul_(ps, 0.9)`,
    `_foreach_norm(gs)`); the in-place forms return the tensors given, the others the list of results."""
    from graphnn.core.tensor import Tensor

    if not callable(getattr(Tensor, op, None)):
        raise AttributeError(f"module 'graphnn' has no attribute '_foreach_{op}'")

    def fn(self, *args, **kwargs):
        tensors = list(self)
        n = len(tensors)

        def at(a, i):
            return a[i] if isinstance(a, (list, tuple)) and len(a) == n else a

        out = [
            getattr(t, op)(*[at(a, i) for a in args], **{k: at(v, i) for k, v in kwargs.items()})
            for i, t in enumerate(tensors)
        ]
        return self if op.endswith("_") else out  # (the in-place forms return their argument, as PyTorch's)

    fn.__name__ = fn.__qualname__ = f"_foreach_{op}"
    return fn
