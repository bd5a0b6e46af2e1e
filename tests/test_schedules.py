"""The hand-written schedules (dot-product and blocked GEMM tiles, col2im, tiled max-pool gradients) with their
fused epilogues agree with the reference interpreter, on one thread and split over the worker pool."""

import re

import numpy as np
import pytest

import graphnn
from graphnn.codegen import CompiledGraph
from graphnn.ir import Graph, TensorType, interpret
from tolerance import assert_close, graph_tolerance


def _rand(rng, g):
    return [rng.standard_normal(v.shape).astype(v.dtype) for v in g.inputs]


def _dots(m, n, k, batch=(), dtype="float32"):
    """relu(A @ W^T + bias): W^T is read as a transposed view (weight-gradient / Linear layout)."""
    g = Graph(f"dots_{m}_{n}_{k}")
    a = g.add_input(TensorType(batch + (m, k), dtype), "a")
    w = g.add_input(TensorType(batch + (n, k), dtype), "w")
    c = g.add_input(TensorType((n,), dtype), "c")
    perm = tuple(range(len(batch))) + (len(batch) + 1, len(batch))
    y = g.emit("matmul", a, g.emit("transpose", w, perm=perm))
    g.outputs = [g.emit("relu", g.emit("add", y, c))]
    return g


def _blocked(m, n, k):
    g = Graph(f"blocked_{m}_{n}_{k}")
    a = g.add_input(TensorType((m, k), "float32"), "a")
    b = g.add_input(TensorType((k, n), "float32"), "b")
    g.outputs = [g.emit("tanh", g.emit("matmul", a, b))]
    return g


def _plain(m, n, k, batch=()):
    """A product that is the kernel's result itself: whole tiles are stored straight into it."""
    g = Graph(f"plain_{m}_{n}_{k}")
    a = g.add_input(TensorType(batch + (m, k), "float32"), "a")
    b = g.add_input(TensorType(batch + (k, n), "float32"), "b")
    g.outputs = [g.emit("matmul", a, b)]
    return g


def _plain_transposed_a(m, n, k):
    """A product of a transposed buffer (a weight gradient's X^T) stored in place: its bands of A are copied MR
    wide before they meet B's panels."""
    g = Graph(f"plain_ta_{m}_{n}_{k}")
    a = g.add_input(TensorType((k, m), "float32"), "a")
    b = g.add_input(TensorType((k, n), "float32"), "b")
    g.outputs = [g.emit("matmul", g.emit("transpose", a, perm=(1, 0)), b)]
    return g


def _plain_with_sibling(m, n, k):
    """A product that is an output and also feeds another (p * c): the second is an epilogue sibling computed in
    the product's kernel (with a long k: from each finished panel of the sliced schedule)."""
    g = Graph(f"sibling_{m}_{n}_{k}")
    a = g.add_input(TensorType((m, k), "float32"), "a")
    b = g.add_input(TensorType((k, n), "float32"), "b")
    c = g.add_input(TensorType((n,), "float32"), "c")
    p = g.emit("matmul", a, b)
    s = g.emit("mul", p, c)  # (read by four reductions: stored once, as the product's epilogue sibling)
    sums = [g.emit("sum", x, axes=(ax,)) for x in (s, g.emit("mul", s, s)) for ax in (0, 1)]
    g.outputs = [p] + sums
    return g


def _column_sum(shape, axes, keepdims=False, epilogue=True):
    """A bias gradient: sum over leading axes (rows added as vectors into chunks of column sums)."""
    g = Graph("colsum")
    x = g.add_input(TensorType(shape, "float32"), "x")
    y = g.emit("sum", g.emit("mul", x, x), axes=axes, keepdims=keepdims)
    g.outputs = [g.emit("sqrt", y) if epilogue else y]
    return g


def _gate_gradients(batch=3, hidden=5):
    """An LSTM's gate gradients placed into one (batch, 4*hidden) matrix: a sum of slice_grads, emitted as
    pieces of the last axis so each piece computes only its own gate's chain."""
    g = Graph("gates")
    xs = [g.add_input(TensorType((batch, hidden), "float32"), f"g{i}") for i in range(4)]
    total = None
    for i, x in enumerate(xs):
        chain = g.emit("mul", g.emit("sigmoid", x), g.emit("tanh", x))
        placed = g.emit("slice_grad", chain, shape=(batch, 4 * hidden), starts=(0, i * hidden), steps=(1, 1))
        total = placed if total is None else g.emit("add", total, placed)
    g.outputs = [total]
    return g


def _weight_grad_through_reshapes():
    """sum_b X_b^T @ G_b rewritten as one product of reshaped activations: its left operand is the transpose
    of a reshape, read in place with strides."""
    g = Graph("wgrad")
    x = g.add_input(TensorType((10, 16, 32), "float32"), "x")
    gr = g.add_input(TensorType((10, 16, 24), "float32"), "g")
    lhs = g.emit("transpose", g.emit("reshape", x, shape=(160, 32)), perm=(1, 0))
    g.outputs = [g.emit("matmul", lhs, g.emit("reshape", gr, shape=(160, 24)))]
    return g


def _col2im(shape, kernel, stride, padding, dilation):
    from graphnn.ir.ops.im2col import geometry

    at = dict(kernel=kernel, stride=stride, padding=padding, dilation=dilation)
    _outs, kp, rp = geometry(shape, at)
    g = Graph("col2im")
    col = g.add_input(TensorType((shape[1] * kp, shape[0] * rp), "float32"), "col")
    y = g.emit("col2im", col, input_shape=shape, **at)
    g.outputs = [g.emit("mul", y, g.emit("sigmoid", y))]
    return g


def _pool_grad(shape, kernel, padding=None, ceil_mode=False):
    """The LeNet backward pattern: max-pool gradient followed by the ReLU gradient (a select)."""
    from graphnn.ir.registry import get_op

    nsp = len(kernel)
    at = dict(kernel=kernel, stride=kernel, padding=padding or (0,) * nsp, dilation=(1,) * nsp, ceil_mode=ceil_mode)
    g = Graph("pool_grad")
    x = g.add_input(TensorType(shape, "float32"), "x")
    gy = g.add_input(get_op("max_pool").infer([x.type], at), "g")
    gx = g.emit("max_pool_grad", x, gy, **at)
    zero = g.emit("full", shape=(), dtype="float32", value=0.0)
    g.outputs = [g.emit("select", g.emit("gt", x, zero), gx, zero)]
    return g


def _pool(shape, kernel, epilogue=False, nan=False):
    """Forward max pool with 2-wide tiling windows (contiguous vector loads and lane shuffles)."""
    at = dict(kernel=kernel, stride=kernel, padding=(0, 0), dilation=(1, 1), ceil_mode=False)
    g = Graph("pool")
    x = g.add_input(TensorType(shape, "float32"), "x")
    if nan:  # NaN wherever x > 1.5: a window with a NaN gives NaN
        x = g.emit(
            "select",
            g.emit("gt", x, g.emit("full", shape=(), dtype="float32", value=1.5)),
            g.emit("full", shape=(), dtype="float32", value=float("nan")),
            x,
        )
        x = g.emit("mul", x, g.emit("full", shape=(), dtype="float32", value=1.0))
    y = g.emit("max_pool", x, **at)
    g.outputs = [g.emit("tanh", y) if epilogue else y]
    return g


CASES = {
    "column_sum_bias": _column_sum((100, 16, 40), (0, 1)),
    "column_sum_wide_keepdims": _column_sum((7, 600), (0,), keepdims=True),
    "column_sum_plain": _column_sum((9, 3, 20), (0,), epilogue=False),
    "gate_gradient_pieces": _gate_gradients(),
    "weight_grad_strided_lhs": _weight_grad_through_reshapes(),
    "pool_lenet": _pool((8, 6, 28, 28), (2, 2)),
    "pool_ragged_tall": _pool((2, 3, 10, 9), (3, 2)),
    "pool_wide_epilogue": _pool((1, 2, 6, 84), (2, 2), epilogue=True),
    "pool_nan": _pool((2, 2, 8, 8), (2, 2), nan=True),
    "dots_4x4": _dots(4, 4, 64),
    "dots_ragged": _dots(6, 25, 203),
    "dots_one_row": _dots(1, 120, 400),
    "dots_long_k": _dots(16, 150, 6400),
    "dots_batched": _dots(3, 7, 40, batch=(2,)),
    "dots_f64": _dots(5, 9, 37, dtype="float64"),
    "blocked_padded_panel": _blocked(50, 120, 64),
    "blocked_narrow": _blocked(9, 17, 33),
    "blocked_conv2_b1": _blocked(16, 100, 150),  # 4-row tiles, a 4-column tail panel (one-vector tile)
    "blocked_packed_tail": _blocked(300, 40, 20),  # packed B panels, an 8-column tail
    "blocked_six_rows": _blocked(12, 100, 40),
    "plain_partial_tiles": _plain(50, 70, 33),
    "plain_batched": _plain(7, 64, 20, batch=(3,)),
    "plain_packed": _plain(260, 96, 17),
    "plain_wide_tail": _plain(16, 150, 400),  # the last panel is two vectors wide but not full
    # k longer than a whole packed panel (a tied LM head's input gradient): packed one slice of k at a time, with
    # ragged rows and a ragged last panel
    "plain_long_k": _plain(50, 70, 5000),
    "plain_long_k_batched": _plain(13, 40, 4200, batch=(2,)),
    "plain_long_k_sibling": _plain_with_sibling(50, 70, 5000),
    "col2im_lenet": _col2im((4, 6, 14, 14), (5, 5), (1, 1), ((0, 0), (0, 0)), (1, 1)),
    "col2im_strided_padded": _col2im((2, 3, 9, 8), (3, 2), (2, 3), ((1, 1), (0, 0)), (1, 2)),
    "col2im_rows_padded_dilated": _col2im((2, 3, 9, 8), (3, 2), (2, 1), ((1, 1), (1, 0)), (1, 2)),
    "col2im_rows_wide": _col2im((1, 2, 5, 40), (2, 3), (1, 1), ((0, 0), (2, 2)), (1, 1)),
    "col2im_high_padding_1d": _col2im((6, 3, 1), (2,), (1,), ((0, 1),), (1,)),  # fuzz seed 301658
    "col2im_high_padding_2d": _col2im((2, 2, 5, 6), (3, 2), (1, 2), ((0, 1), (0, 2)), (1, 1)),
    "col2im_3d": _col2im((1, 2, 5, 4, 6), (2, 3, 2), (1, 1, 2), ((0, 0), (1, 1), (1, 1)), (2, 1, 1)),
    "pool_grad_lenet": _pool_grad((8, 6, 28, 28), (2, 2)),
    "pool_grad_ragged": _pool_grad((2, 3, 7, 9), (2, 3)),
    "pool_grad_tall_rows_edges": _pool_grad((2, 3, 7, 9), (3, 2)),  # vector rows, uncovered last row/column
    "pool_grad_wide_rows": _pool_grad((1, 2, 4, 70), (2, 2)),
    "pool_grad_padded_ceil": _pool_grad((2, 2, 7, 6), (2, 2), padding=(1, 0), ceil_mode=True),
}


@pytest.fixture
def split_everything(monkeypatch):
    from graphnn.codegen import module, runtime

    monkeypatch.setattr(module, "PARALLEL_WORK", 1)
    monkeypatch.setattr(runtime.ThreadChoice, "pooled", lambda self: True)  # always split (no timing trial)
    before = graphnn.get_num_threads()
    yield
    graphnn.set_num_threads(before)


@pytest.mark.parametrize("name", sorted(CASES))
def test_schedule_matches_interpreter(name):
    g = CASES[name]
    arrays = _rand(np.random.default_rng(0), g)
    for j, (got, want, tol) in enumerate(
        zip(CompiledGraph(g)(arrays), interpret(g, arrays), graph_tolerance(g, arrays))
    ):
        assert_close(got, want, tol, f"{name}: output {j}")


@pytest.mark.parametrize(
    "name",
    [
        "dots_ragged",
        "dots_batched",
        "blocked_padded_panel",
        "blocked_packed_tail",
        "plain_partial_tiles",
        "plain_long_k",
        "plain_long_k_sibling",
        "column_sum_wide_keepdims",
        "col2im_lenet",
        "pool_grad_ragged",
    ],
)
def test_split_schedule_is_bit_identical(split_everything, name):
    g = CASES[name]
    arrays = _rand(np.random.default_rng(1), g)
    compiled = CompiledGraph(g)
    results = []
    for n in (1, 2, 3):
        graphnn.set_num_threads(n)
        results.append(compiled(arrays))
    for other in results[1:]:
        for x, y in zip(results[0], other):
            np.testing.assert_array_equal(x, y)


def test_a_long_k_product_keeps_its_sibling_in_its_kernel():
    from graphnn.ir.fusion import plan_fusion

    plan = plan_fusion(CASES["plain_long_k_sibling"])
    assert plan.groups[0].extra  # (the sibling computed from the product's finished panels)


# Big plain products run slice of k by slice, a block of packed panels per slice computed band of rows by band
# (gemm.banded_slices), and products over a whole packed k compute a block of panels band by band (gemm.banded);
# with slices and blocks a few tiles big (small_blocks), small products take those schedules too: several slices
# (the last one ragged) and column blocks, ragged rows, a ragged last panel, an epilogue.
BLOCK_CASES = {
    "sliced_bands": _plain(70, 50, 600),
    "sliced_bands_batched": _plain(70, 40, 520, batch=(2,)),
    "sliced_bands_whole_panels": _plain(72, 64, 512),
    "banded_epilogue": _blocked(70, 100, 300),
    "banded_plain": _plain(70, 100, 300),
    "banded_transposed_a": _plain_transposed_a(70, 100, 300),
    "sliced_bands_transposed_a": _plain_transposed_a(71, 50, 600),
}


@pytest.fixture
def small_blocks(monkeypatch):
    from graphnn.codegen import gemm

    monkeypatch.setattr(gemm, "SLICE_BYTES", 8 * 4 * 200)  # slices of 112 to 256 (MR 14 to 6 rows of float32)
    monkeypatch.setattr(gemm, "B_BLOCK_BYTES", 40000)  # 1 or 2 panels (AVX-512 or AVX2)


@pytest.mark.parametrize("name", sorted(BLOCK_CASES))
def test_blocked_schedules(small_blocks, split_everything, name):
    g = BLOCK_CASES[name]
    arrays = _rand(np.random.default_rng(2), g)
    compiled = CompiledGraph(g)
    if compiled._ir_text is not None and name.startswith("sliced"):  # (compiled now, not loaded from the cache)
        assert "graphnn_gemm_tile_acc" in compiled._ir_text  # (slices after the first add to the result)
    if compiled._ir_text is not None and name.endswith("transposed_a"):
        from graphnn.codegen import gemm

        heights = "|".join(map(str, gemm.TILE_HEIGHTS))
        assert re.search(rf"load <({heights}) x float>", compiled._ir_text)  # (a band of A copied MR wide)
    results = []
    for n in (1, 2, 3):
        graphnn.set_num_threads(n)
        results.append(compiled(arrays))
    for j, (got, want, tol) in enumerate(zip(results[0], interpret(g, arrays), graph_tolerance(g, arrays))):
        assert_close(got, want, tol, f"{name}: output {j}")
    for other in results[1:]:
        for x, y in zip(results[0], other):
            np.testing.assert_array_equal(x, y)
