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
