"""Bad input: errors name the op, the shapes and the user's source line."""

import numpy as np
import pytest

import graphnn
import graphnn.nn as nn
import graphnn.nn.functional as F
from graphnn.tools.tutorial_net import Net


def test_wrong_input_shape_names_op_shapes_and_line():
    net = Net()
    with pytest.raises(graphnn.OpError) as e:
        net(graphnn.randn(1, 3, 32, 32))  # three channels into conv1 (expects one)
    msg = str(e.value)
    assert "conv(" in msg and "f32[1,3,32,32]" in msg and "f32[6,1,5,5]" in msg
    assert "conv1" in msg
    assert "test_errors.py" in msg and "net(graphnn.randn(1, 3, 32, 32))" in msg


def test_wrong_input_shape_when_compiled():
    cnet = graphnn.compile(Net())
    with pytest.raises(graphnn.OpError, match=r"matmul\(f32\[1,576\], f32\[400,120\]\)"):
        with graphnn.no_grad():
            cnet(graphnn.randn(1, 1, 36, 36))


def test_wrong_dtype():
    lin = nn.Linear(4, 2)
    with pytest.raises(graphnn.OpError, match=r"matmul.*i64\[2,4\].*f32\[4,2\]"):
        lin(graphnn.ones(2, 4, dtype=graphnn.int64))


def test_broadcast_mismatch():
    with pytest.raises(graphnn.OpError, match=r"add\(f32\[2,3\], f32\[4\]\).*cannot be broadcast"):
        graphnn.ones(2, 3) + graphnn.ones(4)


def test_class_index_out_of_range():
    with pytest.raises(graphnn.OpError, match="out of bounds"):
        F.cross_entropy(graphnn.randn(2, 5), graphnn.tensor([1, 7]))


def test_item_inside_compile_is_a_clear_error():
    def f(x):
        return x * x.sum().item()

    with pytest.raises(graphnn.TraceError, match="symbolic inside graphnn.compile"):
        graphnn.compile(f, fullgraph=True)(graphnn.ones(3))


def test_compiled_graph_rejects_wrong_arrays():
    from graphnn.codegen import CompiledGraph
    from graphnn.ir import Graph, TensorType, IRError

    g = Graph()
    x = g.add_input(TensorType((2,), "float32"), "x")
    g.outputs = [g.emit("exp", x)]
    c = CompiledGraph(g)
    with pytest.raises(IRError, match=r"expects f32\[2\], got float64\[2\]"):
        c([np.ones(2)])


def test_compiled_graph_rejects_none_on_first_call():
    from graphnn.codegen import CompiledGraph
    from graphnn.ir import Graph, TensorType, IRError

    g = Graph()
    x = g.add_input(TensorType((3,), "float32"), "x")
    g.outputs = [g.emit("exp", x)]
    with pytest.raises((IRError, TypeError, ValueError)):
        CompiledGraph(g)([None])
