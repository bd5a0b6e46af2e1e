"""Lazy modules: Linear, Conv and BatchNorm whose input size (in_features, in_channels, num_features) is taken from
the first input. Until then their parameters are UninitializedParameter objects; the first call (made eagerly, as
PyTorch's dry run) fills them in place (an optimizer built before holds the same objects) and the module becomes
the ordinary class (LazyLinear -> Linear), with that class's state_dict."""

from __future__ import annotations

import warnings

import numpy as np

from graphnn.core.tensor import Tensor, TraceError
from graphnn.compiler import tracer as _tracer
from ..parameter import Parameter
from .conv import Conv1d, Conv2d, Conv3d, ConvTranspose1d, ConvTranspose2d, ConvTranspose3d
from .normalization import InstanceNorm1d, InstanceNorm2d, InstanceNorm3d
from .linear import Linear
from .regularization import BatchNorm1d, BatchNorm2d, BatchNorm3d


class UninitializedParameter(Parameter):
    """A parameter whose shape is not known yet (a lazy module's, before its first call)."""

    def __repr__(self) -> str:
        return "<UninitializedParameter>"


class LazyModuleMixin:
    """Builds the module as `cls_to_become` with an input size of 0, and materializes it at the first call."""

    cls_to_become: type = None

    def __init__(self, *args, **kwargs):
        with warnings.catch_warnings():  # ("Initializing zero-element tensors is a no-op")
            warnings.simplefilter("ignore")
            self.cls_to_become.__init__(self, 0, *args, **kwargs)
        self._lazy_args = (args, kwargs)
        for name, p in list(self._parameters.items()):
            if p is not None:
                self._parameters[name] = UninitializedParameter(np.zeros((0,), p.dtype_name))

    def has_uninitialized_params(self) -> bool:
        return any(isinstance(p, UninitializedParameter) for p in self._parameters.values())

    def _input_size(self, input: Tensor) -> int:
        raise NotImplementedError

    def initialize_parameters(self, input: Tensor) -> None:
        """Give the parameters (and buffers) the shapes `input` implies, initialised as cls_to_become's."""
        if _tracer.current() is not None:
            raise TraceError(
                f"{type(self).__name__}: a lazy module takes its sizes from its first call, which must run eagerly "
                "(call it once on an example input before graphnn.compile)"
            )
        args, kwargs = self.__dict__.pop("_lazy_args")
        real = self.cls_to_become(self._input_size(input), *args, **kwargs)
        for name, p in self._parameters.items():
            if p is not None:
                src = real._parameters[name]
                p._init(np.array(src._data), False)
                p.__class__ = Parameter
                p.requires_grad_(True)
        for name in self._buffers:
            self._buffers[name] = real._buffers[name]
        for k, v in real.__dict__.items():
            if not k.startswith("_") and k != "training":
                object.__setattr__(self, k, v)
        self.__class__ = self.cls_to_become

    def forward(self, input, *args, **kwargs):
        self.initialize_parameters(input)
        return self.forward(input, *args, **kwargs)


class LazyLinear(LazyModuleMixin, Linear):
    cls_to_become = Linear

    def _input_size(self, input: Tensor) -> int:
        return input.shape[-1]


class _LazyConv(LazyModuleMixin):
    def _input_size(self, input: Tensor) -> int:
        nsp = self.cls_to_become._nsp
        return input.shape[1] if input.ndim == nsp + 2 else input.shape[0]


class LazyConv1d(_LazyConv, Conv1d):
    cls_to_become = Conv1d


class LazyConv2d(_LazyConv, Conv2d):
    cls_to_become = Conv2d


class LazyConv3d(_LazyConv, Conv3d):
    cls_to_become = Conv3d


class LazyConvTranspose1d(_LazyConv, ConvTranspose1d):
    cls_to_become = ConvTranspose1d


class LazyConvTranspose2d(_LazyConv, ConvTranspose2d):
    cls_to_become = ConvTranspose2d


class LazyConvTranspose3d(_LazyConv, ConvTranspose3d):
    cls_to_become = ConvTranspose3d


class _LazyInstanceNorm(LazyModuleMixin):
    def _input_size(self, input: Tensor) -> int:
        return input.shape[input.ndim - self.cls_to_become._nsp - 1]  # (batched or not: the axis before the spatial)


class LazyInstanceNorm1d(_LazyInstanceNorm, InstanceNorm1d):
    cls_to_become = InstanceNorm1d


class LazyInstanceNorm2d(_LazyInstanceNorm, InstanceNorm2d):
    cls_to_become = InstanceNorm2d


class LazyInstanceNorm3d(_LazyInstanceNorm, InstanceNorm3d):
    cls_to_become = InstanceNorm3d


class _LazyBatchNorm(LazyModuleMixin):
    def _input_size(self, input: Tensor) -> int:
        return input.shape[1]


class LazyBatchNorm1d(_LazyBatchNorm, BatchNorm1d):
    cls_to_become = BatchNorm1d


class LazyBatchNorm2d(_LazyBatchNorm, BatchNorm2d):
    cls_to_become = BatchNorm2d


class LazyBatchNorm3d(_LazyBatchNorm, BatchNorm3d):
    cls_to_become = BatchNorm3d
