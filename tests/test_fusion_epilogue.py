"""A product's elementwise consumers run in its epilogue: x + bias read by both halves of a GELU does not keep the
product out of the GELU's kernel (inference), elementwise kernels that read a product kept for the gradient are
computed where it is stored (epilogue siblings, training), and a computed operand read through a transpose is
written in its own order and read in place. Compiled results equal the interpreter's."""

import numpy as np
import pytest

import graphnn
import graphnn.nn as nn
from graphnn.codegen import CompiledGraph
from graphnn.ir import Graph, TensorType, interpret
from graphnn.ir.fusion import plan_fusion
from tolerance import assert_close, graph_tolerance


def _run(g: Graph, arrays: list) -> None:
    for got, want, tol in zip(CompiledGraph(g)(arrays), interpret(g, arrays), graph_tolerance(g, arrays)):
        assert_close(got, want, tol, "output")


def _gelu(g: Graph, x):
    half = g.emit("mul", x, g.emit("full", shape=(), value=0.5, dtype="float32"))
    scaled = g.emit("mul", x, g.emit("full", shape=(), value=0.7071067811865476, dtype="float32"))
    one = g.emit("full", shape=(), value=1.0, dtype="float32")
    return g.emit("mul", half, g.emit("add", g.emit("erf", scaled), one))


def _linear_gelu(keep_pre_activation: bool) -> tuple:
    """a @ w + bias, then GELU; kept: the pre-activation is also read by a reduction (as a gradient would) and the
    activation feeds another product."""
    g = Graph()
    a = g.add_input(TensorType((2, 6, 8), "float32"), "a")
    w = g.add_input(TensorType((8, 20), "float32"), "w")
    bias = g.add_input(TensorType((20,), "float32"), "bias")
    m = g.emit("matmul", g.emit("reshape", a, shape=(12, 8)), w)
    x = g.emit("add", g.emit("reshape", m, shape=(2, 6, 20)), bias)
    y = _gelu(g, x)
    if keep_pre_activation:
        w2 = g.add_input(TensorType((20, 4), "float32"), "w2")
        g.outputs = [
            g.emit("matmul", g.emit("reshape", y, shape=(12, 20)), w2),
            g.emit("sum", g.emit("mul", x, x), axes=(0, 1, 2)),
        ]
    else:
        g.outputs = [g.emit("mul", y, y)]
    rng = np.random.default_rng(0)
    shapes = [(2, 6, 8), (8, 20), (20,)] + ([(20, 4)] if keep_pre_activation else [])
    arrays = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    return g, m, x, y, arrays


def test_a_value_read_twice_at_its_own_position_keeps_the_product_in_the_kernel(monkeypatch, tmp_path):
    monkeypatch.setenv("GRAPHNN_CACHE_DIR", str(tmp_path))
    g, m, x, _, arrays = _linear_gelu(keep_pre_activation=False)
    plan = plan_fusion(g)
    assert m.id in plan.inlined and x.id in plan.inlined
    assert len(plan.groups) == 1  # product, bias, GELU and the square: one kernel
    _run(g, arrays)


@pytest.mark.parametrize("siblings", ["1", "0"])
def test_kernels_reading_a_kept_product_run_in_its_epilogue(monkeypatch, tmp_path, siblings):
    monkeypatch.setenv("GRAPHNN_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("GRAPHNN_EPILOGUE_SIBLINGS", siblings)
    g, m, x, y, arrays = _linear_gelu(keep_pre_activation=True)
    plan = plan_fusion(g)
    assert y.id in plan.materialized  # an operand of the second product
    first = next(grp for grp in plan.groups if m.producer in grp.nodes)
    if siblings == "1":
        assert [r.id for r in first.roots][-1] == y.id  # the product's kernel also stores the GELU
        assert len(plan.groups) == 3  # product + GELU, the second product, the reduction
    else:
        assert not first.extra and len(plan.groups) == 4
    _run(g, arrays)


def test_a_sibling_waits_for_what_it_reads():
    """An elementwise kernel that also reads a value computed after the product stays where it is."""
    g = Graph()
    a = g.add_input(TensorType((6, 8), "float32"), "a")
    w = g.add_input(TensorType((8, 5), "float32"), "w")
    m = g.emit("matmul", a, w)
    later = g.emit("sum", g.emit("exp", m), axes=(0,), keepdims=True)  # a reduction over the product
    z = g.emit("mul", m, later)
    g.outputs = [g.emit("tanh", z), m]
    plan = plan_fusion(g)
    assert all(not grp.extra for grp in plan.groups)
    rng = np.random.default_rng(2)
    _run(g, [rng.standard_normal(s).astype(np.float32) for s in ((6, 8), (8, 5))])


def test_a_computed_operand_read_through_a_transpose_is_written_in_its_own_order(monkeypatch, tmp_path):
    monkeypatch.setenv("GRAPHNN_CACHE_DIR", str(tmp_path))
    g = Graph()
    a = g.add_input(TensorType((2, 6, 8), "float32"), "a")
    d = g.add_input(TensorType((2, 6, 8), "float32"), "d")
    e = g.emit("mul", g.emit("exp", a), d)  # a gradient computed elementwise
    et = g.emit("transpose", g.emit("reshape", e, shape=(12, 8)), perm=(1, 0))
    g.outputs = [g.emit("matmul", et, g.emit("reshape", a, shape=(12, 8)))]
    plan = plan_fusion(g)
    assert e.id in plan.materialized and et.id in plan.inlined  # the product reads e transposed, in place
    rng = np.random.default_rng(3)
    _run(g, [rng.standard_normal((2, 6, 8)).astype(np.float32) for _ in range(2)])


def test_linear_gelu_training_step_matches_eager(monkeypatch, tmp_path):
    """The GELU of the training step is computed in the epilogue of its product (forward and backward) and the
    compiled step equals the eager one."""
    monkeypatch.setenv("GRAPHNN_CACHE_DIR", str(tmp_path))
    x = graphnn.randn(3, 5, 16)
    results = []
    for compiled in (False, True):
        graphnn.manual_seed(0)
        model = nn.Sequential(nn.Linear(16, 40), nn.GELU(), nn.Linear(40, 24), nn.GELU("tanh"), nn.Linear(24, 3))
        # (SGD: Adam's step divides by the gradient's own size, so a gradient at rounding level - which summation
        # order decides - would move its weight by a whole lr either way)
        opt = graphnn.optim.SGD(model.parameters(), lr=1e-2, momentum=0.9)

        def step(x, model=model, opt=opt):
            opt.zero_grad()
            loss = model(x).pow(2).mean()
            loss.backward()
            opt.step()
            return loss

        run = graphnn.compile(step) if compiled else step
        losses = [float(run(x)) for _ in range(3)]
        if compiled:
            with_erf = [grp for grp in run.graphs["fused"].groups if any(n.op == "erf" for n in grp.nodes)]
            assert with_erf and all(any(n.op == "matmul" for n in grp.nodes) for grp in with_erf)
        results.append((losses, [p.detach().numpy().copy() for p in model.parameters()]))
    (eager_losses, eager_params), (losses, params) = results
    # float32 sums of at most 40 products of O(1) terms, through three SGD steps of lr 1e-2
    np.testing.assert_allclose(losses, eager_losses, rtol=1e-4, atol=1e-6)
    for got, want in zip(params, eager_params):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
