"""Dropout: a fresh Bernoulli mask per call (drawn from graphnn's generator, also inside compiled code); the
channel-wise variants draw one mask element per channel."""

from __future__ import annotations

import warnings

from graphnn.core import random as _random
from graphnn.core.dispatch import located, relabel
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
    return _channel_dropout(input, p, training, input.ndim >= 3)


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
