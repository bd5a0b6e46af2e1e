"""An output array is reused by the next call only when the caller kept neither the array nor any view of it
(so no allocation or fresh pages per call, and no result is ever overwritten); big outputs are 64-byte aligned."""
import numpy as np
import pytest

from graphnn.codegen import CompiledGraph
from graphnn.codegen.module import ALIGNED_OUTPUT_BYTES
from graphnn.ir import Graph, TensorType

BIG = ALIGNED_OUTPUT_BYTES // 4 + 37  # float32 elements: a big output, not a multiple of any block size


def _compiled(N):
    g = Graph("chain")
    x, a = g.add_input(TensorType((N,), "float32"), "x"), g.add_input(TensorType((N,), "float32"), "a")
    g.outputs = [g.emit("mul", g.emit("relu", g.emit("add", x, a)), g.emit("sigmoid", x))]
    return CompiledGraph(g)


def _want(x, a):
    return np.maximum(x + a, 0) * (1 / (1 + np.exp(-x)))


@pytest.mark.parametrize("N", [BIG, 10])
def test_outputs_are_reused_only_when_released(N):
    c = _compiled(N)
    rng = np.random.default_rng(0)
    x, a = rng.standard_normal(N).astype(np.float32), rng.standard_normal(N).astype(np.float32)
    first = c([x, a])[0]
    assert N != BIG or first.ctypes.data % 64 == 0
    np.testing.assert_allclose(first, _want(x, a), rtol=1e-5, atol=1e-6)
    kept = first.copy()
    second = c([a, x])[0]  # `first` is still held: a new buffer
    assert second.ctypes.data != first.ctypes.data
    np.testing.assert_array_equal(first, kept)
    view = second[5:]
    addr = second.ctypes.data
    del second
    third = c([x, a])[0]  # a view of the second result is held: still a new buffer
    assert third.ctypes.data != addr
    np.testing.assert_allclose(view, _want(a, x)[5:], rtol=1e-5, atol=1e-6)
    addr = third.ctypes.data
    del third, first
    fourth = c([a, x])[0]  # nothing of the last result is held: its buffer is reused
    assert fourth.ctypes.data == addr
    np.testing.assert_allclose(fourth, _want(a, x), rtol=1e-5, atol=1e-6)
