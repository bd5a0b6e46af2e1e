"""torch.distributed.device_mesh: a mesh of the ranks (FSDP2 and tensor-parallel programs build one). graphnn's data
parallelism uses the whole world; a one-dimensional mesh over it is what fully_shard(mesh=...) accepts."""

from __future__ import annotations

import math


class DeviceMesh:
    """The ranks arranged in `mesh_shape` (row-major), on device_type 'cpu'."""

    def __init__(self, device_type: str, mesh, *, mesh_dim_names=None):
        import numpy as np

        from graphnn import distributed as dist

        self.device_type = device_type
        self.mesh = np.asarray(mesh.tolist() if hasattr(mesh, "tolist") else mesh, dtype=np.int64)
        self.mesh_dim_names = tuple(mesh_dim_names) if mesh_dim_names else None
        self._rank = dist.get_rank() if dist.is_initialized() else 0

    @property
    def ndim(self) -> int:
        return self.mesh.ndim

    @property
    def shape(self) -> tuple:
        return tuple(self.mesh.shape)

    def size(self, mesh_dim: int | None = None) -> int:
        return int(self.mesh.size) if mesh_dim is None else int(self.mesh.shape[mesh_dim])

    def get_rank(self) -> int:
        return self._rank

    def get_local_rank(self, mesh_dim=None) -> int:
        import numpy as np

        where = np.argwhere(self.mesh == self._rank)[0]
        dim = (
            0 if mesh_dim is None else (self.mesh_dim_names.index(mesh_dim) if isinstance(mesh_dim, str) else mesh_dim)
        )
        return int(where[dim])

    def get_group(self, mesh_dim=None):
        from graphnn import distributed as dist

        return dist.group.WORLD

    def __getitem__(self, names):
        return self

    def __repr__(self) -> str:
        return f"DeviceMesh('{self.device_type}', {self.mesh.tolist()})"


def init_device_mesh(device_type: str, mesh_shape: tuple, *, mesh_dim_names=None) -> DeviceMesh:
    """A mesh of mesh_shape over the world's ranks (their count must be its product)."""
    import numpy as np

    from graphnn import distributed as dist

    world = dist.get_world_size() if dist.is_initialized() else 1
    if math.prod(mesh_shape) != world:
        raise RuntimeError(
            f"init_device_mesh: mesh shape {tuple(mesh_shape)} does not hold the {world} ranks of the world"
        )
    return DeviceMesh(device_type, np.arange(world).reshape(mesh_shape), mesh_dim_names=mesh_dim_names)
