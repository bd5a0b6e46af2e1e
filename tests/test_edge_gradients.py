"""Gradients at the points where the textbook formula is 0 * inf or 0 / 0, and integer inputs to floating-point
functions: graphnn follows PyTorch's rules (checked against the rules themselves, and against PyTorch when it is
installed), eagerly and compiled."""

from __future__ import annotations

import numpy as np
import pytest

import graphnn


def _grads(fn, *values, compiled: bool):
    xs = [graphnn.tensor(v, requires_grad=True) for v in values]

    def run(*xs):
        out = fn(*xs).sum()
        out.backward()
        return out

    (graphnn.compile(run) if compiled else run)(*xs)
    return [x.grad.tolist() for x in xs]


@pytest.mark.parametrize("compiled", [False, True])
def test_flat_points_have_zero_gradient(compiled):
    # std of a constant row: d sqrt(v) at v = 0 times dv = 0 is 0, not NaN
    got = _grads(lambda x: x.std(dim=1), [[1.0, 1.0, 1.0], [1.0, 2.0, 4.0]], compiled=compiled)[0]
    assert got[0] == [0.0, 0.0, 0.0] and all(np.isfinite(got[1]))
    assert _grads(lambda x: x.std(), [2.0, 2.0], compiled=compiled) == [[0.0, 0.0]]
    assert _grads(lambda x: graphnn.std_mean(x)[0], [2.0, 2.0], compiled=compiled) == [[0.0, 0.0]]
    # x ** 0 is flat (1 - the polynomial basis [x ** k] at x = 0); 0 ** e for e >= 0 does not depend on e
    assert _grads(lambda x: x**0 + x + x**2, [0.0, 0.5, 2.0], compiled=compiled) == [[1.0, 2.0, 5.0]]
    assert _grads(lambda e: graphnn.pow(graphnn.zeros(2), e), [1.0, 2.0], compiled=compiled) == [[0.0, 0.0]]
    # atan2 at the origin
    assert _grads(lambda a: graphnn.atan2(a, a), [0.0, 1.0], compiled=compiled) == [[0.0, 0.0]]
    # away from those points the formulas hold: d/dx x ** 3 = 3 x^2, d/dy atan2(y, 1) = 1 / (1 + y^2)
    assert _grads(lambda x: x**3, [2.0], compiled=compiled) == [[12.0]]
    np.testing.assert_allclose(_grads(lambda y: graphnn.atan2(y, graphnn.ones(1)), [1.0], compiled=compiled), [[0.5]])


def test_integer_inputs_to_floating_point_functions_give_the_default_float():
    scale = graphnn.sqrt(graphnn.tensor(64))
    assert scale.dtype == graphnn.float32 and float(scale) == 8.0
    for name in ("exp", "log", "sin", "tanh", "sigmoid", "rsqrt", "log1p", "erf", "atan"):
        got = getattr(graphnn, name)(graphnn.tensor([1, 4, 9]))
        want = getattr(graphnn, name)(graphnn.tensor([1.0, 4.0, 9.0]))
        assert got.dtype == graphnn.float32 and got.tolist() == want.tolist(), name
    graphnn.set_default_dtype(graphnn.float64)
    try:
        assert graphnn.tensor([True, False]).exp().dtype == graphnn.float64
    finally:
        graphnn.set_default_dtype(graphnn.float32)


def test_against_pytorch():
    torch = pytest.importorskip("torch")
    for mod in (torch, graphnn):
        x = mod.tensor([[1.0, 1.0, 1.0], [1.0, 2.0, 4.0]], requires_grad=True)
        ((x - x.mean(1, keepdim=True)) / (x.std(dim=1).unsqueeze(1) + 1e-5)).sum().backward()
        if mod is torch:
            want = x.grad.numpy()
        else:
            # the normalized row sums to ~0 whatever x: its gradient is rounding noise around 0 (|x| <= 4, std 1.5)
            np.testing.assert_allclose(x.grad.numpy(), want, atol=1e-6)
    assert graphnn.sqrt(graphnn.tensor([2, 3])).tolist() == torch.sqrt(torch.tensor([2, 3])).tolist()


def test_ties_and_boundaries_as_pytorch():
    # the median of the whole tensor splits its gradient among tied elements (as max() does)
    x = graphnn.tensor([1.0, 2.0, 2.0, 3.0], requires_grad=True)
    x.median().backward()
    assert x.grad.tolist() == [0.0, 0.5, 0.5, 0.0]
    x = graphnn.tensor([1.0, float("nan"), 2.0, 2.0, 3.0], requires_grad=True)  # nanmedian too, NaN skipped
    x.nanmedian().backward()
    assert x.grad.tolist() == [0.0, 0.0, 0.5, 0.5, 0.0]
    assert graphnn.tensor([[5, 1], [3, 3]]).median().dtype == graphnn.int64
    # a multi-margin term exactly at 0 is inactive
    y = graphnn.tensor([[0.0, 0.0], [1.0, 2.0]], requires_grad=True)
    graphnn.nn.functional.multi_margin_loss(y, graphnn.tensor([0, 1])).backward()
    assert y.grad.tolist() == [[-0.25, 0.25], [0.0, 0.0]]
