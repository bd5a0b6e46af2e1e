"""Run under `mpirun -np 2`: FullyShardedDataParallel and fully_shard training, state dicts and optimizer state
dicts; each rank writes OUT/rank<r>.npz (parameters after training) and OUT/rank<r>.json (facts) for
tests/test_fsdp.py."""

from __future__ import annotations

import json
import sys

import numpy as np

import graphnn
import graphnn.distributed as dist
import graphnn.nn as nn
from graphnn.distributed.fsdp import (
    FullOptimStateDictConfig,
    FullStateDictConfig,
    FullyShardedDataParallel as FSDP,
    MixedPrecision,
    ShardingStrategy,
    StateDictType,
    fully_shard,
)
from graphnn.distributed.fsdp.wrap import ModuleWrapPolicy, size_based_auto_wrap_policy

from common import LR, MOMENTUM, loss_fn, model, params, shard_batches, train_on_shard

out_dir = sys.argv[1]
dist.init_process_group("mpi")
rank = dist.get_rank()
saved: dict = {}
facts: dict = {}


def train(wrap, compiled: bool = False) -> tuple:
    """SGD with momentum on this rank's shard from rank-dependent initial weights (the wrapper takes rank 0's)."""
    net = model(seed=rank)
    wrapped = wrap(net)
    opt, _ = train_on_shard(wrapped, rank, compiled)
    return params(net), wrapped, opt


def nested(net):
    net[0], net[2] = FSDP(net[0]), FSDP(net[2])
    return FSDP(net, auto_wrap_policy=ModuleWrapPolicy({nn.Linear}), sharding_strategy=ShardingStrategy.SHARD_GRAD_OP)


def fsdp2(net):
    for layer in (net[0], net[2]):
        fully_shard(layer)
    return fully_shard(net)


for name, wrap, compiled in (
    ("fsdp_eager", lambda m: FSDP(m, auto_wrap_policy=size_based_auto_wrap_policy), False),
    ("fsdp_compiled", FSDP, True),
    ("fsdp_nested", nested, False),
    ("fully_shard", fsdp2, False),
    ("fully_shard_compiled", fsdp2, True),
):
    values, wrapped, opt = train(wrap, compiled)
    for k, v in values.items():
        saved[f"{name}_{k.replace('_fsdp_wrapped_module.', '')}"] = v  # (names inside nested wrappers)

# state dicts: the wrapped module's names; rank0_only leaves the other ranks' empty; a round trip through load
values, wrapped, opt = train(FSDP)
facts["plain_keys"] = list(model().state_dict())
facts["fsdp_keys"] = list(wrapped.state_dict())
facts["named_parameters"] = [n for n, _ in wrapped.named_parameters()]
with FSDP.state_dict_type(
    wrapped,
    StateDictType.FULL_STATE_DICT,
    FullStateDictConfig(offload_to_cpu=True, rank0_only=True),
    FullOptimStateDictConfig(rank0_only=True),
):
    sd = wrapped.state_dict()
    osd = FSDP.optim_state_dict(wrapped, opt)
facts["rank0_only_keys"] = list(sd)
facts["optim_state_keys"] = sorted(osd.get("state", {}))
facts["optim_group_params"] = osd["param_groups"][0]["params"] if osd else []
full = FSDP.optim_state_dict(wrapped, opt)
fresh = FSDP(model(seed=5))
fresh.load_state_dict(wrapped.state_dict())
opt2 = graphnn.optim.SGD(fresh.parameters(), lr=LR, momentum=MOMENTUM)
opt2.load_state_dict(FSDP.optim_state_dict_to_load(fresh, opt2, full))
facts["reloaded_equal"] = all(
    np.array_equal(a.detach().numpy(), b.detach().numpy()) for a, b in zip(wrapped.parameters(), fresh.parameters())
)
facts["momentum_equal"] = all(
    np.array_equal(opt.state[a]["momentum_buffer"].numpy(), opt2.state[b]["momentum_buffer"].numpy())
    for a, b in zip(wrapped.parameters(), fresh.parameters())
)
x, y = shard_batches(rank)[0]
opt.zero_grad()
loss_fn(wrapped(x), y).backward()
facts["clip_norm"] = float(wrapped.clip_grad_norm_(0.01))
facts["clipped_norm"] = float(sum((p.grad**2).sum() for p in wrapped.parameters()).sqrt())

# gradient accumulation: no_sync (FSDP1) and set_requires_gradient_sync (FSDP2) sum locally, then average the sum
for kind in ("no_sync", "requires_gradient_sync"):
    net = model(seed=0)
    wrapped = FSDP(net, mixed_precision=MixedPrecision()) if kind == "no_sync" else fsdp2(net)
    b = shard_batches(rank)[:3]
    if kind == "no_sync":
        with wrapped.no_sync():
            loss_fn(wrapped(b[0][0]), b[0][1]).backward()
            loss_fn(wrapped(b[1][0]), b[1][1]).backward()
    else:
        wrapped.set_requires_gradient_sync(False)
        loss_fn(wrapped(b[0][0]), b[0][1]).backward()
        loss_fn(wrapped(b[1][0]), b[1][1]).backward()
        wrapped.set_requires_gradient_sync(True)
    loss_fn(wrapped(b[2][0]), b[2][1]).backward()
    saved[f"{kind}_grad"] = net[0].weight.grad.numpy().copy()

# FSDP2 checkpointing through torch.distributed.checkpoint.state_dict, object collectives, a compiled all_gather of
# flags, a device mesh
from graphnn.distributed.checkpoint.state_dict import (  # noqa: E402
    StateDictOptions,
    get_model_state_dict,
    get_optimizer_state_dict,
    set_model_state_dict,
    set_optimizer_state_dict,
)
from graphnn.distributed.device_mesh import init_device_mesh  # noqa: E402

values, wrapped, opt = train(fsdp2)
options = StateDictOptions(full_state_dict=True, cpu_offload=True)
msd, osd = get_model_state_dict(wrapped, options=options), get_optimizer_state_dict(wrapped, opt, options=options)
facts["dcp_keys"] = list(msd)
fresh = fsdp2(model(seed=7))
opt2 = graphnn.optim.SGD(fresh.parameters(), lr=LR, momentum=MOMENTUM)
set_model_state_dict(fresh, msd, options=options)
set_optimizer_state_dict(fresh, opt2, osd, options=options)
facts["dcp_reloaded"] = all(
    np.array_equal(a.detach().numpy(), b.full_tensor().detach().numpy())
    for a, b in zip(wrapped.parameters(), fresh.parameters())
) and all(
    np.array_equal(opt.state[a]["momentum_buffer"].numpy(), opt2.state[b]["momentum_buffer"].numpy())
    for a, b in zip(wrapped.parameters(), fresh.parameters())
)
gathered = [None] * 2 if rank == 0 else None
dist.gather_object({"rank": rank}, gathered, dst=0)
facts["gather_object"] = gathered
got = [None]
dist.scatter_object_list(got, [f"to {r}" for r in range(2)] if rank == 0 else None, src=0)
facts["scatter_object_list"] = got[0]


@graphnn.compile
def flags_of_all(flags):
    out = [graphnn.zeros(3, dtype=graphnn.bool) for _ in range(2)]
    dist.all_gather(out, flags)
    return graphnn.stack(out)


facts["compiled_bool_gather"] = flags_of_all(graphnn.tensor([True, rank == 1, False])).tolist()
auto = FSDP(model(), auto_wrap_policy=ModuleWrapPolicy({nn.Linear}))
facts["auto_wrapped"] = [len(FSDP.fsdp_modules(auto)), isinstance(auto.module[0], FSDP), list(auto.state_dict())]
mesh = init_device_mesh("cpu", (2,), mesh_dim_names=("dp",))
facts["mesh"] = [mesh.size(), mesh.get_rank(), mesh.get_local_rank("dp")]

np.savez(f"{out_dir}/rank{rank}.npz", **saved)
with open(f"{out_dir}/rank{rank}.json", "w") as f:
    json.dump(facts, f)
dist.destroy_process_group()
