"""One-element values a kernel computes from one-element inputs (an optimizer's bias correction 1 - beta**t) are
computed once before its loop, not per element, also when they read a one-element result the same kernel computes
first (Adam's step count, incremented in the update kernel); the results stay those of the interpreter."""

import numpy as np

from graphnn.codegen import CompiledGraph
from graphnn.codegen.module import build_module
from graphnn.ir import Graph, TensorType, interpret
from graphnn.ir.fusion import plan_fusion


def _kernel_text(g: Graph, name: str) -> str:
    """The LLVM IR of the one kernel of g that writes a 1000-element result."""
    text = build_module(g, name)[0][0]
    (big,) = [k for k in text.split("\ndefine internal")[1:] if "1000" in k]
    return big


def _check(g: Graph, arrays: list) -> None:
    want = interpret(g, arrays)
    got = CompiledGraph(g, name=g.name)(arrays)
    for w, x in zip(want, got):
        np.testing.assert_allclose(x, w, rtol=1e-6, atol=0)


def test_bias_correction_is_computed_before_the_loop():
    g = Graph("hoist_plain")
    x = g.add_input(TensorType((1000,), "float32"), "x")
    beta = g.add_input(TensorType((), "float32"), "beta")
    t = g.add_input(TensorType((), "float32"), "t")
    one = g.emit("full", value=1.0, shape=(), dtype="float32")
    g.outputs = [g.emit("mul", x, g.emit("sub", one, g.emit("pow", beta, t)))]
    k = _kernel_text(g, "hoist_plain")
    assert "pow" in k and k.index("pow") < k.index("loop:")
    _check(g, [np.linspace(-1, 1, 1000, dtype=np.float32), np.float32(0.9), np.float32(3.0)])


def test_a_step_count_the_kernel_increments_is_read_after_it_is_computed():
    """A merged kernel: t + 1 is written first (a one-element root), then the bias correction of the new count
    is hoisted out of the loop that updates every element."""
    g = Graph("hoist_merged")
    x = g.add_input(TensorType((1000,), "float32"), "x")
    beta = g.add_input(TensorType((), "float32"), "beta")
    t = g.add_input(TensorType((), "float32"), "t")
    one = g.emit("full", value=1.0, shape=(), dtype="float32")
    t1 = g.emit("add", t, one)
    g.outputs = [t1, g.emit("mul", x, g.emit("sub", one, g.emit("pow", beta, t1)))]
    assert any(grp.scalars and grp.loops for grp in plan_fusion(g).groups)  # one merged kernel writes both
    k = _kernel_text(g, "hoist_merged")
    assert "pow" in k and k.index("pow") < k.index("loop:")
    _check(g, [np.linspace(-1, 1, 1000, dtype=np.float32), np.float32(0.9), np.float32(3.0)])
