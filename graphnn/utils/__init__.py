"""graphnn.utils: data loading (graphnn.utils.data) and checkpointing (graphnn.utils.checkpoint), as torch.utils."""

from . import _pytree, checkpoint, data  # noqa: F401 (torch.utils._pytree)

__all__ = ["checkpoint", "data"]
