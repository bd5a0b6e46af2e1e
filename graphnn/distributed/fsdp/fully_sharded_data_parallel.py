"""FullyShardedDataParallel (PyTorch's FSDP1 API) on graphnn's data parallelism.

Sharding is PyTorch's way to fit a model's parameters, gradients and optimizer state in memory split across the
ranks; the arithmetic is data parallelism's: every rank's update uses the gradient averaged over the ranks. graphnn
keeps the full model on every rank and averages the gradients as DistributedDataParallel does (the same results,
without the memory saving), with FSDP's constructor, state-dict types (full state dicts without wrapper prefixes,
rank0_only), optimizer state dicts keyed by parameter names, clip_grad_norm_, summon_full_params and no_sync.
Options that only move memory (sharding strategies, CPU offload, prefetching, limit_all_gathers) are accepted and
change nothing; an auto_wrap_policy wraps the submodules it picks, as PyTorch's; MixedPrecision computes in float32
(with a warning, as autocast)."""

from __future__ import annotations

import contextlib
import enum
import warnings
from collections import OrderedDict
from dataclasses import dataclass

from graphnn.nn.modules.module import Module
from graphnn.nn.parallel.distributed import DistributedDataParallel, assign_buckets

WRAPPED = "_fsdp_wrapped_module"
_PREFIX = WRAPPED + "."


class ShardingStrategy(enum.Enum):
    FULL_SHARD = 1
    SHARD_GRAD_OP = 2
    NO_SHARD = 3
    HYBRID_SHARD = 4
    _HYBRID_SHARD_ZERO2 = 5


class BackwardPrefetch(enum.Enum):
    BACKWARD_PRE = 1
    BACKWARD_POST = 2


class StateDictType(enum.Enum):
    FULL_STATE_DICT = 1
    LOCAL_STATE_DICT = 2
    SHARDED_STATE_DICT = 3


class OptimStateKeyType(enum.Enum):
    PARAM_NAME = 1
    PARAM_ID = 2


@dataclass
class CPUOffload:
    offload_params: bool = False


@dataclass
class MixedPrecision:
    param_dtype: object = None
    reduce_dtype: object = None
    buffer_dtype: object = None
    keep_low_precision_grads: bool = False
    cast_forward_inputs: bool = False
    cast_root_forward_inputs: bool = True


@dataclass
class StateDictConfig:
    offload_to_cpu: bool = False


@dataclass
class FullStateDictConfig(StateDictConfig):
    rank0_only: bool = False


@dataclass
class LocalStateDictConfig(StateDictConfig):
    pass


@dataclass
class ShardedStateDictConfig(StateDictConfig):
    _use_dtensor: bool = False


@dataclass
class OptimStateDictConfig:
    offload_to_cpu: bool = True


@dataclass
class FullOptimStateDictConfig(OptimStateDictConfig):
    rank0_only: bool = False


@dataclass
class LocalOptimStateDictConfig(OptimStateDictConfig):
    offload_to_cpu: bool = False


@dataclass
class ShardedOptimStateDictConfig(OptimStateDictConfig):
    _use_dtensor: bool = False


_warned_precision = [False]


def _rank() -> int:
    from graphnn import distributed as dist

    return dist.get_rank() if dist.is_initialized() else 0


def gradient_engine(module: Module, process_group=None) -> DistributedDataParallel:
    """The gradient averaging of `module`'s parameters that no engine inside it averages already (a module wrapped
    inside a wrapped module: each gradient is exchanged once); its parameters come from rank 0."""
    engine = DistributedDataParallel(module, process_group=process_group, broadcast_buffers=False)
    engine.find_unused_parameters = (
        True  # (a frozen or unused layer of a large model is common; PyTorch's FSDP allows it)
    )
    mine = [(n, p) for n, p in engine._grad_params if not getattr(p, "_fsdp_managed", False)]
    for _, p in mine:
        p._fsdp_managed = True
    engine._grad_params = mine
    engine._buckets = assign_buckets(mine, engine.bucket_bytes_cap)
    return engine


class FullyShardedDataParallel(Module):
    """`FSDP(module, ...)`: see the module docstring. `model.module` is the wrapped module."""

    def __init__(
        self,
        module: Module,
        process_group=None,
        sharding_strategy=None,
        cpu_offload=None,
        auto_wrap_policy=None,
        backward_prefetch=BackwardPrefetch.BACKWARD_PRE,
        mixed_precision=None,
        ignored_modules=None,
        param_init_fn=None,
        device_id=None,
        sync_module_states: bool = False,
        forward_prefetch: bool = False,
        limit_all_gathers: bool = True,
        use_orig_params: bool = False,
        ignored_states=None,
        device_mesh=None,
    ):
        super().__init__()
        if not isinstance(module, Module):
            raise TypeError(f"FullyShardedDataParallel wraps a graphnn.nn.Module, got {type(module).__name__}")
        if mixed_precision is not None and not _warned_precision[0]:
            _warned_precision[0] = True
            warnings.warn(
                "FullyShardedDataParallel: graphnn computes in float32; MixedPrecision is accepted and changes nothing",
                UserWarning,
                stacklevel=2,
            )
        if param_init_fn is not None:
            param_init_fn(module)
        if auto_wrap_policy is not None:  # submodules the policy picks become FSDP instances of their own
            _auto_wrap(
                module, auto_wrap_policy, {"process_group": process_group, "sharding_strategy": sharding_strategy}
            )
        self.add_module(WRAPPED, module)
        object.__setattr__(self, "_engine", gradient_engine(module, process_group))
        object.__setattr__(self, "sharding_strategy", sharding_strategy or ShardingStrategy.FULL_SHARD)
        object.__setattr__(self, "_state_dict_type", (StateDictType.FULL_STATE_DICT, FullStateDictConfig(), None))

    @property
    def module(self) -> Module:
        return self._modules[WRAPPED]

    def forward(self, *inputs, **kwargs):
        return self._engine(*inputs, **kwargs)

    @contextlib.contextmanager
    def no_sync(self):
        """Backward passes inside accumulate gradients locally; the first one after it averages the sum."""
        engines = [m._engine for m in self.modules() if isinstance(m, FullyShardedDataParallel)]
        olds = [e.require_backward_grad_sync for e in engines]
        with contextlib.ExitStack() as stack:
            for e in engines:
                stack.enter_context(e.no_sync())
            try:
                yield
            finally:
                for e, old in zip(engines, olds):
                    e.require_backward_grad_sync = old

    def clip_grad_norm_(self, max_norm: float, norm_type: float = 2.0):
        """Clip the gradients of every parameter by their joint norm (averaged gradients: the same on every rank);
        returns the norm before clipping."""
        from graphnn.nn.utils import clip_grad_norm_

        return clip_grad_norm_(self.parameters(), max_norm, norm_type)

    # -- state dicts ---------------------------------------------------------------------------------------------
    def state_dict(self, *args, destination=None, prefix: str = "", keep_vars: bool = False) -> OrderedDict:
        """The wrapped module's state dict under its own names (no wrapper prefix); with a FULL_STATE_DICT
        rank0_only config, empty on the other ranks."""
        if args:
            destination, prefix, keep_vars = (list(args) + [destination, prefix, keep_vars][len(args) :])[:3]
        out = OrderedDict() if destination is None else destination
        kind, config, _ = self._state_dict_type
        if getattr(config, "rank0_only", False) and _rank() != 0:
            return out
        self.module.state_dict(destination=out, prefix=prefix, keep_vars=keep_vars)
        return out

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        """Load a state dict with the wrapped module's names (or the wrapper's)."""
        clean = {_strip(k): k for k in Module.state_dict(self, keep_vars=True)}
        mapped = OrderedDict((clean.get(_strip(k), k), v) for k, v in state_dict.items())
        return Module.load_state_dict(self, mapped, strict=strict, assign=assign)

    @staticmethod
    @contextlib.contextmanager
    def state_dict_type(module, state_dict_type, state_dict_config=None, optim_state_dict_config=None):
        """Within it, state_dict() of module's FSDP instances follows the given type and config."""
        olds = []
        for m in FullyShardedDataParallel.fsdp_modules(module):
            olds.append((m, m._state_dict_type))
            FullyShardedDataParallel.set_state_dict_type(m, state_dict_type, state_dict_config, optim_state_dict_config)
        try:
            yield
        finally:
            for m, old in olds:
                object.__setattr__(m, "_state_dict_type", old)

    @staticmethod
    def set_state_dict_type(module, state_dict_type, state_dict_config=None, optim_state_dict_config=None):
        default = {
            StateDictType.FULL_STATE_DICT: FullStateDictConfig,
            StateDictType.LOCAL_STATE_DICT: LocalStateDictConfig,
        }
        config = state_dict_config or default.get(state_dict_type, ShardedStateDictConfig)()
        for m in FullyShardedDataParallel.fsdp_modules(module):
            object.__setattr__(m, "_state_dict_type", (state_dict_type, config, optim_state_dict_config))

    @staticmethod
    def fsdp_modules(module, root_only: bool = False) -> list:
        found = [m for m in module.modules() if isinstance(m, FullyShardedDataParallel)]
        return found[:1] if root_only else found

    @staticmethod
    def optim_state_dict(model, optim, optim_state_dict=None, group=None) -> dict:
        """The optimizer's state dict keyed by parameter names (the wrapped module's), as PyTorch's FSDP gives;
        empty on ranks other than 0 under a rank0_only optimizer config."""
        osd = optim.state_dict() if optim_state_dict is None else optim_state_dict
        roots = FullyShardedDataParallel.fsdp_modules(model, root_only=True)
        config = roots[0]._state_dict_type[2] if roots else None
        if getattr(config, "rank0_only", False) and _rank() != 0:
            return {}
        names = _param_names(model, optim)
        state = {names[i]: v for i, v in osd["state"].items()}
        groups = [dict(g, params=[names[i] for i in g["params"]]) for g in osd["param_groups"]]
        return {"state": state, "param_groups": groups}

    @staticmethod
    def optim_state_dict_to_load(
        model, optim, optim_state_dict, is_named_optimizer=False, load_directly=False, group=None
    ):
        """A name-keyed optimizer state dict (optim_state_dict's) as optim.load_state_dict takes it."""
        names = _param_names(model, optim)
        ids = {n: i for i, n in names.items()}
        state = {ids[n]: v for n, v in optim_state_dict["state"].items()}
        groups = [dict(g, params=[ids[n] for n in g["params"]]) for g in optim_state_dict["param_groups"]]
        out = {"state": state, "param_groups": groups}
        if load_directly:
            optim.load_state_dict(out)
        return out

    @staticmethod
    def full_optim_state_dict(model, optim, optim_input=None, rank0_only: bool = True, group=None) -> dict:
        """The optimizer's whole state dict (on rank 0 only with rank0_only)."""
        return {} if rank0_only and _rank() != 0 else optim.state_dict()

    @staticmethod
    def shard_full_optim_state_dict(full_optim_state_dict, model, optim_input=None, optim=None) -> dict:
        return full_optim_state_dict

    @staticmethod
    def scatter_full_optim_state_dict(full_optim_state_dict, model, optim_input=None, optim=None, group=None) -> dict:
        """Rank 0's full optimizer state dict, on every rank."""
        from graphnn import distributed as dist

        box = [full_optim_state_dict]
        if dist.is_initialized():
            dist.broadcast_object_list(box, 0)
        return box[0]

    @staticmethod
    def rekey_optim_state_dict(optim_state_dict, optim_state_key_type, model, optim_input=None, optim=None) -> dict:
        return optim_state_dict

    @staticmethod
    @contextlib.contextmanager
    def summon_full_params(
        module, recurse=True, writeback=True, rank0_only=False, offload_to_cpu=False, with_grads=False
    ):
        """The parameters are whole on every rank already: a context that changes nothing."""
        yield


def _call_policy(policy, module, recurse: bool, numel: int) -> bool:
    return bool(policy(module=module, recurse=recurse, nonwrapped_numel=numel))


def _auto_wrap(module: Module, policy, kwargs: dict) -> int:
    """Wrap, bottom-up, the children of module the policy picks (as PyTorch's recursive wrapping: a module is entered
    when the policy says recurse, and wrapped when it says so for the parameters not wrapped below it); returns the
    number of module's parameters left unwrapped."""
    left = sum(p.numel() for p in module.parameters(recurse=False))
    for name, child in list(module.named_children()):
        if child is None or isinstance(child, FullyShardedDataParallel):
            continue
        numel = sum(p.numel() for p in child.parameters())
        if _call_policy(policy, child, True, numel):
            numel = _auto_wrap(child, policy, kwargs)
        if _call_policy(policy, child, False, numel):
            setattr(module, name, FullyShardedDataParallel(child, **kwargs))
        else:
            left += numel
    return left


def _strip(key: str) -> str:
    return key.replace(_PREFIX, "")


def _param_names(model, optim) -> dict:
    """The optimizer's parameter indices (state_dict's numbering) -> the model's names for them."""
    by_id = {id(p): _strip(n) for n, p in model.named_parameters()}
    names, i = {}, 0
    for g in optim.param_groups:
        for p in g["params"]:
            names[i] = by_id.get(id(p), str(i))
            i += 1
    return names
