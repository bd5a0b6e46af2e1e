"""`torch.amp` for a float32 CPU library: `autocast` regions and `GradScaler`, as mixed-precision programs use them.

graphnn computes float32 in float32, so an autocast region runs its ops as outside it (with one warning saying
so), and a GradScaler scales losses and unscales gradients exactly as PyTorch's does on the CPU, or passes
everything through when disabled (and, as in PyTorch, when it is asked for CUDA, which is absent).
"""

import functools

from .autocast_mode import autocast, get_autocast_dtype, is_autocast_enabled
from .grad_scaler import GradScaler


def is_autocast_available(device_type: str) -> bool:
    """Can autocast run on device_type: the CPU (graphnn's only device)."""
    return device_type == "cpu"


def custom_fwd(fwd=None, *, device_type: str = "cpu", cast_inputs=None):
    """Decorator of a custom Function's forward (torch.amp.custom_fwd): with float32 computed in float32 there is
    nothing to cast, so forward runs as written."""
    if fwd is None:
        return functools.partial(custom_fwd, device_type=device_type, cast_inputs=cast_inputs)
    return fwd


def custom_bwd(bwd=None, *, device_type: str = "cpu"):
    """Decorator of a custom Function's backward (torch.amp.custom_bwd): runs as written (see custom_fwd)."""
    if bwd is None:
        return functools.partial(custom_bwd, device_type=device_type)
    return bwd


__all__ = [
    "GradScaler",
    "autocast",
    "custom_bwd",
    "custom_fwd",
    "get_autocast_dtype",
    "is_autocast_available",
    "is_autocast_enabled",
]
