"""nn.utils.weight_norm / remove_weight_norm: the hook form of weight normalization, weight = g * v / ||v||, with
PyTorch's parameter names (`weight_g`, `weight_v`) and the norm taken over every dimension but `dim`."""

from __future__ import annotations

import warnings

from graphnn.core.grad_mode import no_grad
from graphnn.core.tensor import Tensor
from ..parameter import Parameter
from ._recomputed import RecomputedAttr


def norm_except_dim(v: Tensor, pow: float = 2, dim: int = 0) -> Tensor:  # noqa: A002 (PyTorch's name)
    """||v||_pow over every dimension but `dim`, shaped 1 there (dim=-1: over the whole tensor, 0-d)."""
    if dim == -1:
        return v.norm(pow)
    d = dim % v.ndim
    axes = tuple(a for a in range(v.ndim) if a != d)
    return v.norm(pow, dim=axes, keepdim=True) if axes else v.abs()


def weight_norm_value(v: Tensor, g: Tensor, dim: int = 0) -> Tensor:
    """v * (g / ||v||) with the norm over every dimension but `dim` (torch._weight_norm)."""
    return v * (g / norm_except_dim(v, 2, dim))


class WeightNorm(RecomputedAttr):
    """The forward pre-hook that recomputes module.<name> from <name>_g and <name>_v before each call."""

    def __init__(self, name: str, dim: int):
        self.name, self.dim = name, -1 if dim is None else dim

    def compute(self, module, training: bool) -> Tensor:
        return self.compute_weight(module)

    def compute_weight(self, module) -> Tensor:
        return weight_norm_value(getattr(module, self.name + "_v"), getattr(module, self.name + "_g"), self.dim)

    @staticmethod
    def apply(module, name: str, dim: int) -> "WeightNorm":
        for hook in module._forward_pre_hooks.values():
            if isinstance(hook, WeightNorm) and hook.name == name:
                raise RuntimeError(f"Cannot register two weight_norm hooks on the same parameter {name}")
        fn = WeightNorm(name, dim)
        weight = getattr(module, name)
        if not isinstance(weight, Parameter):
            raise ValueError(f"weight_norm: '{name}' of {type(module).__name__} is not a parameter")
        del module._parameters[name]
        with no_grad():
            module.register_parameter(name + "_g", Parameter(norm_except_dim(weight, 2, fn.dim)))
            module.register_parameter(name + "_v", Parameter(weight))
        object.__setattr__(module, name, fn.compute_weight(module))
        fn.install(module)
        return fn

    def remove(self, module) -> None:
        with no_grad():
            weight = self.compute_weight(module)
        delattr(module, self.name)
        del module._parameters[self.name + "_g"]
        del module._parameters[self.name + "_v"]
        module.register_parameter(self.name, Parameter(weight))


def weight_norm(module, name: str = "weight", dim: int | None = 0):
    """Reparametrize module.<name> as <name>_g * <name>_v / ||<name>_v|| (norm over all dims but `dim`; None: the
    whole tensor), recomputed before each forward. Returns the module."""
    warnings.warn(
        "`torch.nn.utils.weight_norm` is deprecated in favor of `torch.nn.utils.parametrizations.weight_norm`.",
        FutureWarning,
        stacklevel=2,
    )
    WeightNorm.apply(module, name, dim)
    return module


def remove_weight_norm(module, name: str = "weight"):
    """Undo weight_norm: module.<name> becomes a parameter again holding the current normalized value."""
    return WeightNorm.remove_from(module, name, "weight_norm")
