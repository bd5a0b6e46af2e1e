"""PyTorch's F.multi_head_attention_forward (MultiheadAttention's computation), a composite of IR ops; without
need_weights the attention itself is F.scaled_dot_product_attention."""

from __future__ import annotations

import math
import warnings

from graphnn.core.dispatch import apply, located
from graphnn.core.tensor import Tensor, cat, zeros
from graphnn.core.replay import replayed
from ._attention import scaled_dot_product_attention
from ._random_ops import dropout
from ._vision import pad


def canonical_mask(mask, name: str, dtype: str):
    """A bool mask (True = masked out, as MultiheadAttention takes it) as an additive float mask (-inf there);
    a float mask as it is."""
    if mask is None:
        return None
    if mask.dtype_name == "bool":
        return apply("select", [mask, float("-inf"), 0.0]).type_as_dtype(dtype)
    if mask.dtype_name not in ("float32", "float64"):
        raise AssertionError(located(f"only bool and floating types of {name} are supported, got {mask.dtype_name}"))
    return mask


def _mha_is_batched(query, key, value, key_padding_mask, attn_mask, num_heads: int) -> bool:
    """PyTorch's shape rules: batched 3-D (L, N, E) or unbatched 2-D (L, E) inputs, masks to match."""
    if query.ndim == 3:
        if key.ndim != 3 or value.ndim != 3:
            raise AssertionError(
                located(
                    "For batched (3-D) `query`, expected `key` and `value` to be 3-D but found "
                    f"{key.ndim}-D and {value.ndim}-D tensors respectively"
                )
            )
        if key_padding_mask is not None and key_padding_mask.ndim != 2:
            raise AssertionError(
                located(
                    "For batched (3-D) `query`, expected `key_padding_mask` to be `None` or 2-D but found "
                    f"{key_padding_mask.ndim}-D tensor instead"
                )
            )
        if attn_mask is not None and attn_mask.ndim not in (2, 3):
            raise AssertionError(
                located(
                    "For batched (3-D) `query`, expected `attn_mask` to be `None`, 2-D or 3-D but found "
                    f"{attn_mask.ndim}-D tensor instead"
                )
            )
        return True
    if query.ndim == 2:
        if key.ndim != 2 or value.ndim != 2:
            raise AssertionError(
                located(
                    "For unbatched (2-D) `query`, expected `key` and `value` to be 2-D but found "
                    f"{key.ndim}-D and {value.ndim}-D tensors respectively"
                )
            )
        if key_padding_mask is not None and key_padding_mask.ndim != 1:
            raise AssertionError(
                located(
                    "For unbatched (2-D) `query`, expected `key_padding_mask` to be `None` or 1-D but found "
                    f"{key_padding_mask.ndim}-D tensor instead"
                )
            )
        if attn_mask is not None:
            expected = (num_heads, query.shape[0], key.shape[0])
            if attn_mask.ndim not in (2, 3) or (attn_mask.ndim == 3 and tuple(attn_mask.shape) != expected):
                raise AssertionError(
                    located(
                        f"For unbatched (2-D) `query`, expected `attn_mask` to be `None`, 2-D or 3-D of shape "
                        f"{expected} but found {tuple(attn_mask.shape)}"
                    )
                )
        return False
    raise AssertionError(
        located(f"query should be unbatched 2D or batched 3D tensor but received {query.ndim}-D query tensor")
    )


def _project(x, w, b):
    from .functional import linear

    return linear(x, w, b)


def _in_projection(query, key, value, in_proj_weight, in_proj_bias, separate) -> tuple:
    """q, k, v projections: one product for self-attention (query is key is value), else one per input."""
    e = query.shape[-1]
    if separate is not None:
        wq, wk, wv = separate
        bq, bk, bv = (None,) * 3 if in_proj_bias is None else in_proj_bias.chunk(3)
        return _project(query, wq, bq), _project(key, wk, bk), _project(value, wv, bv)
    if query is key and key is value:
        qkv = _project(query, in_proj_weight, in_proj_bias)
        return qkv[..., :e], qkv[..., e : 2 * e], qkv[..., 2 * e :]
    ws = in_proj_weight.chunk(3)
    bs = (None,) * 3 if in_proj_bias is None else in_proj_bias.chunk(3)
    if key is value:
        kv = _project(key, in_proj_weight[e:], None if in_proj_bias is None else in_proj_bias[e:])
        return _project(query, ws[0], bs[0]), kv[..., :e], kv[..., e:]
    return tuple(_project(x, w, b) for x, w, b in zip((query, key, value), ws, bs))


def _attn_mask_3d(attn_mask, tgt_len: int, src_len: int, heads: int):
    """attn_mask as (1 or N*heads, L, S), checked against PyTorch's allowed shapes."""
    if attn_mask is None:
        return None
    if attn_mask.ndim == 2:
        if tuple(attn_mask.shape) != (tgt_len, src_len):
            raise RuntimeError(
                located(
                    f"The shape of the 2D attn_mask is {tuple(attn_mask.shape)}, but should be {(tgt_len, src_len)}."
                )
            )
        return attn_mask.unsqueeze(0)
    if attn_mask.ndim == 3:
        if tuple(attn_mask.shape) != (heads, tgt_len, src_len):
            raise RuntimeError(
                located(
                    f"The shape of the 3D attn_mask is {tuple(attn_mask.shape)}, but should be "
                    f"{(heads, tgt_len, src_len)}."
                )
            )
        return attn_mask
    raise RuntimeError(located(f"attn_mask's dimension {attn_mask.ndim} is not supported"))


@replayed
def multi_head_attention_forward(
    query: Tensor,
    key: Tensor,
    value: Tensor,
    embed_dim_to_check: int,
    num_heads: int,
    in_proj_weight,
    in_proj_bias,
    bias_k,
    bias_v,
    add_zero_attn: bool,
    dropout_p: float,
    out_proj_weight: Tensor,
    out_proj_bias,
    training: bool = True,
    key_padding_mask=None,
    need_weights: bool = True,
    attn_mask=None,
    use_separate_proj_weight: bool = False,
    q_proj_weight=None,
    k_proj_weight=None,
    v_proj_weight=None,
    static_k=None,
    static_v=None,
    average_attn_weights: bool = True,
    is_causal: bool = False,
) -> tuple:
    """PyTorch's F.multi_head_attention_forward: inputs (L, N, E) (or unbatched (L, E)); returns the output
    (L, N, E) and, with need_weights, the attention weights (N, L, S), per head (N, heads, L, S) without
    average_attn_weights (computed by an explicit softmax, whose fully masked rows are NaN as PyTorch's); without
    need_weights the attention runs through scaled_dot_product_attention and the weights are None.
    Masks: bool True = not allowed, or float (added)."""
    batched = _mha_is_batched(query, key, value, key_padding_mask, attn_mask, num_heads)
    if not batched:
        query, key, value = query.unsqueeze(1), key.unsqueeze(1), value.unsqueeze(1)
        if key_padding_mask is not None:
            key_padding_mask = key_padding_mask.unsqueeze(0)
    tgt_len, bsz, embed_dim = query.shape
    dt = query.dtype_name
    if key_padding_mask is not None and attn_mask is not None and key_padding_mask.dtype_name != attn_mask.dtype_name:
        warnings.warn(
            "Support for mismatched key_padding_mask and attn_mask is deprecated. Use same type for both instead.",
            UserWarning,
            stacklevel=3,
        )
    key_padding_mask = canonical_mask(key_padding_mask, "key_padding_mask", dt)
    if is_causal and attn_mask is None:
        raise RuntimeError(
            located(
                "Need attn_mask if specifying the is_causal hint. You may use the Transformer module method "
                "`generate_square_subsequent_mask` to create this mask."
            )
        )
    if is_causal and key_padding_mask is None and not need_weights:
        attn_mask = None  # the hint says the mask is causal: scaled_dot_product_attention's is_causal does it
    else:
        attn_mask = canonical_mask(attn_mask, "attn_mask", dt)
        is_causal = is_causal and key_padding_mask is None
    if embed_dim != embed_dim_to_check:
        raise AssertionError(located(f"was expecting embedding dimension of {embed_dim_to_check}, but got {embed_dim}"))
    head_dim = embed_dim // num_heads
    if head_dim * num_heads != embed_dim:
        raise AssertionError(located(f"embed_dim {embed_dim} not divisible by num_heads {num_heads}"))
    if use_separate_proj_weight and tuple(key.shape[:2]) != tuple(value.shape[:2]):
        raise AssertionError(
            located(
                f"key's sequence and batch dims {tuple(key.shape[:2])} do not match value's {tuple(value.shape[:2])}"
            )
        )
    if not use_separate_proj_weight and tuple(key.shape) != tuple(value.shape):
        raise AssertionError(located(f"key shape {tuple(key.shape)} does not match value shape {tuple(value.shape)}"))
    separate = (q_proj_weight, k_proj_weight, v_proj_weight) if use_separate_proj_weight else None
    q, k, v = _in_projection(query, key, value, in_proj_weight, in_proj_bias, separate)
    heads = bsz * num_heads
    attn_mask = _attn_mask_3d(attn_mask, tgt_len, key.shape[0], heads)
    if (bias_k is None) != (bias_v is None):
        raise AssertionError(located("bias_k and bias_v must be given together"))
    if bias_k is not None:
        if static_k is not None or static_v is not None:
            raise AssertionError(located("bias cannot be added to static key or value."))
        k = cat([k, bias_k.expand(1, bsz, embed_dim)])
        v = cat([v, bias_v.expand(1, bsz, embed_dim)])
        attn_mask = None if attn_mask is None else pad(attn_mask, (0, 1))
        key_padding_mask = None if key_padding_mask is None else pad(key_padding_mask, (0, 1))
    q = q.reshape(tgt_len, heads, head_dim).transpose(0, 1)  # (N * heads, L, head_dim)
    k = _heads_first(k, heads, head_dim, static_k, "static_k")
    v = _heads_first(v, heads, head_dim, static_v, "static_v")
    if add_zero_attn:
        k = cat([k, zeros(heads, 1, head_dim, dtype=dt)], 1)
        v = cat([v, zeros(heads, 1, head_dim, dtype=dt)], 1)
        attn_mask = None if attn_mask is None else pad(attn_mask, (0, 1))
        key_padding_mask = None if key_padding_mask is None else pad(key_padding_mask, (0, 1))
    src_len = k.shape[1]
    if key_padding_mask is not None:
        if tuple(key_padding_mask.shape) != (bsz, src_len):
            raise AssertionError(
                located(
                    f"expecting key_padding_mask shape of {(bsz, src_len)}, but got {tuple(key_padding_mask.shape)}"
                )
            )
        kpm = key_padding_mask.reshape(bsz, 1, 1, src_len).expand(bsz, num_heads, 1, src_len)
        kpm = kpm.reshape(heads, 1, src_len)
        attn_mask = kpm if attn_mask is None else attn_mask + kpm
    if not training:
        dropout_p = 0.0
    if need_weights:
        weights = _explicit_attention_weights(q, k, attn_mask, head_dim, dropout_p)
        out = weights.matmul(v).transpose(0, 1).reshape(tgt_len * bsz, embed_dim)
        weights = weights.reshape(bsz, num_heads, tgt_len, src_len)
        if average_attn_weights:
            weights = weights.mean(1)
    else:
        if attn_mask is not None:
            attn_mask = (
                attn_mask.unsqueeze(0) if attn_mask.shape[0] == 1 else attn_mask.reshape(bsz, num_heads, -1, src_len)
            )
        q4, k4, v4 = (t.reshape(bsz, num_heads, t.shape[1], head_dim) for t in (q, k, v))
        out = scaled_dot_product_attention(q4, k4, v4, attn_mask, dropout_p, is_causal)
        out = out.permute(2, 0, 1, 3).reshape(bsz * tgt_len, embed_dim)
        weights = None
    out = _project(out, out_proj_weight, out_proj_bias).reshape(tgt_len, bsz, -1)
    if not batched:
        out = out.squeeze(1)
        weights = None if weights is None else weights.squeeze(0)
    return out, weights


def _heads_first(x: Tensor, heads: int, head_dim: int, static, name: str) -> Tensor:
    """(S, N, E) -> (N * heads, S, head_dim), or the given static tensor of that shape."""
    if static is None:
        return x.reshape(x.shape[0], heads, head_dim).transpose(0, 1)
    if static.shape[0] != heads or static.shape[2] != head_dim:
        raise AssertionError(located(f"expecting {name} of shape ({heads}, *, {head_dim}), got {tuple(static.shape)}"))
    return static


def _explicit_attention_weights(q, k, attn_mask, head_dim: int, dropout_p: float) -> Tensor:
    """softmax(q / sqrt(head_dim) @ k^T + mask), dropped out: the weights MultiheadAttention returns."""
    from .functional import softmax

    scores = (q * math.sqrt(1.0 / head_dim)).matmul(k.transpose(-2, -1))
    if attn_mask is not None:
        scores = scores + attn_mask
    weights = softmax(scores, -1)
    return dropout(weights, dropout_p, training=True) if dropout_p > 0.0 else weights
