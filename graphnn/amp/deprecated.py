"""The deprecated per-device spellings `torch.cpu.amp` and `torch.cuda.amp`: `autocast` and `GradScaler` bound to
one device, warning (FutureWarning, as PyTorch) that `torch.amp.<name>(device, ...)` is the current spelling."""

from __future__ import annotations

import warnings

from .autocast_mode import autocast as _autocast
from .grad_scaler import GradScaler as _GradScaler


def device_spellings(device: str, default_dtype) -> tuple:
    """(autocast, GradScaler) of `torch.<device>.amp`; autocast's dtype defaults to `default_dtype`."""

    def deprecated(name: str) -> None:
        warnings.warn(
            f"`torch.{device}.amp.{name}(args...)` is deprecated. "
            f"Please use `torch.amp.{name}('{device}', args...)` instead.",
            FutureWarning,
            stacklevel=3,
        )

    class autocast(_autocast):
        def __init__(self, enabled: bool = True, dtype=default_dtype, cache_enabled: bool = True):
            deprecated("autocast")
            super().__init__(device, dtype=dtype, enabled=enabled, cache_enabled=cache_enabled)

    class GradScaler(_GradScaler):
        def __init__(
            self,
            init_scale: float = 2.0**16,
            growth_factor: float = 2.0,
            backoff_factor: float = 0.5,
            growth_interval: int = 2000,
            enabled: bool = True,
        ):
            deprecated("GradScaler")
            super().__init__(device, init_scale, growth_factor, backoff_factor, growth_interval, enabled)

    for cls in (autocast, GradScaler):
        cls.__module__, cls.__qualname__ = f"graphnn.{device}.amp", cls.__name__
    return autocast, GradScaler
