"""graphnn.utils: data loading (graphnn.utils.data) and checkpointing (graphnn.utils.checkpoint), as torch.utils."""

from . import _pytree, checkpoint, data  # noqa: F401 (torch.utils._pytree)

__all__ = ["checkpoint", "data"]


def __getattr__(name: str):
    if name == "hooks":  # (torch.utils.hooks: imported on first use, after graphnn.nn)
        import importlib

        return importlib.import_module("graphnn.utils.hooks")
    raise AttributeError(f"module 'graphnn.utils' has no attribute {name!r}")
