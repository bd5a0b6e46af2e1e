"""One compiled model called from several Python threads at once gives each thread its own correct results
(including the first call, which traces and compiles while the other threads wait for or race it)."""

from __future__ import annotations

import re
import threading

import numpy as np

import graphnn
import graphnn.nn as nn
from parity_util import close
from tolerance import recorded_bounds

THREADS = 8
CALLS = 25


def _hammer(fn, inputs: list) -> list:
    """Call fn(inputs[i]) CALLS times in thread i, all threads released together; returns per-thread results."""
    barrier = threading.Barrier(len(inputs))
    results: list = [None] * len(inputs)
    errors: list = []

    def work(i):
        try:
            barrier.wait()
            results[i] = [fn(inputs[i]) for _ in range(CALLS)]
        except Exception as e:  # noqa: BLE001  (reported below with the thread number)
            errors.append((i, e))

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(inputs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    return results


def _net():
    graphnn.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(64, 5))


def test_compiled_inference_from_threads():
    net = _net()
    compiled = graphnn.compile(net)
    rng = np.random.default_rng(0)
    # two input shapes, so threads also trace and compile two specializations concurrently
    inputs = [graphnn.from_numpy(rng.standard_normal((1 + i % 2, 1, 8, 8)).astype(np.float32)) for i in range(THREADS)]

    def infer(x):
        with graphnn.no_grad():
            return compiled(x).numpy()

    results = _hammer(infer, inputs)
    for x, outs in zip(inputs, results):
        want = net(x)  # eager, its graph recorded: compiled and eager are within twice its rounding-error bound
        tol = recorded_bounds([want]).tol(0)
        for got in outs:
            close(got, want, "output", tol)


def test_compiled_forward_and_backward_from_threads():
    """Training-mode calls (compiled forward, compiled backward through autograd.grad) in parallel."""
    net = _net()
    compiled = graphnn.compile(net)
    rng = np.random.default_rng(1)
    inputs = [graphnn.from_numpy(rng.standard_normal((2, 1, 8, 8)).astype(np.float32)) for _ in range(THREADS)]
    params = list(net.parameters())

    def grads(model, x):
        loss = (model(x) ** 2).sum()
        return [loss.item()] + [g.numpy() for g in graphnn.autograd.grad(loss, params)]

    results = _hammer(lambda x: grads(compiled, x), inputs)
    for x, outs in zip(inputs, results):
        want = grads(net, x)
        loss = (net(x) ** 2).sum()
        bounds = recorded_bounds([loss], loss)
        tols = [bounds.tol(0)] + [bounds.grad_tol(p) for p in params]
        for got in outs:
            for a, b, tol in zip(got, want, tols):
                close(a, b, "loss or gradient", tol)


def test_compiled_function_from_threads():
    w = graphnn.randn(6, 3)

    @graphnn.compile
    def f(x, scale: float):
        return (x @ w).tanh() * scale

    rng = np.random.default_rng(2)
    inputs = [
        (graphnn.from_numpy(rng.standard_normal((4, 6)).astype(np.float32)), float(i % 3)) for i in range(THREADS)
    ]
    results = _hammer(lambda a: f(*a).numpy(), inputs)
    for (x, s), outs in zip(inputs, results):
        want = np.tanh(x.numpy() @ w.numpy()) * s
        eager = f.fn(graphnn.tensor(x.numpy(), requires_grad=True), s)  # recorded: the bound of the same formula
        tol = recorded_bounds([eager]).tol(0)
        for got in outs:
            close(got, want, "output", tol)


def test_split_kernels_from_threads():
    """Kernels large enough to be split over native threads, called from several Python threads at once."""
    from graphnn.codegen import CompiledGraph
    from graphnn.ir import Graph, TensorType

    before = graphnn.get_num_threads()
    graphnn.set_num_threads(2)
    try:
        g = Graph("flat")
        x = g.add_input(TensorType((1 << 20,), "float32"), "x")
        y = g.emit("mul", g.emit("sigmoid", x), g.emit("tanh", x))
        g.outputs = [y, g.emit("sum", g.emit("reshape", y, shape=(1024, 1024)), axes=(1,), keepdims=False)]
        compiled = CompiledGraph(g)
        assert re.search(r'define internal void @"[^"]+_part"', compiled.ir_text)  # split kernels run on the pool
        rng = np.random.default_rng(3)
        inputs = [rng.standard_normal(1 << 20).astype(np.float32) for _ in range(4)]
        want = [compiled([a]) for a in inputs]
        results = _hammer(lambda a: compiled([a]), inputs)
    finally:
        graphnn.set_num_threads(before)
    for w, outs in zip(want, results):
        for got in outs:
            for a, b in zip(got, w):
                np.testing.assert_array_equal(a, b)
