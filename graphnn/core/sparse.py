"""Sparse COO tensors (torch.sparse_coo_tensor), backed by their dense value.

A SparseCooTensor keeps the COO description PyTorch programs read (indices, values, size, whether it is coalesced)
and its dense value, computed from them with differentiable ops (a scatter-add), which every computation uses:
`torch.sparse.mm(adj, x)` is a dense product, differentiable with respect to both operands, eagerly and inside
graphnn.compile (where a sparse argument is its dense value). The Tensor state of the object is that of the dense
value, so graphnn's machinery (shapes, compile arguments) sees a tensor of the sparse tensor's size. Operations
PyTorch offers on sparse tensors that graphnn does not are NotImplementedError naming the op.
"""

from __future__ import annotations

import numbers

import numpy as np

from graphnn.core.dispatch import located
from graphnn.core.tensor import Tensor, as_tensor, zeros


class layout:  # noqa: N801 (PyTorch's name)
    """A memory layout: graphnn.strided (dense) or graphnn.sparse_coo."""

    def __init__(self, name: str):
        self.name = name

    def __repr__(self) -> str:
        return f"graphnn.{self.name}"

    def __reduce__(self):
        return (_layout_named, (self.name,))


def _layout_named(name: str) -> layout:
    return strided if name == "strided" else sparse_coo


strided = layout("strided")
sparse_coo = layout("sparse_coo")


def _error(what: str, msg: str) -> RuntimeError:
    return RuntimeError(located(f"{what}: {msg}"))


def _describe(indices: Tensor, values: Tensor, size) -> str:
    return f"sparse_coo_tensor(indices {indices._type}, values {values._type}, size {tuple(size)})"


def _linear(indices: Tensor, sizes: tuple) -> Tensor:
    """The row-major position of each index column among the sparse dimensions (an int64 tensor of nnz)."""
    lin, stride = None, 1
    for d in range(len(sizes) - 1, -1, -1):
        term = indices[d] * stride if stride != 1 else indices[d]
        lin = term if lin is None else lin + term
        stride *= sizes[d]
    return lin


def _dense_of(indices: Tensor, values: Tensor, size: tuple) -> Tensor:
    """The dense tensor whose elements at `indices` are the sums of their `values` (zero elsewhere)."""
    sdim = indices.shape[0]
    sparse_sizes, dense_sizes = size[:sdim], size[sdim:]
    n = int(np.prod(sparse_sizes, dtype=np.int64))
    if indices.shape[1] == 0:
        return zeros(*size, dtype=values.dtype)
    lin = _linear(indices, sparse_sizes)
    if dense_sizes:
        lin = lin.view(-1, *([1] * len(dense_sizes))).expand(-1, *dense_sizes)
    return zeros(n, *dense_sizes, dtype=values.dtype).scatter_add(0, lin, values).view(*size)


def _check(indices: Tensor, values: Tensor, size: tuple) -> None:
    what = _describe(indices, values, size)
    if indices.ndim != 2 or indices.dtype_name != "int64":
        raise _error(what, "indices must be an int64 tensor of shape (sparse dims, nnz)")
    if values.ndim < 1 or values.shape[0] != indices.shape[1]:
        raise _error(what, f"values must have one row per index column ({indices.shape[1]}), got {values._type}")
    if len(size) != indices.shape[0] + values.ndim - 1 or tuple(size[indices.shape[0] :]) != tuple(values.shape[1:]):
        raise _error(what, "size must be the sparse sizes followed by the dense sizes of values")
    if indices._data is not None and indices.shape[1]:
        idx = indices._data
        for d in range(idx.shape[0]):
            lo, hi = int(idx[d].min()), int(idx[d].max())
            if lo < 0 or hi >= size[d]:
                bad = lo if lo < 0 else hi
                raise _error(what, f"index {bad} is out of bounds for dimension {d} of size {size[d]}")


class SparseCooTensor(Tensor):
    """A sparse COO tensor (layout graphnn.sparse_coo): see the module's docstring."""

    _sp_indices: Tensor
    _sp_values: Tensor
    _sp_coalesced: bool

    @classmethod
    def _make(cls, indices: Tensor, values: Tensor, size: tuple, coalesced: bool) -> "SparseCooTensor":
        dense = _dense_of(indices, values, tuple(size))
        t = cls.__new__(cls)
        t.__dict__.update(dense.__dict__)  # the Tensor state of the dense value (shape, data, recorded IR)
        t._sp_indices, t._sp_values, t._sp_coalesced, t._sp_dense = indices, values, bool(coalesced), dense
        return t

    # -- what PyTorch's sparse tensors tell ---------------------------------------------------------------------
    @property
    def is_sparse(self) -> bool:
        return True

    @property
    def layout(self) -> layout:
        return sparse_coo

    def sparse_dim(self) -> int:
        return self._sp_indices.shape[0]

    def dense_dim(self) -> int:
        return self.ndim - self.sparse_dim()

    def _nnz(self) -> int:
        return self._sp_indices.shape[1]

    def _indices(self) -> Tensor:
        return self._sp_indices

    def _values(self) -> Tensor:
        return self._sp_values

    def indices(self) -> Tensor:
        self._need_coalesced("indices")
        return self._sp_indices

    def values(self) -> Tensor:
        self._need_coalesced("values")
        return self._sp_values

    def _need_coalesced(self, what: str) -> None:
        if not self._sp_coalesced:
            raise RuntimeError(located(f"Cannot get {what} on an uncoalesced tensor, please call .coalesce() first"))

    def is_coalesced(self) -> bool:
        return self._sp_coalesced

    def coalesce(self) -> "SparseCooTensor":
        """Indices sorted and unique, the values of repeated indices summed (read from the dense value)."""
        if self._sp_coalesced:
            return self
        idx = self._sp_indices._concrete("coalesce()")
        sizes = tuple(self.shape[: idx.shape[0]])
        lin = np.unique(np.ravel_multi_index(tuple(idx), sizes)) if idx.shape[1] else np.zeros(0, np.int64)
        new = np.stack(np.unravel_index(lin, sizes)).astype(np.int64).reshape(len(sizes), -1)
        indices = Tensor._wrap(new)
        values = self._sp_dense[tuple(indices[d] for d in range(len(sizes)))]
        return SparseCooTensor._make(indices, values, tuple(self.shape), True)

    def to_dense(self, dtype=None, *, masked_grad=None) -> Tensor:
        out = self._sp_dense.clone()
        return out if dtype is None else out.to(dtype)

    def to_sparse(self, *args, **kwargs) -> "SparseCooTensor":
        return self

    def __repr__(self) -> str:
        head = "tensor(indices="
        pad = "\n" + " " * len(head)
        ind = repr(self._sp_indices).replace("\n", pad)
        vals = repr(self._sp_values).replace("\n", "\n" + " " * len("       values="))
        return (
            f"{head}{ind},\n       values={vals},\n       size={tuple(self.shape)}, nnz={self._nnz()}, "
            "layout=graphnn.sparse_coo)"
        )

    # -- operations that keep the layout ------------------------------------------------------------------------
    def _with_values(self, values: Tensor) -> "SparseCooTensor":
        return SparseCooTensor._make(self._sp_indices, values, tuple(self.shape), self._sp_coalesced)

    def add(self, other, alpha=1):
        if not isinstance(other, SparseCooTensor):
            raise RuntimeError(located("add(sparse, dense) is not supported. Use add(dense, sparse) instead."))
        if tuple(other.shape) != tuple(self.shape):
            raise RuntimeError(
                located(f"add: sparse tensors of sizes {tuple(self.shape)} and {tuple(other.shape)} do not match")
            )
        ov = other._sp_values * alpha if alpha != 1 else other._sp_values
        out = SparseCooTensor._make(
            _cat_columns(self._sp_indices, other._sp_indices), _cat_rows(self._sp_values, ov), tuple(self.shape), False
        )
        return out.coalesce() if self._sp_coalesced and other._sp_coalesced else out

    __add__ = add

    def __radd__(self, other):
        if isinstance(other, numbers.Number) and other == 0:  # sum() of sparse tensors starts from 0
            return self
        if isinstance(other, Tensor):  # dense + sparse: dense
            return other.add(self._sp_dense)
        return self.add(other)

    def __rsub__(self, other):
        if isinstance(other, Tensor):  # dense - sparse: dense
            return other.sub(self._sp_dense)
        raise NotImplementedError(located(f"sub: {_kind(other)} minus sparse {self._type} is not supported"))

    def sub(self, other, alpha=1):
        return self.add(other, alpha=-alpha)

    __sub__ = sub

    def neg(self):
        return self._with_values(-self._sp_values)

    __neg__ = neg

    def mul(self, other):
        if isinstance(other, numbers.Number) or (isinstance(other, Tensor) and other.ndim == 0):
            return self._with_values(self._sp_values * other)
        if isinstance(other, SparseCooTensor) or not isinstance(other, Tensor) or other.shape != self.shape:
            raise NotImplementedError(located(f"mul: sparse {self._type} times {_kind(other)} is not supported"))
        picked = other[tuple(self._sp_indices[d] for d in range(self.sparse_dim()))]
        return self._with_values(self._sp_values * picked)

    __mul__ = __rmul__ = mul

    def div(self, other):
        if isinstance(other, numbers.Number) or (isinstance(other, Tensor) and other.ndim == 0):
            return self._with_values(self._sp_values / other)
        raise NotImplementedError(located(f"div: sparse {self._type} divided by {_kind(other)} is not supported"))

    __truediv__ = div

    def t(self):
        if self.sparse_dim() != 2 or self.dense_dim():
            raise RuntimeError(located(f"t() expects a 2-D sparse tensor, got {self._type}"))
        return self.transpose(0, 1)

    def transpose(self, dim0, dim1):
        if self.dense_dim():
            raise NotImplementedError(located("transpose of a sparse tensor with dense dimensions is not supported"))
        order = list(range(self.ndim))
        order[dim0], order[dim1] = order[dim1], order[dim0]
        indices = self._sp_indices[order]
        return SparseCooTensor._make(indices, self._sp_values, tuple(self.shape[d] for d in order), False)

    def to(self, *args, **kwargs):
        dense = self._sp_dense.to(*args, **kwargs)  # checks the device; gives the dtype
        return self if dense.dtype == self.dtype else self._with_values(self._sp_values.to(dense.dtype))

    def float(self):
        return self.to(dtype="float32")

    def double(self):
        return self.to(dtype="float64")

    def type_as_dtype(self, dt: str):
        return self.to(dtype=dt)

    def clone(self):
        return SparseCooTensor._make(
            self._sp_indices.clone(), self._sp_values.clone(), tuple(self.shape), self._sp_coalesced
        )

    def detach(self):
        return SparseCooTensor._make(self._sp_indices, self._sp_values.detach(), tuple(self.shape), self._sp_coalesced)

    # -- operations with dense results ---------------------------------------------------------------------------
    def matmul(self, other):
        if isinstance(other, SparseCooTensor):
            raise NotImplementedError(located("matmul of two sparse tensors is not supported; call .to_dense()"))
        if self.ndim != 2:
            raise RuntimeError(located(f"mm: a sparse matrix must be 2-D, got {self._type}"))
        return self._sp_dense.matmul(other)

    mm = __matmul__ = matmul

    def sum(self, dim=None, keepdim=False, dtype=None):
        return sparse_sum(self, dim, dtype)


def _kind(x) -> str:
    if isinstance(x, SparseCooTensor):
        return f"sparse {x._type}"
    return f"dense {x._type}" if isinstance(x, Tensor) else type(x).__name__


def _cat_columns(a: Tensor, b: Tensor) -> Tensor:
    from graphnn.core.tensor import cat

    return cat([a, b], 1)


def _cat_rows(a: Tensor, b: Tensor) -> Tensor:
    from graphnn.core.tensor import cat

    return cat([a, b], 0)


def sparse_sum(input, dim=None, dtype=None):
    """torch.sparse.sum: over every element a dense 0-d tensor; over some sparse dimensions a sparse tensor of the
    others (dense when none is left), whose indices are those that some stored element has."""
    if not isinstance(input, SparseCooTensor):
        return input.sum() if dim is None else input.sum(dim)
    dense = input._sp_dense if dtype is None else input._sp_dense.to(dtype)
    if dim is None:
        return dense.sum()
    dims = sorted({d % input.ndim for d in ((dim,) if isinstance(dim, int) else dim)})
    total = dense.sum(dims)
    keep = [d for d in range(input.sparse_dim()) if d not in dims]
    if not keep:
        return total
    idx = input._sp_indices._concrete("sparse.sum")[keep]
    sizes = tuple(input.shape[d] for d in keep)
    lin = np.unique(np.ravel_multi_index(tuple(idx), sizes)) if idx.shape[1] else np.zeros(0, np.int64)
    indices = Tensor._wrap(np.stack(np.unravel_index(lin, sizes)).astype(np.int64).reshape(len(keep), -1))
    values = total[tuple(indices[d] for d in range(len(keep)))]
    return SparseCooTensor._make(indices, values, tuple(total.shape), True)


def sparse_coo_tensor(indices, values, size=None, *, dtype=None, device=None, requires_grad=False,
                      check_invariants=None, is_coalesced=None) -> SparseCooTensor:  # fmt: skip
    """A sparse COO tensor with `values` at the columns of `indices` (repeated indices add up when read); without
    `size`, each sparse dimension is one past its largest index."""
    from graphnn.core.device import check_device

    check_device(device, "sparse_coo_tensor")
    indices = as_tensor(indices).long() if not isinstance(indices, Tensor) else indices
    values = as_tensor(values, dtype=dtype) if not isinstance(values, Tensor) else values
    if dtype is not None:
        values = values.to(dtype)
    if indices.ndim == 1 and indices.shape[0] == 0:
        indices = indices.view(1, 0)
    if size is None:
        idx = indices._concrete("sparse_coo_tensor without size")
        sparse_sizes = tuple(int(s) + 1 for s in idx.max(1)) if idx.shape[1] else (0,) * idx.shape[0]
        size = sparse_sizes + tuple(values.shape[1:])
    size = tuple(int(s) for s in size)
    _check(indices, values, size)
    if requires_grad:
        values = values.detach().requires_grad_(True)
    return SparseCooTensor._make(indices, values, size, bool(is_coalesced) or indices.shape[1] <= 1)


def to_sparse(self: Tensor, sparse_dim=None, *, layout=None, blocksize=None, dense_dim=None) -> SparseCooTensor:
    """The sparse COO tensor of this dense tensor's nonzero elements (coalesced)."""
    if layout not in (None, sparse_coo):
        raise NotImplementedError(located(f"to_sparse(layout={layout}): only graphnn.sparse_coo is supported"))
    if isinstance(self, SparseCooTensor):
        return self
    k = self.ndim if sparse_dim is None else int(sparse_dim)
    a = self._concrete("to_sparse()")
    nz = np.nonzero(a.reshape(a.shape[:k] + (-1,)).any(-1) if k < a.ndim else a)
    indices = Tensor._wrap(np.stack(nz).astype(np.int64).reshape(k, -1))
    values = self[tuple(indices[d] for d in range(k))]
    return SparseCooTensor._make(indices, values, tuple(self.shape), True)


def to_dense(self: Tensor, dtype=None, *, masked_grad=None) -> Tensor:
    """A dense tensor is its own dense value."""
    return self if dtype is None else self.to(dtype)


def sparse_mm(mat1, mat2) -> Tensor:
    """torch.sparse.mm / torch.spmm: a sparse (or dense) matrix times a dense one, dense."""
    return mat1.matmul(mat2)


# Tensor methods PyTorch's sparse tensors offer that this class implements (or inherits unchanged); other public
# methods of Tensor are NotImplementedError on a SparseCooTensor.
_SUPPORTED = {
    "shape", "size", "dim", "ndim", "numel", "dtype", "dtype_name", "device", "is_cuda", "get_device", "requires_grad",
    "requires_grad_", "grad", "grad_fn", "is_leaf", "backward", "is_floating_point", "element_size", "cpu", "cuda",
    "data", "retain_grad", "retains_grad",
}  # fmt: skip


def _unsupported(name: str):
    def method(self, *args, **kwargs):
        raise NotImplementedError(
            located(
                f"{name}: not supported for sparse COO tensors ({self._type}, layout=graphnn.sparse_coo) in graphnn; "
                "call .to_dense() first"
            )
        )

    method.__name__ = name
    return method


def _block_dense_methods() -> None:
    for name in dir(Tensor):
        if name.startswith("_") or name in _SUPPORTED or name in SparseCooTensor.__dict__:
            continue
        if callable(getattr(Tensor, name, None)) and not isinstance(getattr(Tensor, name), type):
            setattr(SparseCooTensor, name, _unsupported(name))
    for name in ("__getitem__", "__setitem__", "__pow__", "__rpow__", "__rtruediv__", "__rmatmul__",
                 "__iter__", "__gt__", "__ge__", "__lt__", "__le__", "__eq__", "__ne__", "__abs__", "__invert__",
                 "__and__", "__or__", "__xor__", "__array__"):  # fmt: skip
        setattr(SparseCooTensor, name, _unsupported(name.strip("_")))
    SparseCooTensor.__hash__ = Tensor.__hash__
