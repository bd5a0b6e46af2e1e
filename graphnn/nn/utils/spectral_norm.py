"""nn.utils.spectral_norm / remove_spectral_norm: the hook form of spectral normalization, weight = weight_orig /
sigma, sigma estimated by power iteration on the buffers weight_u, weight_v (one iteration per training forward,
none in eval), as PyTorch's: parameter `weight_orig`, buffers `weight_u` and `weight_v`."""

from __future__ import annotations

from graphnn.core.grad_mode import no_grad
from graphnn.core.tensor import Tensor, randn
from ..parameter import Parameter
from ._recomputed import RecomputedAttr


def conv_transpose_dim(module) -> int:
    """The output-channel dimension of the module's weight: 1 for a transposed convolution, else 0."""
    from ..modules.conv import ConvTranspose1d, ConvTranspose2d, ConvTranspose3d

    return 1 if isinstance(module, (ConvTranspose1d, ConvTranspose2d, ConvTranspose3d)) else 0


def weight_matrix(weight: Tensor, dim: int) -> Tensor:
    """The weight as a matrix: dimension `dim` first, the others flattened."""
    if dim != 0:
        weight = weight.movedim(dim, 0)
    return weight.reshape(weight.shape[0], -1)


def l2_normalize(x: Tensor, eps: float) -> Tensor:
    return x / x.norm().clamp(min=eps)


class SpectralNorm(RecomputedAttr):
    """The forward pre-hook setting module.<name> = <name>_orig / sigma before each call."""

    def __init__(self, name: str = "weight", n_power_iterations: int = 1, dim: int = 0, eps: float = 1e-12):
        if n_power_iterations <= 0:
            raise ValueError(
                f"Expected n_power_iterations to be positive, but got n_power_iterations={n_power_iterations}"
            )
        self.name, self.n_power_iterations, self.dim, self.eps = name, n_power_iterations, dim, eps

    def compute(self, module, training: bool) -> Tensor:
        return self.compute_weight(module, do_power_iteration=training)

    def compute_weight(self, module, do_power_iteration: bool) -> Tensor:
        weight = getattr(module, self.name + "_orig")
        u, v = getattr(module, self.name + "_u"), getattr(module, self.name + "_v")
        mat = weight_matrix(weight, self.dim)
        if do_power_iteration:
            with no_grad():
                for _ in range(self.n_power_iterations):
                    v._assign(l2_normalize(mat.t().mv(u), self.eps))
                    u._assign(l2_normalize(mat.mv(v), self.eps))
        u, v = u.clone(), v.clone()
        sigma = u.dot(mat.mv(v))
        return weight / sigma

    def remove(self, module) -> None:
        with no_grad():
            weight = self.compute_weight(module, do_power_iteration=False)
        delattr(module, self.name)
        delattr(module, self.name + "_u")
        delattr(module, self.name + "_v")
        delattr(module, self.name + "_orig")
        module.register_parameter(self.name, Parameter(weight.detach()))

    @staticmethod
    def apply(module, name: str, n_power_iterations: int, dim: int, eps: float) -> "SpectralNorm":
        for hook in module._forward_pre_hooks.values():
            if isinstance(hook, SpectralNorm) and hook.name == name:
                raise RuntimeError(f"Cannot register two spectral_norm hooks on the same parameter {name}")
        fn = SpectralNorm(name, n_power_iterations, dim, eps)
        weight = module._parameters[name]
        with no_grad():
            h, w = weight_matrix(weight, dim).shape
            u = l2_normalize(randn(h, dtype=weight.dtype_name), eps)
            v = l2_normalize(randn(w, dtype=weight.dtype_name), eps)
        del module._parameters[name]
        module.register_parameter(name + "_orig", weight)
        object.__setattr__(module, name, weight.detach())
        module.register_buffer(name + "_u", u)
        module.register_buffer(name + "_v", v)
        fn.install(module)
        return fn


def spectral_norm(module, name: str = "weight", n_power_iterations: int = 1, eps: float = 1e-12, dim=None):
    """Divide module.<name> by its largest singular value, estimated by power iteration (one step per training
    forward). Returns the module."""
    if dim is None:
        dim = conv_transpose_dim(module)
    SpectralNorm.apply(module, name, n_power_iterations, dim, eps)
    return module


def remove_spectral_norm(module, name: str = "weight"):
    """Undo spectral_norm: module.<name> becomes a parameter holding the current normalized value."""
    return SpectralNorm.remove_from(module, name, "spectral_norm")
