"""embedding_bag: sums, means or maxima of bags of embedding rows, as a gather and a scatter-add.

Every index gets the id of its bag (2-D input: its row; 1-D input: the number of offsets at or before its position,
minus one, a comparison that also works on traced offsets); a padding index takes no part (as PyTorch's, with
include_last_offset the last bag still runs to the end of the input). `sum` and `mean` scatter-add the (weighted) rows into their bags; `max` takes
the largest of each bag's rows over a (bags, positions, dim) selection. An empty bag gives zeros, as PyTorch's.
"""

from __future__ import annotations

import math

import numpy as np

from graphnn.compiler.tracer import check_values
from graphnn.core.dispatch import apply, op_error, relabel
from graphnn.core.tensor import Tensor, arange, as_tensor
from graphnn.ir.registry import IRError
from ._vision import embedding

_MODES = ("sum", "mean", "max")


def _error(msg: str) -> Exception:
    return op_error(IRError(f"embedding_bag: {msg}"))


def _check_offsets(offsets: Tensor, n: int, include_last_offset: bool) -> None:
    def check(off: np.ndarray) -> None:
        if off.size and off[0] != 0:
            raise _error(f"offsets[0] has to be 0, i.e., the first bag has to start from position 0, got {off[0]}")
        if off.size and off[-1] > n:
            raise _error(f"offsets[-1] can not be greater than input's length {n} but got offsets[-1] of {off[-1]}")
        if (np.diff(off) < 0).any():
            raise _error(f"offsets must be non-decreasing, got {off.tolist()}")

    check_values(offsets, check)


def _bags(input: Tensor, offsets, include_last_offset: bool) -> tuple:
    """(flat indices (N,), bag id of each (N,) int64, number of bags)."""
    if input.ndim == 2:
        if offsets is not None:
            raise _error("offsets has to be None if input is 2D")
        b, k = input.shape
        bag = arange(b).reshape(b, 1).expand(b, k).reshape(b * k)
        return input.reshape(b * k), bag, b
    if input.ndim != 1:
        raise _error(f"input has to be 1D or 2D Tensor, but got Tensor of dimension {input.ndim}")
    if offsets is None:
        raise _error("offsets has to be a 1D Tensor but got None")
    offsets = as_tensor(offsets)
    if offsets.ndim != 1 or offsets.dtype_name != "int64":
        raise _error(f"offsets has to be a 1D int64 Tensor, got {offsets._type}")
    n = input.shape[0]
    _check_offsets(offsets, n, include_last_offset)
    starts = offsets[:-1] if include_last_offset else offsets
    nbags = starts.shape[0]
    pos = arange(n).reshape(n, 1)
    bag = (starts.reshape(1, nbags) <= pos).long().sum(1) - 1  # (N,), -1 before the first offset (none: it is 0)
    return input, bag.clamp(min=0), nbags


def embedding_bag(
    input: Tensor,
    weight: Tensor,
    offsets=None,
    max_norm=None,
    norm_type: float = 2,
    scale_grad_by_freq: bool = False,
    mode: str = "mean",
    sparse: bool = False,
    per_sample_weights=None,
    include_last_offset: bool = False,
    padding_idx=None,
) -> Tensor:
    """Bags of rows of `weight` reduced by `mode` (sum / mean / max), one output row per bag (torch's semantics)."""
    if mode not in _MODES:
        raise _error(f"mode has to be one of sum, mean or max, got {mode!r}")
    if input.dtype_name != "int64":
        raise _error(f"input must be int64 indices, got {input.dtype_name}")
    if weight.ndim != 2:
        raise _error(f"weight has to be a 2D Tensor, but got Tensor of dimension {weight.ndim}")
    if per_sample_weights is not None:
        if mode != "sum":
            raise _error(f"per_sample_weights is only supported for mode='sum' (got mode='{mode}')")
        per_sample_weights = as_tensor(per_sample_weights)
        if tuple(per_sample_weights.shape) != tuple(input.shape):
            raise _error(
                f"per_sample_weights {tuple(per_sample_weights.shape)} must have the shape of input "
                f"{tuple(input.shape)}"
            )
    rows_n = weight.shape[0]
    if padding_idx is not None:
        if not -rows_n <= padding_idx < rows_n:
            raise _error(f"padding_idx must be within the number of embeddings {rows_n}, got {padding_idx}")
        padding_idx %= rows_n
    idx, bag, nbags = _bags(input, offsets, include_last_offset)
    valid = None if padding_idx is None else idx != padding_idx  # whether each index takes part
    rows = embedding(idx, weight, None, max_norm, norm_type, scale_grad_by_freq)  # (N, D)
    d = weight.shape[1]
    n = idx.shape[0]
    if mode == "max":
        out = _bag_max(rows, bag, valid, nbags, input.shape if input.ndim == 2 else None)
        return relabel(out, "EmbeddingBagBackward0", [weight])
    if per_sample_weights is not None:
        rows = rows * per_sample_weights.reshape(n, 1).type_as_dtype(rows.dtype_name)
    if valid is not None:
        rows = apply("select", [valid.reshape(n, 1), rows, 0.0])
    out = apply("take_grad", [rows, bag], {"axis": 0, "size": nbags})
    if mode == "mean":
        ones = apply("full", [], {"value": 1.0, "shape": (n, 1), "dtype": weight.dtype_name})
        if valid is not None:
            ones = apply("select", [valid.reshape(n, 1), ones, 0.0])
        count = apply("take_grad", [ones, bag], {"axis": 0, "size": nbags})
        out = out / apply("maximum", [count, 1.0])
    return relabel(out.reshape(nbags, d), "EmbeddingBagBackward0", [weight])


def _bag_max(rows: Tensor, bag: Tensor, valid, nbags: int, shape2d) -> Tensor:
    """Each bag's elementwise maximum of its rows (zeros for an empty bag)."""
    n, d = rows.shape
    if shape2d is not None:  # a bag per row of the input: (B, K, D)
        b, k = shape2d
        member = None if valid is None else valid.reshape(b, k, 1)
        rows = rows.reshape(b, k, d)
    else:
        member = bag.reshape(1, n) == arange(nbags).reshape(nbags, 1)
        if valid is not None:
            member = member & valid.reshape(1, n)
        member = member.reshape(nbags, n, 1)
        rows = rows.reshape(1, n, d)
    if member is None:
        return rows.amax(1) if rows.shape[1] else rows.sum(1)
    picked = apply("select", [member, rows, -math.inf])
    top = picked.amax(1) if picked.shape[1] else picked.sum(1)
    return apply("select", [member.any(1), top, 0.0])
