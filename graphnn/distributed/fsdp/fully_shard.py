"""`fully_shard(module)`: PyTorch's FSDP2 entry point. The module itself becomes an FSDPModule (its class gains
FSDPModule's methods) whose parameters' gradients are averaged across the ranks after each backward, as
FullyShardedDataParallel's (graphnn keeps whole parameters on every rank: plain tensors, not DTensors)."""

from __future__ import annotations

from graphnn.nn.modules.module import Module

from .fully_sharded_data_parallel import gradient_engine

_CLASSES: dict = {}


class FSDPModule:
    """The methods fully_shard adds to a module."""

    def reshard(self) -> None:
        """Parameters are whole on every rank: nothing to free."""

    def unshard(self, async_op: bool = False):
        return None

    def set_requires_gradient_sync(self, requires_gradient_sync: bool, *, recurse: bool = True) -> None:
        """False: backward passes accumulate gradients locally (gradient accumulation), as DDP's no_sync."""
        for m in self.modules() if recurse else [self]:
            engine = m.__dict__.get("_fsdp_engine")
            if engine is not None:
                engine.require_backward_grad_sync = bool(requires_gradient_sync)

    def set_reshard_after_backward(self, reshard_after_backward: bool, *, recurse: bool = True) -> None:
        pass

    def set_is_last_backward(self, is_last_backward: bool) -> None:
        pass

    def set_modules_to_forward_prefetch(self, modules) -> None:
        pass

    def set_modules_to_backward_prefetch(self, modules) -> None:
        pass


def fully_shard(
    module,
    *,
    mesh=None,
    reshard_after_forward=True,
    shard_placement_fn=None,
    mp_policy=None,
    offload_policy=None,
    ignored_params=None,
):
    """Make `module` (or each module of a list) data-parallel in place and return it."""
    if isinstance(module, (list, tuple)):
        return [fully_shard(m, mesh=mesh) for m in module]
    if not isinstance(module, Module):
        raise TypeError(f"fully_shard expects a graphnn.nn.Module, got {type(module).__name__}")
    if "_fsdp_engine" in module.__dict__:
        return module
    object.__setattr__(module, "_fsdp_engine", gradient_engine(module))
    cls = type(module)
    if cls not in _CLASSES:
        _CLASSES[cls] = type(f"FSDP{cls.__name__}", (FSDPModule, cls), {"__module__": cls.__module__})
    module.__class__ = _CLASSES[cls]
    return module
