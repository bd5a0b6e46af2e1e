"""addmm and diff as compositions of the primitive ops: differentiable, eager and inside graphnn.compile."""

from __future__ import annotations


from graphnn.core.tensor import Tensor


def addmm(input: Tensor, mat1: Tensor, mat2: Tensor, *, beta=1, alpha=1) -> Tensor:
    prod = mat1.matmul(mat2)
    return (input if beta == 1 else input * beta) + (prod if alpha == 1 else prod * alpha)


def diff(input: Tensor, n: int = 1, dim: int = -1, prepend=None, append=None) -> Tensor:
    from graphnn.core.tensor import cat

    parts = [p for p in (prepend, input, append) if p is not None]
    x = cat(parts, dim) if len(parts) > 1 else input
    for _ in range(n):
        size = x.shape[dim]
        x = x.narrow(dim, 1, size - 1) - x.narrow(dim, 0, size - 1)
    return x


METHODS = {"addmm": addmm, "diff": diff}
