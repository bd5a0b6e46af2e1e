"""graphnn.nn.functional: stateless layer functions, each built from IR primitives."""

from __future__ import annotations

import warnings

import numpy as np

from graphnn.ir.registry import IRError

from graphnn.core.dispatch import apply, located, op_error, relabel
from graphnn.compiler.tracer import check_values
from graphnn.core.attrs import conv_padding
from graphnn.core.tensor import Tensor, TraceError, as_tensor
from graphnn.core.replay import replayed
from ._activation import (  # noqa: F401
    celu,
    elu,
    gelu,
    glu,
    hardshrink,
    hardsigmoid,
    hardswish,
    hardtanh,
    leaky_relu,
    logsigmoid,
    mish,
    prelu,
    relu6,
    selu,
    silu,
    softplus,
    softshrink,
    softsign,
    tanhshrink,
    threshold,
)
from ._activation import threshold as _threshold
from ._attention import scaled_dot_product_attention  # noqa: F401
from ._mha import multi_head_attention_forward  # noqa: F401
from ._norm import (  # noqa: F401
    batch_norm,
    cosine_similarity,
    instance_norm,
    group_norm,
    layer_norm,
    local_response_norm,
    normalize,
    pairwise_distance,
    pdist,
    rms_norm,
)
from ._losses import (  # noqa: F401
    _quadratic_within,
    _size_warning,
    binary_cross_entropy_with_logits,
    cosine_embedding_loss,
    gaussian_nll_loss,
    huber_loss,
    legacy_reduction,
    margin_ranking_loss,
    multilabel_soft_margin_loss,
    poisson_nll_loss,
    reduce_loss,
    triplet_margin_loss,
)
from ._ctc import ctc_loss
from ._embedding_bag import embedding_bag
from ._random_ops import (  # noqa: F401
    alpha_dropout,
    dropout,
    dropout1d,
    dropout2d,
    dropout3d,
    feature_alpha_dropout,
    gumbel_softmax,
    rrelu,
)
from ._lp_pool import lp_pool, lp_pool1d, lp_pool2d, lp_pool3d  # noqa: F401
from ._margin_losses import (  # noqa: F401
    hinge_embedding_loss,
    multi_margin_loss,
    multilabel_margin_loss,
    soft_margin_loss,
    triplet_margin_with_distance_loss,
)
from ._fold import bilinear, channel_shuffle, fold, unfold
from ._grid import affine_grid, grid_sample
from ._vision import (
    adaptive_avg_pool,
    adaptive_max_pool,
    avg_pool,
    embedding,
    interpolate,
    max_pool_with_indices,
    max_unpool,
    pad,  # noqa: F401
    pixel_shuffle,
    pixel_unshuffle,
    pool_attrs,
    window_arg,
)

__all__ = [
    "relu",
    "sigmoid",
    "tanh",
    "softmax",
    "log_softmax",
    "linear",
    "conv1d",
    "conv2d",
    "conv3d",
    "conv_transpose1d",
    "conv_transpose2d",
    "conv_transpose3d",
    "max_pool1d",
    "max_pool2d",
    "max_pool3d",
    "mse_loss",
    "l1_loss",
    "nll_loss",
    "cross_entropy",
    "kl_div",
    "binary_cross_entropy",
    "smooth_l1_loss",
    "avg_pool1d",
    "avg_pool2d",
    "avg_pool3d",
    "max_unpool1d",
    "max_unpool2d",
    "max_unpool3d",
    "max_pool1d_with_indices",
    "max_pool2d_with_indices",
    "max_pool3d_with_indices",
    "upsample",
    "upsample_bilinear",
    "upsample_nearest",
    "interpolate",
    "pad",
    "pixel_shuffle",
    "unfold",
    "fold",
    "affine_grid",
    "grid_sample",
    "bilinear",
    "channel_shuffle",
    "embedding",
    "embedding_bag",
    "dropout",
    "batch_norm",
    "cosine_similarity",
    "pairwise_distance",
    "leaky_relu",
    "softplus",
    "elu",
    "hardtanh",
    "relu6",
    "silu",
    "gelu",
    "mish",
    "selu",
    "celu",
    "softsign",
    "logsigmoid",
    "hardsigmoid",
    "hardswish",
    "glu",
    "tanhshrink",
    "threshold",
    "prelu",
    "softmin",
    "layer_norm",
    "rms_norm",
    "group_norm",
    "normalize",
    "one_hot",
    "instance_norm",
    "dropout1d",
    "dropout2d",
    "dropout3d",
    "adaptive_avg_pool1d",
    "adaptive_avg_pool2d",
    "adaptive_avg_pool3d",
    "adaptive_max_pool1d",
    "adaptive_max_pool2d",
    "adaptive_max_pool3d",
    "pixel_unshuffle",
    "binary_cross_entropy_with_logits",
    "huber_loss",
    "gaussian_nll_loss",
    "poisson_nll_loss",
    "multilabel_soft_margin_loss",
    "triplet_margin_loss",
    "cosine_embedding_loss",
    "margin_ranking_loss",
    "ctc_loss",
    "scaled_dot_product_attention",
    "multi_head_attention_forward",
    "hardshrink",
    "softshrink",
    "rrelu",
    "alpha_dropout",
    "feature_alpha_dropout",
    "gumbel_softmax",
    "local_response_norm",
    "pdist",
    "lp_pool1d",
    "lp_pool2d",
    "lp_pool3d",
    "multi_margin_loss",
    "multilabel_margin_loss",
    "hinge_embedding_loss",
    "soft_margin_loss",
    "triplet_margin_with_distance_loss",
    "relu_",
    "elu_",
    "leaky_relu_",
    "hardtanh_",
    "threshold_",
    "rrelu_",
    "celu_",
    "selu_",
]


# -- activations -------------------------------------------------------------------------------------------
def relu(input: Tensor, inplace: bool = False) -> Tensor:
    return input.relu_() if inplace else apply("relu", [input], name="ReluBackward0")


# PyTorch's in-place functional forms: the activation written into `input`
def relu_(input: Tensor) -> Tensor:
    return relu(input, inplace=True)


def elu_(input: Tensor, alpha: float = 1.0) -> Tensor:
    return elu(input, alpha, inplace=True)


def leaky_relu_(input: Tensor, negative_slope: float = 0.01) -> Tensor:
    return leaky_relu(input, negative_slope, inplace=True)


def hardtanh_(input: Tensor, min_val: float = -1.0, max_val: float = 1.0) -> Tensor:
    return hardtanh(input, min_val, max_val, inplace=True)


def threshold_(input: Tensor, threshold: float, value: float) -> Tensor:
    return _threshold(input, threshold, value, inplace=True)


def rrelu_(input: Tensor, lower: float = 1.0 / 8, upper: float = 1.0 / 3, training: bool = False) -> Tensor:
    return rrelu(input, lower, upper, training, inplace=True)


def celu_(input: Tensor, alpha: float = 1.0) -> Tensor:
    return celu(input, alpha, inplace=True)


def selu_(input: Tensor) -> Tensor:
    return selu(input, inplace=True)


def sigmoid(input: Tensor) -> Tensor:
    return apply("sigmoid", [input])


def tanh(input: Tensor) -> Tensor:
    return apply("tanh", [input])


def _legacy_dim(name: str, ndim: int, stacklevel: int) -> int:
    warnings.warn(
        f"Implicit dimension choice for {name} has been deprecated. Change the call to include dim=X as an argument.",
        UserWarning,
        stacklevel=stacklevel,
    )
    return 0 if ndim in (0, 1, 3) else 1


@replayed
def log_softmax(input: Tensor, dim: int | None = None, _stacklevel: int = 3, dtype=None) -> Tensor:
    if dim is None:
        dim = _legacy_dim("log_softmax", input.ndim, _stacklevel)
    if dtype is not None:  # the input is cast first, as PyTorch's
        input = input.to(dtype)
    m = apply("stop_gradient", [input.amax(dim, keepdim=True)])
    shifted = input - m
    lse = shifted.exp().sum(dim, keepdim=True).log()
    return relabel(shifted - lse, "LogSoftmaxBackward0", [input])


@replayed
def softmax(input: Tensor, dim: int | None = None, _stacklevel: int = 3, dtype=None) -> Tensor:
    if dim is None:
        dim = _legacy_dim("softmax", input.ndim, _stacklevel)
    if dtype is not None:  # the input is cast first, as PyTorch's
        input = input.to(dtype)
    m = apply("stop_gradient", [input.amax(dim, keepdim=True)])
    e = (input - m).exp()
    return relabel(e / e.sum(dim, keepdim=True), "SoftmaxBackward0", [input])


def softmin(input: Tensor, dim: int | None = None, _stacklevel: int = 3, dtype=None) -> Tensor:
    if dim is None:
        dim = _legacy_dim("softmin", input.ndim, _stacklevel)
    return softmax(-input, dim, dtype=dtype)


def one_hot(tensor: Tensor, num_classes: int = -1) -> Tensor:
    """int64 (..., num_classes) with a 1 at each index; num_classes=-1: one more than the largest index (needs
    the values, so not inside graphnn.compile)."""
    call = f"one_hot(indices {tensor._type}, num_classes {num_classes})"
    if tensor.dtype_name != "int64":
        raise op_error(IRError(f"{call}: one_hot is only applicable to index tensor of type LongTensor."))
    if num_classes == -1:
        if tensor._data is None:
            raise TraceError(
                located(
                    f"{call}: num_classes=-1 infers the number of classes from the values, which inside "
                    "graphnn.compile are not known: pass num_classes"
                )
            )
        if tensor.numel() == 0:
            raise RuntimeError(located(f"{call}: Can not infer total number of classes from empty tensor."))
        num_classes = int(tensor._data.max()) + 1

    def check(idx):
        if idx.size and idx.min() < 0:
            raise op_error(IRError(f"{call}: Class values must be non-negative."))
        if idx.size and idx.max() >= num_classes:
            raise op_error(IRError(f"{call}: Class values must be smaller than num_classes."))

    check_values(tensor, check)
    return apply("one_hot", [tensor], {"num_classes": int(num_classes), "dtype": "int64"})


# -- linear and convolution -----------------------------------------------------------------------------------
@replayed
def linear(input: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    wt = weight.t()
    if input.ndim > 2:  # fold leading dimensions: one 2-D product, whose weight gradient is one 2-D product too
        lead = tuple(input.shape[:-1])
        out = apply("matmul", [input.reshape(-1, input.shape[-1]), wt]).reshape(lead + (weight.shape[0],))
    else:
        out = apply("matmul", [input, wt]) if input.ndim == 2 else input.matmul(wt)
    if bias is None:
        return relabel(out, "MmBackward0", [input, wt])
    return relabel(out + bias, "AddmmBackward0" if input.ndim == 2 else "AddBackward0", [bias, input, wt])


@replayed
def _conv(input, weight, bias, stride, padding, dilation, groups, nsp):
    op = f"conv{nsp}d"
    unbatched = input.ndim == nsp + 1
    x = input.unsqueeze(0) if unbatched else input
    ksize = tuple(weight.shape[2:])
    attrs = {
        "stride": window_arg(op, "stride", stride, nsp),
        "dilation": window_arg(op, "dilation", dilation, nsp),
        "groups": int(groups),
    }
    if isinstance(padding, str) and padding not in ("valid", "same"):
        raise op_error(IRError(f"{op}: invalid padding string {padding!r}, should be one of 'valid', 'same'"))
    if padding == "same" and any(s != 1 for s in attrs["stride"]):
        raise op_error(
            IRError(f"{op}: padding='same' is not supported for strided convolutions (stride={attrs['stride']})")
        )
    if not isinstance(padding, str):
        padding = window_arg(op, "padding", padding, nsp)
    attrs["padding"] = conv_padding(padding, ksize, attrs["dilation"], attrs["stride"])
    out = apply("conv", [x, weight], attrs)
    if bias is not None:
        out = out + bias.reshape((1, -1) + (1,) * nsp)
    if unbatched:
        out = out.squeeze(0)
    return relabel(out, "ConvolutionBackward0", [input, weight, bias])


def conv1d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    return _conv(input, weight, bias, stride, padding, dilation, groups, 1)


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    return _conv(input, weight, bias, stride, padding, dilation, groups, 2)


def conv3d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    return _conv(input, weight, bias, stride, padding, dilation, groups, 3)


def _output_padding(op: str, output_padding, stride, dilation, nsp: int) -> tuple:
    """output_padding as nsp ints, each smaller than its stride or its dilation (PyTorch's rule)."""
    op_pad = window_arg(op, "output_padding", output_padding, nsp)
    if any(p < 0 for p in op_pad) or any(p >= max(s, d) for p, s, d in zip(op_pad, stride, dilation)):
        raise op_error(
            IRError(
                f"{op}: output padding must be smaller than either stride or dilation, but got "
                f"output_padding={op_pad}, stride={stride}, dilation={dilation}"
            )
        )
    return op_pad


@replayed
def _conv_transpose(input, weight, bias, stride, padding, output_padding, groups, dilation, nsp):
    """The transpose of a convolution: conv's input gradient (conv_grad_input) taken as a layer, weight
    (in_channels, out_channels / groups, *kernel); output_padding adds trailing elements."""
    op = f"conv_transpose{nsp}d"
    unbatched = input.ndim == nsp + 1
    x = input.unsqueeze(0) if unbatched else input
    s, d = window_arg(op, "stride", stride, nsp), window_arg(op, "dilation", dilation, nsp)
    p = window_arg(op, "padding", padding, nsp)
    op_pad = _output_padding(op, output_padding, s, d, nsp)
    if x.ndim != nsp + 2 or weight.ndim != nsp + 2 or x.shape[1] != weight.shape[0]:
        raise op_error(
            IRError(
                f"{op}(input {input._type}, weight {weight._type}): expected a {nsp + 1}-d or {nsp + 2}-d input "
                f"with {weight.shape[0] if weight.ndim else '?'} channels (weight.shape[0]) and a {nsp + 2}-d weight"
            )
        )
    ksize = tuple(weight.shape[2:])
    full = tuple((n - 1) * ss + dd * (k - 1) + 1 for n, ss, dd, k in zip(x.shape[2:], s, d, ksize))
    # conv's input of size full - lo - hi, cropped by lo = padding and hi = padding - output_padding when that is
    # not negative; the rest of output_padding is appended as zeros
    pads = tuple((pp, max(pp - o, 0)) for pp, o in zip(p, op_pad))
    extra = tuple(max(o - pp, 0) for pp, o in zip(p, op_pad))
    shape = (x.shape[0], weight.shape[1] * int(groups)) + tuple(f - lo - hi for f, (lo, hi) in zip(full, pads))
    if any(n <= 0 for n in shape[2:]):
        raise op_error(
            IRError(f"{op}(input {input._type}, weight {weight._type}): output size {shape[2:]} is too small")
        )
    attrs = {"stride": s, "dilation": d, "groups": int(groups), "padding": pads, "input_shape": shape}
    out = apply("conv_grad_input", [x, weight], attrs)
    if any(extra):
        out = pad(out, tuple(v for e in reversed(extra) for v in (0, e)))
    if bias is not None:
        out = out + bias.reshape((1, -1) + (1,) * nsp)
    if unbatched:
        out = out.squeeze(0)
    return relabel(out, "ConvolutionBackward0", [input, weight, bias])


def conv_transpose1d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    return _conv_transpose(input, weight, bias, stride, padding, output_padding, groups, dilation, 1)


def conv_transpose2d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    return _conv_transpose(input, weight, bias, stride, padding, output_padding, groups, dilation, 2)


def conv_transpose3d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    return _conv_transpose(input, weight, bias, stride, padding, output_padding, groups, dilation, 3)


# -- pooling --------------------------------------------------------------------------------------------------
def _max_pool(input, kernel_size, stride, padding, dilation, ceil_mode, return_indices, nsp):
    if return_indices:
        return max_pool_with_indices(input, kernel_size, stride, padding, dilation, ceil_mode, nsp)
    attrs = pool_attrs(f"max_pool{nsp}d", kernel_size, stride, padding, dilation, ceil_mode, nsp)
    return apply("max_pool", [input], attrs, name=f"MaxPool{nsp}DWithIndicesBackward0")


def max_pool1d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    return _max_pool(input, kernel_size, stride, padding, dilation, ceil_mode, return_indices, 1)


def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    return _max_pool(input, kernel_size, stride, padding, dilation, ceil_mode, return_indices, 2)


def max_pool3d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    return _max_pool(input, kernel_size, stride, padding, dilation, ceil_mode, return_indices, 3)


def max_pool1d_with_indices(
    input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=True
):
    """max_pool1d(..., return_indices=True): (values, indices)."""
    return _max_pool(input, kernel_size, stride, padding, dilation, ceil_mode, True, 1)


def max_pool2d_with_indices(
    input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=True
):
    """max_pool2d(..., return_indices=True): (values, indices)."""
    return _max_pool(input, kernel_size, stride, padding, dilation, ceil_mode, True, 2)


def max_pool3d_with_indices(
    input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=True
):
    """max_pool3d(..., return_indices=True): (values, indices)."""
    return _max_pool(input, kernel_size, stride, padding, dilation, ceil_mode, True, 3)


# -- losses ---------------------------------------------------------------------------------------------------


@replayed
def mse_loss(input, target, size_average=None, reduce=None, reduction: str = "mean", weight=None) -> Tensor:
    """mean / sum of (input - target)^2, each term times `weight` (broadcast) when given."""
    target = as_tensor(target)
    if target.dtype_name != input.dtype_name:
        target = target.type_as_dtype(input.dtype_name)
    _size_warning("mse_loss", input, target)
    d = input - target
    loss = _weighted(d * d, weight, input)
    return relabel(
        reduce_loss(loss, legacy_reduction(size_average, reduce, reduction)), "MseLossBackward0", [input, target]
    )


def _weighted(loss: Tensor, weight, input: Tensor) -> Tensor:
    """A loss's terms times their weights (a tensor of the input's shape), or the terms when weight is None."""
    if weight is None:
        return loss
    w = as_tensor(weight)
    if tuple(w.shape) != tuple(input.shape):
        raise ValueError(
            f"Weights and input must have the same size (weight {list(w.shape)}, input {list(input.shape)})"
        )
    return loss * (w.type_as_dtype(input.dtype_name) if w.dtype_name != input.dtype_name else w)


@replayed
def l1_loss(input, target, size_average=None, reduce=None, reduction: str = "mean", weight=None) -> Tensor:
    """mean / sum of |input - target|, each term times `weight` (broadcast) when given."""
    target = as_tensor(target)
    if target.dtype_name != input.dtype_name:
        target = target.type_as_dtype(input.dtype_name)
    _size_warning("l1_loss", input, target)
    red = legacy_reduction(size_average, reduce, reduction)
    name = {"mean": "MeanBackward0", "sum": "SumBackward0"}.get(red, "AbsBackward0")  # (PyTorch's names)
    return relabel(reduce_loss(_weighted((input - target).abs(), weight, input), red), name, [input, target])


def _check_targets(input: Tensor, target: Tensor, n_classes: int, ignore_index: int, op: str) -> None:
    """Class indices must be int64 in [0, n_classes) (or ignore_index): checked now, and at every compiled call."""
    from graphnn.core.dispatch import op_error
    from graphnn.ir.registry import IRError, IRIndexError

    call = f"{op}(input {input._type}, target {target._type})"
    if target.dtype_name != "int64":
        raise op_error(IRError(f"{call}: target must be int64 class indices, got {target.dtype_name}"))

    def check(t):
        bad = (t != ignore_index) & ((t < 0) | (t >= n_classes))
        if bad.any():
            raise op_error(
                IRIndexError(f"{call}: target {int(t[bad].flat[0])} is out of bounds for {n_classes} classes")
            )

    check_values(target, check)


@replayed
def nll_loss(
    input,
    target,
    weight=None,
    size_average=None,
    ignore_index: int = -100,
    reduce=None,
    reduction: str = "mean",
    _op: str = "nll_loss",
) -> Tensor:
    reduction = legacy_reduction(size_average, reduce, reduction)
    c_dim = 1 if input.ndim > 1 else 0
    n_classes = input.shape[c_dim]
    _check_targets(input, target, n_classes, ignore_index, _op)
    expected = tuple(input.shape[:c_dim]) + tuple(input.shape[c_dim + 1 :])
    if tuple(target.shape) != expected:
        from graphnn.core.dispatch import op_error
        from graphnn.ir.registry import IRError

        raise op_error(
            IRError(
                f"{_op}(input {input._type}, target {target._type}): input {tuple(input.shape)} needs "
                f"target of shape {expected}, got {tuple(target.shape)}"
            )
        )
    x = input
    if input.ndim > 2:  # (N, C, d1, ...) -> (N, d1, ..., C)
        x = input.permute(0, *range(2, input.ndim), 1)
    valid = target != ignore_index
    safe = apply("select", [valid, target, 0])  # ignored items read class 0 (then dropped): every index in range
    # each item's log-probability of its class, gathered (unselected classes are never read: -inf or NaN there
    # cannot leak into the loss, as with a one-hot product)
    picked = apply("take_along", [x, safe.unsqueeze(-1)], {"axis": x.ndim - 1}).squeeze(-1)
    w = valid.type_as_dtype(input.dtype_name)
    if weight is not None:
        weight = as_tensor(weight)
        if weight.ndim != 1 or weight.shape[0] != n_classes:
            raise RuntimeError(
                f"weight tensor should be defined either for all {n_classes} classes or no classes but got weight "
                f"tensor of shape: {list(weight.shape)}"
            )
        w = apply("select", [valid, apply("take", [weight, safe], {"axis": 0}), 0.0])
    loss = apply("select", [valid, -picked * w, 0.0])
    if reduction == "none":
        out = loss
    elif reduction == "sum":
        out = loss.sum()
    elif reduction == "mean":
        out = loss.sum() / w.sum()
    else:
        raise ValueError(f"{reduction} is not a valid value for reduction")
    return relabel(out, "NllLossBackward0", [input])


@replayed
def cross_entropy(
    input,
    target,
    weight=None,
    size_average=None,
    ignore_index: int = -100,
    reduce=None,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
) -> Tensor:
    reduction = legacy_reduction(size_average, reduce, reduction)
    if label_smoothing > 1.0:
        raise RuntimeError(located(f"label_smoothing must be between 0.0 and 1.0. Got: {label_smoothing}"))
    c_dim = 1 if input.ndim > 1 else 0
    logp = log_softmax(input, c_dim)
    target = as_tensor(target)
    if target.dtype_name.startswith("float") and tuple(target.shape) == tuple(input.shape):
        if ignore_index != -100:
            raise RuntimeError(located("ignore_index is not supported for floating point target"))
        return _probability_targets(logp, target, weight, reduction, label_smoothing, c_dim)
    nll = nll_loss(logp, target, weight, ignore_index=ignore_index, reduction=reduction, _op="cross_entropy")
    if not label_smoothing:
        return relabel(nll, "NllLossBackward0", [input])
    # PyTorch: (1 - eps) * nll + eps / C * smooth, smooth_i = -sum_c w_c logp_ic over non-ignored items;
    # with reduction='mean' both parts are divided by the summed weight of the items' targets.
    n_classes = input.shape[c_dim]
    x = logp if logp.ndim <= 2 else logp.permute(0, *range(2, logp.ndim), 1)
    wx = x if weight is None else x * weight
    valid = (target != ignore_index).type_as_dtype(input.dtype_name)
    smooth = apply("select", [target != ignore_index, -wx.sum(-1), 0.0])
    if reduction == "none":
        smooth_r = smooth
    elif reduction == "sum":
        smooth_r = smooth.sum()
    else:
        safe = apply("select", [target != ignore_index, target, 0])
        w_item = valid if weight is None else apply("take", [as_tensor(weight), safe], {"axis": 0}) * valid
        smooth_r = smooth.sum() / w_item.sum()
    out = nll * (1.0 - label_smoothing) + smooth_r * (label_smoothing / n_classes)
    return relabel(out, "AddBackward0", [input])


def linear_cross_entropy(
    input: Tensor,
    linear_weight: Tensor,
    target: Tensor,
    *,
    linear_bias: Tensor | None = None,
    weight: Tensor | None = None,
    reduction: str = "mean",
    ignore_index: int | None = None,
    label_smoothing: float = 0.0,
    options=None,
) -> Tensor:
    """cross_entropy(linear(input, linear_weight, linear_bias), target, ...): linear_weight (C, *out, in) gives
    logits (*batch, C, *out) (a K-dimensional loss over out). `options` (PyTorch's chunked computation, a memory
    saving) are accepted; graphnn's fusion does not keep the logits of a compiled step beyond their use anyway."""
    if input.ndim < 1 or input.ndim > 2:
        raise RuntimeError(f"expected input with dimensionality 1 or 2, got {input.ndim}")
    if linear_weight.ndim < 2:
        raise RuntimeError(f"expected linear_weight with dimensionality at least 2, got {linear_weight.ndim}")
    batch, n_in = tuple(input.shape[:-1]), input.shape[-1]
    if n_in != linear_weight.shape[-1]:
        raise RuntimeError(
            "expected equal input and linear_weight last dimensions (in_features), "
            f"got {n_in} and {linear_weight.shape[-1]}, respectively"
        )
    n_classes, out = linear_weight.shape[0], tuple(linear_weight.shape[1:-1])
    if linear_bias is not None and tuple(linear_bias.shape) != (n_classes, *out):
        raise RuntimeError(f"expected linear_bias shape {(n_classes, *out)}, got {tuple(linear_bias.shape)}")
    if out and not batch:
        raise RuntimeError(
            f"K-dimensional loss defined by linear_weight shape {tuple(linear_weight.shape)} requires batched input, "
            f"(N, {n_in}), got unbatched input with shape {tuple(input.shape)}"
        )
    logits_shape = (*batch, n_classes, *out)
    if tuple(target.shape) == logits_shape and ignore_index is not None:
        raise RuntimeError("ignore_index cannot be specified when target contains probabilities")
    flat_bias = linear_bias.reshape(-1) if linear_bias is not None else None
    logits = linear(input, linear_weight.reshape(-1, n_in), flat_bias).reshape(logits_shape)
    return cross_entropy(
        logits,
        target,
        weight,
        ignore_index=-100 if ignore_index is None else ignore_index,
        reduction=reduction,
        label_smoothing=label_smoothing,
    )


def _probability_targets(logp, target, weight, reduction: str, label_smoothing: float, c_dim: int) -> Tensor:
    """cross_entropy against class probabilities (target shaped as the input): -sum_c w_c t_c log p_c per item, with
    t smoothed to (1 - eps) t + eps / C; 'mean' divides by the number of items, as PyTorch."""
    n_classes = logp.shape[c_dim]
    if label_smoothing:
        target = target * (1.0 - label_smoothing) + label_smoothing / n_classes
    terms = logp * target
    if weight is not None:
        terms = terms * as_tensor(weight).reshape((n_classes,) + (1,) * (logp.ndim - c_dim - 1))
    loss = -terms.sum(c_dim)
    if reduction == "none":
        return loss
    total = loss.sum()
    return total if reduction == "sum" else total / max(1, loss.numel())


@replayed
def kl_div(input, target, size_average=None, reduce=None, reduction: str = "mean", log_target: bool = False) -> Tensor:
    """Pointwise target * (log(target) - input) (0 where target is 0), as PyTorch."""
    reduction = legacy_reduction(size_average, reduce, reduction)
    target = as_tensor(target)
    if log_target:
        pointwise = target.exp() * (target - input)
    else:
        tlogt = apply("select", [target > 0, target * apply("maximum", [target, 1e-38]).log(), 0.0])
        pointwise = tlogt - target * input
    if reduction == "mean":
        warnings.warn(
            "kl_div: reduction='mean' divides the sum by the batch size times the support size; 'batchmean' (the "
            "sum over the batch size) is the mathematical KL divergence",
            UserWarning,
            stacklevel=3,
        )
    if reduction == "batchmean":
        out = pointwise.sum() / (input.shape[0] if input.ndim else 1)
    else:
        out = reduce_loss(pointwise, reduction)
    names = {"mean": "MeanBackward0", "sum": "SumBackward0", "batchmean": "DivBackward0"}  # (PyTorch's names)
    return relabel(out, names.get(reduction, "SubBackward0"), [input, target])


def _check_unit_interval(a, what: str) -> None:
    if a.size and not ((a >= 0) & (a <= 1)).all():  # (NaN fails too, as in PyTorch)
        raise RuntimeError(located(f"binary_cross_entropy: all elements of the {what} should be between 0 and 1"))


@replayed
def binary_cross_entropy(input, target, weight=None, size_average=None, reduce=None, reduction: str = "mean"):
    """-(y log x + (1 - y) log(1 - x)), each log clamped at -100, with PyTorch's gradient with respect to x,
    s(x) = (x - y) / max(x (1 - x), float32(1e-12)): finite where x is 0 or 1 (a saturated sigmoid), where the chain
    rule through the clamped logs would give 0 * inf = NaN. The loss is its value plus d s(x0) + d^2 s'(x0) / 2 with
    d = x - x0 = 0 (x0: x without gradient): first derivative s, second s' (double backward, as PyTorch's)."""
    target = as_tensor(target)
    if tuple(target.shape) != tuple(input.shape):
        raise ValueError(
            located(
                f"binary_cross_entropy: the target's size {tuple(target.shape)} differs from the input's "
                f"{tuple(input.shape)}; give both the same size (e.g. target.view_as(input))"
            )
        )
    for what, t in (("input", input), ("target", target)):
        check_values(t, lambda a, what=what: _check_unit_interval(a, what))
    x = apply("stop_gradient", [input])
    log_p = apply("maximum", [x.log(), -100.0])
    log_1p = apply("maximum", [(1.0 - x).log(), -100.0])
    floor = float(np.float32(1e-12))  # (PyTorch's bound is a float32 constant, also for float64 inputs)
    den = apply("maximum", [x * (1.0 - x), floor])
    slope = (x - target) / den
    curvature = (x * x - 2.0 * x * target + target) / (den * den)
    d = input - x  # (0, with derivative 1)
    loss = -(target * log_p + (1.0 - target) * log_1p) + (d * slope + 0.5 * d * d * curvature)
    if weight is not None:
        loss = loss * weight
    return relabel(
        reduce_loss(loss, legacy_reduction(size_average, reduce, reduction)),
        "BinaryCrossEntropyBackward0",
        [input, target],
    )


@replayed
def smooth_l1_loss(input, target, size_average=None, reduce=None, reduction: str = "mean", beta: float = 1.0):
    target = as_tensor(target)
    _size_warning("smooth_l1_loss", input, target)
    z = input - target  # (the quadratic piece of the signed difference: a second derivative of 1 / beta at 0)
    d = z.abs()
    loss = _quadratic_within(z, d, beta, 0.5 / beta, d - 0.5 * beta) if beta > 0 else d
    return relabel(
        reduce_loss(loss, legacy_reduction(size_average, reduce, reduction)), "SmoothL1LossBackward0", [input, target]
    )


def avg_pool1d(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True):
    return avg_pool(input, kernel_size, stride, padding, ceil_mode, count_include_pad, None, 1)


def avg_pool2d(
    input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True, divisor_override=None
):
    return avg_pool(input, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override, 2)


def avg_pool3d(
    input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True, divisor_override=None
):
    return avg_pool(input, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override, 3)


def max_unpool1d(input, indices, kernel_size, stride=None, padding=0, output_size=None):
    return max_unpool(input, indices, kernel_size, stride, padding, output_size, 1)


def max_unpool2d(input, indices, kernel_size, stride=None, padding=0, output_size=None):
    return max_unpool(input, indices, kernel_size, stride, padding, output_size, 2)


def max_unpool3d(input, indices, kernel_size, stride=None, padding=0, output_size=None):
    return max_unpool(input, indices, kernel_size, stride, padding, output_size, 3)


def upsample(input, size=None, scale_factor=None, mode="nearest", align_corners=None):
    warnings.warn("F.upsample is deprecated: use F.interpolate", UserWarning, stacklevel=2)
    return interpolate(input, size, scale_factor, mode, align_corners)


def upsample_bilinear(input, size=None, scale_factor=None):
    return interpolate(input, size, scale_factor, "bilinear", True)


def upsample_nearest(input, size=None, scale_factor=None):
    return interpolate(input, size, scale_factor, "nearest")


def adaptive_avg_pool1d(input, output_size):
    return adaptive_avg_pool(input, output_size, 1)


def adaptive_avg_pool2d(input, output_size):
    return adaptive_avg_pool(input, output_size, 2)


def adaptive_avg_pool3d(input, output_size):
    return adaptive_avg_pool(input, output_size, 3)


def adaptive_max_pool1d(input, output_size, return_indices=False):
    return adaptive_max_pool(input, output_size, return_indices, 1)


def adaptive_max_pool2d(input, output_size, return_indices=False):
    return adaptive_max_pool(input, output_size, return_indices, 2)


def adaptive_max_pool3d(input, output_size, return_indices=False):
    return adaptive_max_pool(input, output_size, return_indices, 3)


def adaptive_max_pool1d_with_indices(input, output_size, return_indices=True):
    return adaptive_max_pool(input, output_size, True, 1)


def adaptive_max_pool2d_with_indices(input, output_size, return_indices=True):
    return adaptive_max_pool(input, output_size, True, 2)
