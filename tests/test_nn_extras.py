"""nn.AdaptiveLogSoftmaxWithLoss and the BatchNorm fusion helpers of nn.utils (against their definitions, and
against PyTorch when it is installed)."""

from __future__ import annotations

import numpy as np
import pytest

import graphnn
import graphnn.nn as nn


def test_adaptive_log_softmax_is_a_distribution_over_all_classes():
    graphnn.manual_seed(0)
    asm = nn.AdaptiveLogSoftmaxWithLoss(8, 20, cutoffs=[4, 10], div_value=2.0, head_bias=True)
    x, y = graphnn.randn(6, 8), graphnn.tensor([0, 3, 5, 12, 19, 9])
    out = asm(x, y)
    full = asm.log_prob(x)
    # every row's log probabilities sum to 1 in probability; the forward's output is the target's entry
    np.testing.assert_allclose(full.exp().sum(1).detach().numpy(), 1.0, rtol=1e-5)
    np.testing.assert_allclose(out.output.detach().numpy(), full.detach().numpy()[np.arange(6), y.numpy()], atol=1e-6)
    assert out.loss.item() == pytest.approx(-out.output.mean().item(), rel=1e-6)
    assert asm.predict(x).tolist() == full.argmax(1).tolist()
    assert graphnn.compile(lambda a, b: asm(a, b).loss)(x, y).item() == pytest.approx(out.loss.item(), rel=1e-6)
    with pytest.raises(RuntimeError, match=r"Target values should be in \[0, 19\]"):
        asm(x, graphnn.tensor([0, 20, 1, 1, 1, 1]))
    with pytest.raises(ValueError, match="cutoffs"):
        nn.AdaptiveLogSoftmaxWithLoss(8, 20, cutoffs=[10, 4])


def test_adaptive_log_softmax_against_pytorch():
    torch = pytest.importorskip("torch")
    t = torch.nn.AdaptiveLogSoftmaxWithLoss(8, 20, cutoffs=[4, 10], div_value=2.0)
    g = nn.AdaptiveLogSoftmaxWithLoss(8, 20, cutoffs=[4, 10], div_value=2.0)
    g.load_state_dict({k: graphnn.tensor(v.detach().numpy()) for k, v in t.state_dict().items()})
    x = np.random.default_rng(1).standard_normal((5, 8)).astype(np.float32)
    y = [1, 4, 11, 19, 7]
    tx, gx = torch.tensor(x, requires_grad=True), graphnn.tensor(x, requires_grad=True)
    rt, rg = t(tx, torch.tensor(y)), g(gx, graphnn.tensor(y))
    rt.loss.backward()
    rg.loss.backward()
    # log-softmaxes of at most 20 logits of size O(1): a few float32 ulps
    np.testing.assert_allclose(rg.output.detach().numpy(), rt.output.detach().numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(gx.grad.numpy(), tx.grad.numpy(), rtol=1e-4, atol=1e-6)


def test_batchnorm_folds_into_the_layer_before_it():
    graphnn.manual_seed(0)
    for conv, bn, transpose in (
        (nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), False),
        (nn.ConvTranspose2d(3, 4, 3), nn.BatchNorm2d(4), True),
        (nn.Linear(5, 4), nn.BatchNorm1d(4), None),
    ):
        with graphnn.no_grad():
            bn.running_mean.uniform_(-1, 1)
            bn.running_var.uniform_(0.5, 2.0)
            bn.weight.uniform_(0.5, 1.5)
            bn.bias.uniform_(-1, 1)
        conv.eval(), bn.eval()
        x = graphnn.randn(2, 3, 8, 8) if transpose is not None else graphnn.randn(3, 5)
        fused = (
            nn.utils.fuse_linear_bn_eval(conv, bn)
            if transpose is None
            else nn.utils.fuse_conv_bn_eval(conv, bn, transpose=transpose)
        )
        # the same affine map, its scale applied to the weights instead of the outputs: float32 rounding of sums of
        # at most 27 products
        np.testing.assert_allclose(fused(x).detach().numpy(), bn(conv(x)).detach().numpy(), rtol=1e-5, atol=1e-5)
        assert fused is not conv and isinstance(fused.weight, nn.Parameter)
    with pytest.raises(AssertionError, match="eval"):
        nn.utils.fuse_conv_bn_eval(nn.Conv2d(1, 1, 1), nn.BatchNorm2d(1))


@pytest.mark.parametrize("mode", ["bilinear", "bicubic"])
def test_antialiased_resizing(mode):
    """Antialiased downsampling: a constant image stays constant (the weights are normalized), a checkerboard
    averages to its mean (the filter spans several input pixels), PyTorch's values when installed; gradients flow."""
    x = graphnn.ones(1, 2, 16, 16, requires_grad=True)
    y = graphnn.nn.functional.interpolate(x, size=(5, 7), mode=mode, antialias=True)
    np.testing.assert_allclose(y.detach().numpy(), 1.0, rtol=1e-6)
    y.sum().backward()
    assert x.grad.sum().item() == pytest.approx(2 * 5 * 7, rel=1e-5)  # (each output's weights sum to 1)
    board = graphnn.tensor((np.indices((32, 32)).sum(0) % 2).astype(np.float32)[None, None])
    small = graphnn.nn.functional.interpolate(board, size=(4, 4), mode=mode, antialias=True).numpy()
    assert np.abs(small - 0.5).max() < 0.05
    with pytest.raises(NotImplementedError, match="Anti-alias"):
        graphnn.nn.functional.interpolate(x, size=(5, 7), mode="nearest", antialias=True)
    torch = pytest.importorskip("torch")
    a = np.random.default_rng(0).standard_normal((2, 3, 17, 23)).astype(np.float32)
    for kw in (dict(size=(7, 9)), dict(scale_factor=0.37), dict(size=(30, 40)), dict(size=(5, 11), align_corners=True)):
        want = torch.nn.functional.interpolate(torch.tensor(a), mode=mode, antialias=True, **kw).numpy()
        got = graphnn.nn.functional.interpolate(graphnn.tensor(a), mode=mode, antialias=True, **kw).numpy()
        # PyTorch computes the filter weights in float32: sums of <= 16 taps of O(1) values, ~1e-6 apart
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
