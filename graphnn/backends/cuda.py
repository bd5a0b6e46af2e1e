"""`torch.backends.cuda`: settings that take effect only on CUDA devices, accepted and ignored."""

from __future__ import annotations


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
