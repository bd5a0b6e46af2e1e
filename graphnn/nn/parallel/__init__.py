"""graphnn.nn.parallel: DistributedDataParallel (data-parallel training across processes on MPI), and DataParallel
(on the CPU, with no devices to spread a batch over, it runs the module itself, as PyTorch's does)."""

from .data_parallel import DataParallel, data_parallel
from .distributed import DistributedDataParallel

__all__ = ["DataParallel", "DistributedDataParallel", "data_parallel"]
