"""Conv1d/2d/3d and ConvTranspose1d/2d/3d."""

from __future__ import annotations

import math

from graphnn.core.tensor import empty
from graphnn.core.attrs import ntuple
from .. import functional as F
from .. import init
from ..parameter import Parameter
from ._factory import factory_dtype
from .module import Module


PADDING_MODES = ("zeros", "reflect", "replicate", "circular")


class _ConvNd(Module):
    _nsp = 2

    def __init__(
        self,
        in_channels,
        out_channels,
        kernel_size,
        stride=1,
        padding=0,
        dilation=1,
        groups=1,
        bias=True,
        padding_mode="zeros",
        device=None,
        dtype=None,
    ):
        super().__init__()
        dtype = factory_dtype(device, dtype, type(self).__name__)
        n = self._nsp
        if in_channels < 0 or out_channels < 0:
            raise ValueError(
                f"{type(self).__name__}: in_channels and out_channels must be non-negative, got "
                f"{in_channels} and {out_channels}"
            )
        if any(k < 0 for k in ntuple(kernel_size, n)):
            raise ValueError(f"{type(self).__name__}: kernel_size must be non-negative, got {kernel_size}")
        if groups <= 0:
            raise ValueError(f"{type(self).__name__}: groups must be a positive integer, got {groups}")
        if in_channels % groups or out_channels % groups:
            raise ValueError(
                f"{type(self).__name__}: in_channels ({in_channels}) and out_channels ({out_channels}) "
                f"must be divisible by groups ({groups})"
            )
        if isinstance(padding, str):
            if padding not in ("valid", "same"):
                raise ValueError(
                    f"{type(self).__name__}: invalid padding string {padding!r}, should be one of {{'valid', 'same'}}"
                )
            if padding == "same" and any(s != 1 for s in ntuple(stride, n)):
                raise ValueError(f"{type(self).__name__}: padding='same' is not supported for strided convolutions")
        if padding_mode not in PADDING_MODES:
            raise ValueError(
                f"padding_mode must be one of {list(PADDING_MODES)}, but got padding_mode='{padding_mode}'"
            )
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        self.kernel_size, self.stride, self.dilation = ntuple(kernel_size, n), ntuple(stride, n), ntuple(dilation, n)
        self.padding = padding if isinstance(padding, str) else ntuple(padding, n)
        self.output_padding = (0,) * n  # (a transposed convolution's: PyTorch's convolutions all have one)
        self.padding_mode = padding_mode
        self.weight = Parameter(empty(*self._weight_shape(in_channels, out_channels, groups), dtype=dtype))
        if bias:
            self.bias = Parameter(empty(out_channels, dtype=dtype))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def _weight_shape(self, in_channels: int, out_channels: int, groups: int) -> tuple:
        return (out_channels, in_channels // groups) + self.kernel_size

    def reset_parameters(self) -> None:
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in, _ = init._calculate_fan_in_and_fan_out(self.weight)
            if fan_in:
                bound = 1 / math.sqrt(fan_in)
                init.uniform_(self.bias, -bound, bound)

    def forward(self, input):
        padding = self.padding
        if self.padding_mode != "zeros":  # the input padded by F.pad's mode, then a convolution without padding
            input = F.pad(input, self._pad_amounts(), mode=self.padding_mode)
            padding = (0,) * self._nsp
        return F._conv(input, self.weight, self.bias, self.stride, padding, self.dilation, self.groups, self._nsp)

    def _pad_amounts(self) -> tuple:
        """F.pad's (last dim first) amounts of the padding: 'same' puts the odd one at the end, as PyTorch."""
        amounts = []
        for i in reversed(range(self._nsp)):
            if self.padding == "valid":
                lo = hi = 0
            elif self.padding == "same":
                total = self.dilation[i] * (self.kernel_size[i] - 1)
                lo, hi = total // 2, total - total // 2
            else:
                lo = hi = self.padding[i]
            amounts += [lo, hi]
        return tuple(amounts)

    def extra_repr(self) -> str:
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        if self.padding != (0,) * self._nsp:
            s += f", padding={self.padding}"
        if self.dilation != (1,) * self._nsp:
            s += f", dilation={self.dilation}"
        if self.output_padding != (0,) * self._nsp:
            s += f", output_padding={self.output_padding}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        if self.padding_mode != "zeros":
            s += f", padding_mode={self.padding_mode}"
        return s


class Conv1d(_ConvNd):
    _nsp = 1


class Conv2d(_ConvNd):
    _nsp = 2


class Conv3d(_ConvNd):
    _nsp = 3


class _ConvTransposeNd(_ConvNd):
    """The transpose of a convolution; weight (in_channels, out_channels / groups, *kernel_size)."""

    def __init__(
        self,
        in_channels,
        out_channels,
        kernel_size,
        stride=1,
        padding=0,
        output_padding=0,
        groups=1,
        bias=True,
        dilation=1,
        padding_mode="zeros",
        device=None,
        dtype=None,
    ):
        if isinstance(padding, str):
            raise ValueError(f"{type(self).__name__}: padding={padding!r} is not supported, only integer padding")
        if padding_mode != "zeros":
            raise ValueError(f'Only "zeros" padding mode is supported for {type(self).__name__}')
        super().__init__(
            in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias, padding_mode, device, dtype
        )
        self.output_padding = ntuple(output_padding, self._nsp)

    def _weight_shape(self, in_channels: int, out_channels: int, groups: int) -> tuple:
        return (in_channels, out_channels // groups) + self.kernel_size

    def _output_padding(self, input, output_size) -> tuple:
        """output_padding, or the one that gives `output_size` (spatial sizes, or with batch and channels)."""
        n = self._nsp
        if output_size is None:
            return self.output_padding
        size = [int(v) for v in output_size]
        lead = 2 if input.ndim == n + 2 else 1
        if len(size) == lead + n:
            size = size[lead:]
        if len(size) != n:
            raise ValueError(
                f"ConvTranspose{n}D: for {input.ndim}D input, output_size must have {n} or {lead + n} elements "
                f"(got {len(size)})"
            )
        spatial = tuple(input.shape[input.ndim - n :])
        lo = [
            (i - 1) * s - 2 * p + d * (k - 1) + 1
            for i, s, p, d, k in zip(spatial, self.stride, self.padding, self.dilation, self.kernel_size)
        ]
        hi = [m + s - 1 for m, s in zip(lo, self.stride)]
        if any(not a <= o <= b for o, a, b in zip(size, lo, hi)):
            raise ValueError(
                f"requested an output size of {tuple(size)}, but valid sizes range from {lo} to {hi} "
                f"(for an input of {list(spatial)})"
            )
        return tuple(o - a for o, a in zip(size, lo))

    def forward(self, input, output_size=None):
        return F._conv_transpose(
            input,
            self.weight,
            self.bias,
            self.stride,
            self.padding,
            self._output_padding(input, output_size),
            self.groups,
            self.dilation,
            self._nsp,
        )


class ConvTranspose1d(_ConvTransposeNd):
    _nsp = 1


class ConvTranspose2d(_ConvTransposeNd):
    _nsp = 2


class ConvTranspose3d(_ConvTransposeNd):
    _nsp = 3
