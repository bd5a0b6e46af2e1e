"""torch.nn.modules.batchnorm's names (code that groups parameters by `isinstance(m, _BatchNorm)` imports them from
here); the classes live in regularization.py, sync_batchnorm.py and lazy.py."""

from .lazy import LazyBatchNorm1d, LazyBatchNorm2d, LazyBatchNorm3d
from .regularization import BatchNorm1d, BatchNorm2d, BatchNorm3d, _BatchNorm
from .sync_batchnorm import SyncBatchNorm

_NormBase = _BatchNorm  # (PyTorch's base of batch and instance norm: running statistics and affine parameters)

__all__ = [
    "BatchNorm1d",
    "BatchNorm2d",
    "BatchNorm3d",
    "LazyBatchNorm1d",
    "LazyBatchNorm2d",
    "LazyBatchNorm3d",
    "SyncBatchNorm",
]
