"""Batch, layer, RMS and group normalization, and distance functions (composites of IR primitives)."""

from __future__ import annotations

import math
import numbers

import numpy as np

from graphnn.ir.registry import IRError

from graphnn.core.dispatch import apply, located, op_error, relabel
from graphnn.core.grad_mode import no_grad
from graphnn.core.tensor import Tensor, as_tensor
from graphnn.core.replay import replayed


@replayed
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
    c = input.shape[1]
    for name, t in (("running_mean", running_mean), ("running_var", running_var), ("weight", weight), ("bias", bias)):
        if t is not None and t.numel() != c:  # (PyTorch's message: the input's channels and the layer's differ)
            raise RuntimeError(located(f"{name} should contain {c} elements not {t.numel()}"))
    shape = (1, c) + (1,) * (input.ndim - 2)
    n = input.numel() // c
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
        # one scale per channel (the weight over the deviation), then one pass scaling and shifting: two passes over
        # the input instead of three (an eager op each), as PyTorch's CPU kernel scales and shifts
        scale = (var + eps).rsqrt()
    else:
        centered = input - running_mean.reshape(shape)
        scale = (running_var.reshape(shape) + eps).rsqrt()
    if weight is not None:
        scale = scale * weight.reshape(shape)
    out = centered * scale
    if bias is not None:
        out = out + bias.reshape(shape)
    return relabel(out, "NativeBatchNormBackward0", [input, weight, bias])


def instance_norm(
    input: Tensor,
    running_mean=None,
    running_var=None,
    weight=None,
    bias=None,
    use_input_stats: bool = True,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> Tensor:
    """Normalize each channel of each sample over its spatial axes; with running statistics given and
    use_input_stats, update them with the batch's mean statistics (unbiased variance), as PyTorch does."""
    if input.ndim < 3:
        raise op_error(
            IRError(f"instance_norm(input {input._type}): expected an input (N, C, *spatial) with spatial dimensions")
        )
    axes = tuple(range(2, input.ndim))
    shape = (1, input.shape[1]) + (1,) * (input.ndim - 2)
    n = int(np.prod(input.shape[2:], dtype=np.int64))
    if use_input_stats:
        if n <= 1:
            raise ValueError(
                located(f"Expected more than 1 spatial element when training, got input size {list(input.shape)}")
            )
        out = _standardize(input, axes, eps)
        if running_mean is not None:
            _update_instance_stats(input, axes, n, running_mean, running_var, momentum)
    else:
        out = (input - running_mean.reshape(shape)) * (running_var.reshape(shape) + eps).rsqrt()
    if weight is not None:
        out = out * weight.reshape(shape)
    if bias is not None:
        out = out + bias.reshape(shape)
    return relabel(out, "NativeBatchNormBackward0", [input, weight, bias])


def _update_instance_stats(input: Tensor, axes: tuple, n: int, running_mean, running_var, momentum: float) -> None:
    """running <- (1 - momentum) running + momentum * (the batch mean of each sample's statistic)."""
    with no_grad():
        x = input.detach()
        mean = x.mean(axes)
        centred = x - mean.reshape(tuple(mean.shape) + (1,) * len(axes))
        var = (centred * centred).sum(axes) / (n - 1)
        running_mean._assign(running_mean * (1 - momentum) + mean.mean(0) * momentum)
        running_var._assign(running_var * (1 - momentum) + var.mean(0) * momentum)


def cosine_similarity(x1: Tensor, x2: Tensor, dim: int = 1, eps: float = 1e-8) -> Tensor:
    def clamped(n):  # (PyTorch clamps the norms in place without gradient: the gradient is the unclamped norm's)
        return n + (n.clamp(min=eps) - n).detach()

    n1 = clamped(x1.norm(dim=dim, keepdim=True))
    n2 = clamped(x2.norm(dim=dim, keepdim=True))
    return relabel(((x1 / n1) * (x2 / n2)).sum(dim), "SumBackward1", [x1, x2])


def pairwise_distance(x1: Tensor, x2: Tensor, p: float = 2.0, eps: float = 1e-6, keepdim: bool = False) -> Tensor:
    return (x1 - x2 + eps).norm(p, dim=-1, keepdim=keepdim)


def _normalized_axes(op: str, input: Tensor, normalized_shape, *affine) -> tuple:
    """The trailing axes `normalized_shape` names; the input and the affine tensors must have that shape."""
    shape = (int(normalized_shape),) if isinstance(normalized_shape, numbers.Integral) else tuple(normalized_shape)
    n = len(shape)
    if n == 0 or input.ndim < n or tuple(input.shape[input.ndim - n :]) != shape:
        raise op_error(
            IRError(
                f"{op}(input {input._type}): Given normalized_shape={list(shape)}, expected input with shape "
                f"[*, {', '.join(str(s) for s in shape)}], but got input of size{list(input.shape)}"
            )
        )
    for name, t in affine:
        if t is not None and tuple(t.shape) != shape:
            raise op_error(
                IRError(f"{op}(input {input._type}): expected {name} of shape {list(shape)}, got {list(t.shape)}")
            )
    return tuple(range(input.ndim - n, input.ndim))


def _standardize(x: Tensor, axes: tuple, eps: float) -> Tensor:
    """(x - mean) / sqrt(var + eps) over `axes` (biased variance, from the centred values)."""
    centred = x - x.mean(axes, keepdim=True)
    var = (centred * centred).mean(axes, keepdim=True)
    return centred * (var + eps).rsqrt()


@replayed
def layer_norm(input: Tensor, normalized_shape, weight=None, bias=None, eps: float = 1e-5) -> Tensor:
    """Normalize over the trailing `normalized_shape` axes, then the elementwise affine map."""
    axes = _normalized_axes("layer_norm", input, normalized_shape, ("weight", weight), ("bias", bias))
    out = _standardize(input, axes, eps)
    if weight is not None:
        out = out * weight
    if bias is not None:
        out = out + bias
    return relabel(out, "NativeLayerNormBackward0", [input, weight, bias])


def rms_norm(input: Tensor, normalized_shape, weight=None, eps: float | None = None) -> Tensor:
    """x / sqrt(mean(x^2) + eps) over the trailing axes, times weight; eps=None is the dtype's machine epsilon."""
    axes = _normalized_axes("rms_norm", input, normalized_shape, ("weight", weight))
    eps = float(np.finfo(input.dtype_name).eps) if eps is None else eps
    out = input * ((input * input).mean(axes, keepdim=True) + eps).rsqrt()
    return out * weight if weight is not None else out


@replayed
def group_norm(input: Tensor, num_groups: int, weight=None, bias=None, eps: float = 1e-5) -> Tensor:
    """Normalize each of `num_groups` groups of channels (dimension 1) per sample, then a per-channel affine map."""
    if input.ndim < 2:
        raise RuntimeError(located(f"Expected at least 2 dimensions for input tensor but received {input.ndim}"))
    n, c = input.shape[0], input.shape[1]
    call = f"group_norm(input {input._type}, num_groups {num_groups})"
    if num_groups <= 0 or c % num_groups:
        raise op_error(
            IRError(
                f"{call}: Expected number of channels in input to be divisible by num_groups, but got input of "
                f"shape {list(input.shape)} and num_groups={num_groups}"
            )
        )
    spatial = int(np.prod(input.shape[2:], dtype=np.int64))
    if (n * c // num_groups) * spatial == 1:
        size = [n * c // num_groups, num_groups] + list(input.shape[2:])
        raise ValueError(located(f"Expected more than 1 value per channel when training, got input size {size}"))
    for name, t in (("weight", weight), ("bias", bias)):
        if t is not None and tuple(t.shape) != (c,):
            raise op_error(IRError(f"{call}: expected {name} of shape [{c}], got {list(t.shape)}"))
    grouped = input.reshape((n, num_groups, c // num_groups * spatial))
    out = _standardize(grouped, (2,), eps).reshape(tuple(input.shape))
    shape = (1, c) + (1,) * (input.ndim - 2)
    if weight is not None:
        out = out * weight.reshape(shape)
    if bias is not None:
        out = out + bias.reshape(shape)
    return relabel(out, "NativeGroupNormBackward0", [input, weight, bias])


@replayed
def normalize(input: Tensor, p: float = 2.0, dim: int = 1, eps: float = 1e-12) -> Tensor:
    """input / max(||input||_p along dim, eps)."""
    return input / input.norm(p, dim=dim, keepdim=True).clamp(min=eps)


def local_response_norm(input: Tensor, size: int, alpha: float = 1e-4, beta: float = 0.75, k: float = 1.0) -> Tensor:
    """x / (k + alpha * mean of x^2 over `size` neighbouring channels)^beta (AlexNet); the window is centred (size // 2
    before, (size - 1) // 2 after) and zero-padded at the first and last channels."""
    if input.ndim < 3:
        raise ValueError(f"Expected 3D or higher dimensionality input (got {input.ndim} dimensions)")
    if input.numel() == 0:
        return input
    c = input.shape[1]
    sq = input * input
    before, after = size // 2, (size - 1) // 2
    from ._vision import pad

    padded = pad(sq, (0, 0) * (input.ndim - 2) + (before, after))  # zeros around the channels
    window = padded.narrow(1, 0, c)
    for j in range(1, size):
        window = window + padded.narrow(1, j, c)
    div = (window * (alpha / size) + k) ** beta
    return input / div


def pdist(input: Tensor, p: float = 2.0) -> Tensor:
    """The p-norm distances between the rows of a 2-D input, pairs (i, j) with i < j in row-major order; a zero
    distance has gradient 0 (as PyTorch's)."""
    if input.ndim != 2:
        raise RuntimeError(located(f"pdist only supports 2D tensors, got: {input.ndim}D"))
    if p < 0:
        raise RuntimeError(located("pdist only supports non-negative p values"))
    n = input.shape[0]
    i, j = np.triu_indices(n, 1)
    if len(i) == 0:
        return input.sum(1)[:0]
    d = input.index_select(0, as_tensor(i.astype("int64"))) - input.index_select(0, as_tensor(j.astype("int64")))
    a = d.abs()
    if p == math.inf:
        return a.amax(1)
    if p == 0:
        return (a != 0).type_as_dtype(input.dtype_name).sum(1)
    if p == 1:
        return a.sum(1)
    s = (a * a).sum(1) if p == 2 else (a**p).sum(1)
    nonzero = s > 0
    safe = apply("select", [nonzero, s, 1.0])
    return relabel(apply("select", [nonzero, safe ** (1.0 / p), 0.0]), "PdistBackward0", [input])
