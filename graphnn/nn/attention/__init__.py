"""torch.nn.attention: the choice of scaled_dot_product_attention's implementation. graphnn has one (its fused
attention kernel when compiled, the reference ops eagerly), so `sdpa_kernel` only checks its argument."""

from __future__ import annotations

import contextlib
from enum import IntEnum


class SDPBackend(IntEnum):
    """PyTorch's attention implementations (accepted by sdpa_kernel; graphnn runs its own for each)."""

    ERROR = -1
    MATH = 0
    FLASH_ATTENTION = 1
    EFFICIENT_ATTENTION = 2
    CUDNN_ATTENTION = 3
    OVERRIDEABLE = 4


@contextlib.contextmanager
def sdpa_kernel(backends, set_priority: bool = False):
    """Within: scaled_dot_product_attention as always (graphnn has one implementation for every backend)."""
    for b in backends if isinstance(backends, (list, tuple)) else [backends]:
        if not isinstance(b, SDPBackend):
            raise AssertionError("Backend must be an instance of SDPBackend")
    yield


__all__ = ["SDPBackend", "sdpa_kernel"]
