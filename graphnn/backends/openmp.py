"""`torch.backends.openmp`: graphnn's kernels use their own thread pool, not OpenMP."""

from __future__ import annotations


def is_available() -> bool:
    return False
