"""LU factorization with partial pivoting and the torch.linalg functions built on it or on the dense solves:
lu_factor / lu_factor_ex / lu / lu_solve / lu_unpack (and the older torch.lu, torch.lu_solve), tensorinv,
tensorsolve, vecdot, vander and diagonal.

The LU factorization is LAPACK's getrf algorithm written in graphnn ops: for each column j, the row with the
largest |value| at or below the diagonal (the first such, as LAPACK's idamax) is swapped into row j, the entries
below the pivot become the multipliers and the trailing columns are updated. It is therefore exactly as
differentiable (the gradient with the pivots held fixed, which is the derivative wherever the pivot choice does not
change) and compiles like any other composition; min(m, n) steps of O(m n) work each, unrolled in the graph.

graphnn has no int32: pivots are int64 (PyTorch: int32), 1-based as LAPACK's.
"""

from __future__ import annotations

import math

import numpy as np

from graphnn.core.dispatch import apply, located, relabel
from graphnn.core.linalg_dense_api import _returns, inv, solve, solve_triangular

FLOATS = ("float32", "float64")

lu_factor_result = _returns("linalg_lu_factor", ("LU", "pivots"))
lu_factor_ex_result = _returns("linalg_lu_factor_ex", ("LU", "pivots", "info"))
lu_result = _returns("linalg_lu", ("P", "L", "U"))
lu_unpack_result = _returns("lu_unpack", ("P", "L", "U"))


def _t():
    from graphnn.core import tensor

    return tensor


def _as(x):
    return _t().as_tensor(x)


def _where(c, a, b):
    return apply("select", [c, a, b])


def _matrices(A, what: str):
    A = _as(A)
    if A.dtype_name not in FLOATS:
        raise NotImplementedError(located(f'"{what}" not implemented for {A.dtype_name!r}'))
    if A.ndim < 2:
        raise RuntimeError(located(f"{what}: The input tensor A must have at least 2 dimensions."))
    return A


def _swap(v, j: int, p, axis: int):
    """v with its entries j and p (a tensor of one position per batch) exchanged along axis -1 or -2."""
    T = _t()
    m = v.shape[axis]
    r = T.arange(m)
    pv = p.unsqueeze(-1)
    rows = _where(r == j, pv, _where(r == pv, j, r))  # (..., m): which row each row comes from
    if axis == -1:
        return v.gather(-1, rows.expand(tuple(v.shape)))
    return v.gather(-2, rows.unsqueeze(-1).expand(tuple(v.shape)))


def _factor(A):
    """(compact LU, 1-based pivots, row permutation perm with A[perm] = L U), batched over A's leading dims."""
    T = _t()
    m, n = A.shape[-2:]
    k = min(m, n)
    batch = tuple(A.shape[:-2])
    rows, cols = T.arange(m).reshape(m, 1), T.arange(n).reshape(1, n)
    lu = A
    perm = T.arange(m).expand(batch + (m,))
    pivots = []
    for j in range(k):
        col = lu[..., :, j].detach()
        p = _where(T.arange(m) >= j, col.abs(), -1.0).argmax(-1)  # the largest |value| at or below row j
        pivots.append(p + 1)
        lu = _swap(lu, j, p, -2)
        perm = _swap(perm, j, p, -1)
        piv = lu[..., j : j + 1, j : j + 1]
        below = rows > j
        # a zero pivot (the column is zero at and below it): the multipliers stay 0, as LAPACK leaves them
        safe = _where(piv == 0, 1.0, piv)
        mult = _where(below, lu[..., :, j : j + 1] / safe, 0.0)
        updated = lu - mult * lu[..., j : j + 1, :]
        lu = _where(cols > j, updated, _where(below & (cols == j), mult, lu))
    piv = T.stack(pivots, -1) if pivots else T.zeros(batch + (0,), dtype="int64")
    return lu, piv, perm


def lu_factor(A, *, pivot: bool = True, out=None):
    """(LU, pivots): L (unit lower, its diagonal implied) and U in one matrix, with P^T A = L U where P swaps row i
    with row pivots[i] - 1 in turn. A zero on U's diagonal is an error, as PyTorch's (eagerly: compiled code, which
    has no values while it traces, returns the factorization; lu_factor_ex reports it in info)."""
    LU, piv, info = lu_factor_ex(A, pivot=pivot)
    _check_info(info, "torch.linalg.lu_factor")
    return lu_factor_result(LU, piv)


def lu_factor_ex(A, *, pivot: bool = True, check_errors: bool = False, out=None):
    """(LU, pivots, info): info is 0 for a matrix whose U has no zero on its diagonal, else the (1-based) position
    of the first such, as LAPACK's getrf reports it (the factorization goes on past it, the multipliers of a zero
    pivot left 0)."""
    if not pivot:
        raise RuntimeError(located("linalg.lu_factor: LU without pivoting is not implemented on the CPU"))
    A = _matrices(A, "lu_factor")
    lu_, piv, _ = _factor(A)
    k = min(A.shape[-2:])
    zero = lu_.detach().diagonal(0, -2, -1)[..., :k] == 0
    info = _where(zero.any(-1), zero.type_as_dtype("int64").argmax(-1) + 1, 0) if k else piv.sum(-1)
    if check_errors:
        _check_info(info, "torch.linalg.lu_factor_ex")
    return lu_factor_ex_result(relabel(lu_, "LinalgLuFactorExBackward0", [A]), piv, info)


def _check_info(info, what: str) -> None:
    from graphnn.compiler import tracer

    if info._data is None or tracer.current() is not None or not info._data.any():
        return
    flat = info._data.reshape(-1)
    b = int(flat.nonzero()[0][0])
    i = int(flat[b])
    where = f"(Batch element {b}): " if info.ndim else ""
    raise RuntimeError(
        located(
            f"{what}: {where}U[{i},{i}] is zero and using it on lu_solve would result in a division by zero. If you "
            "still want to perform the factorization, consider calling linalg.lu(A, pivot) or "
            "linalg.lu_factor_ex(A, pivot)"
        )
    )


def _unpack_lu(LU):
    T = _t()
    m, n = LU.shape[-2:]
    k = min(m, n)
    L = LU[..., :, :k].tril(-1) + T.eye(m, k, dtype=LU.dtype)
    U = LU[..., :k, :].triu()
    return L, U


def _permutation(perm, dtype):
    """P with P[perm[i], i] = 1 (so A = P L U when A[perm] = L U)."""
    T = _t()
    m = perm.shape[-1]
    return (perm.unsqueeze(-2) == T.arange(m).unsqueeze(-1)).type_as_dtype(dtype)


def _perm_of(pivots, m: int):
    """The row permutation that applying the swaps (i, pivots[i] - 1) in turn to 0 .. m-1 gives."""
    T = _t()
    pivots = _as(pivots)
    perm = T.arange(m).expand(tuple(pivots.shape[:-1]) + (m,))
    for j in range(pivots.shape[-1]):
        perm = _swap(perm, j, pivots[..., j] - 1, -1)
    return perm


def lu(A, *, pivot: bool = True, out=None):
    """(P, L, U) with A = P L U: P a permutation, L unit lower triangular (m x k), U upper triangular (k x n)."""
    if not pivot:
        raise RuntimeError(located("linalg.lu: LU without pivoting is not implemented on the CPU"))
    A = _matrices(A, "lu")
    lu_, _, perm = _factor(A)
    L, U = _unpack_lu(lu_)
    P = _permutation(perm, A.dtype_name)
    return lu_result(P, relabel(L, "LinalgLuBackward0", [A]), relabel(U, "LinalgLuBackward0", [A]))


def lu_unpack(LU_data, LU_pivots, unpack_data: bool = True, unpack_pivots: bool = True, *, out=None):  # noqa: N803
    """(P, L, U) of lu_factor's result (empty tensors for the parts not asked for)."""
    T = _t()
    LU = _as(LU_data)
    empty = T.empty(0, dtype=LU.dtype)
    L, U = _unpack_lu(LU) if unpack_data else (empty, empty)
    P = _permutation(_perm_of(LU_pivots, LU.shape[-2]), LU.dtype_name) if unpack_pivots else empty
    return lu_unpack_result(P, L, U)


def lu_solve(LU, pivots, B, *, left: bool = True, adjoint: bool = False, out=None):
    """X with A X = B (left=False: X A = B; adjoint: A^T in place of A) for A = P L U given lu_factor's result;
    batch dimensions broadcast."""
    LU, B = _as(LU), _as(B)
    if B.ndim < 2:
        raise RuntimeError(
            located(f"linalg.lu_solve: The input tensor B must have at least 2 dimensions, got {B._type}")
        )
    if not left:  # X A = B  <=>  A^T X^T = B^T
        return lu_solve(LU, pivots, B.mT, adjoint=not adjoint).mT
    n = LU.shape[-1]
    if LU.shape[-2] != n:
        raise RuntimeError(located(f"linalg.lu_solve: Expected LU to be square, got {LU._type}"))
    if B.shape[-2] != n:
        raise RuntimeError(
            located(f"linalg.lu_solve: Incompatible shapes of A and B for the equation AX = B ({n}x{n} and {B._type})")
        )
    perm = _perm_of(pivots, n)
    batch = tuple(np.broadcast_shapes(tuple(LU.shape[:-2]), tuple(B.shape[:-2]), tuple(perm.shape[:-1])))
    B = B.expand(batch + tuple(B.shape[-2:]))
    perm = perm.expand(batch + (n,))
    if not adjoint:  # L U X = P^T B, whose row i is B's row perm[i]
        y = B.gather(-2, perm.unsqueeze(-1).expand(tuple(B.shape)))
        y = solve_triangular(LU, y, upper=False, unitriangular=True)
        return solve_triangular(LU, y, upper=True)
    # U^T L^T P^T X = B: X = P (L^T)^-1 (U^T)^-1 B, and row perm[i] of P Y is Y's row i
    y = solve_triangular(LU.mT, B, upper=False)
    y = solve_triangular(LU.mT, y, upper=True, unitriangular=True)
    back = perm.argsort(-1)
    return y.gather(-2, back.unsqueeze(-1).expand(tuple(y.shape)))


def torch_lu(A, pivot: bool = True, get_infos: bool = False, out=None):
    """torch.lu / Tensor.lu (the older name): (LU, pivots) or (LU, pivots, infos)."""
    res = lu_factor_ex(A, pivot=pivot, check_errors=not get_infos)
    return tuple(res) if get_infos else (res[0], res[1])


def torch_lu_solve(b, LU_data, LU_pivots, *, out=None):  # noqa: N803
    """torch.lu_solve / Tensor.lu_solve (the older argument order)."""
    return lu_solve(LU_data, LU_pivots, b)


# -- tensor equations --------------------------------------------------------------------------------------------
def tensorinv(A, ind: int = 2, *, out=None):
    """The tensor X with tensordot(X, A, ind) the identity: A's first `ind` dimensions against the rest, as one
    matrix inverted; the result has A's shape[ind:] + shape[:ind]."""
    A = _as(A)
    if ind <= 0:
        raise RuntimeError(located(f"Expected a strictly positive integer for 'ind', but got {ind}"))
    first, rest = tuple(A.shape[:ind]), tuple(A.shape[ind:])
    rows, cols = math.prod(first), math.prod(rest)
    if rows != cols:
        raise RuntimeError(
            located(
                "Expected self to satisfy the requirement prod(self.shape[ind:]) == prod(self.shape[:ind]), but got "
                f"{cols} != {rows}"
            )
        )
    return inv(A.reshape(rows, cols)).reshape(rest + first)


def tensorsolve(A, B, dims=None, *, out=None):
    """X with tensordot(A, X, X.ndim) = B (dims: A's dimensions moved to the end first); X has the shape of A's
    dimensions after B's."""
    A, B = _as(A), _as(B)
    if dims is not None:
        dims = [d % A.ndim for d in dims]
        A = A.movedim(tuple(dims), tuple(range(A.ndim - len(dims), A.ndim)))
    rest = tuple(A.shape[B.ndim :])
    rows, cols = math.prod(A.shape[: B.ndim]), math.prod(rest)
    if rows != cols:
        raise RuntimeError(
            located(
                "Expected self to satisfy the requirement prod(self.shape[other.ndim:]) == "
                f"prod(self.shape[:other.ndim]), but got {cols} != {rows}"
            )
        )
    return solve(A.reshape(rows, cols), B.reshape(rows)).reshape(rest)


# -- products and shapes -----------------------------------------------------------------------------------------
_DTYPE_NAMES = {"float32": "Float", "float64": "Double", "int64": "Long", "bool": "Bool"}


def vecdot(x, y, *, dim: int = -1, out=None):
    """The dot products of x's and y's vectors along dim (the other dimensions broadcast)."""
    x, y = _as(x), _as(y)
    if x.dtype_name != y.dtype_name:
        raise RuntimeError(
            located(
                "linalg.vecdot: Expected x and y to have the same dtype, but found x of type "
                f"{_DTYPE_NAMES.get(x.dtype_name, x.dtype_name)} and y of type "
                f"{_DTYPE_NAMES.get(y.dtype_name, y.dtype_name)} instead"
            )
        )
    return relabel((x * y).sum(dim), "LinalgVecdotBackward0", [x, y])


def linalg_vander(x, *, N=None):  # noqa: N803 (PyTorch's name)
    """x's (..., n) elements to the powers 0 .. N-1 (N: n by default) along a new last dimension."""
    from graphnn.core.numeric_api import powers

    x = _as(x)
    if x.ndim < 1:
        raise RuntimeError(located("linalg.vander: x must be at least 1-dimensional."))
    n = x.shape[-1] if N is None else int(N)
    if n <= 1:
        raise RuntimeError(located("N must be greater than 1."))
    return relabel(powers(x, n), "LinalgVanderBackward0", [x])


def linalg_diagonal(A, *, offset: int = 0, dim1: int = -2, dim2: int = -1):
    """torch.linalg.diagonal: the diagonals of the matrices in A's last two dimensions (by default)."""
    from graphnn.core.linalg_api import diagonal

    return diagonal(_as(A), offset, dim1, dim2)
