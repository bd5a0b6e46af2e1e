"""nn.utils.parametrizations: weight_norm and spectral_norm written as parametrizations (nn.utils.parametrize), with
PyTorch's state-dict keys: `parametrizations.weight.original0` (g) / `original1` (v), and
`parametrizations.weight.original` with the buffers `parametrizations.weight.0._u` / `._v`."""

from __future__ import annotations

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
