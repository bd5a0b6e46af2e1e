"""nn.functional functions that PyTorch also offers as `torch.NAME` with the same positional signature
(`torch.pairwise_distance(a, b)`, `torch.pixel_shuffle(x, 2)`, `torch.conv2d(x, w)`), installed into graphnn's
namespace; and those whose torch-level form differs, written here (`torch.batch_norm`'s argument order, the
losses' integer `reduction`, `torch.embedding(weight, indices)`, `torch.dropout(input, p, train)`, ATen's cells
`torch.lstm_cell`, `torch.convolution`, `torch.grid_sampler`'s integer modes)."""

from __future__ import annotations

from . import functional as F

SAME_SIGNATURE = (
    "pairwise_distance",
    "cosine_similarity",
    "pdist",
    "pixel_shuffle",
    "pixel_unshuffle",
    "channel_shuffle",
    "layer_norm",
    "group_norm",
    "conv1d",
    "conv2d",
    "conv3d",
    "conv_transpose1d",
    "conv_transpose2d",
    "conv_transpose3d",
    "hardshrink",
    "prelu",
    "selu",
    "celu",
    "threshold",
    "bilinear",
    "max_pool1d",
    "max_pool2d",
    "max_pool3d",
    "avg_pool1d",
    "adaptive_avg_pool1d",
    "adaptive_max_pool1d",
)


_REDUCTIONS = ("none", "mean", "sum")  # ATen's integer reduction: 0, 1, 2


def _reduction(reduction) -> str:
    if isinstance(reduction, str):
        return reduction
    if reduction not in (0, 1, 2) or isinstance(reduction, bool):
        raise ValueError(f"reduction must be 0 (none), 1 (mean) or 2 (sum), got {reduction!r}")
    return _REDUCTIONS[reduction]


def dropout(input, p: float, train: bool):
    """`torch.dropout(input, p, train)`: F.dropout with PyTorch's torch-level flag name."""
    return F.dropout(input, p, train)


def alpha_dropout(input, p: float, train: bool):
    return F.alpha_dropout(input, p, train)


def feature_alpha_dropout(input, p: float, train: bool):
    return F.feature_alpha_dropout(input, p, train)


def feature_dropout(input, p: float, train: bool):
    """Whole channels (dimension 1) zeroed with probability p, the others scaled by 1 / (1 - p)."""
    if not train or p == 0:
        return input
    if not 0 <= p <= 1:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
    import graphnn

    shape = tuple(input.shape[:2]) + (1,) * (input.dim() - 2)
    keep = graphnn.bernoulli(graphnn.full(shape, 1.0 - p, dtype=input.dtype))
    return input * keep / (1.0 - p) if p < 1 else input * keep


def _inplace(fn):
    def inplace(input, *args, **kwargs):
        return input.copy_(fn(input, *args, **kwargs))

    inplace.__name__ = inplace.__qualname__ = fn.__name__ + "_"
    inplace.__doc__ = f"{fn.__name__}, written into input"
    return inplace


def embedding(weight, input, padding_idx: int = -1, scale_grad_by_freq: bool = False, sparse: bool = False):
    """`torch.embedding(weight, indices, padding_idx=-1, ...)`: F.embedding with ATen's order (-1: no padding)."""
    pad = None if padding_idx is None or padding_idx < 0 else padding_idx
    return F.embedding(input, weight, pad, scale_grad_by_freq=scale_grad_by_freq, sparse=sparse)


def batch_norm(input, weight, bias, running_mean, running_var, training, momentum, eps, cudnn_enabled=True):
    return F.batch_norm(input, running_mean, running_var, weight, bias, training, momentum, eps)


def instance_norm(input, weight, bias, running_mean, running_var, use_input_stats, momentum, eps, cudnn_enabled=True):
    return F.instance_norm(input, running_mean, running_var, weight, bias, use_input_stats, momentum, eps)


def rms_norm(input, normalized_shape, weight=None, eps=None):
    return F.rms_norm(input, normalized_shape, weight, eps)


def kl_div(input, target, reduction=1, log_target: bool = False):
    """ATen's kl_div: 'mean' (1) averages over every element (nn.functional's batchmean divides by the batch)."""
    out = F.kl_div(input, target, reduction="none", log_target=log_target)
    red = _reduction(reduction)
    return out if red == "none" else out.mean() if red == "mean" else out.sum()


def binary_cross_entropy_with_logits(input, target, weight=None, pos_weight=None, reduction=1):
    return F.binary_cross_entropy_with_logits(
        input, target, weight, reduction=_reduction(reduction), pos_weight=pos_weight
    )


def cosine_embedding_loss(input1, input2, target, margin: float = 0.0, reduction=1):
    return F.cosine_embedding_loss(input1, input2, target, margin, reduction=_reduction(reduction))


def hinge_embedding_loss(input, target, margin: float = 1.0, reduction=1):
    return F.hinge_embedding_loss(input, target, margin, reduction=_reduction(reduction))


def margin_ranking_loss(input1, input2, target, margin: float = 0.0, reduction=1):
    return F.margin_ranking_loss(input1, input2, target, margin, reduction=_reduction(reduction))


def triplet_margin_loss(anchor, positive, negative, margin=1.0, p=2.0, eps=1e-6, swap=False, reduction=1):
    return F.triplet_margin_loss(anchor, positive, negative, margin, p, eps, swap, reduction=_reduction(reduction))


def poisson_nll_loss(input, target, log_input: bool, full: bool, eps: float, reduction):
    return F.poisson_nll_loss(input, target, log_input, full, eps=eps, reduction=_reduction(reduction))


def ctc_loss(log_probs, targets, input_lengths, target_lengths, blank: int = 0, reduction=1, zero_infinity=False):
    return F.ctc_loss(
        log_probs,
        targets,
        input_lengths,
        target_lengths,
        blank,
        reduction=_reduction(reduction),
        zero_infinity=zero_infinity,
    )


def rrelu(input, lower: float = 1.0 / 8, upper: float = 1.0 / 3, training: bool = False, generator=None):
    return F.rrelu(input, lower, upper, training)


def constant_pad_nd(input, pad, value=0):
    return F.pad(input, list(pad), "constant", value)


def max_pool1d_with_indices(input, kernel_size, stride=(), padding=0, dilation=1, ceil_mode=False):
    """(values, indices) of F.max_pool1d; an empty stride is the kernel size, as ATen's."""
    stride = stride if stride not in ((), [], None) else None
    return F.max_pool1d(input, kernel_size, stride, padding, dilation, ceil_mode=ceil_mode, return_indices=True)


def convolution(input, weight, bias, stride, padding, dilation, transposed: bool, output_padding, groups: int):
    """ATen's convolution: conv{1,2,3}d or conv_transpose{1,2,3}d by the weight's rank and `transposed`."""
    n = weight.dim() - 2
    if n not in (1, 2, 3):
        raise RuntimeError(f"convolution: expected a 3-, 4- or 5-dimensional weight, got shape {list(weight.shape)}")
    if transposed:
        conv = getattr(F, f"conv_transpose{n}d")
        return conv(input, weight, bias, stride, padding, output_padding, groups, dilation)
    return getattr(F, f"conv{n}d")(input, weight, bias, stride, padding, dilation, groups)


def rnn_tanh_cell(input, hx, w_ih, w_hh, b_ih=None, b_hh=None):
    return (F.linear(input, w_ih, b_ih) + F.linear(hx, w_hh, b_hh)).tanh()


def rnn_relu_cell(input, hx, w_ih, w_hh, b_ih=None, b_hh=None):
    return (F.linear(input, w_ih, b_ih) + F.linear(hx, w_hh, b_hh)).relu()


def lstm_cell(input, hx, w_ih, w_hh, b_ih=None, b_hh=None):
    """One LSTM step (gates i, f, g, o, as nn.LSTMCell's weights): returns (h', c')."""
    h, c = hx
    i, f, g, o = (F.linear(input, w_ih, b_ih) + F.linear(h, w_hh, b_hh)).chunk(4, 1)
    c2 = f.sigmoid() * c + i.sigmoid() * g.tanh()
    return o.sigmoid() * c2.tanh(), c2


def gru_cell(input, hx, w_ih, w_hh, b_ih=None, b_hh=None):
    """One GRU step (gates r, z, n, as nn.GRUCell's weights)."""
    ir, iz, in_ = F.linear(input, w_ih, b_ih).chunk(3, 1)
    hr, hz, hn = F.linear(hx, w_hh, b_hh).chunk(3, 1)
    r, z = (ir + hr).sigmoid(), (iz + hz).sigmoid()
    n = (in_ + r * hn).tanh()
    return (1 - z) * n + z * hx


def affine_grid_generator(theta, size, align_corners: bool):
    return F.affine_grid(theta, list(size), align_corners=align_corners)


def grid_sampler(input, grid, interpolation_mode: int, padding_mode: int, align_corners: bool):
    """F.grid_sample with ATen's integer modes (interpolation 0 bilinear, 1 nearest, 2 bicubic; padding 0 zeros,
    1 border, 2 reflection)."""
    modes, paddings = ("bilinear", "nearest", "bicubic"), ("zeros", "border", "reflection")
    return F.grid_sample(
        input, grid, mode=modes[interpolation_mode], padding_mode=paddings[padding_mode], align_corners=align_corners
    )


FUNCTIONS = {
    f.__name__: f
    for f in (
        dropout,
        alpha_dropout,
        feature_alpha_dropout,
        feature_dropout,
        embedding,
        batch_norm,
        instance_norm,
        rms_norm,
        kl_div,
        binary_cross_entropy_with_logits,
        cosine_embedding_loss,
        hinge_embedding_loss,
        margin_ranking_loss,
        triplet_margin_loss,
        poisson_nll_loss,
        ctc_loss,
        rrelu,
        constant_pad_nd,
        max_pool1d_with_indices,
        convolution,
        rnn_tanh_cell,
        rnn_relu_cell,
        lstm_cell,
        gru_cell,
        affine_grid_generator,
        grid_sampler,
    )
}
FUNCTIONS.update({"grid_sampler_2d": grid_sampler, "grid_sampler_3d": grid_sampler})
FUNCTIONS.update(
    {f.__name__: f for f in map(_inplace, (dropout, alpha_dropout, feature_alpha_dropout, feature_dropout, rrelu))}
)
FUNCTIONS.update({"celu_": F.celu_, "selu_": F.selu_, "threshold_": F.threshold_})


def install(namespace: dict) -> None:
    """Add the functions above to `namespace` (graphnn's globals), keeping any name it already defines."""
    for name in SAME_SIGNATURE:
        namespace.setdefault(name, getattr(F, name))
    for name, fn in FUNCTIONS.items():
        namespace.setdefault(name, fn)
