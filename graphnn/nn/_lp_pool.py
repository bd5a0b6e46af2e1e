"""Power-average pooling: (sum of x^p over each window)^(1/p), through average pooling of x^p."""

from __future__ import annotations

from graphnn.core.dispatch import relabel
from graphnn.core.tensor import Tensor
from ._vision import avg_pool, window_arg


def lp_pool(input: Tensor, norm_type: float, kernel_size, stride=None, ceil_mode: bool = False, nsp: int = 2):
    """PyTorch's lp_pool{nsp}d: the window sum of x^p (as avg_pool's mean times the window size, a negative sum
    clamped to 0) to the power 1/p."""
    ks = window_arg(f"lp_pool{nsp}d", "kernel_size", kernel_size, nsp)
    area = 1
    for k in ks:
        area *= k
    mean = avg_pool(input.pow(norm_type), kernel_size, stride, 0, ceil_mode, True, None, nsp)
    out = (mean.sign() * mean.abs().relu() * float(area)).pow(1.0 / norm_type)
    return relabel(out, "PowBackward0", [input])


def lp_pool1d(input: Tensor, norm_type: float, kernel_size, stride=None, ceil_mode: bool = False) -> Tensor:
    return lp_pool(input, norm_type, kernel_size, stride, ceil_mode, 1)


def lp_pool2d(input: Tensor, norm_type: float, kernel_size, stride=None, ceil_mode: bool = False) -> Tensor:
    return lp_pool(input, norm_type, kernel_size, stride, ceil_mode, 2)


def lp_pool3d(input: Tensor, norm_type: float, kernel_size, stride=None, ceil_mode: bool = False) -> Tensor:
    return lp_pool(input, norm_type, kernel_size, stride, ceil_mode, 3)
