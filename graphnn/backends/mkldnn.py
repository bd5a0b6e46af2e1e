"""`torch.backends.mkldnn`: oneDNN, which graphnn does not use (its own kernels run on the CPU)."""

from __future__ import annotations

enabled = False


def is_available() -> bool:
    return False
