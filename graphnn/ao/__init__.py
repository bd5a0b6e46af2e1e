"""torch.ao: its quantization namespace (graphnn/quantization.py)."""

from . import quantization  # noqa: F401
