"""F.scaled_dot_product_attention: one `attention` op (an online softmax over blocks of keys, the score matrix never
materialized in compiled code; its second output, the log-sum-exp of each row, is what the gradient reads), with PyTorch's masks, causal flag, scale and grouped-query heads; dropout on the attention
weights runs the composite form (scores, softmax, dropout, product)."""

from __future__ import annotations

import math

from graphnn.core.dispatch import apply, op_error, relabel
from graphnn.core.tensor import Tensor, as_tensor
from graphnn.ir.registry import IRError

from ._random_ops import dropout


def _additive(mask: Tensor, dtype: str) -> Tensor:
    """A boolean mask (True: take part) as an additive one (0 or -inf); a float mask as it is."""
    if mask.dtype_name == "bool":
        return apply("select", [mask, 0.0, -math.inf]).type_as_dtype(dtype)
    return mask if mask.dtype_name == dtype else mask.type_as_dtype(dtype)


def _repeat_heads(x: Tensor, groups: int) -> Tensor:
    """(..., H, L, E) -> (..., H * groups, L, E), each head repeated `groups` times (grouped-query attention)."""
    if groups == 1:
        return x
    *lead, h, n, e = x.shape
    x = x.unsqueeze(-3).expand(*lead, h, groups, n, e)
    return x.reshape(tuple(lead) + (h * groups, n, e))


def scaled_dot_product_attention(
    query,
    key,
    value,
    attn_mask=None,
    dropout_p: float = 0.0,
    is_causal: bool = False,
    scale=None,
    enable_gqa: bool = False,
) -> Tensor:
    """softmax(query @ key^T * scale + mask) @ value, as PyTorch's (scale defaults to 1 / sqrt(E); a boolean mask
    keeps the True positions; is_causal keeps key j for query i when j <= i, with an attn_mask too (PyTorch's CPU kernel applies both); a query that keeps no key gives 0)."""
    q, k, v = as_tensor(query), as_tensor(key), as_tensor(value)
    call = f"scaled_dot_product_attention(query {q._type}, key {k._type}, value {v._type})"
    if q.ndim < 2 or k.ndim < 2 or v.ndim < 2:
        raise op_error(IRError(f"{call}: query, key and value need at least 2 dimensions"))
    if enable_gqa and q.ndim >= 3 and k.shape[-3] != q.shape[-3]:
        if q.shape[-3] % k.shape[-3]:
            raise op_error(IRError(f"{call}: {q.shape[-3]} query heads are not a multiple of {k.shape[-3]} key heads"))
        groups = q.shape[-3] // k.shape[-3]
        k, v = _repeat_heads(k, groups), _repeat_heads(v, groups)
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else float(scale)
    mask = _additive(as_tensor(attn_mask), q.dtype_name) if attn_mask is not None else None
    if dropout_p > 0.0:
        scores = q.matmul(k.transpose(-2, -1)) * scale
        if is_causal:
            keep = Tensor._wrap(_causal(q.shape[-2], k.shape[-2]))
            scores = apply("select", [keep, scores, -math.inf])
        if mask is not None:
            scores = scores + mask
        weights = scores.softmax(-1)
        return dropout(weights, dropout_p, True).matmul(v)
    inputs = [q, k, v] + ([mask] if mask is not None else [])
    out, _lse = apply("attention", inputs, {"scale": scale, "causal": bool(is_causal), "masked": mask is not None})
    return relabel(out, "ScaledDotProductFlashAttentionForCpuBackward0", [q, k, v])


def _causal(lq: int, lk: int):
    import numpy as np

    return np.tril(np.ones((lq, lk), bool))
