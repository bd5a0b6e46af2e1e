"""graphnn.utils: data loading (graphnn.utils.data), as torch.utils."""

from . import data

__all__ = ["data"]
