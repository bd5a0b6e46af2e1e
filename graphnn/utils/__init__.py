"""graphnn.utils: data loading (graphnn.utils.data) and checkpointing (graphnn.utils.checkpoint), as torch.utils."""

from . import checkpoint, data

__all__ = ["checkpoint", "data"]
