"""Runs of consecutive elementwise kernels become one kernel (ir/merge.py, codegen/merged.py): the update of one
parameter writes all its results in one loop (multi-output), the updates of all parameters share one kernel
(horizontal), one-element values are computed once; compiled results equal the interpreter's, also in place and
split over threads, and the kernel count drops."""

import numpy as np
import pytest

import graphnn
import graphnn.nn as nn
import graphnn.optim as optim
from graphnn.codegen import CompiledGraph
from graphnn.codegen import module as cm
from graphnn.codegen.runtime import ThreadChoice
from graphnn.ir import Graph, TensorType, interpret
from graphnn.ir import merge
from graphnn.ir.fusion import plan_fusion
from parity_util import close, steps_tolerance
from tolerance import assert_close, graph_tolerance
from train_steps import training_step

STEP_ROUNDINGS = 120  # roundings of one training step of a small MLP (forward, backward, update: test_optim_more)

F32 = "float32"


def _const(g: Graph, value: float):
    return g.emit("full", shape=(), dtype=F32, value=value)


def _adam_like(g: Graph, shape: tuple, step):
    """Inputs grad, m, v, p of `shape`; returns (new m, new v, new p): p's update reads the new m and v and the
    one-element `step`."""
    grad, m, v, p = (g.add_input(TensorType(shape, F32), f"{n}{len(g.inputs)}") for n in "gmvp")
    m2 = g.emit("add", g.emit("mul", m, _const(g, 0.9)), g.emit("mul", grad, _const(g, 0.1)))
    v2 = g.emit("add", g.emit("mul", v, _const(g, 0.99)), g.emit("mul", g.emit("mul", grad, grad), _const(g, 0.01)))
    denom = g.emit("add", g.emit("sqrt", v2), g.emit("mul", step, _const(g, 1e-3)))
    p2 = g.emit("sub", p, g.emit("mul", g.emit("div", m2, denom), _const(g, 0.01)))
    return m2, v2, p2


def _updates(shapes: list, writeback: bool = False) -> Graph:
    """A step count (one element, incremented) and an Adam-like update per shape, as graph outputs (written back
    into their inputs when `writeback`)."""
    g = Graph("updates")
    step = g.add_input(TensorType((), F32), "step")
    step2 = g.emit("add", step, _const(g, 1.0))
    outs = [step2]
    for s in shapes:
        outs += _adam_like(g, s, step2)
    g.outputs = outs
    if writeback:  # new step -> step; new m, v, p -> m, v, p
        g.meta["writeback"] = {0: 0, **{1 + 3 * i + j: 2 + 4 * i + j for i in range(len(shapes)) for j in range(3)}}
    return g


def _arrays(g: Graph, seed: int = 0) -> list:
    rng = np.random.default_rng(seed)
    out = []
    for v in g.inputs:
        a = rng.standard_normal(v.shape)
        out.append(np.array(np.abs(a) + 0.5 if v.name.startswith("v") or v.name == "step" else a, F32))
    return out


def _check(g: Graph, arrays: list, got: list) -> None:
    for i, (x, want, tol) in enumerate(zip(got, interpret(g, arrays), graph_tolerance(g, arrays))):
        assert_close(x, want, tol, f"output {i}")


@pytest.fixture(autouse=True)
def _cache(monkeypatch, tmp_path):
    monkeypatch.setenv("GRAPHNN_CACHE_DIR", str(tmp_path))


def test_one_parameter_update_is_one_loop_writing_every_result():
    g = _updates([(5, 7)])
    plan = plan_fusion(g)
    assert len(plan.groups) == 1
    (k,) = plan.groups
    assert [m.root.id for m in k.scalars] == [g.outputs[0].id]
    assert len(k.loops) == 1 and {m.root.id for m in k.loops[0]} == {v.id for v in g.outputs[1:]}
    arrays = _arrays(g)
    _check(g, arrays, CompiledGraph(g)(arrays))


def test_updates_of_different_shapes_share_one_kernel_with_a_loop_each():
    shapes = [(5, 7), (13,), (3, 2, 4), (1,)]
    g = _updates(shapes)
    (k,) = plan_fusion(g).groups
    assert len(k.scalars) == 1 + 3  # the step, and the whole update of the one-element parameter
    assert sorted(loop[0].root.shape for loop in k.loops) == sorted(s for s in shapes if s != (1,))
    arrays = _arrays(g, 1)
    _check(g, arrays, CompiledGraph(g)(arrays))


def test_a_long_run_is_cut_into_pieces_between_parameters(monkeypatch):
    monkeypatch.setattr(merge, "MAX_MERGED_NODES", 12)  # about one parameter's update
    g = _updates([(5, 7), (13,), (3, 4), (6,)])
    kernels = plan_fusion(g).groups
    assert 2 <= len(kernels) <= 4
    for k in kernels:  # no parameter's new m, v and p are split over two kernels
        assert all(len(loop) == 3 for loop in k.loops)
    assert sum(len(k.loops) for k in kernels) == 4
    arrays = _arrays(g, 8)
    _check(g, arrays, CompiledGraph(g)(arrays))


def test_merging_can_be_turned_off(monkeypatch):
    g = _updates([(5, 7), (13,)])
    merged = len(plan_fusion(g).groups)
    monkeypatch.setenv("GRAPHNN_MERGE_KERNELS", "0")
    assert len(plan_fusion(g).groups) == 1 + 2 * 3 > merged == 1
    arrays = _arrays(g, 2)
    _check(g, arrays, CompiledGraph(g)(arrays))


def test_in_place_updates_write_the_callers_arrays():
    g = _updates([(5, 7), (6,)], writeback=True)
    arrays = _arrays(g, 3)
    want = interpret(g, arrays)
    tol = graph_tolerance(g, arrays)
    mine = [a.copy() for a in arrays]
    c = CompiledGraph(g)
    assert c(mine) == []
    for out_pos, in_pos in g.meta["writeback"].items():
        assert_close(mine[in_pos], want[out_pos], tol[out_pos], f"input {in_pos}")
    np.testing.assert_array_equal(mine[1], arrays[1])  # the gradients are only read


def test_a_parameter_read_by_other_kernels_keeps_its_old_value_for_them():
    """p is updated in place by the merged kernel, and also read (its old value) by the same run and by a reduction
    after it; the new p feeds another kernel too."""
    g = Graph("shared")
    step = g.add_input(TensorType((), F32), "step")
    m2, v2, p2 = _adam_like(g, (4, 9), g.emit("add", step, _const(g, 1.0)))
    p = g.inputs[-1]
    doubled = g.emit("mul", p, _const(g, 2.0))  # reads the old p in the same run
    total = g.emit("sum", g.emit("mul", p, p2), axes=(0, 1), keepdims=False)  # old and new p, after the run
    g.outputs = [p2, m2, v2, doubled, total]
    g.meta["writeback"] = {0: 4, 1: 2, 2: 3}
    plan = plan_fusion(g)
    assert any(len(k.roots) >= 4 for k in plan.groups)
    arrays = _arrays(g, 4)
    want, tol = interpret(g, arrays), graph_tolerance(g, arrays)
    mine = [a.copy() for a in arrays]
    got_doubled, got_total = CompiledGraph(g)(mine)
    assert_close(got_doubled, want[3], tol[3], "old p doubled")
    assert_close(got_total, want[4], tol[4], "sum of old p times new p")
    assert_close(mine[4], want[0], tol[0], "p")


def test_a_merged_kernel_split_over_threads(monkeypatch):
    monkeypatch.setattr(cm, "PARALLEL_WORK", 64)
    g = _updates([(37, 11), (300,), (2, 3)])
    c = CompiledGraph(g)
    assert c.layout.parallel
    before = graphnn.get_num_threads()
    graphnn.set_num_threads(3)
    try:
        arrays = _arrays(g, 5)
        for _ in range(2 * ThreadChoice.TRIAL):  # pooled and single-threaded calls alternate in the first calls
            _check(g, arrays, c(arrays))
    finally:
        graphnn.set_num_threads(before)


def test_identical_merged_kernels_share_one_function():
    """The same run on two inputs (a reduction in between ends the first) calls one kernel function."""
    g = Graph("twice")
    outs = []
    for name in "xy":
        a = g.emit("tanh", g.add_input(TensorType((6, 5), F32), name))
        b = g.emit("mul", a, _const(g, 3.0))
        outs += [a, b, g.emit("sum", b, axes=(0, 1), keepdims=False)]
    g.outputs = outs
    texts, _, plan = cm.build_module(g, "e", None, 1)
    assert [len(k.roots) for k in plan.groups] == [2, 1, 2, 1]
    text = "\n".join(texts)
    assert len([ln for ln in text.splitlines() if ln.startswith("define") and "merged" in ln]) == 1
    arrays = _arrays(g, 6)
    _check(g, arrays, CompiledGraph(g)(arrays))


@pytest.mark.parametrize(
    "make",
    [
        lambda ps: optim.SGD(ps, lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-3),
        lambda ps: optim.AdamW(ps, lr=0.01, amsgrad=True),
        lambda ps: optim.RMSprop(ps, lr=0.01, momentum=0.5, centered=True),
    ],
    ids=["sgd_momentum", "adamw_amsgrad", "rmsprop_centered"],
)
def test_an_optimizer_update_is_one_kernel_and_matches_eager(make):
    """A compiled training step: every parameter's update is in one kernel (with merging off, each state tensor is
    a kernel of its own), and parameters and state match the eager step's. Tolerance as in test_optim_more: up to
    STEP_ROUNDINGS roundings per step, relative to each array's magnitude."""

    def build():
        graphnn.manual_seed(0)
        net = nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 3)).double()
        opt = make(net.parameters())
        return net, opt, training_step(net, nn.MSELoss(), opt)

    rng = np.random.default_rng(7)
    batches = [(graphnn.tensor(rng.standard_normal((5, 6))), graphnn.tensor(rng.standard_normal((5, 3))))] * 3
    net_e, opt_e, eager = build()
    net_c, opt_c, compiled = build()
    compiled = graphnn.compile(compiled)
    for x, y in batches:
        eager(x, y)
        compiled(x, y)
    graph, plan = compiled.graphs["lowered"], compiled.graphs["fused"]
    written = {graph.outputs[j].id for j in graph.meta["writeback"]}
    assert len(written) >= 4 * 2  # each parameter and its state tensors
    assert sum(bool(written.intersection(r.id for r in k.roots)) for k in plan.groups) == 1
    n = len(batches) * STEP_ROUNDINGS
    for (name, a), b in zip(net_e.named_parameters(), net_c.parameters()):
        close(b, a, name, steps_tolerance(a, n))
    for pe, pc in zip(net_e.parameters(), net_c.parameters()):
        for key, te in opt_e.state[pe].items():
            close(opt_c.state[pc][key], te, key, steps_tolerance(te, n))
