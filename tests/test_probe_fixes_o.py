"""Fixes of session o's findings from probes of unseen programs: losses at the edges of their domains (infinite
differences, variances below eps), the weight argument of mse_loss / l1_loss, and PyTorch 2.13's
linear_cross_entropy and LinearCrossEntropyLoss."""

import numpy as np
import pytest

import graphnn
import graphnn.nn as nn
import graphnn.nn.functional as F
from oracle import torch_or_skip

INF = float("inf")


@pytest.mark.parametrize("loss", ["smooth_l1", "huber"])
def test_infinite_differences_have_the_linear_pieces_gradient(loss):
    """The quadratic piece's gradient at an infinite difference was 0 * inf = NaN (its branch not taken)."""
    x = graphnn.tensor([INF, -INF, 1e30, 0.3], requires_grad=True)
    if loss == "smooth_l1":
        F.smooth_l1_loss(x, graphnn.zeros(4), reduction="sum", beta=1.0).backward()
        want = [1.0, -1.0, 1.0, 0.3]
    else:
        F.huber_loss(x, graphnn.zeros(4), reduction="sum", delta=2.0).backward()
        want = [2.0, -2.0, 2.0, 0.3]
    np.testing.assert_allclose(x.grad.numpy(), want, rtol=1e-6)


def test_gaussian_nll_gradient_reaches_a_variance_below_eps():
    """PyTorch clamps var in place under no_grad: below eps its gradient is that of the clamped value (graphnn's
    clamp gave zero there: a predicted variance that fell below eps could never move up again)."""
    var = graphnn.tensor([0.0, 1e-9, 0.5], requires_grad=True)
    loss = nn.GaussianNLLLoss(eps=1e-4)(graphnn.ones(3), graphnn.zeros(3), var)
    loss.backward()
    # d/dv of 0.5 (log v + 1 / v) / 3 at v = eps (the first two) and at 0.5
    want = [(0.5 / 1e-4 - 0.5 / 1e-8) / 3] * 2 + [(0.5 / 0.5 - 0.5 / 0.25) / 3]
    np.testing.assert_allclose(var.grad.numpy(), want, rtol=1e-5)
    np.testing.assert_allclose(
        loss.item(), np.mean([0.5 * (np.log(1e-4) + 1e4)] * 2 + [0.5 * (np.log(0.5) + 2)]), rtol=1e-6
    )


def test_mse_and_l1_take_a_weight_per_element():
    x, w = graphnn.tensor([[1.0, 2.0], [3.0, 4.0]]), graphnn.tensor([[1.0, 0.0], [2.0, 1.0]])
    assert F.mse_loss(x, graphnn.zeros(2, 2), weight=w).item() == pytest.approx(35 / 4)
    assert F.l1_loss(x, graphnn.zeros(2, 2), weight=w, reduction="sum").item() == pytest.approx(11.0)
    with pytest.raises(ValueError, match="same size"):
        F.mse_loss(x, graphnn.zeros(2, 2), weight=graphnn.ones(2))


@pytest.mark.parametrize("out_features, bias, smoothing", [((), False, 0.0), ((2,), True, 0.1)])
def test_linear_cross_entropy_matches_pytorch(out_features, bias, smoothing):
    torch = torch_or_skip()
    torch.manual_seed(0)
    tm = torch.nn.LinearCrossEntropyLoss(4, 3, out_features=out_features, bias=bias, label_smoothing=smoothing)
    gm = nn.LinearCrossEntropyLoss(4, 3, out_features=out_features, bias=bias, label_smoothing=smoothing)
    gm.load_state_dict({k: graphnn.tensor(v.detach().numpy()) for k, v in tm.state_dict().items()})
    assert repr(gm) == repr(tm)
    r = np.random.default_rng(0)
    x = r.standard_normal((5, 4)).astype(np.float32)
    t = r.integers(0, 3, (5,) + out_features)
    want = tm(torch.tensor(x), torch.tensor(t))
    want.backward()
    for run in (gm, graphnn.compile(gm)):
        gm.zero_grad()
        got = run(graphnn.tensor(x), graphnn.tensor(t))
        got.backward()
        np.testing.assert_allclose(got.item(), want.item(), rtol=1e-5)
        np.testing.assert_allclose(gm.linear.weight.grad.numpy(), tm.linear.weight.grad.numpy(), rtol=1e-4, atol=1e-6)
    with pytest.raises(RuntimeError, match="in_features"):
        F.linear_cross_entropy(graphnn.ones(5, 3), gm.linear.weight, graphnn.tensor(t))
