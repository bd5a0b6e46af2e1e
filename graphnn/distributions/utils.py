"""Conversions between probabilities and logits, as torch.distributions.utils offers them."""

from __future__ import annotations

import numpy as np

from graphnn.core.tensor import Tensor


def clamp_probs(probs: Tensor) -> Tensor:
    """probs kept one machine epsilon of their dtype inside (0, 1), so that their logs and log1p(-p) are finite."""
    eps = float(np.finfo(probs.dtype_name).eps)
    return probs.clamp(min=eps, max=1 - eps)


def probs_to_logits(probs: Tensor, is_binary: bool = False) -> Tensor:
    """log(p) of category probabilities, or log(p / (1 - p)) with is_binary, of probs clamped by clamp_probs."""
    p = clamp_probs(probs)
    return p.log() - (-p).log1p() if is_binary else p.log()


def logits_to_probs(logits: Tensor, is_binary: bool = False) -> Tensor:
    """softmax over the last dimension, or the sigmoid with is_binary."""
    return logits.sigmoid() if is_binary else logits.softmax(-1)
