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
