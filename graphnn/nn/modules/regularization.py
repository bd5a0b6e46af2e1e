"""Dropout (elementwise and channel-wise) and batch normalization."""

from __future__ import annotations

import numpy as np

from graphnn.core.dtypes import get_default_dtype
from graphnn.core.tensor import Tensor
from .. import functional as F
from ._affine import register_affine, reset_affine
from ._factory import factory_dtype
from .module import Module


class Dropout(Module):
    def __init__(self, p: float = 0.5, inplace: bool = False):
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
        self.p, self.inplace = p, inplace

    def forward(self, input):
        return F.dropout(input, self.p, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}, inplace={self.inplace}"


class Dropout1d(Dropout):
    def forward(self, input):
        return F.dropout1d(input, self.p, self.training)


class Dropout2d(Dropout):
    def forward(self, input):
        return F.dropout2d(input, self.p, self.training)


class Dropout3d(Dropout):
    def forward(self, input):
        return F.dropout3d(input, self.p, self.training)


class AlphaDropout(Dropout):
    """Dropout for SELU networks: dropped elements take SELU's negative saturation, the output keeps mean and
    variance."""

    def forward(self, input):
        return F.alpha_dropout(input, self.p, self.training)


class FeatureAlphaDropout(Dropout):
    """AlphaDropout of whole channels (dimension 1)."""

    def forward(self, input):
        return F.feature_alpha_dropout(input, self.p, self.training)


class _BatchNorm(Module):
    _dims: tuple = (2, 3)

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: float | None = 0.1,
        affine: bool = True,
        track_running_stats: bool = True,
        device=None,
        dtype=None,
        *,
        bias: bool = True,
    ):
        super().__init__()
        dtype = factory_dtype(device, dtype, type(self).__name__)
        stats = dtype or get_default_dtype()  # (running statistics in the default dtype, as the affine parameters)
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.affine, self.track_running_stats = affine, track_running_stats
        register_affine(self, num_features, affine, bias, dtype)
        if track_running_stats:
            self.register_buffer("running_mean", Tensor._wrap(np.zeros(num_features, stats)))
            self.register_buffer("running_var", Tensor._wrap(np.ones(num_features, stats)))
            self.register_buffer("num_batches_tracked", Tensor._wrap(np.zeros((), "int64")))
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)
            self.register_buffer("num_batches_tracked", None)
        self.reset_parameters()

    def reset_running_stats(self) -> None:
        if self.track_running_stats:
            self.running_mean._data[...] = 0
            self.running_var._data[...] = 1
            self.num_batches_tracked._data[...] = 0

    def reset_parameters(self) -> None:
        self.reset_running_stats()
        reset_affine(self)

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing, unexpected, errors) -> None:
        """A state_dict without num_batches_tracked (saved before PyTorch 0.4.1 had it) loads with a count of 0."""
        key = prefix + "num_batches_tracked"
        if self.track_running_stats and key not in state_dict and prefix + "running_mean" in state_dict:
            state_dict[key] = Tensor._wrap(np.zeros((), "int64"))
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing, unexpected, errors)

    def forward(self, input):
        if input.ndim not in self._dims:
            raise ValueError(f"expected {' or '.join(f'{d}D' for d in self._dims)} input (got {input.ndim}D input)")
        return self._local(input)

    def _local(self, input):
        """Batch normalization with this process's statistics (and running statistics)."""
        return F.batch_norm(
            input,
            self.running_mean,
            self.running_var,
            self.weight,
            self.bias,
            self.training or self.running_mean is None,
            self.momentum,
            self.eps,
            self.num_batches_tracked,
        )

    def extra_repr(self) -> str:
        return (
            f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
            f"bias={self.bias is not None}, track_running_stats={self.track_running_stats}"
        )


class BatchNorm1d(_BatchNorm):
    _dims = (2, 3)


class BatchNorm2d(_BatchNorm):
    _dims = (4,)


class BatchNorm3d(_BatchNorm):
    _dims = (5,)
