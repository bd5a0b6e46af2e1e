"""Cheap elementwise values that several kernels read are recomputed in each (never written and read back), but
never a matrix product, and never at more than one level; the compiled results equal the interpreter's."""

import numpy as np

from graphnn.codegen import CompiledGraph
from graphnn.ir import Graph, TensorType, interpret
from graphnn.ir.fusion import MAX_RECOMPUTED_USERS, plan_fusion
from tolerance import assert_close, graph_tolerance


def _run(g: Graph, arrays: list) -> None:
    for got, want, tol in zip(CompiledGraph(g)(arrays), interpret(g, arrays), graph_tolerance(g, arrays)):
        assert_close(got, want, tol, "output")


def test_a_residual_sum_read_by_two_reductions_is_recomputed_in_both(monkeypatch, tmp_path):
    monkeypatch.setenv("GRAPHNN_CACHE_DIR", str(tmp_path))
    g = Graph()
    a, b = (g.add_input(TensorType((6, 8), "float32"), n) for n in "ab")
    x = g.emit("add", a, b)
    mean = g.emit("sum", x, axes=(1,), keepdims=True)
    sq = g.emit("sum", g.emit("mul", x, x), axes=(1,), keepdims=True)
    g.outputs = [mean, sq]
    plan = plan_fusion(g)
    assert x.id in plan.inlined and x.id not in plan.materialized
    assert len(plan.groups) == 2
    rng = np.random.default_rng(0)
    _run(g, [rng.standard_normal((6, 8)).astype(np.float32) for _ in range(2)])


def test_a_product_feeding_a_recomputed_value_is_computed_once(monkeypatch, tmp_path):
    monkeypatch.setenv("GRAPHNN_CACHE_DIR", str(tmp_path))
    g = Graph()
    a = g.add_input(TensorType((6, 8), "float32"), "a")
    w = g.add_input(TensorType((8, 5), "float32"), "w")
    r = g.add_input(TensorType((6, 5), "float32"), "r")
    m = g.emit("matmul", a, w)
    x = g.emit("add", m, r)  # read by two reductions: recomputed in each, so the product must be materialized
    g.outputs = [g.emit("sum", x, axes=(1,), keepdims=False), g.emit("sum", g.emit("mul", x, x), axes=(0,))]
    plan = plan_fusion(g)
    assert x.id in plan.inlined and m.id in plan.materialized
    assert sum(n.op == "matmul" for grp in plan.groups for n in grp.nodes) == 1
    rng = np.random.default_rng(1)
    _run(g, [rng.standard_normal(s).astype(np.float32) for s in ((6, 8), (8, 5), (6, 5))])


def test_recomputation_does_not_nest_or_fan_out_widely():
    g = Graph()
    a = g.add_input(TensorType((4, 4), "float32"), "a")
    x = g.emit("exp", a)
    y = g.emit("mul", x, x)  # y has two users; x feeds y twice and is read by many others
    outs = [g.emit("sum", y, axes=(0,)), g.emit("sum", y, axes=(1,))]
    outs += [g.emit("sum", g.emit("add", x, a), axes=(k % 2,)) for k in range(MAX_RECOMPUTED_USERS)]
    g.outputs = outs
    plan = plan_fusion(g)
    assert y.id in plan.inlined
    assert x.id in plan.materialized  # a user of x is itself recomputed, and x has too many users


def test_division_by_a_square_root_is_exact_at_zero_and_infinity(monkeypatch, tmp_path):
    # with fast reciprocals, x86 would compute c / sqrt(x) from an rsqrt estimate: NaN at 0 and inf
    monkeypatch.setenv("GRAPHNN_CACHE_DIR", str(tmp_path))
    g = Graph()
    x = g.add_input(TensorType((16,), "float32"), "x")
    c = g.add_input(TensorType((16,), "float32"), "c")
    g.outputs = [g.emit("div", c, g.emit("sqrt", x))]
    xs = np.array([0.0, np.inf, 4.0, 1e-30] * 4, np.float32)
    cs = np.linspace(-2, 2, 16).astype(np.float32)
    got = CompiledGraph(g)([xs, cs])[0]
    with np.errstate(divide="ignore"):
        want = cs / np.sqrt(xs)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_array_equal(np.isinf(got), np.isinf(want))
    assert_close(got, want, graph_tolerance(g, [xs, cs])[0], "c / sqrt(x)")


def test_inf_minus_inf_inside_a_reduction_stays_nan(monkeypatch, tmp_path):
    # the reduction's adds may be reassociated; with no-signed-zeros too, LLVM folded acc + (x - x) to acc
    # (fuzz seed 1003470)
    monkeypatch.setenv("GRAPHNN_CACHE_DIR", str(tmp_path))
    g = Graph()
    x = g.add_input(TensorType((5, 3), "float32"), "x")
    g.outputs = [g.emit("sum", g.emit("sub", g.emit("broadcast_to", x, shape=(5, 3)), x), axes=(0,), keepdims=False)]
    xs = np.array([[np.inf, 1, np.nan], [2, -np.inf, 3], [1, 2, 3], [4, 5, 6], [7, 8, 9]], np.float32)
    np.testing.assert_array_equal(CompiledGraph(g)([xs])[0], interpret(g, [xs])[0])


def test_a_long_elementwise_chain_compiles_in_several_kernels():
    """An unrolled 300-step update (an ODE solver's loop): code generation recurses once per inlined value, so a
    chain feeding one kernel is cut every MAX_INLINE_DEPTH values instead of raising RecursionError; the values and
    the gradient equal eager's."""
    import graphnn
    from graphnn.ir.fusion import MAX_INLINE_DEPTH

    def f(x):
        for _ in range(300):
            x = x * 0.99 + 0.01 * graphnn.sin(x)
        return x

    x = graphnn.ones(4, requires_grad=True)
    want = f(x)
    want.sum().backward()
    g = x.grad.numpy().copy()
    x.grad = None
    got = graphnn.compile(f)(x)
    got.sum().backward()
    # 300 steps of float32 rounding in another association order
    np.testing.assert_allclose(got.detach().numpy(), want.detach().numpy(), rtol=1e-5)
    np.testing.assert_allclose(x.grad.numpy(), g, rtol=1e-4)
    assert MAX_INLINE_DEPTH < 100


def test_two_products_summed_are_not_both_inlined_into_one_kernel(monkeypatch, tmp_path):
    """Two micro-batches' weight gradients summed (x1^T g1 + x2^T g2) and read twice (by clipping's norm and by
    the update): one product may be the epilogue source of the sum's kernel, the other is its own kernel (inlined
    too, it was recomputed as naive dot products: a compiled step 30x slower)."""
    monkeypatch.setenv("GRAPHNN_CACHE_DIR", str(tmp_path))
    g = Graph()
    x1, x2 = (g.add_input(TensorType((32, 16), "float32"), n) for n in ("x1", "x2"))
    g1, g2 = (g.add_input(TensorType((32, 24), "float32"), n) for n in ("g1", "g2"))
    p1 = g.emit("matmul", g.emit("transpose", x1, perm=(1, 0)), g1)
    p2 = g.emit("matmul", g.emit("transpose", x2, perm=(1, 0)), g2)
    total = g.emit("add", p1, p2)
    g.outputs = [total, g.emit("sum", g.emit("mul", total, total), axes=(0, 1))]  # (the sum: its own kernel)
    plan = plan_fusion(g)
    assert not {p1.id, p2.id} <= plan.inlined
    rng = np.random.default_rng(0)
    _run(g, [rng.standard_normal(v.shape).astype(np.float32) for v in g.inputs])
