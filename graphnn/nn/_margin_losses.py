"""Margin losses on scores and distances: multi-class hinge, hinge embedding, soft margin (logistic) and the
triplet loss with any distance function (composites of IR primitives)."""

from __future__ import annotations

from graphnn.ir.registry import IRError

from graphnn.compiler.tracer import check_values
from graphnn.core.dispatch import apply, op_error, relabel
from graphnn.core.tensor import Tensor, as_tensor
from ._activation import logsigmoid
from ._losses import legacy_reduction, reduce_loss
from ._norm import pairwise_distance


def _float_like(t, like: Tensor) -> Tensor:
    t = as_tensor(t)
    return t if t.dtype_name == like.dtype_name else t.type_as_dtype(like.dtype_name)


def multi_margin_loss(
    input,
    target,
    p: int = 1,
    margin: float = 1.0,
    weight=None,
    size_average=None,
    reduce=None,
    reduction: str = "mean",
) -> Tensor:
    """Per sample, the mean over classes i != y of max(0, margin - x[y] + x[i])^p (times weight[y])."""
    reduction = legacy_reduction(size_average, reduce, reduction)
    if p not in (1, 2):
        raise ValueError("only p == 1 and p == 2 supported")
    target = as_tensor(target)
    call = f"multi_margin_loss(input {input._type}, target {target._type})"
    x = input.unsqueeze(0) if input.ndim <= 1 else input
    if x.ndim != 2 or x.shape[1] == 0:
        raise op_error(IRError(f"{call}: Expected non-empty vector or matrix with optional 0-dim batch size"))
    n, c = x.shape
    if target.dtype_name != "int64" or target.numel() != n or target.ndim > 1:
        raise op_error(
            IRError(f"{call}: inconsistent target size: {list(target.shape)} for input of size: {list(x.shape)}")
        )
    if weight is not None:
        weight = _float_like(weight, input)
        if weight.ndim > 1 or weight.numel() != c:
            raise op_error(IRError(f"{call}: inconsistent weight size, expected {c} but got {list(weight.shape)}"))

    def check(t):
        bad = (t < 0) | (t >= c)
        if bad.any():
            raise op_error(IRError(f"{call}: target {int(t[bad].flat[0])} is out of bounds for {c} classes"))

    check_values(target, check)
    t = target.reshape((n, 1))
    raw = x - x.gather(1, t) + margin
    z = apply("select", [raw > 0.0, raw, 0.0])  # (a term at exactly 0 is inactive: no gradient, as PyTorch's)
    h = z if p == 1 else z * z
    not_target = apply("one_hot", [t.squeeze(1)], {"num_classes": c, "dtype": "int64"}) == 0
    h = apply("select", [not_target, h, 0.0])
    if weight is not None:
        h = h * weight.index_select(0, t.squeeze(1)).unsqueeze(1)
    loss = h.sum(1) / c
    if input.ndim <= 1 and reduction == "none":
        loss = loss.reshape(tuple(target.shape))
    return relabel(reduce_loss(loss, reduction), "MultiMarginLossBackward0", [input])


def multilabel_margin_loss(input, target, size_average=None, reduce=None, reduction: str = "mean") -> Tensor:
    """Per sample, sum over its targets j (the classes target lists before its first -1) and the other classes i of
    max(0, 1 - (x[j] - x[i])), over the number of classes."""
    reduction = legacy_reduction(size_average, reduce, reduction)
    target = as_tensor(target)
    call = f"multilabel_margin_loss(input {input._type}, target {target._type})"
    x, y = (input.unsqueeze(0), target.unsqueeze(0)) if input.ndim <= 1 else (input, target)
    if x.ndim != 2 or tuple(y.shape) != tuple(x.shape) or target.dtype_name != "int64":
        raise op_error(
            IRError(f"{call}: inconsistent target size: {list(target.shape)} for input of size: {list(input.shape)}")
        )
    c = x.shape[1]

    def check(t):
        bad = (t < -1) | (t >= c)
        if bad.any():
            raise op_error(IRError(f"{call}: target {int(t[bad].flat[0])} is out of bounds for {c} classes"))

    check_values(target, check)
    listed = (y >= 0).long().cumprod(1) > 0  # the targets before the first -1
    yj = apply("select", [listed, y, 0])
    is_target = apply("one_hot", [yj], {"num_classes": c, "dtype": "int64"})  # (n, j, i)
    is_target = (is_target * listed.long().unsqueeze(2)).sum(1) > 0  # (n, i)
    xj = x.gather(1, yj)  # (n, j)
    h = (1 - xj.unsqueeze(2) + x.unsqueeze(1)).clamp(min=0.0)  # (n, j, i)
    keep = listed.unsqueeze(2).logical_and(is_target.logical_not().unsqueeze(1))
    loss = apply("select", [keep, h, 0.0]).sum((1, 2)) / c
    if input.ndim <= 1:
        loss = loss.reshape(())
    return relabel(reduce_loss(loss, reduction), "MultilabelMarginLossBackward0", [input])


def hinge_embedding_loss(
    input, target, margin: float = 1.0, size_average=None, reduce=None, reduction: str = "mean"
) -> Tensor:
    """x where the target is 1, max(0, margin - x) where it is -1 (other values: the sum of both)."""
    target = _float_like(target, input)
    pos = apply("select", [target != -1, input, 0.0])
    neg = apply("select", [target != 1, (margin - input).clamp(min=0.0), 0.0])
    return reduce_loss(pos + neg, legacy_reduction(size_average, reduce, reduction))


def soft_margin_loss(input, target, size_average=None, reduce=None, reduction: str = "mean") -> Tensor:
    """log(1 + exp(-y x)), computed as -logsigmoid(y x) (finite for any x)."""
    target = _float_like(target, input)
    if tuple(target.shape) != tuple(input.shape):
        raise ValueError(f"Target size ({list(target.shape)}) must be the same as input size ({list(input.shape)})")
    loss = -logsigmoid(input * target)
    return relabel(
        reduce_loss(loss, legacy_reduction(size_average, reduce, reduction)), "SoftMarginLossBackward0", [input]
    )


def triplet_margin_with_distance_loss(
    anchor,
    positive,
    negative,
    *,
    distance_function=None,
    margin: float = 1.0,
    swap: bool = False,
    reduction: str = "mean",
) -> Tensor:
    """max(d(a, p) - d(a, n) + margin, 0) with any distance function (default: the pairwise 2-norm distance);
    swap: d(a, n) is min(d(a, n), d(p, n))."""
    if margin <= 0:
        raise ValueError(
            f"triplet_margin_with_distance_loss: expected margin to be greater than 0, got {margin} instead"
        )
    dims = (anchor.ndim, positive.ndim, negative.ndim)
    if len(set(dims)) != 1:
        raise RuntimeError(
            "The anchor, positive, and negative tensors are expected to have the same number of dimensions, but got: "
            f"anchor {dims[0]}D, positive {dims[1]}D, and negative {dims[2]}D inputs"
        )
    dist = distance_function if distance_function is not None else pairwise_distance
    d_pos = dist(anchor, positive)
    d_neg = dist(anchor, negative)
    if swap:
        d_neg = apply("minimum", [d_neg, dist(positive, negative)])
    loss = (margin + d_pos - d_neg).clamp(min=0.0)
    return reduce_loss(loss, reduction)
