"""`torch.backends.cuda`: settings that take effect only on CUDA devices, accepted and ignored."""

from __future__ import annotations

import contextlib


class _MatmulSettings:
    """`torch.backends.cuda.matmul`: TF32 and reduced-precision switches of CUDA matrix products."""

    def __init__(self) -> None:
        self.allow_tf32 = False
        self.allow_fp16_reduced_precision_reduction = True
        self.allow_bf16_reduced_precision_reduction = True


matmul = _MatmulSettings()


def is_built() -> bool:
    """graphnn has no CUDA support."""
    return False


def flash_sdp_enabled() -> bool:
    return False


def mem_efficient_sdp_enabled() -> bool:
    return False


def math_sdp_enabled() -> bool:
    """Attention always runs graphnn's one CPU kernel."""
    return True


def cudnn_sdp_enabled() -> bool:
    return False


def enable_flash_sdp(enabled: bool) -> None:
    """Accepted: graphnn's attention has one implementation (flash_sdp_enabled() stays False)."""


enable_mem_efficient_sdp = enable_math_sdp = enable_cudnn_sdp = enable_flash_sdp


@contextlib.contextmanager
def sdp_kernel(
    enable_flash: bool = True, enable_math: bool = True, enable_mem_efficient: bool = True, enable_cudnn=True
):
    """The deprecated attention-backend switch (torch.nn.attention.sdpa_kernel's predecessor): accepted."""
    yield
