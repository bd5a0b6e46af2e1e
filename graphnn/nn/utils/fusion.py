"""Folding an inference-mode BatchNorm into the convolution or linear layer before it (torch.nn.utils.fusion):
y = bn(conv(x)) = conv'(x) with w' = w * g / sqrt(v + eps) per output channel and b' = (b - m) * g / sqrt(v + eps) + beta
(g, beta: the norm's affine weight and bias, 1 and 0 without them; m, v: its running statistics)."""

from __future__ import annotations

import copy

from graphnn.core.grad_mode import no_grad
from graphnn.core.tensor import Tensor
from graphnn.nn.parameter import Parameter


def _scale_shift(w: Tensor, b, rm: Tensor, rv: Tensor, eps: float, gamma, beta) -> tuple:
    scale = (rv + eps).rsqrt()
    if gamma is not None:
        scale = scale * gamma
    b = b if b is not None else rm.new_zeros(rm.shape)
    shift = (b - rm) * scale + (beta if beta is not None else 0.0)
    return scale, shift


def fuse_conv_bn_weights(conv_w, conv_b, bn_rm, bn_rv, bn_eps, bn_w, bn_b, transpose: bool = False) -> tuple:
    """(weight, bias) Parameters of the convolution that computes bn(conv(x)) with the norm's running statistics;
    `transpose`: a transposed convolution (its output channels are the weight's second dimension)."""
    with no_grad():
        scale, shift = _scale_shift(conv_w, conv_b, bn_rm, bn_rv, bn_eps, bn_w, bn_b)
        shape = [1] * conv_w.ndim
        shape[1 if transpose else 0] = -1
        w = conv_w * scale.reshape(shape).to(conv_w.dtype)
    return Parameter(w, conv_w.requires_grad), Parameter(shift.to(conv_w.dtype), conv_w.requires_grad)


def fuse_conv_bn_eval(conv, bn, transpose: bool = False):
    """A copy of `conv` computing bn(conv(x)) (both in eval mode)."""
    if conv.training or bn.training:
        raise AssertionError("Fusion only for eval!")
    fused = copy.deepcopy(conv)
    if bn.running_mean is None or bn.running_var is None:
        raise AssertionError("fusion needs the norm's running statistics (track_running_stats=True)")
    fused.weight, fused.bias = fuse_conv_bn_weights(
        fused.weight, fused.bias, bn.running_mean, bn.running_var, bn.eps, bn.weight, bn.bias, transpose
    )
    return fused


def fuse_linear_bn_weights(linear_w, linear_b, bn_rm, bn_rv, bn_eps, bn_w, bn_b) -> tuple:
    """(weight, bias) Parameters of the linear layer that computes bn(linear(x)) with the norm's statistics."""
    with no_grad():
        scale, shift = _scale_shift(linear_w, linear_b, bn_rm, bn_rv, bn_eps, bn_w, bn_b)
        w = linear_w * scale.unsqueeze(-1).to(linear_w.dtype)
    return Parameter(w, linear_w.requires_grad), Parameter(shift.to(linear_w.dtype), linear_w.requires_grad)


def fuse_linear_bn_eval(linear, bn):
    """A copy of `linear` computing bn(linear(x)) (both in eval mode; the norm over the linear's outputs)."""
    if linear.training or bn.training:
        raise AssertionError("Fusion only for eval!")
    if linear.out_features != bn.num_features:
        raise AssertionError("To fuse, linear.out_features must equal bn.num_features")
    fused = copy.deepcopy(linear)
    fused.weight, fused.bias = fuse_linear_bn_weights(
        fused.weight, fused.bias, bn.running_mean, bn.running_var, bn.eps, bn.weight, bn.bias
    )
    return fused
