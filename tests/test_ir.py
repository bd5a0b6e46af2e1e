"""IR infrastructure: text form, hashing, verifier, passes, fusion plan and memory plan."""

import numpy as np
import pytest

import graphnn
from graphnn import ir
from graphnn.ir import Graph, TensorType, interpret, verify
from graphnn.ir.fusion import plan_fusion
from graphnn.ir.memory import plan_memory
from graphnn.ir.passes import PIPELINE, cse, dce, fold_constants, simplify
from graphnn.ir.roundoff import error_bounds
from graphnn.tools.tutorial_net import Net
from tolerance import assert_close


def _mlp_graph():
    g = Graph("mlp")
    x = g.add_input(TensorType((4, 3), "float32"), "x")
    w = g.add_input(TensorType((5, 3), "float32"), "w", "param")
    b = g.add_input(TensorType((5,), "float32"), "b", "param")
    h = g.emit("add", g.emit("matmul", x, g.emit("transpose", w, perm=(1, 0))), b)
    g.outputs = [g.emit("relu", h)]
    return g


def test_text_form_is_readable():
    text = str(_mlp_graph())
    assert text.splitlines()[0] == "graph mlp(%x: f32[4,3] [input], %w: f32[5,3] [param], %b: f32[5] [param]) {"
    assert "= matmul(%x, %3)" in text and "{perm=(1, 0)}" in text
    assert text.rstrip().endswith("}")


def test_hash_is_deterministic_and_structural():
    a, b = _mlp_graph(), _mlp_graph()
    assert a.structural_hash() == b.structural_hash()
    b.nodes[0].attrs["perm"] = (0, 1)
    assert a.structural_hash() != b.structural_hash()


def test_hash_of_traced_model_is_stable():
    hashes = []
    for _ in range(2):
        graphnn.manual_seed(0)
        c = graphnn.compile(Net())
        with graphnn.no_grad():
            c(graphnn.randn(1, 1, 32, 32))
        hashes.append(c.graphs["optimized"].structural_hash())
    assert hashes[0] == hashes[1]


def test_verifier_catches_broken_graphs():
    g = _mlp_graph()
    verify(g)
    g.nodes[0], g.nodes[1] = g.nodes[1], g.nodes[0]
    with pytest.raises(ir.VerifyError, match="before it is defined"):
        verify(g)
    g = _mlp_graph()
    g.nodes[1].outputs[0].type = TensorType((9, 9), "float32")
    with pytest.raises(ir.VerifyError, match="rule says"):
        verify(g)


def test_dce_cse_fold_simplify():
    g = Graph()
    x = g.add_input(TensorType((3,), "float64"), "x")
    one = g.emit("full", value=1.0, shape=(), dtype="float64")
    two = g.emit("add", one, one)  # folds to 2
    a = g.emit("mul", x, two)
    a2 = g.emit("mul", x, two)  # CSE with a
    y = g.emit("mul", g.emit("add", a, a2), one)  # x*1 simplifies away
    g.emit("exp", x)  # dead
    g.outputs = [g.emit("neg", g.emit("neg", y))]  # double negation
    xs = np.array([1.0, -2.0, 0.5])
    before, bound = interpret(g, [xs])[0], error_bounds(g, [xs])[0]
    for _name, p in PIPELINE * 2:
        p(g)
        verify(g)
    assert_close(interpret(g, [xs])[0], before, bound + error_bounds(g, [xs])[0], "after the passes")
    ops = [n.op for n in g.nodes]
    assert ops.count("mul") == 1 and "neg" not in ops and "exp" not in ops, ops
    assert all(f is not None for f in (cse, dce, fold_constants, simplify))


def test_fusion_plan_groups_linear_bias_relu():
    plan = plan_fusion(_mlp_graph())
    assert len(plan.groups) == 1
    assert [n.op for n in plan.groups[0].nodes] == ["transpose", "matmul", "add", "relu"]


def test_fusion_never_recomputes_a_reduction_per_broadcast_element():
    g = Graph()
    x = g.add_input(TensorType((4, 8), "float32"), "x")
    s = g.emit("sum", x, axes=(1,), keepdims=True)
    g.outputs = [g.emit("sub", x, s)]  # s is broadcast along axis 1
    plan = plan_fusion(g)
    assert s.id in plan.materialized


def test_a_matmul_seen_through_a_reshape_is_not_recomputed_inside_a_reduction():
    # a LayerNorm bias gradient in a transformer: sum over (batch, time) of (g @ W) viewed as 3-D
    g = Graph()
    a = g.add_input(TensorType((24, 16), "float32"), "a")
    w = g.add_input(TensorType((16, 8), "float32"), "w")
    m = g.emit("matmul", a, w)
    g.outputs = [g.emit("sum", g.emit("reshape", m, shape=(4, 6, 8)), axes=(0, 1), keepdims=False)]
    plan = plan_fusion(g)
    assert m.id in plan.materialized
    assert [n.op for n in plan.groups[0].nodes] == ["matmul"]


def test_a_matmul_operand_behind_a_reshape_is_computed_once_for_all_its_consumers():
    # a transformer's qkv gradient: three slices put back together, permuted, then read by the weight-gradient
    # product (as a 2-D reshape) and by the bias gradient (summed as a 3-D reshape)
    g = Graph()
    parts = [g.add_input(TensorType((2, 4, 3, 5), "float32"), f"d{i}") for i in range(3)]
    x = g.add_input(TensorType((6, 7), "float32"), "x")
    qkv = g.emit("add", g.emit("add", parts[0], parts[1]), parts[2])
    t = g.emit("transpose", qkv, perm=(0, 2, 1, 3))
    dw = g.emit("matmul", g.emit("transpose", x, perm=(1, 0)), g.emit("reshape", t, shape=(6, 20)))
    db = g.emit("sum", g.emit("reshape", t, shape=(2, 3, 20)), axes=(0, 1), keepdims=False)
    g.outputs = [dw, db]
    plan = plan_fusion(g)
    assert t.id in plan.materialized
    assert not any(n.op == "add" for grp in plan.groups if grp.root.id in (dw.id, db.id) for n in grp.nodes)


def test_a_matmul_is_computed_once_when_its_reshape_feeds_an_epilogue_and_a_reduction():
    # a LayerNorm weight gradient in a transformer's backward: dx = g @ W, viewed as 3-D, feeds both the gradient
    # flowing on (dx * gamma, an elementwise kernel) and sum over (batch, time) of dx * xhat (a reduction)
    g = Graph()
    a = g.add_input(TensorType((24, 16), "float32"), "a")
    w = g.add_input(TensorType((16, 8), "float32"), "w")
    xhat = g.add_input(TensorType((4, 6, 8), "float32"), "xhat")
    m = g.emit("matmul", a, w)
    dx = g.emit("reshape", m, shape=(4, 6, 8))
    g.outputs = [g.emit("mul", dx, xhat), g.emit("sum", g.emit("mul", dx, xhat), axes=(0, 1), keepdims=False)]
    plan = plan_fusion(g)
    assert m.id in plan.materialized
    assert sum(any(n.op == "matmul" for n in grp.nodes) for grp in plan.groups) == 1


def test_memory_plan_reuses_memory_without_overlap():
    bufs = [(1, 1000, 0, 1), (2, 1000, 1, 2), (3, 1000, 2, 3), (4, 64, 0, 3)]
    plan = plan_memory(bufs, {})
    spans = {vid: (plan.offsets[vid], plan.offsets[vid] + n, f, l) for vid, n, f, l in bufs}
    for a, (oa, ea, fa, la) in spans.items():
        assert oa % 64 == 0
        for b, (ob, eb, fb, lb) in spans.items():
            if a < b and not (la < fb or lb < fa):
                assert ea <= ob or eb <= oa, (a, b)
    assert plan.size < sum(n for _, n, _, _ in bufs)


def test_memory_plan_places_each_buffer_at_the_lowest_offset_that_fits():
    """Random lifetimes and sizes: no two buffers alive together overlap, and (largest first) none could sit lower
    without overlapping one placed before it."""
    rng = np.random.default_rng(3)
    for _ in range(50):
        starts = rng.integers(0, 40, 60)
        bufs = [
            (v, int(rng.choice([1, 64, 100, 4096, 9000])), int(f), int(f + rng.integers(0, 15)))
            for v, f in enumerate(starts)
        ]
        plan = plan_memory(bufs, {})
        size = {vid: max(64, -(-n // 64) * 64) for vid, n, _, _ in bufs}
        done = []
        for vid, n, f, last in sorted(bufs, key=lambda b: (-b[1], b[2])):
            o = plan.offsets[vid]
            others = [(plan.offsets[w], plan.offsets[w] + size[w]) for w, g, h in done if not (h < f or last < g)]
            assert all(o + size[vid] <= a or b <= o for a, b in others), vid
            lower = [c for c in {0} | {b for _, b in others} if c < o]
            assert not any(all(c + size[vid] <= a or b <= c for a, b in others) for c in lower), vid
            done.append((vid, f, last))


def test_json_round_trip_keeps_structure_and_data():
    from graphnn.ir.serialize import from_json, to_json

    c = graphnn.compile(graphnn.nn.GRU(3, 4, num_layers=2))
    with graphnn.no_grad():
        c(graphnn.randn(5, 2, 3))
    for key in ("optimized", "lowered"):
        g = c.graphs[key]
        back = from_json(to_json(g))
        verify(back)
        assert back.structural_hash() == g.structural_hash()
        assert [v.name for v in back.inputs] == [v.name for v in g.inputs]
    g = Graph()
    x = g.add_input(TensorType((3,), "float32"), "x")
    g.outputs = [g.emit("add", x, g.emit("constant", value=np.arange(3, dtype=np.float32)))]
    back = from_json(to_json(g))
    np.testing.assert_array_equal(interpret(back, [np.ones(3, np.float32)])[0], [1, 2, 3])


def test_small_constants_differ_by_shape_and_dtype():
    """Fuzz seed 601886: empty constants of different shapes printed alike, so CSE merged them (and a graph's
    hash, the compile cache key, could not tell a float32 constant from a float64 one)."""
    g = Graph("consts")
    x = g.add_input(TensorType((1, 0, 5, 5, 2), "float64"), "x")
    a = g.emit("constant", value=np.zeros((1, 0, 1, 5)))
    b = g.emit("constant", value=np.zeros((1, 0, 5, 5, 2)))
    g.outputs = [a, g.emit("add", x, b)]
    cse(g)
    verify(g)
    assert len([n for n in g.nodes if n.op == "constant"]) == 2

    def hashed(dtype):
        h = Graph("c")
        h.outputs = [h.emit("constant", value=np.array([1.0], dtype))]
        return h.structural_hash()

    assert hashed(np.float32) != hashed(np.float64)
