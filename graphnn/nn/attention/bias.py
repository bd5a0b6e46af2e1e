"""torch.nn.attention.bias: causal masks for queries and keys of different lengths (a KV-cache chunk: fewer queries
than keys), given to scaled_dot_product_attention as attn_mask. graphnn's are boolean masks (True: attend) of shape
(seq_len_q, seq_len_kv); `variant`, `seq_len_q` and `seq_len_kv` say which."""

from __future__ import annotations

from enum import IntEnum

import numpy as np

from graphnn.core.tensor import Tensor


class CausalVariant(IntEnum):
    UPPER_LEFT = 1  # query i attends to keys 0 .. i (the mask's diagonal starts at the top left)
    LOWER_RIGHT = 2  # the last query attends to every key (the diagonal ends at the bottom right)


def _causal(variant: CausalVariant, seq_len_q: int, seq_len_kv: int) -> Tensor:
    if seq_len_q < 1 or seq_len_kv < 1:
        raise ValueError(f"causal mask sizes must be positive, got {seq_len_q} and {seq_len_kv}")
    shift = seq_len_kv - seq_len_q if variant == CausalVariant.LOWER_RIGHT else 0
    q, k = np.arange(seq_len_q)[:, None], np.arange(seq_len_kv)[None, :]
    mask = Tensor._wrap(k <= q + shift)
    mask.variant, mask.seq_len_q, mask.seq_len_kv = variant, seq_len_q, seq_len_kv
    return mask


def causal_upper_left(*size) -> Tensor:
    """The causal mask whose diagonal starts at the top left (size: seq_len_q, seq_len_kv)."""
    seq_len_q, seq_len_kv = size if len(size) == 2 else size[0]
    return _causal(CausalVariant.UPPER_LEFT, seq_len_q, seq_len_kv)


def causal_lower_right(*size) -> Tensor:
    """The causal mask whose diagonal ends at the bottom right (size: seq_len_q, seq_len_kv)."""
    seq_len_q, seq_len_kv = size if len(size) == 2 else size[0]
    return _causal(CausalVariant.LOWER_RIGHT, seq_len_q, seq_len_kv)


CausalBias = Tensor  # (isinstance checks: the masks are tensors)

__all__ = ["CausalBias", "CausalVariant", "causal_lower_right", "causal_upper_left"]
