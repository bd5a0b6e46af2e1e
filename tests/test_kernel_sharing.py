"""Groups that compute the same thing on buffers of the same types share one native kernel function."""

import re

import numpy as np

from graphnn.codegen import CompiledGraph
from graphnn.codegen.module import build_module
from graphnn.ir import Graph, TensorType, interpret
from tolerance import assert_close, graph_tolerance


def _layers(scales: list) -> Graph:
    """One 'layer' per scale: tanh, a row sum (ends a kernel) and a scaled residual add."""
    g = Graph("layers")
    x = g.add_input(TensorType((8, 33), "float32"), "x")
    v = x
    for s in scales:
        r = g.emit("sum", g.emit("tanh", v), axes=(1,), keepdims=True)
        v = g.emit("add", g.emit("mul", v, g.emit("full", shape=(), dtype="float32", value=s)), r)
    g.outputs = [v]
    return g


def _kernels(g: Graph) -> int:
    texts, _, plan = build_module(g, "e", None, 1)
    return len(set(re.findall(r'define [^@]*@"?(e_k\d+[^"(]*)', "\n".join(texts)))), len(plan.groups)


def _check(g: Graph) -> None:
    x = np.random.default_rng(0).standard_normal((8, 33)).astype(np.float32)
    assert_close(CompiledGraph(g)([x])[0], interpret(g, [x])[0], graph_tolerance(g, [x])[0], "output")


def test_identical_layers_share_kernels(monkeypatch, tmp_path):
    monkeypatch.setenv("GRAPHNN_CACHE_DIR", str(tmp_path))
    four, _ = _kernels(_layers([0.5] * 4))
    eight, groups = _kernels(_layers([0.5] * 8))
    assert eight == four < groups  # deeper stacks call the functions of the first layers again
    _check(_layers([0.5] * 4))


def test_layers_that_differ_in_a_constant_keep_their_own_kernels(monkeypatch, tmp_path):
    monkeypatch.setenv("GRAPHNN_CACHE_DIR", str(tmp_path))
    one, _ = _kernels(_layers([0.5]))
    four, _ = _kernels(_layers([0.5, 0.25, 0.125, 2.0]))
    assert four > one
    _check(_layers([0.5, 0.25, 0.125, 2.0]))
