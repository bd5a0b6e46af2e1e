"""Heavy eager ops run as native code from their GRAPHNN_EAGER_NATIVE-th call with one signature
(graphnn/core/native_eager.py): results equal the NumPy reference path, small ops and views never go native, and the
compiled code kept is bounded."""

import numpy as np
import pytest

import graphnn
import graphnn.nn as nn
import graphnn.nn.functional as F
from graphnn.core import native_eager


@pytest.fixture(autouse=True)
def _fresh(monkeypatch, tmp_path_factory):
    monkeypatch.setenv("GRAPHNN_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "native_eager_cache"))
    native_eager.clear()
    yield
    native_eager.clear()


def _train(steps: int) -> tuple:
    """A small convolutional classifier trained eagerly; its losses and final weights."""
    graphnn.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 16, 3),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(800, 10),
    )
    opt = graphnn.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    x = graphnn.randn(16, 3, 16, 16)
    y = graphnn.randint(0, 10, (16,))
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        losses.append(float(loss))
    return losses, [p.detach().numpy().copy() for p in model.parameters()]


def test_native_training_equals_the_reference_path(monkeypatch):
    monkeypatch.setenv("GRAPHNN_HOT_BACKWARD", "0")  # the backward's one-op graphs, not the whole gradient program
    monkeypatch.setenv("GRAPHNN_EAGER_NATIVE", "0")
    want_losses, want = _train(4)
    assert not native_eager._compiled
    monkeypatch.setenv("GRAPHNN_EAGER_NATIVE", "2")
    losses, got = _train(4)
    names = {key[0] for key in native_eager._compiled}
    assert {"conv", "conv_grad_weight", "conv_grad_input"} <= names  # the second step on ran natively
    # float32 sums of at most 800 products of O(1) terms, in another order; four SGD steps of lr 0.05
    np.testing.assert_allclose(losses, want_losses, rtol=1e-4, atol=1e-5)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-3, atol=1e-5)


def test_small_ops_and_views_stay_on_numpy(monkeypatch):
    monkeypatch.setenv("GRAPHNN_EAGER_NATIVE", "1")
    a = graphnn.randn(8, 8)
    for _ in range(3):
        (a @ a).relu()  # a few hundred flops: never worth a native call
    assert not native_eager._compiled
    big = graphnn.randn(1024, 1024)
    t = big.t()  # a view: shares memory with big whatever its size
    t[0, 1] = 5.0
    assert float(big[1, 0]) == 5.0
    doubled = big * 2.0  # a megaflop elementwise op: native from its first call here
    np.testing.assert_array_equal(doubled.numpy(), big.numpy() * 2.0)
    assert any(key[0] == "mul" for key in native_eager._compiled)


def test_least_recently_used_code_is_dropped(monkeypatch):
    monkeypatch.setenv("GRAPHNN_EAGER_NATIVE", "1")
    monkeypatch.setattr(native_eager, "MAX_KEPT", 2)
    for n in (1024, 1032, 1040):
        graphnn.ones(n, 1024) * 3.0
    assert len(native_eager._compiled) == 2
    assert [key[2][0][0] for key in native_eager._compiled] == [1032, 1040]


def test_heavy_ops_at_growing_sizes_share_one_program_per_op(monkeypatch):
    """A generation loop's pattern: the same linear layers (three weight shapes) at every context length. Once an
    op has been compiled at two lengths, one dynamic program serves the others (codegen/dynamic.py), with each
    length's NumPy result; layers of other widths do not take each other's code."""
    from graphnn.codegen import dynamic, jit

    monkeypatch.setenv("GRAPHNN_DYNAMIC", "1")
    dynamic.clear()
    rng = np.random.default_rng(0)
    ws = [rng.standard_normal(s).astype(np.float32) for s in ((384, 128), (128, 128), (512, 128))]
    before = dict(dynamic.STATS)
    compiles = jit.STATS["compiled"] + jit.STATS["disk_hits"]
    with graphnn.no_grad():
        for t in range(24, 60):
            x = rng.standard_normal((t, 128)).astype(np.float32)
            h = x
            for w in ws:
                for _ in range(2):  # (hot from the second call of a signature)
                    got = F.linear(graphnn.tensor(h), graphnn.tensor(w)).numpy()
                want = h.astype(np.float64) @ w.T.astype(np.float64)
                # float32 sums of k <= 512 products: k ulp of the largest partial sum, bounded by |h| |w| summed
                bound = 512 * 2**-24 * (np.abs(h).astype(np.float64) @ np.abs(w.T).astype(np.float64))
                assert (np.abs(got - want) <= bound + 1e-30).all()
                h = got[:, :128]
    assert jit.STATS["compiled"] + jit.STATS["disk_hits"] - compiles <= 12  # not one per length and shape
    assert dynamic.STATS["dynamic_reused"] - before["dynamic_reused"] >= 3 * 30


def test_ops_with_slow_references_go_native_at_any_size(monkeypatch):
    """A batch-1 convolution and pooling are far below a megaflop, but their NumPy references are a dozen calls
    (100-200 us): they run natively once hot, with the reference's results; a small product stays on NumPy (the
    choice depends on the signature only: every run computes the same bits)."""
    monkeypatch.setenv("GRAPHNN_EAGER_NATIVE", "2")
    graphnn.manual_seed(0)
    conv = nn.Conv2d(1, 6, 5)
    x = graphnn.randn(1, 1, 32, 32)
    w = graphnn.randn(10, 400)
    outs = []
    for _ in range(3):
        outs.append(F.max_pool2d(conv(x), 2).detach().numpy())
        F.linear(graphnn.randn(1, 400), w)
    names = {key[0] for key in native_eager._compiled}
    assert {"conv", "max_pool"} <= names and "matmul" not in names
    # sums of 25 float32 products of O(1) terms in another order; the pooling selects
    np.testing.assert_allclose(outs[2], outs[0], rtol=1e-5, atol=1e-5)


def test_ops_differing_in_window_geometry_do_not_share_a_program(monkeypatch):
    """Two poolings of one input whose kernels differ while their output size differs too (kernel 2 then 3): the
    kernel is not a function of that size (a fixed attribute), so the second is not served by a program unified
    with the first (which gave wrong input gradients)."""
    monkeypatch.setenv("GRAPHNN_EAGER_NATIVE", "2")
    monkeypatch.setenv("GRAPHNN_DYNAMIC", "1")
    rng = np.random.default_rng(0)
    for k in (2, 2, 3, 3, 3):
        xn = rng.standard_normal((1, 1, 7, 9)).astype(np.float32)
        x = graphnn.tensor(xn, requires_grad=True)
        F.max_pool2d(x, k, stride=3, dilation=2, ceil_mode=True).sum().backward()
        # each output's maximum gets its gradient 1: as many ones as outputs (windows here do not share a maximum)
        rows, cols = (3, 3) if k == 2 else (2, 3)
        assert x.grad.sum().item() == rows * cols and set(np.unique(x.grad.numpy())) <= {0.0, 1.0, 2.0}
