"""Symbolic autodiff through the user API: reuse, sharing, accumulation, no_grad, detach."""

import numpy as np
import pytest

import graphnn
import graphnn.nn as nn
from parity_util import close, recorded_bounds


def _x(*shape, seed=0):
    return graphnn.tensor(np.random.default_rng(seed).standard_normal(shape), dtype=graphnn.float64, requires_grad=True)


def test_value_used_twice():
    x = _x(3)
    y = x * x + x  # x is read three times
    y.sum().backward()
    close(x.grad, 2 * x.detach().numpy() + 1, "d x")  # x + x + 1 and 2 x + 1: the same single rounding


def test_intermediate_used_twice():
    x = _x(4)
    h = x.exp()
    y = (h * h.tanh()).sum()
    bounds = recorded_bounds([], y)  # the formula below evaluates the same math: within 2 E (parity_util)
    y.backward()
    hv = np.exp(x.detach().numpy())
    expected = (np.tanh(hv) + hv * (1 - np.tanh(hv) ** 2)) * hv
    close(x.grad, expected, "d x", bounds.grad_tol(x))


def test_parameter_shared_by_two_layers():
    lin = nn.Linear(3, 3).double()
    x = _x(2, 3)
    out = lin(lin(x)).sum()
    bounds = recorded_bounds([], out)
    out.backward()
    W = lin.weight.detach().numpy()
    b = lin.bias.detach().numpy()
    xv = x.detach().numpy()
    h = xv @ W.T + b
    # d/dW of sum((h W^T + b)) = ones @ h (second use) + (ones @ W) x (first use)
    g_out = np.ones((2, 3))
    g_h = g_out @ W
    expected_W = g_out.T @ h + g_h.T @ xv
    close(lin.weight.grad, expected_W, "d W", bounds.grad_tol(lin.weight))
    close(lin.bias.grad, g_out.sum(0) + g_h.sum(0), "d b", bounds.grad_tol(lin.bias))


def test_gradients_accumulate_across_backward_calls():
    x = _x(3)
    (x * 2).sum().backward()
    (x * 3).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), np.full(3, 5.0))  # small integers: exact
    x.grad = None
    (x * x).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), 2 * x.detach().numpy())  # x + x: exact


def test_no_grad_records_nothing():
    x = _x(3)
    with graphnn.no_grad():
        y = x * 2
    assert not y.requires_grad and y.grad_fn is None
    z = (x * 3).sum()

    @graphnn.no_grad()
    def f(t):
        return t * 4

    assert not f(x).requires_grad
    z.backward()
    np.testing.assert_array_equal(x.grad.numpy(), np.full(3, 3.0))


def test_detach_stops_gradient():
    x = _x(3)
    y = x * x
    z = (y.detach() * x).sum()  # d/dx = y (y treated as constant)
    z.backward()
    np.testing.assert_array_equal(x.grad.numpy(), x.detach().numpy() ** 2)  # y itself: one rounding, the same


def test_backward_needs_scalar_or_gradient():
    x = _x(3)
    y = x * 2
    with pytest.raises(RuntimeError, match="scalar outputs"):
        y.backward()
    y.backward(graphnn.ones(3, dtype=graphnn.float64))
    np.testing.assert_array_equal(x.grad.numpy(), np.full(3, 2.0))


def test_autograd_grad_does_not_touch_dot_grad():
    x = _x(3)
    (g,) = graphnn.autograd.grad((x * x).sum(), [x])
    np.testing.assert_array_equal(g.numpy(), 2 * x.detach().numpy())
    assert x.grad is None


def test_backward_graph_is_ir():
    """The gradient is derived from recorded IR: the joint graph prints, verifies and contains backward nodes."""
    from graphnn.autograd import _gradient_graph

    x = _x(2, 2)
    y = (x.relu() * x).sum()
    g, _leaves, _targets, grads = _gradient_graph([y], True, None)
    g.outputs = [gr for gr in grads if gr is not None]
    graphnn.ir.verify(g)
    assert any(n.meta.get("phase") == "backward" for n in g.nodes)
    assert "relu" in str(g) and "select" in str(g)


def test_backward_releases_intermediates_and_a_second_backward_raises(monkeypatch):
    """As PyTorch: backward frees the graph's saved values; a second backward through it raises, unless the first
    passed retain_graph=True (a second backward then accumulates the same gradient again)."""
    import pytest

    monkeypatch.setenv("GRAPHNN_HOT_BACKWARD", "8")  # (a reused gradient program compiled at once rounds otherwise)

    import graphnn.nn as nn  # noqa: F401
    from graphnn.tools.tutorial_net import Net

    graphnn.manual_seed(0)
    net = Net()
    compiled = graphnn.compile(net)
    x = graphnn.randn(2, 1, 32, 32)
    for model in (net, compiled):
        net.zero_grad()
        out = model(x).sum()
        recorded = out._value
        out.backward()
        assert recorded.data is None  # the graph let go of its arrays (memory returns without the cycle collector)
        first = net.conv1.weight.grad.numpy().copy()
        with pytest.raises(RuntimeError, match="backward through the graph a second time"):
            out.backward()
        np.testing.assert_array_equal(net.conv1.weight.grad.numpy(), first)  # untouched by the refused backward
        net.zero_grad()
        out = model(x).sum()
        out.backward(retain_graph=True)
        first = net.conv1.weight.grad.numpy().copy()
        out.backward()  # the graph was kept: the same computation again, first + first
        np.testing.assert_array_equal(net.conv1.weight.grad.numpy(), 2 * first)
    kept = (x.sum() * graphnn.ones(1, requires_grad=True)).sum()
    value = kept._value
    kept.backward(retain_graph=True)
    assert value.data is not None
