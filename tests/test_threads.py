"""Kernels split over threads give bit-identical results to one thread (each element is computed the same way)."""

import math
import re

import numpy as np
import pytest

import graphnn
from graphnn.codegen import CompiledGraph
from graphnn.codegen.module import PARALLEL_WORK
from graphnn.ir import Graph, TensorType, grad_graph, interpret, optimize
from tolerance import assert_close, graph_tolerance
from graphnn.tools.tutorial_net import Net
from train_steps import sgd_step

import op_cases as oc


@pytest.fixture
def threads(monkeypatch):
    """Set the thread count; kernels of these small test graphs are split too (lowered work threshold)."""
    from graphnn.codegen import module, runtime

    monkeypatch.setattr(module, "PARALLEL_WORK", 1 << 12)
    monkeypatch.setattr(runtime.ThreadChoice, "pooled", lambda self: True)  # always split (no timing trial)
    before = graphnn.get_num_threads()
    yield graphnn.set_num_threads
    graphnn.set_num_threads(before)


def _graphs():
    rng = np.random.default_rng(0)
    cases = []
    # GEMM with full panels and a tail, bias and relu epilogue
    g = Graph("gemm")
    a = g.add_input(TensorType((200, 300), "float32"), "a")
    b = g.add_input(TensorType((300, 70), "float32"), "b")
    c = g.add_input(TensorType((70,), "float32"), "c")
    g.outputs = [g.emit("relu", g.emit("add", g.emit("matmul", a, b), c))]
    cases.append((g, [rng.standard_normal(v.shape).astype(np.float32) for v in g.inputs]))
    # a large elementwise chain (flat loop) and a reduction
    g = Graph("flat")
    x = g.add_input(TensorType((1 << 21,), "float32"), "x")
    y = g.emit("mul", g.emit("sigmoid", x), g.emit("tanh", x))
    g.outputs = [y, g.emit("sum", g.emit("reshape", y, shape=(1024, 2048)), axes=(1,), keepdims=False)]
    cases.append((g, [rng.standard_normal(x.shape).astype(np.float32)]))
    return cases


@pytest.mark.parametrize("case", range(2))
def test_split_kernels_are_bit_identical(threads, case):
    g, arrays = _graphs()[case]
    compiled = CompiledGraph(g)
    assert re.search(r'define internal void @"[^"]+_part"', compiled.ir_text)  # at least one kernel is split
    results = []
    for n in (1, 2, 3):
        threads(n)
        results.append(compiled(arrays))
    for other in results[1:]:
        for x, y in zip(results[0], other):
            np.testing.assert_array_equal(x, y)
    for x, y, tol in zip(results[0], interpret(g, arrays), graph_tolerance(g, arrays)):
        assert_close(x, y, tol, "split kernels")


def test_training_step_same_with_two_threads(threads):
    losses = []
    for n in (1, 2):
        threads(n)
        graphnn.manual_seed(0)
        net = Net()
        step = graphnn.compile(sgd_step(net, lr=0.05, momentum=0.9))
        rng = np.random.default_rng(1)
        run = []
        for _ in range(3):
            x = graphnn.from_numpy(rng.standard_normal((64, 1, 32, 32)).astype(np.float32))
            y = graphnn.from_numpy(rng.integers(0, 10, 64))
            run.append(step(x, y).item())
        losses.append((run, [p.detach().numpy().copy() for p in net.parameters()]))
    assert losses[0][0] == losses[1][0]
    for p, q in zip(losses[0][1], losses[1][1]):
        np.testing.assert_array_equal(p, q)


def test_work_threshold_is_sane():
    assert 1 << 14 <= PARALLEL_WORK <= 1 << 22
    with pytest.raises(ValueError):
        graphnn.set_num_threads(0)


def test_thread_choice_keeps_the_faster_mode_and_rechecks():
    from graphnn.codegen.runtime import ThreadChoice

    c = ThreadChoice()
    modes = []
    for _ in range(2 * ThreadChoice.TRIAL):  # trial: modes alternate; the pool is slower here
        m = c.pooled()
        modes.append(m)
        c.record(m, 2e-3 if m else 1e-3)
    assert modes.count(True) == modes.count(False) == ThreadChoice.TRIAL
    n = ThreadChoice.RECHECK_SINGLE - 1  # (a one-thread choice is rechecked sooner than a pooled one)
    assert [c.pooled() for _ in range(n)] == [False] * n
    for _ in range(2 * ThreadChoice.TRIAL + 1):  # the next trial: now the pool is faster
        m = c.pooled()
        c.record(m, 1e-3 if m else 2e-3)
    assert c.best is True and c.pooled() is True
    n = ThreadChoice.RECHECK - 2
    assert [c.pooled() for _ in range(n)] == [True] * n


def test_thread_choice_keeps_the_pool_on_a_tie():
    """A pool running as slowly as one thread (its worker without a core of its own during the trial) is kept:
    one thread is chosen only when it is faster by more than ThreadChoice.TIE."""
    from graphnn.codegen.runtime import ThreadChoice

    for single_ms, pooled_ms, best in ((9.17, 9.19, True), (1.0, 1.0 + ThreadChoice.TIE / 2, True), (1.0, 1.1, False)):
        c = ThreadChoice()
        for _ in range(2 * ThreadChoice.TRIAL):
            m = c.pooled()
            c.record(m, (pooled_ms if m else single_ms) * 1e-3)
        assert c.best is best, (single_ms, pooled_ms)


@pytest.fixture
def split_everything(monkeypatch):
    """Every kernel may split (work threshold 1) and split kernels always use the pool."""
    from graphnn.codegen import module, runtime

    monkeypatch.setattr(module, "PARALLEL_WORK", 1)
    monkeypatch.setattr(runtime.ThreadChoice, "pooled", lambda self: True)
    before = graphnn.get_num_threads()
    yield graphnn.set_num_threads
    graphnn.set_num_threads(before)


def _same_on_1_and_3_threads(set_threads, graph, arrays, what):
    compiled = CompiledGraph(graph)
    results = []
    for n in (1, 3):
        set_threads(n)
        results.append(compiled([a.copy() for a in arrays]))
    # (tiny loops split into parts run scalar remainders where one thread runs vector code: reassociated
    # reductions may differ in the last bits, so within the rounding-error bound; a race is far outside it)
    for j, (x, y, v, tol) in enumerate(zip(*results, graph.outputs, graph_tolerance(graph, arrays))):
        oc.assert_same(x, y, v.dtype, f"{what}: output {j} on 1 vs 3 threads", tol)


def _extreme_cases() -> list:
    """Per op and dtype, its largest and its smallest case (by input elements): a split kernel's loop is
    divided the same way whatever the op computes, so the shapes at both ends test the split (more threads
    than iterations at the small end, uneven shares at the large end)."""
    groups = {}
    for p in oc.params(lambda case, dtype: dtype != "float64"):
        groups.setdefault((p.values[0].op, p.values[1]), []).append(p)
    out = []
    for ps in groups.values():
        ps = sorted(ps, key=lambda p: sum(math.prod(i.shape) for i in p.values[0].inputs))
        out += [ps[-1]] + ([ps[0]] if len(ps) > 1 else [])
    return out


_OP_PARAMS = _extreme_cases()


@pytest.mark.parametrize("case,dtype", [pytest.param(*p.values, id=p.id) for p in _OP_PARAMS])
def test_every_op_split_over_threads_agrees(split_everything, case, dtype):
    """A split kernel runs only the share of a loop whose iterations are independent: reductions to one value,
    products with one row, scans and the rest agree on 1 and 3 threads (forward and, where the op
    is differentiable, the joint forward + backward graph)."""
    _same_on_1_and_3_threads(split_everything, case.graph(dtype), case.arrays(dtype), case.id)
    if case.has_gradient(dtype):
        g, wrt, weights = oc.loss_graph(case, dtype)
        joint = optimize(grad_graph(g, wrt))
        _same_on_1_and_3_threads(split_everything, joint, case.arrays(dtype) + weights, case.id + " (joint)")


@pytest.mark.parametrize("shape", [(1, 1 << 16), (1 << 16, 1), (3, 1 << 15)])
def test_big_reductions_and_single_row_products_on_threads(split_everything, shape):
    """Regressions: a full sum, max or softmax over a long axis and a one-row product used to split their
    reduction loop, so every part wrote a partial result (or uninitialized scratch) into the whole output."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape).astype(np.float32)
    eps, n_sum = np.finfo(np.float32).eps, shape[0] * shape[1]
    checks = (
        (lambda t: t.sum(), x.astype(np.float64).sum(), n_sum * eps * np.abs(x).sum()),
        (lambda t: t.max(), x.max(), 0.0),
        (lambda t: t.softmax(1).sum(1), np.ones(shape[0]), 4 * shape[1] * eps),
    )
    for fn, want, bound in checks:
        f = graphnn.compile(fn)
        for n in (1, 2, 3):
            split_everything(n)
            np.testing.assert_allclose(f(graphnn.from_numpy(x)).numpy(), want, rtol=0, atol=bound)
    a, w = rng.standard_normal((1, 300)).astype(np.float32), rng.standard_normal((300, 1030)).astype(np.float32)
    mm = graphnn.compile(lambda p, q: p @ q)
    for n in (1, 2, 3):
        split_everything(n)
        got = mm(graphnn.from_numpy(a), graphnn.from_numpy(w)).numpy()
        bound = 2 * 300 * np.finfo(np.float32).eps * (np.abs(a) @ np.abs(w))
        assert np.all(np.abs(got - a.astype(np.float64) @ w) <= bound)


# Narrow products whose threads split the bands of rows (fewer column panels than gemm.ROW_SPLIT_PANELS):
# (rows, k, columns, A transposed in memory, epilogue). Rows past a whole band (m % 6, m % 8) land in one part.
_ROW_SPLIT = [
    (601, 256, 32, False, False),  # an input gradient: one panel, panels packed by every part
    (100, 70, 20, False, True),  # a ragged panel and a ragged band, through the epilogue
    (203, 1200, 32, True, False),  # a weight gradient over a long k: sliced, A's bands copied in chunks
    (300, 100, 64, False, False),  # two panels, banded
    (130, 300, 64, True, True),  # banded with a transposed A and an epilogue
    (13, 40, 20, False, True),  # 2 or 3 bands: a part (of 2 or 3) whose first band is the ragged one
    (13, 600, 32, True, False),  # the same, sliced
]


@pytest.mark.parametrize("m, kk, n, a_t, epilogue", _ROW_SPLIT)
def test_narrow_products_split_their_rows(split_everything, m, kk, n, a_t, epilogue):
    """Each part computes its own bands of rows (and packs every panel itself): 1, 2 and 3 threads agree bit for
    bit, and with NumPy within the rounding bound of a k-long sum."""
    from graphnn.codegen import gemm

    assert -(-n // 32) < gemm.ROW_SPLIT_PANELS
    rng = np.random.default_rng(m)
    g = Graph("narrow")
    a = g.add_input(TensorType((kk, m) if a_t else (m, kk), "float32"), "a")
    w = g.add_input(TensorType((kk, n), "float32"), "w")
    c = g.add_input(TensorType((n,), "float32"), "c")
    y = g.emit("matmul", g.emit("transpose", a, perm=(1, 0)) if a_t else a, w)
    g.outputs = [g.emit("relu", g.emit("add", y, c)) if epilogue else y]
    arrays = [rng.standard_normal(v.shape).astype(np.float32) for v in g.inputs]
    compiled = CompiledGraph(g)
    results = []
    for t in (1, 2, 3):
        split_everything(t)
        results.append(compiled([x.copy() for x in arrays])[0])
    for t, r in zip((2, 3), results[1:]):
        np.testing.assert_array_equal(r, results[0], err_msg=f"{t} threads vs 1")
    a64 = arrays[0].T if a_t else arrays[0]
    want = a64.astype(np.float64) @ arrays[1]
    want = np.maximum(want + arrays[2], 0) if epilogue else want
    bound = (
        2 * kk * np.finfo(np.float32).eps * (np.abs(a64) @ np.abs(arrays[1]) + (np.abs(arrays[2]) if epilogue else 0))
    )
    assert np.all(np.abs(results[0] - want) <= bound + 1e-30)
