"""`torch.cuda.amp`: PyTorch's deprecated spellings of `torch.amp.autocast('cuda')` and `GradScaler('cuda')`.

Without CUDA both disable themselves with a warning, as in PyTorch, so `GradScaler(enabled=False)` (or enabled,
when CUDA is absent) passes scale/unscale_/step/update through."""

from __future__ import annotations

import warnings

from graphnn.amp import GradScaler as _GradScaler
from graphnn.amp import autocast as _autocast
from graphnn.core.dtypes import float16


def _deprecated(name: str) -> None:
    warnings.warn(
        f"`torch.cuda.amp.{name}(args...)` is deprecated. Please use `torch.amp.{name}('cuda', args...)` instead.",
        FutureWarning,
        stacklevel=3,
    )


class autocast(_autocast):
    def __init__(self, enabled: bool = True, dtype=float16, cache_enabled: bool = True):
        _deprecated("autocast")
        super().__init__("cuda", dtype=dtype, enabled=enabled, cache_enabled=cache_enabled)


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
        super().__init__("cuda", init_scale, growth_factor, backoff_factor, growth_interval, enabled)
