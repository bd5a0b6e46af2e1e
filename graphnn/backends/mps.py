"""`torch.backends.mps` (Apple's GPUs): not built into graphnn, so never available."""

from __future__ import annotations


def is_available() -> bool:
    return False


def is_built() -> bool:
    return False
