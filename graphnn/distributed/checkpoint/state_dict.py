"""torch.distributed.checkpoint.state_dict: get / set model and optimizer state dicts of a (sharded) model. With
graphnn's whole parameters on every rank these are the model's own state dict (without wrapper prefixes) and the
optimizer's keyed by parameter names, as PyTorch's full state dicts are."""

from __future__ import annotations

from dataclasses import dataclass

from graphnn.distributed.fsdp.fully_sharded_data_parallel import FullyShardedDataParallel as _FSDP, _strip


@dataclass
class StateDictOptions:
    full_state_dict: bool = False
    cpu_offload: bool = False
    ignore_frozen_params: bool = False
    keep_submodule_prefixes: bool = True
    strict: bool = True
    broadcast_from_rank0: bool = False
    flatten_optimizer_state_dict: bool = False


def _clean(sd: dict) -> dict:
    """Keys without the wrappers' prefixes (FSDP's and DDP's, as PyTorch's full state dicts name them)."""
    out = type(sd)()
    for k, v in sd.items():
        k = _strip(k)
        out[k[len("module.") :] if k.startswith("module.") else k] = v
    return out


def get_model_state_dict(model, *, submodules=None, options: StateDictOptions | None = None) -> dict:
    sd = _clean(model.state_dict())
    if options is not None and options.ignore_frozen_params:
        frozen = {_strip(n) for n, p in model.named_parameters() if not p.requires_grad}
        sd = type(sd)((k, v) for k, v in sd.items() if k not in frozen)
    return sd


def set_model_state_dict(model, model_state_dict: dict, *, options: StateDictOptions | None = None):
    """Load a state dict named as get_model_state_dict names it (also with a wrapper's prefixes)."""
    strict = True if options is None else options.strict
    target = model.module if hasattr(model, "module") and not isinstance(model, _FSDP) else model
    return target.load_state_dict(_clean(model_state_dict), strict=strict)


def get_optimizer_state_dict(model, optimizers, *, submodules=None, options: StateDictOptions | None = None) -> dict:
    return _FSDP.optim_state_dict(model, optimizers)


def set_optimizer_state_dict(model, optimizers, optim_state_dict: dict, *, options: StateDictOptions | None = None):
    optimizers.load_state_dict(_FSDP.optim_state_dict_to_load(model, optimizers, optim_state_dict))


def get_state_dict(model, optimizers, *, submodules=None, options: StateDictOptions | None = None) -> tuple:
    return get_model_state_dict(model, options=options), get_optimizer_state_dict(model, optimizers, options=options)


def set_state_dict(model, optimizers, *, model_state_dict: dict, optim_state_dict: dict, options=None):
    keys = set_model_state_dict(model, model_state_dict, options=options)
    set_optimizer_state_dict(model, optimizers, optim_state_dict, options=options)
    return keys
