"""torch.linalg: the norms (vector_norm, matrix_norm and norm, composed of reductions; a matrix's ord 2 / -2 / 'nuc'
from its singular values), the dense decompositions, solves and inverses of graphnn/core/linalg_dense_api.py, and
the LU factorization (written in graphnn ops), tensorinv / tensorsolve, vecdot, vander and diagonal of
graphnn/core/linalg_lu_api.py, differentiable, eager and inside graphnn.compile."""

from __future__ import annotations

import math

from graphnn.core.dispatch import apply, relabel
from graphnn.ir.registry import LinAlgError  # noqa: F401 (torch.linalg.LinAlgError)
from graphnn.core.linalg_dense_api import (  # noqa: F401 (torch.linalg's names)
    cholesky,
    cholesky_ex,
    cond,
    det,
    eig,
    eigh,
    eigvals,
    eigvalsh,
    inv,
    inv_ex,
    lstsq,
    matrix_power,
    matrix_rank,
    multi_dot,
    pinv,
    qr,
    slogdet,
    solve,
    solve_ex,
    solve_triangular,
    svd,
    svdvals,
)
from graphnn.core.linalg_api import linalg_cross as cross  # noqa: F401 (torch.linalg's name)
from graphnn.core.linalg_lu_api import (  # noqa: F401 (torch.linalg's names)
    linalg_diagonal as diagonal,
    linalg_vander as vander,
    lu,
    lu_factor,
    lu_factor_ex,
    lu_solve,
    tensorinv,
    tensorsolve,
    vecdot,
)
from graphnn.core.matrix_exp import matrix_exp  # noqa: F401 (torch.linalg's name)
from graphnn.core.tensor import Tensor, as_tensor


def _dims(x: Tensor, dim) -> tuple | None:
    if dim is None:
        return None
    return tuple(dim) if isinstance(dim, (tuple, list)) else (dim,)


def vector_norm(x, ord=2, dim=None, keepdim: bool = False, *, dtype=None) -> Tensor:  # noqa: A002
    """(sum |x|^ord)^(1/ord) over dim (every element when None); ord inf / -inf: the largest / smallest |x|; ord 0:
    the number of nonzero elements."""
    x = as_tensor(x)
    if dtype is not None:
        x = x.to(dtype)
    if not x.is_floating_point():
        raise RuntimeError(f"linalg.vector_norm: expected a floating point input, got {x.dtype}")
    dims = _dims(x, dim)
    a = x.abs()
    if ord == math.inf:
        return a.amax(dims if dims is not None else tuple(range(x.ndim)), keepdim)
    if ord == -math.inf:
        return a.amin(dims if dims is not None else tuple(range(x.ndim)), keepdim)
    if ord == 0:
        return (a != 0).to(x.dtype).sum(dims, keepdim)
    if ord == 1:
        return a.sum(dims, keepdim)
    total = (x * x).sum(dims, keepdim) if ord == 2 else (a**ord).sum(dims, keepdim)
    return relabel(_root(total, ord), "LinalgVectorNormBackward0", [x])


def _root(total: Tensor, ord) -> Tensor:  # noqa: A002
    """total ** (1 / ord), whose gradient is 0 where total is 0: PyTorch's subgradient of a norm at the zero vector,
    where the root's infinite slope times the zero slope of |x|^ord would give NaN."""
    zero = total == 0
    safe = apply("select", [zero, 1.0, total])
    return apply("select", [zero, 0.0, safe.sqrt() if ord == 2 else safe ** (1.0 / ord)])


def matrix_norm(A, ord="fro", dim=(-2, -1), keepdim: bool = False, *, dtype=None) -> Tensor:  # noqa: A002
    """'fro': the square root of the sum of squares; 1 / -1: the largest / smallest column sum of |A|; inf / -inf:
    the largest / smallest row sum; 2 / -2: the largest / smallest singular value; 'nuc': their sum, over the two
    dimensions `dim`."""
    A = as_tensor(A)
    if dtype is not None:
        A = A.to(dtype)
    if A.ndim < 2:
        raise RuntimeError(f"linalg.matrix_norm: the input needs at least 2 dimensions, got {A.ndim}")
    r, c = (d % A.ndim for d in dim)
    if ord == "fro":
        return vector_norm(A, 2, (r, c), keepdim)
    if ord in (1, -1, math.inf, -math.inf):
        over, pick = (r, c) if ord in (1, -1) else (c, r)
        sums = A.abs().sum(over, keepdim=True)
        out = sums.amax(pick, keepdim=True) if ord > 0 else sums.amin(pick, keepdim=True)
        return out if keepdim else out.squeeze((r, c))
    if ord in (2, -2, "nuc"):
        s = svdvals(A.movedim((r, c), (-2, -1)))
        out = s.sum(-1) if ord == "nuc" else s[..., 0] if ord == 2 else s[..., -1]
        if keepdim:
            for d in sorted((r, c)):
                out = out.unsqueeze(d)
        return out
    raise RuntimeError(
        f"linalg.matrix_norm: ord={ord!r} is not supported (use 'fro', 'nuc', 1, -1, 2, -2, inf or -inf)"
    )


def norm(A, ord=None, dim=None, keepdim: bool = False, *, dtype=None) -> Tensor:  # noqa: A002
    """A vector norm when dim is an int (or None with ord None or A 1-D), a matrix norm when dim has two entries (or
    None and A is 2-D with an ord), as torch.linalg.norm decides."""
    A = as_tensor(A)
    dims = _dims(A, dim)
    if dims is not None and len(dims) == 2:
        return matrix_norm(A, "fro" if ord is None else ord, dims, keepdim, dtype=dtype)
    if dims is None and ord is not None:
        if A.ndim == 2:
            return matrix_norm(A, ord, (-2, -1), keepdim, dtype=dtype)
        if A.ndim != 1:
            raise RuntimeError(f"linalg.norm: an ord needs a 1-D or 2-D input or dim, got {A.ndim} dimensions")
    return vector_norm(A, 2 if ord is None else ord, dims, keepdim, dtype=dtype)


def matmul(input, other):
    """torch.linalg.matmul: input @ other."""
    return input @ other
