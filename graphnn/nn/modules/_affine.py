"""The elementwise affine parameters of normalization layers (BatchNorm, InstanceNorm, LayerNorm, GroupNorm)."""

from __future__ import annotations

from graphnn.core.tensor import empty
from .. import init
from ..parameter import Parameter


def register_affine(module, shape, affine: bool, bias: bool, dtype) -> None:
    """Register `weight` and `bias` of `shape` (None slots when not affine, and `bias` None when bias=False), as
    PyTorch's normalization layers do; reset_affine gives them their initial values."""
    module.register_parameter("weight", Parameter(empty(shape, dtype=dtype)) if affine else None)
    module.register_parameter("bias", Parameter(empty(shape, dtype=dtype)) if affine and bias else None)


def reset_affine(module) -> None:
    """weight ones and bias zeros, where the module has them."""
    if module.weight is not None:
        init.ones_(module.weight)
    if module.bias is not None:
        init.zeros_(module.bias)
