"""`torch.accelerator` as seen from a CPU-only library: there is none, so code that picks its device with
`torch.accelerator.current_accelerator() if torch.accelerator.is_available() else "cpu"` runs on the CPU."""

from __future__ import annotations


def is_available() -> bool:
    return False


def current_accelerator(check_available: bool = False) -> None:
    """The current accelerator's device, or None: there is none."""
    return None


def device_count() -> int:
    return 0


def synchronize(device=None) -> None:
    """Nothing to wait for."""
