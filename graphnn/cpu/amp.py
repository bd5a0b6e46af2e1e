"""`torch.cpu.amp`: PyTorch's deprecated spellings of `torch.amp.autocast('cpu')` and `GradScaler('cpu')`."""

from __future__ import annotations

import warnings

from graphnn.amp import GradScaler as _GradScaler
from graphnn.amp import autocast as _autocast
from graphnn.core.dtypes import bfloat16


def _deprecated(name: str) -> None:
    warnings.warn(
        f"`torch.cpu.amp.{name}(args...)` is deprecated. Please use `torch.amp.{name}('cpu', args...)` instead.",
        FutureWarning,
        stacklevel=3,
    )


class autocast(_autocast):
    def __init__(self, enabled: bool = True, dtype=bfloat16, cache_enabled: bool = True):
        _deprecated("autocast")
        super().__init__("cpu", dtype=dtype, enabled=enabled, cache_enabled=cache_enabled)


class GradScaler(_GradScaler):
    def __init__(
        self,
        init_scale: float = 2.0**16,
        growth_factor: float = 2.0,
        backoff_factor: float = 0.5,
        growth_interval: int = 2000,
        enabled: bool = True,
    ):
        _deprecated("GradScaler")
        super().__init__("cpu", init_scale, growth_factor, backoff_factor, growth_interval, enabled)
