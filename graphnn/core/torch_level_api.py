"""More of PyTorch's top-level names: the `*_copy` forms of views, ATen spellings of splits and fills, symbolic-size
helpers (`torch.sym_int`, ...), autocast state queries, eager control flow (`torch.cond`, `torch.while_loop`),
low-rank SVD / PCA, `torch.angle` of real tensors, and queries programs make of the build (`torch.get_device`)."""

from __future__ import annotations

import math

import numpy as np

from graphnn.core.compat_api import _method_call as _method


def _g():
    import graphnn

    return graphnn


def _copy_of(view: str):
    """torch.<view>_copy(input, ...): the view's values as a new tensor (a list of them for splits and unbind)."""

    def fn(input, *args, **kwargs):
        out = getattr(input, view)(*args, **kwargs)
        return [t.clone() for t in out] if isinstance(out, (list, tuple)) else out.clone()

    fn.__name__ = fn.__qualname__ = f"{view}_copy"
    fn.__doc__ = f"input.{view}(...) as a new tensor"
    return fn


VIEW_COPIES = (
    "as_strided",
    "detach",
    "diagonal",
    "expand",
    "narrow",
    "permute",
    "select",
    "split",
    "split_with_sizes",
    "squeeze",
    "t",
    "transpose",
    "unbind",
    "unfold",
    "unsqueeze",
    "view",
)


def _slice(self, dim: int = 0, start=None, end=None, step: int = 1):
    """ATen's slice: self[start:end:step] along dim."""
    index = [slice(None)] * self.dim()
    index[dim] = slice(start, end, step)
    return self[tuple(index)]


def empty_strided(size, stride, *, dtype=None, layout=None, device=None, requires_grad=False, pin_memory=False):
    """An uninitialized tensor of `size` (graphnn's tensors are contiguous: the strides are not kept)."""
    return _g().empty(tuple(size), dtype=dtype, requires_grad=requires_grad)


def empty_permuted(
    size, physical_layout, *, dtype=None, layout=None, device=None, requires_grad=False, pin_memory=False
):
    """An uninitialized tensor of `size` (the memory order `physical_layout` asks for is not kept)."""
    if sorted(physical_layout) != list(range(len(size))):
        raise RuntimeError(
            f"empty_permuted: physical_layout {list(physical_layout)} is not a permutation of {len(size)} dims"
        )
    return _g().empty(tuple(size), dtype=dtype, requires_grad=requires_grad)


def fill(input, value):
    """A tensor like input filled with value (a number or a 0-d tensor)."""
    return _g().full_like(input, float(value) if not isinstance(value, (int, float, bool)) else value)


def frobenius_norm(input, dim=(), keepdim: bool = False):
    dim = tuple(dim) if dim not in ((), [], None) else None
    return (input * input).sum(dim=dim, keepdim=keepdim).sqrt() if dim else (input * input).sum().sqrt()


def nuclear_norm(input, dim=None, keepdim: bool = False):
    """The sum of singular values of the matrices of input (the last two dimensions, or `dim`)."""
    if isinstance(dim, bool):  # torch.nuclear_norm(input, keepdim)
        dim, keepdim = None, dim
    return _g().linalg.matrix_norm(input, "nuc", dim=tuple(dim) if dim is not None else (-2, -1), keepdim=keepdim)


def angle(input):
    """The argument of each element; of a real tensor 0 for positive and zero values, pi for negative ones, nan kept."""
    g = _g()
    if g.is_complex(input):
        return input.angle()
    if not input.dtype.is_floating_point:
        input = input.to(g.get_default_dtype())
    return g.where(input < 0, math.pi, 0.0).to(input.dtype) + input * 0  # (nan propagates, the gradient is 0)


def svd_lowrank(A, q: int | None = 6, niter: int = 2, M=None):
    """(U, S, V) of rank q approximating A - M: PyTorch draws a random subspace; graphnn computes the exact
    truncated SVD (the best rank-q approximation, which the randomized method approaches)."""
    B = A - M if M is not None else A
    q = min(6 if q is None else q, B.shape[-2], B.shape[-1])
    U, S, Vh = _g().linalg.svd(B, full_matrices=False)
    return U[..., :q], S[..., :q], Vh[..., :q, :].transpose(-2, -1)


def pca_lowrank(A, q: int | None = None, center: bool = True, niter: int = 2):
    """(U, S, V) of the rank-q principal components of A's rows (centered over the rows by default)."""
    q = min(6, A.shape[-2], A.shape[-1]) if q is None else q
    B = A - A.mean(dim=-2, keepdim=True) if center else A
    return svd_lowrank(B, q, niter)


def histogramdd(input, bins=10, *, range=None, weight=None, density: bool = False):
    """(hist, bin_edges) of the points in input's rows (its last dimension is the point's coordinates), as
    numpy.histogramdd; not differentiable."""
    g = _g()
    pts = input.detach().numpy().reshape(-1, input.shape[-1]).astype(np.float64)
    if isinstance(bins, g.Tensor):
        bins = bins.tolist()
    if isinstance(bins, (list, tuple)) and bins and isinstance(bins[0], g.Tensor):
        bins = [b.detach().numpy() for b in bins]
    rng = None if range is None else [(range[2 * i], range[2 * i + 1]) for i in np.arange(len(range) // 2)]
    w = None if weight is None else weight.detach().numpy().reshape(-1)
    hist, edges = np.histogramdd(pts, bins=bins, range=rng, weights=w, density=density)
    return g.tensor(hist, dtype=input.dtype), [g.tensor(e, dtype=input.dtype) for e in edges]


def cond(pred, true_fn, false_fn, operands=()):
    """torch.cond: true_fn(*operands) if pred else false_fn(*operands) (pred a bool or a one-element tensor)."""
    return true_fn(*operands) if bool(pred) else false_fn(*operands)


def while_loop(cond_fn, body_fn, carried_inputs):
    """torch.while_loop: carried = body_fn(*carried) while cond_fn(*carried); returns the final carried tuple."""
    carried = tuple(carried_inputs)
    while bool(cond_fn(*carried)):
        out = body_fn(*carried)
        carried = tuple(out) if isinstance(out, (tuple, list)) else (out,)
    return carried


def sym_not(a):
    return not a


def sym_max(a, b):
    return max(a, b)


def sym_min(a, b):
    return min(a, b)


def sym_sqrt(a):
    return math.sqrt(a)


def sym_ite(b, t, f):
    return t if b else f


def sym_sum(args):
    return sum(args)


_SETTINGS = {"autocast_cache": True, "deterministic_debug_mode": 0}


def _autocast_region_dtype(device_type: str):
    return _g().amp.get_autocast_dtype(device_type)


def set_autocast_enabled(device_type, enabled=None) -> None:
    """Accepted (graphnn computes in float32); autocast regions are entered with `torch.autocast`."""


def set_autocast_dtype(device_type: str, dtype) -> None:
    """Accepted (graphnn computes in float32)."""


def set_autocast_cache_enabled(enabled: bool) -> None:
    _SETTINGS["autocast_cache"] = bool(enabled)


def is_autocast_cache_enabled() -> bool:
    return _SETTINGS["autocast_cache"]


def set_deterministic_debug_mode(mode) -> None:
    """0 / 'default', 1 / 'warn', 2 / 'error', as torch.use_deterministic_algorithms(mode > 0, warn_only=mode == 1)
    (graphnn's kernels are deterministic)."""
    names = {"default": 0, "warn": 1, "error": 2}
    m = names.get(mode, mode) if isinstance(mode, str) else int(mode)
    if m not in (0, 1, 2):
        raise RuntimeError(f"invalid value of debug_mode, expected one of 'default', 'warn', 'error', got {mode!r}")
    _SETTINGS["deterministic_debug_mode"] = m
    _g().use_deterministic_algorithms(m > 0, warn_only=m == 1)


def get_deterministic_debug_mode() -> int:
    g = _g()
    if not g.are_deterministic_algorithms_enabled():
        return 0
    return 1 if g.is_deterministic_algorithms_warn_only_enabled() else 2


def to_dlpack(tensor):
    """A DLPack capsule of the tensor's values (NumPy's export)."""
    return tensor.detach().numpy().__dlpack__()


FUNCTIONS = {
    **{f"{v}_copy": _copy_of(v) for v in VIEW_COPIES},
    "alias_copy": lambda input: input.clone(),
    "slice_copy": lambda input, dim=0, start=None, end=None, step=1: _slice(input, dim, start, end, step).clone(),
    **{n: _method(n) for n in ("split_with_sizes", "unsafe_split", "unsafe_chunk", "index_put", "index_put_")},
    **{n: _method(n) for n in ("fill_", "zero_", "narrow_copy", "unsafe_split_with_sizes")},
    **{
        f.__name__: f
        for f in (
            empty_strided,
            empty_permuted,
            fill,
            frobenius_norm,
            nuclear_norm,
            angle,
            svd_lowrank,
            pca_lowrank,
            histogramdd,
            cond,
            while_loop,
            sym_not,
            sym_max,
            sym_min,
            sym_sqrt,
            sym_ite,
            sym_sum,
            set_autocast_enabled,
            set_autocast_dtype,
            set_autocast_cache_enabled,
            is_autocast_cache_enabled,
            set_deterministic_debug_mode,
            get_deterministic_debug_mode,
            to_dlpack,
        )
    },
    "adjoint": _method("adjoint"),
    "is_inference": _method("is_inference"),
    "real": lambda input: input.real,
    "imag": lambda input: input.imag,
    "nonzero_static": lambda input, *, size, fill_value=-1: _nonzero_static(input, size, fill_value),
    "sym_int": int,
    "sym_float": float,
    "get_autocast_cpu_dtype": lambda: _autocast_region_dtype("cpu"),
    "get_autocast_gpu_dtype": lambda: _autocast_region_dtype("cuda"),
    "is_autocast_cpu_enabled": lambda: _g().is_autocast_enabled("cpu"),
    "set_autocast_cpu_enabled": lambda enabled: None,
    "set_autocast_cpu_dtype": lambda dtype: None,
    "set_autocast_gpu_dtype": lambda dtype: None,
    "clear_autocast_cache": lambda: None,
    "autocast_increment_nesting": lambda: 1,
    "autocast_decrement_nesting": lambda: 0,
    "get_device": lambda input: -1,  # (-1: the CPU, as PyTorch's)
    "is_storage": lambda obj: type(obj).__name__ in ("UntypedStorage", "TypedStorage"),
    "is_distributed": lambda input: False,
    "compiled_with_cxx11_abi": lambda: True,
    "is_vulkan_available": lambda: False,
    "init_num_threads": lambda: None,
}

METHODS = {
    "angle": angle,
    "narrow_copy": lambda self, dim, start, length: self.narrow(dim, start, length).clone(),
    "unsafe_split_with_sizes": lambda self, split_sizes, dim=0: self.split(list(split_sizes), dim),
    "new_empty_strided": lambda self, size, stride, **kw: self.new_empty(tuple(size), **kw),
    "nonzero_static": lambda self, *, size, fill_value=-1: _nonzero_static(self, size, fill_value),
    "dim_order": lambda self, **kw: tuple(range(self.dim())),
    "const_data_ptr": lambda self: self.data_ptr(),
    "record_stream": lambda self, stream: None,
    "i0_": lambda self: self.copy_(self.i0()),
    "mvlgamma_": lambda self, p: self.copy_(self.mvlgamma(p)),
    "polygamma_": lambda self, n: self.copy_(self.polygamma(n)),
    **{
        flag: property(lambda self: False)
        for flag in ("is_xpu", "is_mps", "is_ipu", "is_xla", "is_vulkan", "is_maia", "is_mtia", "is_distributed")
    },
}


def _nonzero_static(self, size: int, fill_value: int):
    """The first `size` rows of nonzero(), padded with fill_value to exactly `size` rows."""
    g = _g()
    idx = self.nonzero()[:size]
    if idx.shape[0] < size:
        pad = g.full((size - idx.shape[0], self.dim()), fill_value, dtype=idx.dtype)
        idx = g.cat([idx, pad])
    return idx


def install(module) -> None:
    """Add the names above to graphnn and Tensor (keeping any they define)."""
    from graphnn.core.install import install as put

    put(module, functions=FUNCTIONS, methods=METHODS)
