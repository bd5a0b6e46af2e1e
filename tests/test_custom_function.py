"""Custom autograd functions (subclasses of autograd.Function with forward/backward), as PyTorch's tutorial writes
them: values and gradients against PyTorch, several inputs and outputs, non-tensor arguments, PyTorch 2's
setup_context style, and the errors."""

import math

import numpy as np
import pytest

import graphnn


def functions(lib):
    F = lib.autograd.Function

    class Legendre3(F):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return 0.5 * (5 * x**3 - 3 * x)

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return g * 1.5 * (5 * x**2 - 1)

    class ScaledPair(F):  # two tensor inputs, a number, two outputs (one not differentiable)
        @staticmethod
        def forward(ctx, a, b, k):
            ctx.save_for_backward(a, b)
            ctx.k = k
            idx = (a > b).to(a.dtype).sum()
            ctx.mark_non_differentiable(idx)
            return a * b * k, idx

        @staticmethod
        def backward(ctx, g, _unused):
            a, b = ctx.saved_tensors
            return g * b * ctx.k, g * a * ctx.k if ctx.needs_input_grad[1] else None, None

    class RoundSTE(F):  # PyTorch 2 style: forward without ctx, setup_context
        @staticmethod
        def forward(x):
            return x.round()

        @staticmethod
        def setup_context(ctx, inputs, output):
            pass

        @staticmethod
        def backward(ctx, g):
            return g

    return Legendre3, ScaledPair, RoundSTE


def test_the_tutorials_legendre_fit_as_pytorch(torch):
    def fit(lib):
        (P3, _, _) = functions(lib)
        x = lib.linspace(-math.pi, math.pi, 200, dtype=lib.float64)
        y = lib.sin(x)
        params = [lib.full((), v, dtype=lib.float64, requires_grad=True) for v in (0.0, -1.0, 0.0, 0.3)]
        losses = []
        for _ in range(30):
            a, b, c, d = params
            loss = (a + b * P3.apply(c + d * x) - y).pow(2).sum()
            loss.backward()
            losses.append(loss.item())
            with lib.no_grad():
                for p in params:
                    p -= 5e-5 * p.grad
                    p.grad = None
        return np.array(losses), np.array([p.item() for p in params])

    (gl, gp), (tl, tp) = fit(graphnn), fit(torch)
    # float64, 30 steps of sums over 200 points of terms below 100: far inside 1e-9 relative
    np.testing.assert_allclose(gl, tl, rtol=1e-9)
    np.testing.assert_allclose(gp, tp, rtol=1e-9, atol=1e-12)


def test_several_inputs_outputs_numbers_and_setup_context(torch):
    rng = np.random.default_rng(0)
    a0, b0 = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    res = []
    for lib in (graphnn, torch):
        _, pair, ste = functions(lib)
        a, b = lib.tensor(a0, requires_grad=True), lib.tensor(b0, requires_grad=True)
        out, idx = pair.apply(a, b, 2.5)
        assert not idx.requires_grad and out.requires_grad
        (out.sum() + ste.apply(a * 3).sum()).backward()
        res.append((out.detach().numpy(), float(idx), a.grad.numpy(), b.grad.numpy()))
        assert type(out.grad_fn).__name__ == "ScaledPairBackward"
    for g, t in zip(*res):
        np.testing.assert_allclose(g, t, rtol=1e-15)


def test_errors_and_compile():
    F = graphnn.autograd.Function

    class WrongCount(F):
        @staticmethod
        def forward(ctx, x):
            return x * 2

        @staticmethod
        def backward(ctx, g):
            return g, g

    class WrongShape(F):
        @staticmethod
        def forward(ctx, x):
            return x.sum()

        @staticmethod
        def backward(ctx, g):
            return g.reshape(1)

    x = graphnn.ones(3, requires_grad=True)
    with pytest.raises(RuntimeError, match="incorrect number of gradients"):
        WrongCount.apply(x).sum().backward()
    with pytest.raises(RuntimeError, match="invalid gradient at index 0"):
        WrongShape.apply(x).backward()
    assert graphnn.autograd.function.Function is F and graphnn.autograd.FunctionCtx

    class StoresTensor(F):
        @staticmethod
        def forward(ctx, x):
            ctx.x = x
            return x * 2

        @staticmethod
        def backward(ctx, g):
            return g * 2

    f = graphnn.compile(lambda t: StoresTensor.apply(t).sum())  # (a tensor kept as a ctx attribute: as saved)
    t = graphnn.ones(3, requires_grad=True)
    out = f(t)
    out.backward()
    assert out.item() == 6.0 and t.grad.tolist() == [2.0, 2.0, 2.0]


def test_compiled_training_step_with_custom_functions_as_pytorch(torch):
    """Inside graphnn.compile the custom forward and backward run through host calls at every call of the step."""

    def train(lib, compiled: bool):
        P3, _, ste = functions(lib)
        w = lib.tensor(np.linspace(-1, 1, 12).reshape(3, 4) * 0.3, requires_grad=True)
        x = lib.tensor(np.linspace(0, 1, 8).reshape(2, 4))
        opt = lib.optim.SGD([w], lr=0.01)

        def step():
            opt.zero_grad()
            loss = P3.apply(ste.apply(x @ w.t() * 4) / 4).pow(2).sum()
            loss.backward()
            opt.step()
            return loss.detach()

        run = lib.compile(step) if compiled else step
        return np.array([float(run()) for _ in range(4)]), w.detach().numpy()

    for compiled in (False, True):
        (gl, gw), (tl, tw) = train(graphnn, compiled), train(torch, False)
        # float32: a few dozen roundings of terms below 10 per step, four steps
        np.testing.assert_allclose(gl, tl, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(gw, tw, rtol=1e-5, atol=1e-6)


def test_the_recorded_call_runs_forward_again_in_either_style():
    """The `call` node's kernel (run when a recorded value is not kept) runs forward as apply does: with ctx, or
    PyTorch 2's way, forward without ctx and then setup_context."""
    _, _, round_ste = functions(graphnn)
    x = graphnn.tensor([0.4, 1.6, -2.5], requires_grad=True)
    y = round_ste.apply(x)
    node = y._value.producer
    (again,) = node.attrs["fn"].run([np.array([0.6, 2.2, 3.5])])
    np.testing.assert_array_equal(again, np.round([0.6, 2.2, 3.5]))
