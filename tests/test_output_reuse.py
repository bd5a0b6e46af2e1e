"""An output array is reused by the next call only when the caller kept neither the array nor any view of it
(so no allocation or fresh pages per call, and no result is ever overwritten); big outputs are 64-byte aligned."""

import numpy as np
import pytest

from graphnn.codegen import CompiledGraph
from graphnn.codegen.module import ALIGNED_OUTPUT_BYTES
from graphnn.ir import Graph, TensorType
from tolerance import assert_close, graph_tolerance

BIG = ALIGNED_OUTPUT_BYTES // 4 + 37  # float32 elements: a big output, not a multiple of any block size


def _graph(N):
    g = Graph("chain")
    x, a = g.add_input(TensorType((N,), "float32"), "x"), g.add_input(TensorType((N,), "float32"), "a")
    g.outputs = [g.emit("mul", g.emit("relu", g.emit("add", x, a)), g.emit("sigmoid", x))]
    return g


def _check(got, x, a, part=slice(None)):
    """got against the same formula in NumPy, within twice the graph's rounding-error bound."""
    want = np.maximum(x + a, 0) * (1 / (1 + np.exp(-x)))
    assert_close(got, want[part], graph_tolerance(_graph(x.size), [x, a])[0][part], "output")


@pytest.mark.parametrize("N", [BIG, 10])
def test_outputs_are_reused_only_when_released(N):
    c = CompiledGraph(_graph(N))
    rng = np.random.default_rng(0)
    x, a = rng.standard_normal(N).astype(np.float32), rng.standard_normal(N).astype(np.float32)
    first = c([x, a])[0]
    assert N != BIG or first.ctypes.data % 64 == 0
    _check(first, x, a)
    kept = first.copy()
    second = c([a, x])[0]  # `first` is still held: a new buffer
    assert second.ctypes.data != first.ctypes.data
    np.testing.assert_array_equal(first, kept)
    view = second[5:]
    addr = second.ctypes.data
    del second
    third = c([x, a])[0]  # a view of the second result is held: still a new buffer
    assert third.ctypes.data != addr
    _check(view, a, x, slice(5, None))
    addr = third.ctypes.data
    del third, first
    fourth = c([a, x])[0]  # nothing of the last result is held: its buffer is reused
    assert fourth.ctypes.data == addr
    _check(fourth, a, x)
