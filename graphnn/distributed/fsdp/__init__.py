"""torch.distributed.fsdp: FullyShardedDataParallel (FSDP1) and fully_shard (FSDP2) on graphnn's data parallelism
(whole parameters on every rank, gradients averaged: PyTorch's results without the memory saving)."""

from .fully_shard import FSDPModule, fully_shard
from .fully_sharded_data_parallel import (
    BackwardPrefetch,
    CPUOffload,
    FullOptimStateDictConfig,
    FullStateDictConfig,
    FullyShardedDataParallel,
    LocalOptimStateDictConfig,
    LocalStateDictConfig,
    MixedPrecision,
    OptimStateDictConfig,
    OptimStateKeyType,
    ShardedOptimStateDictConfig,
    ShardedStateDictConfig,
    ShardingStrategy,
    StateDictConfig,
    StateDictType,
)
from . import wrap
from .. import tensor as _tensor  # noqa: F401  (parameters answer DTensor's full_tensor() / to_local())

MixedPrecisionPolicy = MixedPrecision
