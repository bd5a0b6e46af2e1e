"""Batch normalization and distance functions."""

from __future__ import annotations

from graphnn.core.dispatch import relabel
from graphnn.core.grad_mode import no_grad
from graphnn.core.tensor import Tensor


def batch_norm(
    input: Tensor,
    running_mean,
    running_var,
    weight=None,
    bias=None,
    training: bool = False,
    momentum: float | None = 0.1,
    eps: float = 1e-5,
    num_batches_tracked=None,
) -> Tensor:
    """Normalize over every axis but the channel axis (1); in training, update the running statistics."""
    if input.ndim < 2:
        raise ValueError(f"batch_norm expects at least 2-D input, got {tuple(input.shape)}")
    axes = (0,) + tuple(range(2, input.ndim))
    shape = (1, input.shape[1]) + (1,) * (input.ndim - 2)
    n = input.numel() // input.shape[1]
    if training or running_mean is None:
        if n <= 1:
            raise ValueError(
                f"Expected more than 1 value per channel when training, got input size {tuple(input.shape)}"
            )
        mean = input.mean(axes, keepdim=True)
        centered = input - mean
        var = (centered * centered).mean(axes, keepdim=True)
        if training and running_mean is not None:
            with no_grad():
                if num_batches_tracked is not None:
                    num_batches_tracked._assign(num_batches_tracked + 1)
                # momentum=None: cumulative moving average, factor 1/num_batches_tracked
                factor = (
                    momentum
                    if momentum is not None
                    else (1.0 / num_batches_tracked.double()).type_as_dtype(running_mean.dtype_name)
                )
                m = mean.detach().reshape(-1)
                v = var.detach().reshape(-1) * (n / (n - 1))
                running_mean._assign(running_mean * (1 - factor) + m * factor)
                running_var._assign(running_var * (1 - factor) + v * factor)
        out = centered / (var + eps).sqrt()
    else:
        out = (input - running_mean.reshape(shape)) / (running_var.reshape(shape) + eps).sqrt()
    if weight is not None:
        out = out * weight.reshape(shape)
    if bias is not None:
        out = out + bias.reshape(shape)
    return relabel(out, "NativeBatchNormBackward0", [input, weight, bias])


def cosine_similarity(x1: Tensor, x2: Tensor, dim: int = 1, eps: float = 1e-8) -> Tensor:
    n1 = x1.norm(dim=dim, keepdim=True).clamp(min=eps)
    n2 = x2.norm(dim=dim, keepdim=True).clamp(min=eps)
    return relabel(((x1 / n1) * (x2 / n2)).sum(dim), "SumBackward1", [x1, x2])


def pairwise_distance(x1: Tensor, x2: Tensor, p: float = 2.0, eps: float = 1e-6, keepdim: bool = False) -> Tensor:
    return (x1 - x2 + eps).norm(p, dim=-1, keepdim=keepdim)
