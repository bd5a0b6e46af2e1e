"""F.unfold / F.fold (nn.Unfold / nn.Fold): sliding local blocks, on the im2col / col2im ops convolutions lower to;
and two small layers of the same kind of data movement and contraction: F.bilinear, F.channel_shuffle.

unfold: (N, C, H, W) -> (N, C * kh * kw, L), block l's entries in (c, kh, kw) order; fold sums such blocks back
into an (N, C, H, W) image (overlaps added), so fold(unfold(x)) multiplies each pixel by the blocks covering it."""

from __future__ import annotations

from graphnn.core.attrs import ntuple
from graphnn.core.dispatch import apply, op_error, relabel
from graphnn.core.tensor import Tensor
from graphnn.ir.ops.im2col import geometry
from graphnn.ir.registry import IRError


def _attrs(kernel_size, dilation, padding, stride) -> dict:
    p = ntuple(padding, 2)
    return {
        "kernel": ntuple(kernel_size, 2),
        "dilation": ntuple(dilation, 2),
        "padding": tuple((q, q) for q in p),
        "stride": ntuple(stride, 2),
    }


def unfold(input: Tensor, kernel_size, dilation=1, padding=0, stride=1) -> Tensor:
    batched = input.ndim == 4
    if input.ndim not in (3, 4):
        raise op_error(IRError(f"unfold: expected a 3-D or 4-D input (a batch of images), got {input.ndim}-D"))
    x = input if batched else input.unsqueeze(0)
    at = _attrs(kernel_size, dilation, padding, stride)
    try:
        geometry(tuple(x.shape), at)
    except ValueError as e:
        raise op_error(IRError(f"unfold({x._type}): {e}")) from None
    cols = apply("im2col", [x], {**at, "per_image": True})  # (N, C * prod(kernel), positions)
    out = cols if batched else cols.squeeze(0)
    return relabel(out, "Im2ColBackward0", [input])


def fold(input: Tensor, output_size, kernel_size, dilation=1, padding=0, stride=1) -> Tensor:
    batched = input.ndim == 3
    if input.ndim not in (2, 3):
        raise op_error(IRError(f"fold: expected a 2-D or 3-D input (blocks as columns), got {input.ndim}-D"))
    cols = input if batched else input.unsqueeze(0)
    at = _attrs(kernel_size, dilation, padding, stride)
    kp = at["kernel"][0] * at["kernel"][1]
    n, ck, positions = cols.shape
    if ck % kp:
        raise op_error(
            IRError(
                f"fold: expected size of input's dimension 1 to be divisible by the product of kernel_size ({kp}), "
                f"but got input.size(1)={ck}"
            )
        )
    shape = (n, ck // kp) + ntuple(output_size, 2)
    try:
        _outs, _kp, want = geometry(shape, at)
    except ValueError as e:
        raise op_error(IRError(f"fold({cols._type}): {e}")) from None
    if want != positions:
        raise op_error(
            IRError(
                f"fold: expected input's dimension 2 to match the calculated number of sliding blocks {want}, "
                f"but got input.size(2)={positions}"
            )
        )
    dcol = cols.permute(1, 0, 2).reshape(ck, n * positions)
    out = apply("col2im", [dcol], {**at, "input_shape": shape})
    out = out if batched else out.squeeze(0)
    return relabel(out, "Col2ImBackward0", [input])


def bilinear(input1: Tensor, input2: Tensor, weight: Tensor, bias=None) -> Tensor:
    """x1^T A_o x2 (+ b_o) for every output o, over any leading dimensions of the inputs."""
    from graphnn.core.tensor_ops import einsum

    out = einsum("...i,oij,...j->...o", input1, weight, input2)
    return out + bias if bias is not None else out


def channel_shuffle(input: Tensor, groups: int) -> Tensor:
    """(N, C, *) with its channels regrouped: channel g * (C / groups) + k moves to k * groups + g."""
    n, c = input.shape[0], input.shape[1]
    if groups <= 0 or c % groups:
        raise op_error(IRError(f"channel_shuffle: {c} channels cannot be split into {groups} groups"))
    rest = tuple(input.shape[2:])
    x = input.reshape((n, groups, c // groups) + rest).transpose(1, 2)
    return x.reshape((n, c) + rest)
