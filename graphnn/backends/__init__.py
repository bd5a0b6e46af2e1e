"""`torch.backends` as seen from a CPU-only library: the switches scripts set (`cudnn.benchmark = True`) are
accepted and change nothing, and no GPU backend is available (`mps.is_available()` is False)."""

from . import cudnn, mps  # noqa: F401
