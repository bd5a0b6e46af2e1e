"""`torch.mps` (Apple GPUs), never present here: seeding and synchronizing do nothing, so seed-everything helpers
run."""

from __future__ import annotations


def is_available() -> bool:
    return False


def manual_seed(seed: int) -> None:
    """Seeds nothing (graphnn.manual_seed seeds graphnn's generator)."""


def seed() -> None:
    """Seeds nothing."""


def synchronize() -> None:
    """Nothing to wait for."""


def empty_cache() -> None:
    """No device memory to free."""


def device_count() -> int:
    return 0
