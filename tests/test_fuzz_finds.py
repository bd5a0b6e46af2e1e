"""Graphs the 10k fuzz run of 2026-11-29 (c) found miscompiled, compiled against the reference interpreter."""

import numpy as np

from graphnn.codegen import CompiledGraph
from graphnn.ir import Graph, TensorType
from graphnn.ir.interpreter import interpret


def _check(g: Graph, inputs: list) -> None:
    for got, want in zip(CompiledGraph(g)(inputs), interpret(g, inputs)):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


def test_transposed_matrix_times_two_batch_dims_float64(monkeypatch, tmp_path):
    """Seed 1004024: x0^T @ x1 with x1 (2, 2, 6, 3) in float64 - the unrolled row schedule, SLP-vectorized for
    AVX-512 by LLVM 22, got 4 of 60 elements wrong (codegen/jit.py now leaves SLP out of unrolled modules)."""
    monkeypatch.setenv("GRAPHNN_CACHE_DIR", str(tmp_path))
    g = Graph()
    x0 = g.add_input(TensorType((6, 5), "float64"), "x0")
    x1 = g.add_input(TensorType((2, 2, 6, 3), "float64"), "x1")
    g.outputs = [g.emit("matmul", g.emit("transpose", x0, perm=(1, 0)), x1)]
    rng = np.random.default_rng(0)
    _check(g, [rng.standard_normal((6, 5)), rng.standard_normal((2, 2, 6, 3))])


def test_concat_of_empty_operands(monkeypatch, tmp_path):
    """Seeds 1007916 and 1008649: a concat whose operands are all empty failed to compile."""
    monkeypatch.setenv("GRAPHNN_CACHE_DIR", str(tmp_path))
    g = Graph()
    a = g.add_input(TensorType((0,), "int64"), "a")
    b = g.add_input(TensorType((1, 0), "float64"), "b")
    g.outputs = [g.emit("concat", a, a, axis=0), g.emit("concat", b, axis=1)]
    _check(g, [np.zeros((0,), np.int64), np.zeros((1, 0))])
