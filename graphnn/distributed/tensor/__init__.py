"""torch.distributed.tensor: graphnn's sharded models keep whole parameters on every rank, so nothing is a DTensor
(`isinstance(p, DTensor)` is False); distribute_tensor returns the tensor itself, and the DTensor methods programs
call on parameters (`full_tensor()`, `to_local()`) are the tensor itself too."""

from __future__ import annotations


class Placement:
    def is_shard(self, dim=None) -> bool:
        return False

    def is_replicate(self) -> bool:
        return False


class Shard(Placement):
    def __init__(self, dim: int):
        self.dim = dim

    def is_shard(self, dim=None) -> bool:
        return dim is None or dim == self.dim


class Replicate(Placement):
    def is_replicate(self) -> bool:
        return True


class Partial(Placement):
    def __init__(self, reduce_op: str = "sum"):
        self.reduce_op = reduce_op


class DTensor:
    """Never made by graphnn (see the module docstring); here for isinstance checks."""


def distribute_tensor(tensor, device_mesh=None, placements=None, **kwargs):
    return tensor


def _install() -> None:
    from graphnn.core.tensor import Tensor

    for name in ("full_tensor", "to_local"):
        if not hasattr(Tensor, name):
            setattr(Tensor, name, lambda self: self)


_install()
