"""graphnn.distributed, DistributedDataParallel and DistributedSampler.

The multi-process tests run worker scripts (tests/distributed/) under `mpirun -np 2`: they skip, with the reason,
when mpirun or mpi4py is missing, and fail instead under CI=true. What the workers compute is checked here:
collectives against their definitions, K steps of data-parallel SGD with momentum against one process training on
the union of the ranks' batches (within the rounding-error bound of that training: the ranks add the same terms in
another order, and their batches' means scale by powers of two, exactly as the union's), every rank ending
identical, gradient accumulation under no_sync, errors for tensors whose shapes differ between ranks, and a rank
that fails (an exception, SIGKILL, a hang) ending the job with a clear error in bounded time.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest

import graphnn
import graphnn.distributed as dist
from graphnn.utils.data import DistributedSampler
from oracle import ci
from tolerance import assert_close, recorded_bounds, sgd_trajectory

HERE = os.path.dirname(os.path.abspath(__file__))
WORKERS = os.path.join(HERE, "distributed")
sys.path.insert(0, WORKERS)
import common  # noqa: E402  (tests/distributed/common.py: the workers' model and data)

INSTALL = "apt-get install openmpi-bin libopenmpi-dev && pip install mpi4py"
# A failing rank must end the job well within this (MPI notices a dead rank at once; the hang case waits for its
# watchdog, HANG_TIMEOUT); the margin covers starting two interpreters on a loaded machine.
FAIL_BOUND_S = 60
HANG_TIMEOUT = 3


def _mpirun() -> list:
    """The mpirun command line for 2 ranks, or skip (fail under CI=true) when MPI or mpi4py is missing."""
    missing = []
    if shutil.which("mpirun") is None:
        missing.append("mpirun (Open MPI)")
    if importlib.util.find_spec("mpi4py") is None:
        missing.append("mpi4py")
    if missing:
        msg = f"{' and '.join(missing)} not installed ({INSTALL})"
        if ci():
            pytest.fail(f"CI=true: the distributed tests need {msg}", pytrace=False)
        pytest.skip(msg)
    return ["mpirun", "-np", str(common.WORLD), "--allow-run-as-root", "--oversubscribe"]


def _launch(args: list, env: dict | None = None, timeout: float = 300) -> tuple:
    """(completed process, seconds) of `mpirun -np 2 python <worker> args`."""
    cmd = _mpirun() + [sys.executable] + args
    t0 = time.monotonic()
    proc = subprocess.run(
        cmd, capture_output=True, text=True, timeout=timeout, cwd=WORKERS, env=dict(os.environ, **(env or {}))
    )
    return proc, time.monotonic() - t0


def run_worker(tmp_path_factory, script: str) -> list:
    """Run a worker script on 2 ranks; what it saved, per rank: (arrays of rank<r>.npz, rank<r>.json)."""
    out = tmp_path_factory.mktemp(script.split(".")[0])
    proc, _ = _launch([os.path.join(WORKERS, script), str(out)])
    assert proc.returncode == 0, f"worker failed:\n{proc.stdout}\n{proc.stderr}"
    ranks = []
    for r in range(common.WORLD):
        with open(out / f"rank{r}.json") as f:
            ranks.append((dict(np.load(out / f"rank{r}.npz")), json.load(f)))
    return ranks


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """What the training worker saved, per rank: (arrays, error messages)."""
    return run_worker(tmp_path_factory, "train_worker.py")


# -- collectives ------------------------------------------------------------------------------------------------
def _expected_collectives() -> dict:
    vals = [np.array([1.0 + r, -2.0 * r, 0.5 * r * r], np.float32) for r in range(common.WORLD)]
    ints = [np.array([r + 1, 10 * r - 3]) for r in range(common.WORLD)]
    return {
        "all_reduce_SUM": vals[0] + vals[1],
        "all_reduce_AVG": vals[0] * np.float32(0.5) + vals[1] * np.float32(0.5),
        "all_reduce_MAX": np.maximum(vals[0], vals[1]),
        "all_reduce_MIN": np.minimum(vals[0], vals[1]),
        "all_reduce_int64_max": np.maximum(ints[0], ints[1]),
        "broadcast": np.full((2, 3), 8.0, np.float32),
        "all_gather": np.stack([np.arange(3, dtype=np.float32) + 10 * r for r in range(common.WORLD)]),
    }


@pytest.mark.parametrize("mode", ["eager", "compiled"])
def test_collectives(trained, mode):
    want = _expected_collectives()
    for saved, _ in trained:
        assert int(saved["world"]) == common.WORLD
        for name, value in want.items():
            np.testing.assert_array_equal(saved[f"{mode}_{name}"], value, err_msg=f"{mode} {name}")
        for op in ("SUM", "AVG", "MAX", "MIN"):  # in place: the argument holds the result too
            np.testing.assert_array_equal(saved[f"{mode}_all_reduce_{op}_inplace"], want[f"all_reduce_{op}"])


def test_shapes_that_differ_between_ranks_are_an_error_naming_them(trained):
    for _, errors in trained:
        assert "all_reduce: the tensors differ between ranks (rank 0: f32[3]; rank 1: f32[4])" in errors["eager_shapes"]
        assert "train_worker.py" in errors["eager_shapes"]  # the user's line
        msg = errors["compiled_shapes"]
        assert "runs different collectives on different ranks" in msg
        assert "rank 0: all_reduce of f32[2,2]" in msg and "rank 1: all_reduce of f32[2,3]" in msg


def test_buffers_come_from_rank_0_at_every_forward(trained):
    for saved, _ in trained:
        for mode in ("eager", "compiled"):
            np.testing.assert_array_equal(saved[f"buffers_{mode}"], np.ones(3, np.float32))


def test_a_parameter_without_gradient_is_an_error_naming_it(trained):
    for _, errors in trained:
        assert "these parameters received no gradient in this backward: unused.weight, unused.bias" in errors["unused"]
        assert "find_unused_parameters=True" in errors["unused"]


def test_find_unused_parameters_averages_and_leaves_unused_grads_none(trained):
    for arrays, errors in trained:
        np.testing.assert_array_equal(arrays["unused_rank0_bias_grad"], [0.5])  # rank 0's 1 and rank 1's 0, averaged
        assert errors["unused_none_grad"] == "None"


def test_compiled_ddp_step_clipping_gradients_equals_eager(trained):
    for _, info in trained:
        eager, compiled = info["clipped_losses"]
        np.testing.assert_allclose(compiled, eager, rtol=1e-5)  # (float32, three steps)


def test_torchrun_variables_are_set_under_mpirun(trained):
    """RANK, WORLD_SIZE, LOCAL_RANK and LOCAL_WORLD_SIZE, which PyTorch programs read before init_process_group."""
    for r, (_, info) in enumerate(trained):
        assert info["launcher_env"] == [str(r), str(common.WORLD), str(r), str(common.WORLD)]


def test_no_sync_inside_a_compiled_step_is_not_traced_again_at_every_call(trained):
    for _, errors in trained:
        assert errors["no_sync_programs"] == 2  # .grad None at the first call, then set: two traces for six calls


# -- data-parallel training -------------------------------------------------------------------------------------
def _union_training():
    """One process trained on the union of the ranks' batches: its parameters and their rounding-error bounds."""
    net = common.model(seed=0)
    _, _, err = sgd_trajectory(net, common.loss_fn, common.union_batches(), common.LR, common.MOMENTUM)
    names = [n for n, _ in net.named_parameters()]
    return common.params(net), dict(zip(names, err))


@pytest.mark.parametrize("mode", ["eager", "compiled"])
def test_data_parallel_sgd_equals_one_process_on_the_union(trained, mode):
    want, err = _union_training()
    first = trained[0][0]
    for r, (saved, _) in enumerate(trained):
        for name, value in want.items():
            got = saved[f"train_{mode}_{name}"]
            # both trainings are evaluations of one computation: each within the bound of its exact result
            assert_close(got, value, 2 * err[name], f"rank {r} {mode} {name}")
            assert np.abs(got - value).max() <= 1e-5, f"rank {r} {mode} {name}"
            np.testing.assert_array_equal(got, first[f"train_{mode}_{name}"], err_msg=f"rank {r} != rank 0")


def test_compiled_step_starts_the_first_bucket_before_the_last_gradient(trained):
    """Two buckets (the last layer's gradients, then the first's): the first bucket's allreduce is scheduled right
    after its gradients, before the first layer's weight gradient is computed."""
    lines = str(trained[0][0]["compiled_graph"]).splitlines()
    reduces = [i for i, line in enumerate(lines) if "= allreduce(" in line]
    assert len(reduces) == 2
    weight_grad = max(i for i, line in enumerate(lines) if "= matmul(" in line and "%x0)" in line)
    assert reduces[0] < weight_grad < reduces[1]


@pytest.mark.parametrize("mode", ["eager", "compiled", "module"])
def test_no_sync_accumulates_locally_then_averages_the_sum(trained, mode):
    """Two backward passes under no_sync and one after: every rank ends with the average over the ranks of its three
    gradients' sum."""
    sums, mags, bounds = {}, {}, {}
    for r in range(common.WORLD):
        net = common.model(seed=0)
        for x, y in common.shard_batches(r)[:3]:
            net.zero_grad()
            loss = common.loss_fn(net(x), y)
            b = recorded_bounds([loss], loss)
            loss.backward()
            for n, p in net.named_parameters():
                g = p.grad.numpy().astype(np.float64)
                sums[n], mags[n] = sums.get(n, 0.0) + g, mags.get(n, 0.0) + np.abs(g)
                bounds[n] = bounds.get(n, 0.0) + b.grads[id(p)]
    u = np.finfo(np.float32).eps / 2
    for r, (saved, _) in enumerate(trained):
        for n, total in sums.items():
            # each gradient within its bound of the exact one (twice: the worker's evaluation and this one), then
            # the local accumulation (2 additions) and the exchange (1 addition; the halving is exact)
            tol = 2 * bounds[n] + 3 * u * mags[n]
            assert_close(saved[f"no_sync_{mode}_{n}"], total / common.WORLD, tol, f"rank {r} {mode} {n}")
    local = [saved[f"no_sync_{mode}_local"] for saved, _ in trained]
    assert not np.array_equal(local[0], local[1])  # under no_sync each rank kept its own gradient


# -- a failing rank ends the job ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "mode, expected",
    [
        ("raise", ["ValueError: rank 1 fails on purpose", "rank 1 of 2 stopped with ValueError; aborting the job"]),
        ("finally", ["ValueError: rank 1 fails on purpose", "rank 1 of 2 stopped with ValueError; aborting the job"]),
        ("exit", ["rank 1 of 2 exits with 3; aborting the job"]),
        ("kill", ["rank 1 fails now (kill)"]),
        ("hang", [f"rank 0 of 2 waited {HANG_TIMEOUT} s in a call of compiled 'step'", "aborting the job"]),
    ],
)
def test_a_failing_rank_ends_the_job_with_a_clear_error(mode, expected):
    env = {"GRAPHNN_DIST_TIMEOUT": str(HANG_TIMEOUT)} if mode == "hang" else {}
    proc, seconds = _launch([os.path.join(WORKERS, "fail_worker.py"), mode], env, timeout=FAIL_BOUND_S * 2)
    text = proc.stdout + proc.stderr
    assert proc.returncode != 0, text
    assert seconds < FAIL_BOUND_S, f"the job took {seconds:.0f} s to end:\n{text}"
    for e in expected:
        assert e in text, text
    if mode == "kill":
        assert "signal 9" in text, text  # mpirun names the killed rank


# -- the allreduce op in one process ---------------------------------------------------------------------------------
def test_collectives_are_scheduled_as_early_as_their_operands_allow():
    """Two gradient chains and one bucket per chain, emitted after both: each allreduce moves up right after the
    chain it reads, ahead of the other chain, and is never folded (its operands here are constants)."""
    from graphnn.ir import Graph, TensorType
    from graphnn.ir.passes import lower_for_codegen

    g = Graph("step")
    x = g.add_input(TensorType((4, 4), "float32"), "x")
    a = g.emit("matmul", x, x)
    b = g.emit("matmul", a, x)
    one = g.emit("full", value=1.0, shape=(3,), dtype="float32")
    r_a = g.emit("allreduce", a, one, reduce="avg")
    r_b = g.emit("allreduce", b, reduce="sum")
    g.outputs = [r_a, r_b]
    order = [n.op for n in lower_for_codegen(g).nodes]
    assert order == ["matmul", "full", "allreduce", "matmul", "allreduce"]


def test_an_export_refuses_collectives():
    from graphnn.codegen import LoweringError
    from graphnn.codegen.export import build_export_module
    from graphnn.ir import Graph, TensorType

    g = Graph("step")
    x = g.add_input(TensorType((3,), "float32"), "x")
    g.outputs = [g.emit("allreduce", x, reduce="sum")]
    with pytest.raises(LoweringError, match="cannot export allreduce: exported code runs without a process group"):
        build_export_module(g, "step", "step", [0], [0], ["y"])


# -- without a process group ----------------------------------------------------------------------------------------
def test_without_a_process_group():
    assert not dist.is_initialized()
    for fn in (dist.get_rank, dist.get_world_size, dist.barrier):
        with pytest.raises(ValueError, match="Default process group has not been initialized"):
            fn()
    with pytest.raises(ValueError, match="Default process group has not been initialized"):
        dist.all_reduce(graphnn.ones(2))
    with pytest.raises(ValueError, match="backend must be 'mpi'"):
        dist.init_process_group("nccl")


def test_import_works_without_mpi_and_init_says_what_to_install():
    """mpi4py made unimportable: graphnn imports and trains, init_process_group names the packages to install."""
    code = (
        "import sys; sys.modules['mpi4py'] = None\n"
        "import graphnn, graphnn.distributed as dist\n"
        "from graphnn.nn.parallel import DistributedDataParallel\n"
        "from graphnn.utils.data import DistributedSampler\n"
        "print(list(DistributedSampler(range(5), num_replicas=2, rank=0, shuffle=False)))\n"
        "try:\n    dist.init_process_group('mpi')\nexcept RuntimeError as e:\n    print(e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.splitlines()[0] == "[0, 2, 4]"
    assert "backend 'mpi' is not available" in out
    assert "apt-get install openmpi-bin libopenmpi-dev" in out and "mpi4py" in out and "mpirun -np N" in out


# -- DistributedSampler -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("n, replicas, drop_last", [(10, 3, False), (10, 3, True), (2, 4, False), (12, 4, True)])
def test_distributed_sampler_assigns_indices_as_pytorch(torch, n, replicas, drop_last):
    from torch.utils.data.distributed import DistributedSampler as TorchSampler

    for rank in range(replicas):
        ours = DistributedSampler(range(n), replicas, rank, shuffle=False, drop_last=drop_last)
        theirs = TorchSampler(range(n), replicas, rank, shuffle=False, drop_last=drop_last)
        assert list(ours) == list(theirs)
        assert len(ours) == len(theirs) and ours.total_size == theirs.total_size


def test_distributed_sampler_shuffles_by_seed_and_epoch():
    def shards(epoch, seed=0):
        out = []
        for rank in range(3):
            s = DistributedSampler(range(11), 3, rank, shuffle=True, seed=seed)
            s.set_epoch(epoch)
            out.append(list(s))
        return out

    a = shards(0)
    assert a == shards(0)  # deterministic: every rank draws the same permutation
    flat = [i for s in a for i in s]
    assert set(flat) == set(range(11)) and len(flat) == 12  # a partition of the indices, one padded
    assert shards(1) != a and shards(0, seed=5) != a
    with pytest.raises(ValueError, match=r"Invalid rank 3, rank should be in the interval \[0, 2\]"):
        DistributedSampler(range(4), 3, 3)


def test_a_torchrun_launch_is_a_clear_error():
    """torchrun sets WORLD_SIZE for processes MPI does not connect: init_process_group says to use mpirun instead of
    letting each process train alone."""
    _mpirun()  # (needs mpi4py, as every test here)
    code = "import graphnn.distributed as d\ntry:\n    d.init_process_group('gloo')\nexcept RuntimeError as e:\n    print(e)\n"
    env = dict(os.environ, WORLD_SIZE="2", RANK="1", LOCAL_RANK="1")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert "WORLD_SIZE=2" in proc.stdout and "mpirun -np 2" in proc.stdout, proc.stdout + proc.stderr


def test_point_to_point_and_eager_collectives(tmp_path):
    proc, _ = _launch([os.path.join(WORKERS, "p2p_worker.py"), str(tmp_path)])
    assert proc.returncode == 0, f"worker failed:\n{proc.stdout}\n{proc.stderr}"
    r0, r1 = (dict(np.load(tmp_path / f"p2p_rank{r}.npz")) for r in range(2))
    np.testing.assert_array_equal(r1["recv"], [10.0] * 3)  # rank 0's 1s times 10
    np.testing.assert_array_equal(r0["recv"], [11.0] * 3)  # and back, plus 1
    assert int(r0["recv_source"]) == 1
    np.testing.assert_array_equal(r0["exchanged"], [1.0, 1.0])
    np.testing.assert_array_equal(r1["exchanged"], [0.0, 0.0])
    np.testing.assert_array_equal(r1["reduce"], [3.0, 2.0])  # [1, 0] + [2, 2] at rank 1
    np.testing.assert_array_equal(r0["reduce"], [1.0, 0.0])  # unchanged elsewhere
    np.testing.assert_array_equal(r0["gather"], [[0.0, 0.0], [1.0, -1.0]])
    np.testing.assert_array_equal(r0["scatter"], [0, 1])
    np.testing.assert_array_equal(r1["scatter"], [10, 11])
    np.testing.assert_array_equal(r0["reduce_scatter"], [0.0, 3.0])  # (arange(4) * 1 + arange(4) * 2)[:2]
    np.testing.assert_array_equal(r1["reduce_scatter"], [6.0, 9.0])
    for r in (r0, r1):
        np.testing.assert_array_equal(r["all_gather_into_tensor"], [[0.0, 0.0], [1.0, 1.0]])
        np.testing.assert_array_equal(r["bool_any"], [True, False])
        np.testing.assert_array_equal(r["product"], [6.0, 9.0])
        np.testing.assert_array_equal(r["bor"], [3])
    np.testing.assert_array_equal(r0["all_to_all_single"], [0.0, 10.0])
    np.testing.assert_array_equal(r1["all_to_all_single"], [1.0, 11.0])
