"""torch.linalg.matrix_exp (torch.matrix_exp, Tensor.matrix_exp): scaling and squaring with the degree-13 Pade
approximant (Higham 2005), composed of matmul, linalg.solve and select, so it differentiates (by autodiff of the
composition) and compiles.

Each matrix A is scaled by 2^-s, with s the smallest count that brings its 1-norm under THETA_13 (where the
approximant is accurate to double precision), its exponential approximated by r(X) = (V - U)^-1 (V + U), and the
result squared s times. The squarings are a fixed number of steps, each `select(step < s, X @ X, X)` per matrix of a
batch: eagerly as many steps as the largest s of the batch needs (the values are concrete); inside graphnn.compile
MAX_SQUARINGS_COMPILED steps (enough for 1-norms up to THETA_13 * 2^16, about 3.5e5; beyond that the result loses
accuracy, while its entries would overflow for most such matrices anyway)."""

from __future__ import annotations

import math

import numpy as np

from graphnn.core.dispatch import apply, located

THETA_13 = 5.371920351148152
MAX_SQUARINGS_COMPILED = 16
# Pade(13, 13) coefficients of exp: b_k = (26 - k)! 13! / (26! k! (13 - k)!)
_B = tuple(
    math.factorial(26 - k) * math.factorial(13) / (math.factorial(26) * math.factorial(k) * math.factorial(13 - k))
    for k in range(14)
)


def _pade13(X, eye):
    b = _B
    X2 = X @ X
    X4 = X2 @ X2
    X6 = X4 @ X2
    U = X @ (X6 @ (b[13] * X6 + b[11] * X4 + b[9] * X2) + b[7] * X6 + b[5] * X4 + b[3] * X2 + b[1] * eye)
    V = X6 @ (b[12] * X6 + b[10] * X4 + b[8] * X2) + b[6] * X6 + b[4] * X4 + b[2] * X2 + b[0] * eye
    from graphnn.core.linalg_dense_api import solve

    return solve(V - U, V + U)


def matrix_exp(A):
    """exp(A) of a square matrix or a batch of them (float32 / float64)."""
    from graphnn.compiler import tracer
    from graphnn.core.tensor import Tensor, as_tensor

    A = as_tensor(A)
    if A.ndim < 2 or A.shape[-1] != A.shape[-2]:
        shape = f"{A.shape[-2]} by {A.shape[-1]}" if A.ndim >= 2 else f"{A.ndim}-d"
        raise RuntimeError(
            located(f"linalg.matrix_exp: A must be batches of square matrices, but they are {shape} matrices")
        )
    if not A.is_floating_point():
        what = {"int64": "Long", "bool": "Bool"}.get(A.dtype_name, A.dtype_name)
        raise RuntimeError(
            located(f"linalg.matrix_exp: Expected a floating point or complex tensor as input. Got {what}")
        )
    n = A.shape[-1]
    if A.numel() == 0:
        return A.clone()
    norm = A.detach().abs().sum(-2).amax(-1, keepdim=True).unsqueeze(-1)  # 1-norm of each matrix, (..., 1, 1)
    ratio = (norm / THETA_13).type_as_dtype("float64")
    s = apply("ceil", [apply("log2", [ratio.clamp(min=1.0)])])  # squarings per matrix (0 when already small)
    if tracer.current() is None and s._data is not None:
        steps = int(np.max(s._data)) if s._data.size else 0
    else:
        steps = MAX_SQUARINGS_COMPILED
        s = s.clamp(max=float(steps))
    X = A * apply("exp2", [-s]).type_as_dtype(A.dtype_name)
    eye = Tensor._wrap(np.eye(n, dtype=A.dtype_name))
    R = _pade13(X, eye)
    for k in range(steps):
        R = apply("select", [s > k, R @ R, R])
    return R
