"""Eager backward() reuses the gradient graph of a recorded-graph structure it differentiated before, and runs it as
native code after GRAPHNN_HOT_BACKWARD reuses (graphnn/core/backward_cache.py)."""

import numpy as np
import pytest

import graphnn
import graphnn.nn as nn
import graphnn.nn.functional as F
from graphnn.core import backward_cache

RNG = np.random.default_rng(11)
X = RNG.standard_normal((6, 5)).astype(np.float32)
Y = RNG.integers(0, 3, 6)


def model():
    graphnn.manual_seed(0)
    return nn.Sequential(nn.Linear(5, 8), nn.Tanh(), nn.Linear(8, 3))


def train(steps: int, monkeypatch, hot: int):
    """Losses and final weights of `steps` SGD steps with the cache set to `hot` (0: off)."""
    monkeypatch.setenv("GRAPHNN_HOT_BACKWARD", str(hot))
    monkeypatch.setenv("GRAPHNN_HOT_OPTIMIZER", "0")
    backward_cache.clear()
    m = model()
    opt = graphnn.optim.SGD(m.parameters(), lr=0.1, momentum=0.9)
    x, y = graphnn.tensor(X), graphnn.tensor(Y)
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        loss = F.cross_entropy(m(x), y)
        loss.backward()
        opt.step()
        losses.append(float(loss))
    return np.array(losses), [p.detach().numpy().copy() for p in m.parameters()]


def test_reused_gradient_graph_gives_the_same_training(monkeypatch):
    want_l, want_p = train(6, monkeypatch, 0)
    # reused but interpreted: the same nodes run by the same reference kernels, bit for bit
    got_l, got_p = train(6, monkeypatch, 100)
    np.testing.assert_array_equal(got_l, want_l)
    for g, w in zip(got_p, want_p):
        np.testing.assert_array_equal(g, w)
    (program,) = backward_cache._programs.values()
    assert program.hits == 5 and program.native is None
    # compiled from the second reuse on: native kernels sum in their own order. The products here sum at most 8
    # float32 terms of magnitude < 4 per gradient entry; 6 steps of lr 0.1 with momentum carry such differences
    # forward with growth below 2 per step: 1e-5 absolute bounds them generously while still catching a wrong term.
    got_l, got_p = train(6, monkeypatch, 2)
    (program,) = backward_cache._programs.values()
    assert program.native
    np.testing.assert_allclose(got_l, want_l, rtol=0, atol=1e-5)
    for g, w in zip(got_p, want_p):
        np.testing.assert_allclose(g, w, rtol=0, atol=1e-5)


def test_each_structure_has_its_program(monkeypatch):
    monkeypatch.setenv("GRAPHNN_HOT_BACKWARD", "100")
    backward_cache.clear()
    w = graphnn.tensor(RNG.standard_normal((5, 4)), requires_grad=True)
    for rows in (3, 3, 7, 3, 7):
        a = RNG.standard_normal((rows, 5))
        w.grad = None
        (graphnn.tensor(a) @ w).relu().sum().backward()
        np.testing.assert_array_equal(w.grad.numpy(), a.T @ ((a @ w.detach().numpy()) > 0).astype(np.float64))
    for scale in (2.0, 3.0):  # a constant operand is an input of the program, not part of its structure
        w.grad = None
        (graphnn.tensor(np.ones((2, 5))) @ w * scale).sum().backward()
        np.testing.assert_array_equal(w.grad.numpy(), np.full((5, 4), 2 * scale))
    assert sorted(p.hits for p in backward_cache._programs.values()) == [1, 1, 2]


def test_gradient_wrt_a_different_set_of_tensors_is_another_program(monkeypatch):
    monkeypatch.setenv("GRAPHNN_HOT_BACKWARD", "100")
    backward_cache.clear()
    a = graphnn.tensor(X, requires_grad=True)
    b = graphnn.tensor(X * 2)
    (a * b).sum().backward()
    b.requires_grad_(True)
    (a * b).sum().backward()
    np.testing.assert_array_equal(b.grad.numpy(), X)
    np.testing.assert_array_equal(a.grad.numpy(), 2 * (X * 2))
    (ga,) = graphnn.autograd.grad((a * b).sum(), [a])
    (gb,) = graphnn.autograd.grad((a * b).sum(), [b])
    np.testing.assert_array_equal(ga.numpy(), X * 2)
    np.testing.assert_array_equal(gb.numpy(), X)
    # d/da alone is one program whether b requires grad or not; d/d(a, b) and d/db are two more
    assert len(backward_cache._programs) == 3


def test_a_reused_program_still_refuses_values_changed_in_place(monkeypatch):
    monkeypatch.setenv("GRAPHNN_HOT_BACKWARD", "100")
    backward_cache.clear()
    w = graphnn.tensor(X, requires_grad=True)
    w.exp().sum().backward()
    e = w.exp()
    with graphnn.no_grad():
        e.mul_(2)  # the value exp's gradient reads, changed unrecorded
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        e.sum().backward()
    assert next(iter(backward_cache._programs.values())).hits == 0  # refused before the program ran


def test_hooks_and_retained_gradients_with_reuse(monkeypatch):
    monkeypatch.setenv("GRAPHNN_HOT_BACKWARD", "1")
    backward_cache.clear()
    w = graphnn.tensor(X, requires_grad=True)
    for _ in range(3):
        w.grad = None
        h = w * 3
        h.retain_grad()
        (h * h).sum().backward()
        np.testing.assert_allclose(h.grad.numpy(), 2 * (3 * X), rtol=1e-6)
        np.testing.assert_allclose(w.grad.numpy(), 18 * X, rtol=1e-6)
    seen = []
    for _ in range(2):
        w.grad = None
        h = w * 3
        h.register_hook(lambda g: seen.append(g.numpy().copy()) or g * 0)
        (h * h).sum().backward()
        np.testing.assert_array_equal(w.grad.numpy(), np.zeros_like(X))  # the hook's result was used
    assert len(seen) == 2


def test_compiled_call_is_cached_without_keeping_its_program_alive(monkeypatch):
    """A backward through graphnn.compile's code is reused (keyed by its compiled program's identity), equals the
    uncached backward bit for bit (the same native kernels run), and the cache refers to the program only weakly."""
    import gc
    import weakref

    monkeypatch.setenv("GRAPHNN_HOT_BACKWARD", "2")
    grads = {}
    for hot in (0, 2):
        monkeypatch.setenv("GRAPHNN_HOT_BACKWARD", str(hot))
        backward_cache.clear()
        m = model()
        cm = graphnn.compile(m)
        x = graphnn.tensor(X)
        for _ in range(4):
            m.zero_grad()
            (cm(x) ** 2).sum().backward()
        grads[hot] = [p.grad.numpy().copy() for p in m.parameters()]
    for a, b in zip(grads[0], grads[2]):
        np.testing.assert_array_equal(a, b)
    (program,) = backward_cache._programs.values()
    assert program.hits == 3 and program.native is False  # (a call back into Python gains nothing natively)
    (call,) = [n for n in program.graph.nodes if n.op == "call"]
    prog = weakref.ref(cm.last)
    del cm, m, call
    gc.collect()
    assert prog() is None  # the cached backward did not keep the compiled program alive
    assert backward_cache.lookup(next(iter(backward_cache._programs))) is None  # ... and is dropped with it
    assert not backward_cache._programs
