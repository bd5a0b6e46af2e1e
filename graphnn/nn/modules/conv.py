"""Conv1d, Conv2d, Conv3d."""

from __future__ import annotations

import math

from graphnn.core.tensor import empty
from graphnn.core.attrs import ntuple
from .. import functional as F
from .. import init
from ..parameter import Parameter
from ._factory import factory_dtype
from .module import Module


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
        if padding_mode != "zeros":
            raise NotImplementedError(f"padding_mode={padding_mode!r} is not supported yet")
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        self.kernel_size, self.stride, self.dilation = ntuple(kernel_size, n), ntuple(stride, n), ntuple(dilation, n)
        self.padding = padding if isinstance(padding, str) else ntuple(padding, n)
        self.padding_mode = padding_mode
        self.weight = Parameter(empty(out_channels, in_channels // groups, *self.kernel_size, dtype=dtype))
        if bias:
            self.bias = Parameter(empty(out_channels, dtype=dtype))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in, _ = init._calculate_fan_in_and_fan_out(self.weight)
            if fan_in:
                bound = 1 / math.sqrt(fan_in)
                init.uniform_(self.bias, -bound, bound)

    def forward(self, input):
        return F._conv(input, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups, self._nsp)

    def extra_repr(self) -> str:
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        if self.padding != (0,) * self._nsp:
            s += f", padding={self.padding!r}"
        if self.dilation != (1,) * self._nsp:
            s += f", dilation={self.dilation}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        return s


class Conv1d(_ConvNd):
    _nsp = 1


class Conv2d(_ConvNd):
    _nsp = 2


class Conv3d(_ConvNd):
    _nsp = 3
