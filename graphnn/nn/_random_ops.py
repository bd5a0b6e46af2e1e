"""Dropout: a fresh Bernoulli mask per call (drawn from graphnn's generator, also inside compiled code)."""

from __future__ import annotations

from graphnn.core import random as _random
from graphnn.core.dispatch import relabel
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
