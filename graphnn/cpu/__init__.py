"""`torch.cpu`: the one device graphnn computes on."""

from __future__ import annotations

from . import amp  # noqa: F401  (torch.cpu.amp: deprecated aliases of graphnn.amp)


def is_available() -> bool:
    return True


def device_count() -> int:
    return 1


def synchronize(device=None) -> None:
    """Nothing to wait for: graphnn's calls return when their results are computed."""
