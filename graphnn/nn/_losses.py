"""Loss functions on logits, margins and distances (composites of IR primitives), and the reduction rules
every loss shares (PyTorch's `reduction` and its legacy size_average / reduce arguments)."""

from __future__ import annotations

import math
import warnings

from graphnn.ir.registry import IRError

from graphnn.compiler.tracer import check_values
from graphnn.core.dispatch import apply, op_error, relabel
from graphnn.core.tensor import Tensor, as_tensor
from graphnn.core.replay import replayed
from ._activation import logsigmoid
from ._norm import pairwise_distance


def legacy_reduction(size_average, reduce, reduction: str) -> str:
    if size_average is None and reduce is None:
        return reduction
    size_average = True if size_average is None else size_average
    reduce = True if reduce is None else reduce
    return "none" if not reduce else ("mean" if size_average else "sum")


def reduce_loss(x: Tensor, reduction: str) -> Tensor:
    if reduction == "mean":
        return x.mean()
    if reduction == "sum":
        return x.sum()
    if reduction == "none":
        return x
    raise ValueError(f"{reduction} is not a valid value for reduction")


def _as_float(t, like: Tensor) -> Tensor:
    t = as_tensor(t)
    return t if t.dtype_name == like.dtype_name else t.type_as_dtype(like.dtype_name)


@replayed
def binary_cross_entropy_with_logits(
    input, target, weight=None, size_average=None, reduce=None, reduction: str = "mean", pos_weight=None
) -> Tensor:
    """(1 - y) x - w_pos log(sigmoid(x)) with w_pos = 1 + (pos_weight - 1) y, as PyTorch (finite for any x)."""
    target = _as_float(target, input)
    if tuple(target.shape) != tuple(input.shape):
        raise ValueError(f"Target size ({list(target.shape)}) must be the same as input size ({list(input.shape)})")
    log_sig = logsigmoid(input)
    if pos_weight is not None:
        log_sig = log_sig * ((_as_float(pos_weight, input) - 1.0) * target + 1.0)
    loss = (1.0 - target) * input - log_sig
    if weight is not None:
        loss = loss * _as_float(weight, input)
    out = reduce_loss(loss, legacy_reduction(size_average, reduce, reduction))
    return relabel(out, "BinaryCrossEntropyWithLogitsBackward0", [input, target])


def _size_warning(name: str, input: Tensor, target: Tensor) -> None:
    if tuple(input.shape) != tuple(target.shape):
        warnings.warn(
            f"{name}: using a target size ({tuple(target.shape)}) that is different to the input size "
            f"({tuple(input.shape)}); it will be broadcast",
            UserWarning,
            stacklevel=3,
        )


@replayed
def _quadratic_within(z: Tensor, a: Tensor, width: float, scale: float, outside: Tensor) -> Tensor:
    """scale * z^2 where |z| = a < width, else `outside` (Huber and smooth L1 losses). The square is of z zeroed
    outside, so that an infinite z gives the outside piece's gradient, not 0 * inf."""
    inside = a < width
    zi = apply("select", [inside, z, 0.0])
    return apply("select", [inside, zi * zi * scale, outside])


def huber_loss(input, target, reduction: str = "mean", delta: float = 1.0, weight=None) -> Tensor:
    """0.5 z^2 where |z| < delta (z = x - y: signed, so that the second derivative at z = 0 is 1), else
    delta (|z| - 0.5 delta)."""
    target = _as_float(target, input)
    _size_warning("huber_loss", input, target)
    z = input - target
    a = z.abs()
    loss = _quadratic_within(z, a, delta, 0.5, delta * (a - 0.5 * delta))
    if weight is not None:
        loss = loss * _as_float(weight, input)
    return relabel(reduce_loss(loss, reduction), "HuberLossBackward0", [input, target])


def triplet_margin_loss(
    anchor,
    positive,
    negative,
    margin: float = 1.0,
    p: float = 2,
    eps: float = 1e-6,
    swap: bool = False,
    size_average=None,
    reduce=None,
    reduction: str = "mean",
) -> Tensor:
    """max(margin + d(a, p) - d(a, n), 0) with d the p-norm distance (swap: d(a, n) is min(d(a, n), d(p, n)))."""
    if margin <= 0:
        raise ValueError(f"margin must be greater than 0, got {margin}")
    dims = {anchor.ndim, positive.ndim, negative.ndim}
    if len(dims) != 1 or dims - {1, 2}:
        raise op_error(
            IRError(
                f"triplet_margin_loss: the anchor, positive and negative inputs must all be 1-D or all 2-D, got "
                f"{list(anchor.shape)}, {list(positive.shape)} and {list(negative.shape)}"
            )
        )
    d_pos = pairwise_distance(anchor, positive, p, eps)
    d_neg = pairwise_distance(anchor, negative, p, eps)
    if swap:
        d_neg = apply("minimum", [d_neg, pairwise_distance(positive, negative, p, eps)])
    loss = (margin + d_pos - d_neg).clamp(min=0.0)
    return reduce_loss(loss, legacy_reduction(size_average, reduce, reduction))


def _check_pair_target(op: str, input1: Tensor, input2: Tensor, target: Tensor) -> None:
    if input1.ndim not in (1, 2) or tuple(input1.shape) != tuple(input2.shape):
        raise op_error(
            IRError(
                f"{op}: expected two inputs of one shape, 1-D or 2-D, got {list(input1.shape)} and {list(input2.shape)}"
            )
        )
    if target.ndim != input1.ndim - 1 or (target.ndim and target.shape[0] != input1.shape[0]):
        raise op_error(
            IRError(
                f"{op}: {input1.ndim}D target tensor expected ({list(input1.shape[:1])} for inputs "
                f"{list(input1.shape)}), got {list(target.shape)}"
            )
        )


def cosine_embedding_loss(
    input1, input2, target, margin: float = 0.0, size_average=None, reduce=None, reduction: str = "mean"
) -> Tensor:
    """1 - cos(x1, x2) where the target is 1, max(cos(x1, x2) - margin, 0) where it is -1 (else 0); the cosine as
    PyTorch computes it: x1 . x2 / sqrt((|x1|^2 + 1e-12) (|x2|^2 + 1e-12))."""
    target = as_tensor(target)
    _check_pair_target("cosine_embedding_loss", input1, input2, target)
    dim = input1.ndim - 1
    prod = (input1 * input2).sum(dim)
    mag1 = (input1 * input1).sum(dim) + 1e-12
    mag2 = (input2 * input2).sum(dim) + 1e-12
    cos = prod / (mag1 * mag2).sqrt()
    pos = apply("select", [target == 1, 1.0 - cos, 0.0])
    neg = apply("select", [target == -1, (cos - margin).clamp(min=0.0), 0.0])
    return reduce_loss(pos + neg, legacy_reduction(size_average, reduce, reduction))


def margin_ranking_loss(
    input1, input2, target, margin: float = 0.0, size_average=None, reduce=None, reduction: str = "mean"
) -> Tensor:
    """max(-y (x1 - x2) + margin, 0)."""
    target = _as_float(target, input1)
    if not (input1.ndim == input2.ndim == target.ndim):
        raise op_error(
            IRError(
                f"margin_ranking_loss: All input tensors should have same dimension but got sizes: input1: "
                f"{list(input1.shape)}, input2: {list(input2.shape)}, target: {list(target.shape)}"
            )
        )
    loss = (-target * (input1 - input2) + margin).clamp(min=0.0)
    return reduce_loss(loss, legacy_reduction(size_average, reduce, reduction))


def gaussian_nll_loss(input, target, var, full: bool = False, eps: float = 1e-6, reduction: str = "mean") -> Tensor:
    """0.5 (log(max(var, eps)) + (input - target)^2 / max(var, eps)) (+ 0.5 log(2 pi) when full); var may have one
    dimension fewer than input (then it is unsqueezed) or a last dimension of 1 (one variance per row)."""
    target, var = _as_float(target, input), _as_float(var, input)
    if tuple(var.shape) != tuple(input.shape):
        if tuple(input.shape[:-1]) == tuple(var.shape):
            var = var.unsqueeze(-1)
        elif not (tuple(input.shape[:-1]) == tuple(var.shape[:-1]) and var.shape[-1] == 1):
            raise ValueError("var is of incorrect size")
    if reduction not in ("none", "mean", "sum"):
        raise ValueError(f"{reduction} is not a valid value for reduction")
    check_values(var, _check_nonnegative_var)
    # (PyTorch clamps var in place under no_grad: the gradient reaches var unchanged below eps too)
    v = apply("select", [var < eps, var - var.detach() + eps, var])
    loss = 0.5 * (v.log() + (input - target) ** 2 / v)
    if full:
        loss = loss + 0.5 * math.log(2 * math.pi)
    return reduce_loss(loss, reduction)


def _check_nonnegative_var(v) -> None:
    if (v < 0).any():
        raise ValueError("var has negative entry/entries")


def poisson_nll_loss(
    input,
    target,
    log_input: bool = True,
    full: bool = False,
    size_average=None,
    eps: float = 1e-8,
    reduce=None,
    reduction: str = "mean",
) -> Tensor:
    """exp(input) - target * input (log_input), else input - target * log(input + eps); with full, Stirling's
    approximation of log(target!) is added where target > 1."""
    target = _as_float(target, input)
    if log_input:
        loss = input.exp() - target * input
    else:
        loss = input - target * (input + eps).log()
    if full:
        safe = apply("select", [target > 1, target, 1.0])
        stirling = safe * safe.log() - safe + 0.5 * (2 * math.pi * safe).log()
        loss = loss + apply("select", [target > 1, stirling, 0.0])
    return reduce_loss(loss, legacy_reduction(size_average, reduce, reduction))


def multilabel_soft_margin_loss(input, target, weight=None, size_average=None, reduce=None, reduction: str = "mean"):
    """-mean over classes of y log(sigmoid(x)) + (1 - y) log(sigmoid(-x)), per sample (weighted per class)."""
    target = _as_float(target, input)
    loss = -(target * logsigmoid(input) + (1 - target) * logsigmoid(-input))
    if weight is not None:
        loss = loss * _as_float(weight, input)
    loss = loss.mean(input.ndim - 1)
    return reduce_loss(loss, legacy_reduction(size_average, reduce, reduction))
