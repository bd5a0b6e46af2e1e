"""`torch.cuda` as seen from a CPU-only library: no device is available (code that picks its device with
`'cuda' if torch.cuda.is_available() else 'cpu'` runs on the CPU)."""

from __future__ import annotations

from . import amp  # noqa: F401  (torch.cuda.amp: deprecated aliases of graphnn.amp)


def is_available() -> bool:
    return False


def device_count() -> int:
    return 0


def is_bf16_supported(including_emulation: bool = True) -> bool:
    return False


def manual_seed(seed: int) -> None:
    """Seeds nothing: there is no CUDA generator (graphnn.manual_seed seeds graphnn's)."""


manual_seed_all = manual_seed


def synchronize(device=None) -> None:
    """Nothing to wait for."""


def empty_cache() -> None:
    """No device memory to free."""


def memory_allocated(device=None) -> int:
    """0: no CUDA memory (the same for the other memory counters)."""
    return 0


max_memory_allocated = memory_reserved = max_memory_reserved = memory_allocated


def reset_peak_memory_stats(device=None) -> None:
    """Nothing to reset."""


reset_max_memory_allocated = reset_peak_memory_stats
