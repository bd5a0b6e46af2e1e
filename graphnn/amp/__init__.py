"""`torch.amp` for a float32 CPU library: `autocast` regions and `GradScaler`, as mixed-precision programs use them.

graphnn computes float32 in float32, so an autocast region runs its ops as outside it (with one warning saying
so), and a GradScaler scales losses and unscales gradients exactly as PyTorch's does on the CPU, or passes
everything through when disabled (and, as in PyTorch, when it is asked for CUDA, which is absent).
"""

from .autocast_mode import autocast, get_autocast_dtype, is_autocast_enabled
from .grad_scaler import GradScaler

__all__ = ["GradScaler", "autocast", "get_autocast_dtype", "is_autocast_enabled"]
