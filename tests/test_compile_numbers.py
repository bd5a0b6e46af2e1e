"""Number arguments that change from call to call (a step counter, an annealed loss weight) become inputs of one
compiled program at their second value, as torch.compile makes them dynamic; where the trace needs their values
(a branch, a shape, range()) each value stays a constant of its own trace."""

import warnings
from collections import namedtuple

import numpy as np
import pytest

import graphnn
import graphnn.nn as nn


def _calls(c, args_list):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # (no fallback warnings: one program serves every value)
        return [c(*args).detach().numpy() for args in args_list]


def test_a_float_weight_is_one_program_for_all_values():
    lin = nn.Linear(6, 3)

    def f(x, beta):
        return lin(x).relu().sum() + beta * x.abs().mean()

    c = graphnn.compile(f)
    x = graphnn.randn(4, 6)
    betas = [min(1.0, i / 7) for i in range(12)]
    got = _calls(c, [(x, b) for b in betas])
    for g, b in zip(got, betas):
        np.testing.assert_allclose(g, f(x, b).detach().numpy(), rtol=1e-6, atol=1e-6)
    assert c.cache.programs == 2  # (the first value's, then the one with the number as an input)


def test_an_int_step_indexes_a_schedule_in_one_program():
    betas = graphnn.linspace(1e-4, 0.02, 50)

    def step(x, i):
        return (x - betas[i]) * (i + 1) / 50

    c = graphnn.compile(step)
    x = graphnn.ones(2)
    got = _calls(c, [(x, i) for i in range(20)])
    for i, g in enumerate(got):
        np.testing.assert_allclose(g, step(x, i).numpy(), rtol=1e-6)
    assert c.cache.programs == 2


def test_a_training_step_with_an_annealed_weight_matches_eager():
    def run(compiled: bool):
        graphnn.manual_seed(0)
        net = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 2))
        opt = graphnn.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)

        def step(x, beta):
            opt.zero_grad()
            out = net(x)
            loss = (out**2).mean() + beta * out.abs().mean()
            loss.backward()
            opt.step()
            return loss

        s = graphnn.compile(step) if compiled else step
        x = graphnn.randn(16, 4)
        losses = [float(s(x, min(1.0, i / 5))) for i in range(10)]
        return losses, [p.detach().numpy().copy() for p in net.parameters()], s

    (eager, p_eager, _), (comp, p_comp, s) = run(False), run(True)
    np.testing.assert_allclose(comp, eager, rtol=1e-5, atol=1e-6)
    for a, b in zip(p_comp, p_eager):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert s.cache.programs == 2


def test_numbers_the_trace_needs_stay_constants():
    def shaped(x, n):
        return x.new_zeros(n) + x.sum()  # (a shape)

    def looped(x, n):
        for _ in range(n):
            x = x * 2
        return x

    def branched(x, n):
        return x * 2 if n > 2 else x - 1

    x = graphnn.ones(3)
    for fn in (shaped, looped, branched):
        c = graphnn.compile(fn)
        for n in (1, 2, 3, 4):
            np.testing.assert_allclose(c(x, n).numpy(), fn(x, n).numpy())
        assert c.cache.programs == 4, fn.__name__


def test_a_number_returned_stays_a_python_number():
    c = graphnn.compile(lambda x, k: (x * 2, k + 1, k))
    x = graphnn.ones(2)
    for k in range(4):
        a, b, same = c(x, k)
        assert type(b) is int and b == k + 1 and same == k
        np.testing.assert_allclose(a.numpy(), [2.0, 2.0])


Config = namedtuple("Config", ["scale", "width"])
Config._pytree_static_fields = ("width",)


def test_numbers_in_containers_and_static_fields():
    def f(x, opts, cfg):
        return x[: cfg.width] * opts[0] + opts[1]["shift"] * cfg.scale

    c = graphnn.compile(f)
    x = graphnn.arange(6.0)
    calls = [(x, [0.5 * i, {"shift": float(i)}], Config(1.5 + i, 2 + i % 2)) for i in range(6)]
    for args in calls:
        np.testing.assert_allclose(c(*args).numpy(), f(*args).numpy(), rtol=1e-6)
    assert c.cache.programs <= 3  # (the width is static: one program per width, numbers inputs)


def test_bool_flags_stay_constants():
    c = graphnn.compile(lambda x, flip: -x if flip else x)
    x = graphnn.ones(2)
    for flip in (True, False, True, False):
        np.testing.assert_allclose(c(x, flip).numpy(), (-x if flip else x).numpy())
    assert c.cache.programs == 2


def test_a_compiled_module_with_a_number_argument():
    class Scaled(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(3, 3)

        def forward(self, x, t):
            return self.lin(x) * (t / 10)

    m = Scaled()
    c = graphnn.compile(m)
    x = graphnn.randn(2, 3, requires_grad=True)
    for t in range(5):
        y = c(x, t)
        np.testing.assert_allclose(y.detach().numpy(), m(x, t).detach().numpy(), rtol=1e-6, atol=1e-7)
        (g,) = graphnn.autograd.grad(y.sum(), x)
        (want,) = graphnn.autograd.grad(m(x, t).sum(), x)
        np.testing.assert_allclose(g.numpy(), want.numpy(), rtol=1e-6, atol=1e-7)
    assert c.cache.programs == 2


@pytest.mark.parametrize("value", [float("nan"), -0.0, float("inf")])
def test_special_float_values_pass_through(value):
    c = graphnn.compile(lambda x, v: x * v)
    x = graphnn.ones(2)
    c(x, 1.0)
    c(x, 2.0)
    np.testing.assert_array_equal(c(x, value).numpy(), (x * value).numpy())
