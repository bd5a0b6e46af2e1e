"""Scans split by batch rows: a recurrence whose every row reads only its own row of the state (an RNN step) runs
each half of the batch on a thread of its own, for the whole loop (ir/rows.py, codegen/module.py). One thread and
two give bit-identical results; bodies whose rows mix are not split."""

import numpy as np
import pytest

import graphnn
import graphnn.nn as nn
from graphnn.ir import Graph, TensorType
from graphnn.ir.rows import split_rows


def _body(mix: str) -> Graph:
    """h' = tanh(h @ W + x) (+ a term mixing rows when asked), with h and x batched (8 rows)."""
    g = Graph("body")
    h = g.add_input(TensorType((8, 5), "float32"), "h")
    x = g.add_input(TensorType((8, 5), "float32"), "x")
    w = g.add_input(TensorType((5, 5), "float32"), "w", kind="const")
    y = g.emit("add", g.emit("matmul", h, w), x)
    if mix == "sum over rows":
        y = g.emit("add", y, g.emit("sum", h, axes=(0,), keepdims=True))
    elif mix == "rows moved":  # (the first row of h added to every row)
        y = g.emit("add", y, g.emit("slice", h, starts=(0, 0), stops=(1, 5), steps=(1, 1)))
    elif mix == "halves swapped":
        top = g.emit("slice", y, starts=(0, 0), stops=(4, 5), steps=(1, 1))
        y = g.emit("concat", g.emit("slice", y, starts=(4, 0), stops=(8, 5), steps=(1, 1)), top, axis=0)
    elif mix == "h as weights":  # (h h^T) @ x: every row reads all of h
        y = g.emit("add", y, g.emit("matmul", g.emit("matmul", h, g.emit("transpose", h, perm=(1, 0))), x))
    elif mix == "rows as columns":
        y = g.emit("add", y, g.emit("reshape", g.emit("transpose", h, perm=(1, 0)), shape=(8, 5)))
    y = g.emit("tanh", y)
    g.outputs = [y, y]
    return g


def test_a_recurrent_step_splits_and_computes_the_same_rows():
    from graphnn.ir import interpret

    g = _body("")
    half = split_rows(g, 1, 1, 4)
    assert half is not None and [v.shape for v in half.inputs] == [(4, 5), (4, 5), (5, 5)]
    rng = np.random.default_rng(0)
    h, x, w = (rng.standard_normal(v.shape).astype(np.float32) for v in g.inputs)
    full = interpret(g, [h, x, w])[0]
    halves = np.concatenate([interpret(half, [h[s], x[s], w])[0] for s in (slice(0, 4), slice(4, 8))])
    np.testing.assert_allclose(halves, full, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("mix", ["sum over rows", "rows moved", "halves swapped", "h as weights", "rows as columns"])
def test_bodies_mixing_rows_are_not_split(mix):
    assert split_rows(_body(mix), 1, 1, 4) is None


@pytest.fixture
def pool_always(monkeypatch):
    """Split kernels (and scans) always run on the pool; small test graphs' scans are split too."""
    from graphnn.codegen import module, runtime

    monkeypatch.setattr(module, "PARALLEL_WORK", 1 << 12)
    monkeypatch.setattr(runtime.ThreadChoice, "pooled", lambda self: True)
    before = graphnn.get_num_threads()
    yield graphnn.set_num_threads
    graphnn.set_num_threads(before)


_LAYERS = [
    ("LSTM", {}),
    ("GRU", {}),
    ("RNN", {"nonlinearity": "relu"}),
    ("LSTM", {"num_layers": 2, "bidirectional": True}),
    ("GRU", {"batch_first": True}),
    ("LSTM", {"proj_size": 6}),
]


@pytest.mark.parametrize("mode, kw", _LAYERS, ids=[f"{m}-{'-'.join(kw) or 'plain'}" for m, kw in _LAYERS])
def test_layers_same_on_one_and_two_threads(pool_always, mode, kw):
    """Forward and backward of a compiled recurrent layer over a batch of 10 (two halves of 5 rows) give the same
    bits on one thread (the whole batch per step) and on two (each half's loop on its own thread)."""
    graphnn.manual_seed(0)
    layer = getattr(nn, mode)(7, 12, **kw)
    c = graphnn.compile(layer)
    rng = np.random.default_rng(1)
    shape = (10, 30, 7) if kw.get("batch_first") else (30, 10, 7)
    xs = rng.standard_normal(shape).astype(np.float32)
    results = []
    for threads in (1, 2):
        pool_always(threads)
        layer.zero_grad()
        x = graphnn.tensor(xs, requires_grad=True)
        out, _ = c(x)
        (out * out).sum().backward()
        results.append([out.detach().numpy(), x.grad.numpy()] + [p.grad.numpy().copy() for p in layer.parameters()])
    for i, (a, b) in enumerate(zip(*results)):
        np.testing.assert_array_equal(a, b, err_msg=f"result {i}: 1 vs 2 threads")
    prog = c._compiled.last
    assert "scan_body_half" in prog.native.ir_text and "scan_body_half" in prog.native_backward.ir_text


def test_packed_sequences_split_too(pool_always):
    """A packed batch's per-step mask is a per-row input like the others."""
    graphnn.manual_seed(0)
    lstm = nn.LSTM(4, 8)
    c = graphnn.compile(lstm)
    rng = np.random.default_rng(2)
    lengths = [9, 9, 7, 6, 6, 5, 3, 2]
    seqs = [graphnn.tensor(rng.standard_normal((n, 4)).astype(np.float32)) for n in lengths]
    results = []
    for threads in (1, 2):
        pool_always(threads)
        lstm.zero_grad()
        packed = nn.utils.rnn.pack_sequence(seqs)
        out, (h, cell) = c(packed)
        (h * h).sum().backward()
        results.append(
            [out.data.detach().numpy(), h.detach().numpy()] + [p.grad.numpy().copy() for p in lstm.parameters()]
        )
    for i, (a, b) in enumerate(zip(*results)):
        np.testing.assert_array_equal(a, b, err_msg=f"result {i}: 1 vs 2 threads")


def test_profile_counts_the_split_scan_as_a_whole(pool_always, monkeypatch, tmp_path):
    """With profiling on, the scan's counter times both halves; the half bodies' kernels get no counters (two
    threads would race on them)."""
    monkeypatch.setenv("GRAPHNN_PROFILE", "1")
    monkeypatch.setenv("GRAPHNN_CACHE_DIR", str(tmp_path))
    graphnn.manual_seed(0)
    c = graphnn.compile(nn.GRU(7, 12))
    x = graphnn.tensor(np.ones((30, 10, 7), np.float32))
    for threads in (1, 2):
        pool_always(threads)
        c(x)
    native = c._compiled.last.native
    assert "scan_body_half" in native.ir_text
    rows = native.profile()
    assert not any("half" in name for name, _, _ in rows)
    scans = [(cycles, calls) for name, cycles, calls in rows if "(with its body)" in name]
    assert scans and all(calls == 2 and cycles > 0 for cycles, calls in scans)
