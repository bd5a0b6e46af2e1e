"""`torch.backends.cudnn`: cuDNN switches, accepted and ignored (graphnn has no cuDNN)."""

from __future__ import annotations

enabled = True
benchmark = False
deterministic = False
allow_tf32 = True


def is_available() -> bool:
    return False


def version() -> None:
    return None
