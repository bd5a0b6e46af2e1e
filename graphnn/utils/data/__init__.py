"""graphnn.utils.data: datasets, samplers and DataLoader with torch.utils.data's API."""

from graphnn.utils.generator import Generator
from .collate import collate, default_collate, default_collate_fn_map, default_convert
from .dataloader import DataLoader
from . import distributed
from .distributed import DistributedSampler
from .dataset import (
    ChainDataset,
    ConcatDataset,
    Dataset,
    IterableDataset,
    StackDataset,
    Subset,
    TensorDataset,
    random_split,
)
from .sampler import (
    BatchSampler,
    RandomSampler,
    Sampler,
    SequentialSampler,
    SubsetRandomSampler,
    WeightedRandomSampler,
)
import sys as _sys
import types as _types

import graphnn.utils.data.collate  # noqa: F401

from .worker import WorkerInfo, get_worker_info

__all__ = [
    "BatchSampler",
    "ChainDataset",
    "ConcatDataset",
    "DataLoader",
    "Dataset",
    "DistributedSampler",
    "Generator",
    "IterableDataset",
    "RandomSampler",
    "Sampler",
    "SequentialSampler",
    "StackDataset",
    "Subset",
    "SubsetRandomSampler",
    "TensorDataset",
    "WeightedRandomSampler",
    "WorkerInfo",
    "collate",
    "default_collate",
    "default_collate_fn_map",
    "default_convert",
    "get_worker_info",
    "random_split",
]

# torch.utils.data._utils.collate (where scripts extend default_collate_fn_map) is collate.py here
_utils = _types.ModuleType(__name__ + "._utils", "torch.utils.data._utils: collate is graphnn.utils.data.collate")
collate_module = _sys.modules[__name__ + ".collate"]
_utils.collate = collate_module
_sys.modules[_utils.__name__] = _utils
_sys.modules[_utils.__name__ + ".collate"] = collate_module
