"""torch.sparse: products and sums of sparse COO tensors (graphnn.core.sparse; dense-backed)."""

from __future__ import annotations

import warnings

from graphnn.core.sparse import SparseCooTensor, sparse_coo_tensor, sparse_mm, sparse_sum
from graphnn.core.tensor import Tensor

__all__ = ["mm", "sum", "addmm", "FloatTensor", "DoubleTensor", "LongTensor"]


def mm(mat1, mat2) -> Tensor:
    """A sparse matrix times a dense one (dense result; differentiable with respect to both)."""
    return sparse_mm(mat1, mat2)


def sum(input, dim=None, dtype=None):  # noqa: A001 (PyTorch's name)
    """The sum of a sparse tensor's elements (dense 0-d), or over some dimensions (sparse)."""
    return sparse_sum(input, dim, dtype)


def addmm(mat, mat1, mat2, *, beta=1.0, alpha=1.0) -> Tensor:
    """beta * mat + alpha * (mat1 @ mat2), mat1 sparse."""
    prod = sparse_mm(mat1, mat2)
    return mat * beta + prod * alpha if (beta, alpha) != (1.0, 1.0) else mat + prod


def _legacy(name: str):
    def make(indices, values, size=None) -> SparseCooTensor:
        warnings.warn(
            f"graphnn.sparse.{name}(indices, values, shape) is deprecated, as in PyTorch: use "
            "graphnn.sparse_coo_tensor(indices, values, shape); like PyTorch's, it keeps the values' dtype",
            UserWarning,
            stacklevel=2,
        )
        return sparse_coo_tensor(indices, values, size)

    make.__name__ = name
    return make


# The legacy constructors torch.sparse.FloatTensor(indices, values, size), which pygcn builds its adjacency with
# (PyTorch's keep the values' dtype whatever their name says)
FloatTensor, DoubleTensor, LongTensor = _legacy("FloatTensor"), _legacy("DoubleTensor"), _legacy("LongTensor")


def _segment_softmax(input, dim: int, dtype, log: bool):
    """Softmax of a sparse tensor's specified values over `dim` (entries absent count as -inf): the values sharing
    their other indices form one group."""
    import numpy as np

    from graphnn.core.tensor import tensor

    x = input.coalesce()
    if x.dense_dim():
        raise NotImplementedError("sparse.softmax: sparse tensors with dense dimensions are not supported")
    dim = dim % x.ndim
    idx = x.indices()._concrete("sparse.softmax")
    others = np.delete(idx, dim, axis=0)
    _, gid = np.unique(others.T, axis=0, return_inverse=True) if others.shape[0] else (None, np.zeros(idx.shape[1]))
    gid = tensor(np.asarray(gid, np.int64).reshape(-1))
    v = x.values() if dtype is None else x.values().to(dtype)
    n = int(gid.max().item()) + 1 if gid.numel() else 0
    peak = v.new_zeros(n).scatter_reduce(0, gid, v.detach(), "amax", include_self=False)
    shifted = v - peak[gid]
    total = v.new_zeros(n).index_add(0, gid, shifted.exp())
    out = shifted - total.log()[gid] if log else shifted.exp() / total[gid]
    return sparse_coo_tensor(x.indices(), out, tuple(x.shape))


def softmax(input, dim: int, dtype=None):
    """Softmax over dimension dim of the specified values of a sparse tensor (a sparse result of the same pattern)."""
    return _segment_softmax(input, dim, dtype, log=False)


def log_softmax(input, dim: int, dtype=None):
    """Log-softmax over dimension dim of the specified values of a sparse tensor."""
    return _segment_softmax(input, dim, dtype, log=True)


__all__ += ["softmax", "log_softmax"]
