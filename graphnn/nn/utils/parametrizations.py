"""nn.utils.parametrizations: weight_norm, spectral_norm and orthogonal written as parametrizations
(nn.utils.parametrize), with PyTorch's state-dict keys: `parametrizations.weight.original0` (g) / `original1` (v),
`parametrizations.weight.original` with the buffers `parametrizations.weight.0._u` / `._v` (spectral norm) or
`parametrizations.weight.0.base` (orthogonal)."""

from __future__ import annotations

import numpy as np

from graphnn.core.grad_mode import no_grad
from graphnn.core.tensor import Tensor, randn
from ..modules.module import Module
from . import parametrize
from .spectral_norm import conv_transpose_dim, l2_normalize, weight_matrix
from .weight_norm import norm_except_dim, weight_norm_value


class _WeightNorm(Module):
    def __init__(self, dim: int | None = 0):
        super().__init__()
        self.dim = -1 if dim is None else dim

    def forward(self, weight_g: Tensor, weight_v: Tensor) -> Tensor:
        return weight_norm_value(weight_v, weight_g, self.dim)

    def right_inverse(self, weight: Tensor) -> tuple:
        return norm_except_dim(weight, 2, self.dim), weight


def weight_norm(module, name: str = "weight", dim: int | None = 0):
    """module.<name> = g * v / ||v|| as a parametrization (originals: original0 = g, original1 = v)."""
    return parametrize.register_parametrization(module, name, _WeightNorm(dim), unsafe=True)


class _SpectralNorm(Module):
    def __init__(self, weight: Tensor, n_power_iterations: int = 1, dim: int = 0, eps: float = 1e-12):
        super().__init__()
        ndim = weight.ndim
        if dim >= ndim or dim < -ndim:
            raise IndexError(f"Dimension out of range (expected to be in range of [-{ndim}, {ndim - 1}] but got {dim})")
        if n_power_iterations <= 0:
            raise ValueError(
                f"Expected n_power_iterations to be positive, but got n_power_iterations={n_power_iterations}"
            )
        self.dim = dim if dim >= 0 else dim + ndim
        self.eps = eps
        if ndim > 1:
            self.n_power_iterations = n_power_iterations
            with no_grad():
                h, w = weight_matrix(weight, self.dim).shape
                self.register_buffer("_u", l2_normalize(randn(h, dtype=weight.dtype_name), eps))
                self.register_buffer("_v", l2_normalize(randn(w, dtype=weight.dtype_name), eps))
                self._power_method(weight_matrix(weight, self.dim), 15)

    def _power_method(self, mat: Tensor, n: int) -> None:
        with no_grad():
            for _ in range(n):
                self._u._assign(l2_normalize(mat.mv(self._v), self.eps))
                self._v._assign(l2_normalize(mat.t().mv(self._u), self.eps))

    def forward(self, weight: Tensor) -> Tensor:
        if weight.ndim == 1:
            return l2_normalize(weight, self.eps)
        mat = weight_matrix(weight, self.dim)
        if self.training:
            self._power_method(mat, self.n_power_iterations)
        u, v = self._u.clone(), self._v.clone()
        return weight / u.dot(mat.mv(v))

    def right_inverse(self, value: Tensor) -> Tensor:
        return value


def spectral_norm(module, name: str = "weight", n_power_iterations: int = 1, eps: float = 1e-12, dim=None):
    """module.<name> divided by its largest singular value (power iteration on buffers _u, _v, one step per training
    forward) as a parametrization."""
    weight = getattr(module, name, None)
    if not isinstance(weight, Tensor):
        raise ValueError(f"Module '{module}' has no parameter or buffer with name '{name}'")
    if dim is None:
        dim = conv_transpose_dim(module)
    parametrize.register_parametrization(module, name, _SpectralNorm(weight, n_power_iterations, dim, eps))
    return module


def _orthonormalized(A: Tensor) -> Tensor:
    """The Q of A's QR decomposition with R's diagonal made positive (PyTorch's _make_orthogonal)."""
    from graphnn import linalg

    Q, R = linalg.qr(A)
    return Q * R.diagonal(dim1=-2, dim2=-1).sign().unsqueeze(-2)


def _geqrf(Q: np.ndarray) -> tuple:
    """LAPACK's geqrf of (a batch of) tall matrices in NumPy: R on and above the diagonal, the Householder vectors
    (unit leading entry implied) below it, and their factors tau."""
    A = np.array(Q, dtype=np.float64)
    k = A.shape[-1]
    tau = np.zeros(A.shape[:-2] + (k,))
    for b in np.ndindex(*A.shape[:-2]):
        M, t = A[b], tau[b]
        for j in range(k):
            x = M[j:, j]
            alpha, rest = x[0], float(np.linalg.norm(x[1:]))
            if rest == 0.0:
                continue  # (no reflection: tau 0)
            beta = -np.copysign(np.hypot(alpha, rest), alpha)
            t[j] = (beta - alpha) / beta
            v = x / (alpha - beta)
            v[0] = 1.0
            M[j:, j + 1 :] -= t[j] * np.outer(v, v @ M[j:, j + 1 :])
            M[j, j], M[j + 1 :, j] = beta, v[1:]
    return A, tau


def _householder(A: Tensor, tau: Tensor, k: int) -> Tensor:
    """The first k columns of H_1 ... H_k, H_i = I - tau_i v_i v_i^T with v_i = (0, .., 0, 1, A[i+1:, i])
    (torch.linalg.householder_product)."""
    from graphnn.core.tensor import eye

    n = A.shape[-2]
    Q = eye(n, k, dtype=A.dtype_name).expand(*A.shape[:-2], n, k)
    unit = eye(n, dtype=A.dtype_name)
    for i in reversed(range(k)):
        below = 1.0 - unit[:, : i + 1].sum(-1)  # rows past i
        v = (A[..., :, i] * below + unit[:, i]).unsqueeze(-1)  # 0 above i, 1 at i, A's column below
        Q = Q - tau[..., i, None, None] * (v @ (v.mT @ Q))
    return Q


class _Orthogonal(Module):
    """weight = an orthogonal matrix (orthonormal columns, or rows when wide), from the unconstrained original by
    the matrix exponential or the Cayley map of a skew-symmetric matrix, or a product of Householder reflectors;
    with use_trivialization, times the orthogonalized initial weight (`base`), the original starting at -I."""

    def __init__(self, weight: Tensor, orthogonal_map: str, use_trivialization: bool = True):
        super().__init__()
        self.shape = tuple(weight.shape)
        self.orthogonal_map = orthogonal_map
        if use_trivialization:
            self.register_buffer("base", None)

    def forward(self, X: Tensor) -> Tensor:
        from graphnn.core.matrix_exp import matrix_exp
        from graphnn.core.tensor import cat, eye

        n, k = X.shape[-2], X.shape[-1]
        transposed = n < k
        if transposed:
            X = X.mT
            n, k = k, n
        if self.orthogonal_map in ("matrix_exp", "cayley"):
            X = X.tril()
            if n != k:
                X = cat([X, X.new_zeros(*X.shape[:-2], n, n - k)], -1)
            A = X - X.mT
            if self.orthogonal_map == "matrix_exp":
                Q = matrix_exp(A)
            else:
                from graphnn import linalg

                Id = eye(n, dtype=A.dtype_name)
                Q = linalg.solve(Id - A * 0.5, Id + A * 0.5)
            if n != k:
                Q = Q[..., :k]
        else:
            A = X.tril(diagonal=-1)
            tau = 2.0 / (1.0 + (A * A).sum(dim=-2))
            Q = _householder(A, tau, k) * X.diagonal(dim1=-2, dim2=-1).detach().sign().unsqueeze(-2)
        if getattr(self, "base", None) is not None:
            Q = self.base @ Q
        return Q.mT if transposed else Q

    @no_grad()
    def right_inverse(self, Q: Tensor) -> Tensor:
        from graphnn.core.tensor import cat, zeros_like

        if tuple(Q.shape) != self.shape:
            raise ValueError(
                f"Expected a matrix or batch of matrices of shape {self.shape}. Got a tensor of shape {tuple(Q.shape)}."
            )
        Q_init = Q
        n, k = Q.shape[-2], Q.shape[-1]
        transposed = n < k
        if transposed:
            Q = Q.mT
            n, k = k, n
        if "base" not in self._buffers:  # (no trivialization: the Householder original of Q's QR)
            if self.orthogonal_map != "householder":
                raise NotImplementedError(
                    "It is not possible to assign to the matrix exponential or the Cayley parametrizations when "
                    "use_trivialization=False."
                )
            A, tau = _geqrf(Q._concrete("orthogonal"))
            d = np.sign(np.diagonal(A, axis1=-2, axis2=-1)) * np.where(tau == 0.0, -1.0, 1.0)
            idx = np.arange(k)
            A[..., idx, idx] = d
            A = Tensor._wrap(A.astype(Q.dtype_name))
            return A.mT if transposed else A
        if n != k:  # complete the columns to an n x n orthogonal matrix
            Q = cat([Q, randn(*Q.shape[:-2], n, n - k, dtype=Q.dtype_name)], -1)
        self.base = _orthonormalized(Q)
        neg_id = zeros_like(Q_init)
        neg_id.diagonal(dim1=-2, dim2=-1).fill_(-1.0)
        return neg_id


def orthogonal(module, name: str = "weight", orthogonal_map: str | None = None, *, use_trivialization: bool = True):
    """module.<name> constrained to orthogonal (or unitary) matrices, as PyTorch's parametrizations.orthogonal:
    orthogonal_map 'matrix_exp' (default for square matrices), 'cayley' or 'householder' (default otherwise)."""
    weight = getattr(module, name, None)
    if not isinstance(weight, Tensor):
        raise ValueError(f"Module '{module}' has no parameter or buffer with name '{name}'")
    if weight.ndim < 2:
        raise ValueError(f"Expected a matrix or batch of matrices. Got a tensor of {weight.ndim} dimensions.")
    if orthogonal_map is None:
        orthogonal_map = "matrix_exp" if weight.shape[-2] == weight.shape[-1] else "householder"
    if orthogonal_map not in ("matrix_exp", "cayley", "householder"):
        raise ValueError(
            f'orthogonal_map has to be one of "matrix_exp", "cayley", "householder". Got: {orthogonal_map}'
        )
    orth = _Orthogonal(weight, orthogonal_map, use_trivialization=use_trivialization)
    return parametrize.register_parametrization(module, name, orth, unsafe=True)
