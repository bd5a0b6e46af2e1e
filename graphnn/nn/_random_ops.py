"""Dropout: a fresh Bernoulli mask per call (drawn from graphnn's generator, also inside compiled code); the
channel-wise variants draw one mask element per channel."""

from __future__ import annotations

import warnings

import numpy as np

from graphnn.core import random as _random
from graphnn.core.dispatch import apply, located, relabel
from graphnn.core.tensor import Tensor, random_tensor


def dropout(input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False) -> Tensor:
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
    if not training or p == 0.0:
        return input
    if p == 1.0:
        return input * 0.0
    shape, dt = tuple(input.shape), input.dtype_name
    mask = random_tensor(shape, dt, lambda: (_random.generator().random(shape) >= p).astype(dt))
    return relabel(input * mask * (1.0 / (1.0 - p)), "MulBackward0", [input])


def _channel_dropout(input: Tensor, p: float, training: bool, batched: bool) -> Tensor:
    """Zero whole channels (dimension 1 of a batched input, 0 otherwise) with probability p, scale the rest."""
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
    if not training or p == 0.0:
        return input
    if p == 1.0:
        return input * 0.0
    keep = 2 if batched else 1
    shape, dt = tuple(input.shape[:keep]) + (1,) * (input.ndim - keep), input.dtype_name
    mask = random_tensor(shape, dt, lambda: (_random.generator().random(shape) >= p).astype(dt))
    return relabel(input * mask * (1.0 / (1.0 - p)), "MulBackward0", [input])


def dropout1d(input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False) -> Tensor:
    if input.ndim not in (2, 3):
        raise RuntimeError(
            located(
                f"dropout1d: Expected 2D or 3D input, but received a {input.ndim}D input. Note that dropout1d "
                "exists to provide channel-wise dropout on inputs with 1 spatial dimension, a channel dimension, "
                "and an optional batch dimension (i.e. 2D or 3D inputs)."
            )
        )
    return _channel_dropout(input, p, training, input.ndim == 3)


def dropout2d(input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False) -> Tensor:
    if input.ndim not in (3, 4):
        warnings.warn(
            f"dropout2d: Received a {input.ndim}-D input to dropout2d, which is deprecated and will result in an "
            "error in a future release. To retain the behavior and silence this warning, please use dropout "
            "instead. Note that dropout2d exists to provide channel-wise dropout on inputs with 2 spatial "
            "dimensions, a channel dimension, and an optional batch dimension (i.e. 3D or 4D inputs).",
            UserWarning,
            stacklevel=2,
        )
    if input.ndim == 3:
        warnings.warn(
            "dropout2d: Received a 3D input to dropout2d and assuming that channel-wise 1D dropout behavior is "
            "desired - input is interpreted as shape (N, C, L), where C is the channel dim. This behavior will "
            "change in a future release to interpret the input as one without a batch dimension, i.e. shape "
            "(C, H, W). To maintain the 1D channel-wise dropout behavior, please switch to using dropout1d instead.",
            UserWarning,
            stacklevel=2,
        )
    # (PyTorch's feature dropout keeps dimensions 0 and 1 of any input: a 2-D (N, C) one drops element by element)
    return _channel_dropout(input, p, training, input.ndim >= 2)


def dropout3d(input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False) -> Tensor:
    if input.ndim not in (4, 5):
        warnings.warn(
            f"dropout3d: Received a {input.ndim}-D input to dropout3d, which is deprecated and will result in an "
            "error in a future release. To retain the behavior and silence this warning, please use dropout "
            "instead. Note that dropout3d exists to provide channel-wise dropout on inputs with 3 spatial "
            "dimensions, a channel dimension, and an optional batch dimension (i.e. 4D or 5D inputs).",
            UserWarning,
            stacklevel=2,
        )
    return _channel_dropout(input, p, training, input.ndim >= 5)


def _check_p(p: float) -> None:
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")


_SELU_NEG = 1.7580993408473766  # selu's value at -inf is -_SELU_NEG


def _alpha_dropout(input: Tensor, p: float, training: bool, feature: bool) -> Tensor:
    """Dropped elements become selu's negative saturation; an affine map a x + b keeps mean 0 and variance 1."""
    _check_p(p)
    if feature and input.ndim < 2:
        raise RuntimeError(located("Feature dropout requires at least 2 dimensions in the input"))
    if not training or p == 0.0 or input.numel() == 0:
        return input
    if p == 1.0:
        return input * 0.0
    a = 1.0 / ((_SELU_NEG**2 * p + 1.0) * (1.0 - p)) ** 0.5
    shape = tuple(input.shape[:2]) + (1,) * (input.ndim - 2) if feature else tuple(input.shape)
    dt = input.dtype_name
    keep = random_tensor(shape, dt, lambda: (_random.generator().random(shape) >= p).astype(dt))
    out = input * (keep * a) + (keep - 1.0) * (_SELU_NEG * a) + _SELU_NEG * a * p
    return relabel(out, "AddBackward0", [input])


def alpha_dropout(input: Tensor, p: float = 0.5, training: bool = False, inplace: bool = False) -> Tensor:
    return _alpha_dropout(input, p, training, False)


def feature_alpha_dropout(input: Tensor, p: float = 0.5, training: bool = False, inplace: bool = False) -> Tensor:
    return _alpha_dropout(input, p, training, True)


def rrelu(
    input: Tensor, lower: float = 1.0 / 8, upper: float = 1.0 / 3, training: bool = False, inplace: bool = False
) -> Tensor:
    """Randomized leaky ReLU: in training each non-positive element is scaled by its own slope drawn from
    U(lower, upper) (fresh per call, also compiled); in evaluation by the mean slope (lower + upper) / 2."""
    from ._activation import inplace_or_new, leaky_relu

    if not training:
        return leaky_relu(input, (lower + upper) / 2, inplace)
    shape, dt = tuple(input.shape), input.dtype_name

    def compute():
        slope = random_tensor(shape, dt, lambda: _random.generator().uniform(lower, upper, shape).astype(dt))
        return relabel(apply("select", [input > 0, input, input * slope]), "RreluWithNoiseBackward0", [input])

    return inplace_or_new(input, inplace, "rrelu_", compute)


def gumbel_softmax(logits: Tensor, tau: float = 1.0, hard: bool = False, eps: float = 1e-10, dim: int = -1) -> Tensor:
    """softmax((logits + g) / tau) with g Gumbel(0, 1) noise; hard=True returns the one-hot of its argmax, whose
    gradient is the soft sample's (straight-through)."""
    shape, dt = tuple(logits.shape), logits.dtype_name
    gumbels = random_tensor(shape, dt, lambda: -np.log(_random.generator().exponential(1.0, shape)).astype(dt))
    y_soft = ((logits + gumbels) / tau).softmax(dim)
    if not hard:
        return y_soft
    index = y_soft.argmax(dim, keepdim=True)
    y_hard = (y_soft.detach() * 0.0).scatter(dim, index, value=1.0)
    return y_hard - y_soft.detach() + y_soft
