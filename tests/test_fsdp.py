"""FullyShardedDataParallel and fully_shard (graphnn.distributed.fsdp) on 2 MPI ranks (tests/distributed/
fsdp_worker.py): training equals one process on the union of the ranks' batches, eager and compiled, wrapped whole,
nested or per layer; state dicts carry the wrapped module's names (rank0_only: rank 0's only); optimizer state
dicts are keyed by those names and load back; clip_grad_norm_ and gradient accumulation as PyTorch's."""

from __future__ import annotations

import numpy as np
import pytest

from test_distributed import _union_training, run_worker  # (puts tests/distributed/ on the path)
from tolerance import assert_close


@pytest.fixture(scope="module")
def fsdp_run(tmp_path_factory):
    return run_worker(tmp_path_factory, "fsdp_worker.py")


@pytest.mark.parametrize("name", ["fsdp_eager", "fsdp_compiled", "fsdp_nested", "fully_shard", "fully_shard_compiled"])
def test_sharded_training_equals_one_process_on_the_union(fsdp_run, name):
    want, err = _union_training()
    first = fsdp_run[0][0]
    for r, (saved, _) in enumerate(fsdp_run):
        for pname, value in want.items():
            got = saved[f"{name}_{pname}"]
            assert_close(got, value, 2 * err[pname], f"rank {r} {name} {pname}")
            np.testing.assert_array_equal(got, first[f"{name}_{pname}"], err_msg=f"rank {r} != rank 0")


def test_state_dicts_and_optimizer_state_dicts(fsdp_run):
    for r, (_, facts) in enumerate(fsdp_run):
        assert facts["fsdp_keys"] == facts["plain_keys"]  # no wrapper prefix, as PyTorch's full state dict
        assert facts["named_parameters"] == ["_fsdp_wrapped_module." + k for k in facts["plain_keys"]]
        assert facts["rank0_only_keys"] == (facts["plain_keys"] if r == 0 else [])
        assert facts["optim_state_keys"] == (sorted(facts["plain_keys"]) if r == 0 else [])
        assert facts["optim_group_params"] == (facts["plain_keys"] if r == 0 else [])
        assert facts["reloaded_equal"] and facts["momentum_equal"]


def test_clip_grad_norm_method(fsdp_run):
    norms = [facts["clip_norm"] for _, facts in fsdp_run]
    assert norms[0] == norms[1] > 0.01  # the averaged gradients' norm: the same on every rank
    for _, facts in fsdp_run:
        assert facts["clipped_norm"] == pytest.approx(0.01, rel=1e-5)


def test_gradient_accumulation_sums_locally_then_averages(fsdp_run):
    """Both ranks end with the same gradient: the average over the ranks of each rank's three-batch sum."""
    for kind in ("no_sync", "requires_gradient_sync"):
        a, b = (saved[f"{kind}_grad"] for saved, _ in fsdp_run)
        np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(fsdp_run[0][0]["no_sync_grad"], fsdp_run[0][0]["requires_gradient_sync_grad"], rtol=1e-6)


def test_distributed_checkpoint_state_dicts_and_object_collectives(fsdp_run):
    for r, (_, facts) in enumerate(fsdp_run):
        assert facts["dcp_keys"] == facts["plain_keys"] and facts["dcp_reloaded"]
        assert facts["gather_object"] == ([{"rank": 0}, {"rank": 1}] if r == 0 else None)
        assert facts["scatter_object_list"] == f"to {r}"
        assert facts["compiled_bool_gather"] == [[True, False, False], [True, True, False]]
        assert facts["mesh"] == [2, r, r]
        # an auto-wrap policy wraps the submodules it picks (each gradient still exchanged once)
        assert facts["auto_wrapped"] == [3, True, facts["plain_keys"]]
