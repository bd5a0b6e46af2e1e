"""Eager calls of composite functions replay their trace (graphnn/core/replay.py): the same values, gradients,
grad_fn names and errors as the plain calls, and no replay where the trace is not a function of the arguments."""

import warnings

import numpy as np
import pytest

import graphnn
import graphnn.nn.functional as F
from graphnn.autograd import _collect
from graphnn.core import native_eager
from graphnn.core.replay import _Plan, replayed

RNG = np.random.default_rng(5)


def _run(monkeypatch, replay: bool, steps: int = 4):
    """Values and gradients of a small classifier's loss over `steps` eager calls (the replay starts at the third)."""
    monkeypatch.setenv("GRAPHNN_REPLAY", "1" if replay else "0")
    monkeypatch.setenv("GRAPHNN_HOT_BACKWARD", "0")
    native_eager.clear()  # (both runs switch GELU's erf to native code at the same call)
    w = graphnn.tensor(np.linspace(-1, 1, 15, dtype=np.float32).reshape(3, 5), requires_grad=True)
    b = graphnn.tensor(np.array([0.1, -0.2, 0.3], np.float32), requires_grad=True)
    x = graphnn.tensor(np.cos(np.arange(40, dtype=np.float32)).reshape(8, 5))
    y = graphnn.tensor(np.array([0, 2, 1, 1, 0, 2, 2, 1]))
    out = []
    for _ in range(steps):
        h = F.linear(x, w, b)
        loss = F.cross_entropy(h, y) + F.mse_loss(F.softmax(h, 1), F.gelu(h)) + F.layer_norm(h, (3,)).sum()
        recorded = [n.op for n in _collect([loss._value])[0]]
        loss.backward()
        out.append((float(loss), recorded, w.grad.numpy().copy(), b.grad.numpy().copy()))
    return out


def test_replay_equals_the_plain_calls_bit_for_bit(monkeypatch):
    plain = _run(monkeypatch, False)
    replay = _run(monkeypatch, True)
    for (l0, r0, w0, b0), (l1, r1, w1, b1) in zip(plain, replay):
        assert l0 == l1 and r0 == r1  # (the same nodes recorded: the same gradient graph)
        np.testing.assert_array_equal(w0, w1)
        np.testing.assert_array_equal(b0, b1)
    assert any(isinstance(e, _Plan) for e in F.cross_entropy.replay_entries.values())


def test_outputs_carry_the_plain_calls_grad_fn_and_flags(monkeypatch):
    monkeypatch.setenv("GRAPHNN_REPLAY", "1")
    h = graphnn.randn(4, 3, requires_grad=True)
    y = graphnn.tensor([0, 1, 2, 1])
    got = [F.cross_entropy(h, y) for _ in range(4)]
    assert {type(t.grad_fn).__name__ for t in got} == {"NllLossBackward0"}
    assert all(t.requires_grad for t in got)
    x, w, b = graphnn.randn(2, 4), graphnn.randn(3, 4, requires_grad=True), graphnn.randn(3, requires_grad=True)
    for o in [F.linear(x, w, b) for _ in range(4)]:  # the tutorial walks these: the plain call's functions
        edges = o.grad_fn.next_functions
        assert type(o.grad_fn).__name__ == "AddmmBackward0"
        assert [type(f).__name__ if f is not None else None for f, _ in edges] == ["AccumulateGrad", None, "TBackward0"]
        assert edges[0][0].variable is b and edges[2][0].next_functions[0][0].variable is w
    with graphnn.no_grad():
        free = [F.cross_entropy(h, y) for _ in range(4)]
    assert not any(t.requires_grad for t in free) and all(float(t) == float(got[0]) for t in free)


def test_a_replayed_call_raises_the_plain_calls_error(monkeypatch):
    monkeypatch.setenv("GRAPHNN_REPLAY", "1")
    h = graphnn.randn(4, 3, requires_grad=True)
    for _ in range(3):
        F.cross_entropy(h, graphnn.tensor([0, 1, 2, 1]))
    with pytest.raises(Exception, match="out of bounds for 3 classes"):
        F.cross_entropy(h, graphnn.tensor([0, 1, 7, 1]))


def test_functions_of_more_than_their_arguments_are_not_replayed(monkeypatch):
    monkeypatch.setenv("GRAPHNN_REPLAY", "1")
    scale = graphnn.tensor([2.0])

    @replayed
    def scaled(x):
        return x * scale  # reads a tensor it was not given

    @replayed
    def bump(x):
        x.add_(1.0)  # changes its argument
        return x * 2

    @replayed
    def same(x):
        return x

    @replayed
    def noisy(x):
        warnings.warn("careful")  # (a Python side effect: every call must warn)
        return x * 2

    x = graphnn.ones(3)
    for _ in range(4):
        assert scaled(x).tolist() == (scale * x).tolist()
        scale.mul_(1.5)  # (a replay would have kept the first value)
    for i in range(4):
        assert bump(x).tolist() == [2.0 * (i + 2)] * 3
    assert all(same(x) is x for _ in range(4))
    for _ in range(4):
        with pytest.warns(UserWarning, match="careful"):
            noisy(x)
    for fn in (scaled, bump, same, noisy):
        assert not any(isinstance(e, _Plan) for e in fn.replay_entries.values())


def test_gradient_through_a_replayed_composite_matches_pytorch(monkeypatch):
    torch = pytest.importorskip("torch")
    monkeypatch.setenv("GRAPHNN_REPLAY", "1")
    x0 = RNG.standard_normal((6, 4)).astype(np.float32)
    y0 = np.array([3, 0, 1, 2, 2, 1])
    for _ in range(4):
        g = graphnn.tensor(x0, requires_grad=True)
        F.cross_entropy(g, graphnn.tensor(y0), label_smoothing=0.1).backward()
    t = torch.tensor(x0, requires_grad=True)
    torch.nn.functional.cross_entropy(t, torch.tensor(y0), label_smoothing=0.1).backward()
    # 6 x 4 float32 log-softmax terms: a few ulp of values below 1 each
    np.testing.assert_allclose(g.grad.numpy(), t.grad.numpy(), rtol=0, atol=1e-6)


def test_detach_and_no_grad_inside_a_composite(monkeypatch):
    """A detach() is a stop_gradient node when traced, and ops under no_grad() are never recorded: the replayed
    outputs require grad as the plain ones do, and gradients are the same."""
    monkeypatch.setenv("GRAPHNN_REPLAY", "1")

    @replayed
    def parts(x):
        with graphnn.no_grad():
            m = x.mean()
        return x * 2 + x.detach() - m, x.detach() * 3

    for _ in range(4):
        x = graphnn.tensor([1.0, 2.0, 4.0], requires_grad=True)
        a, b = parts(x)
        assert a.requires_grad and not b.requires_grad
        xs = np.array([1.0, 2.0, 4.0], np.float32)
        # (float32, in the plain call's order)
        np.testing.assert_array_equal(a.detach().numpy(), xs * 2 + xs - xs.mean())
        assert b.tolist() == [3.0, 6.0, 12.0]
        a.sum().backward()
        assert x.grad.tolist() == [2.0, 2.0, 2.0]
    assert any(isinstance(e, _Plan) for e in parts.replay_entries.values())


def test_batch_norm_replays_in_eval_mode_only_and_convolutions_replay(monkeypatch):
    """Training-mode batch_norm updates its running statistics (state: never replayed, and tracing it on the second
    call changes nothing); in eval mode it is a function of its arguments. Convolutions replay too."""
    monkeypatch.setenv("GRAPHNN_REPLAY", "1")
    bn = graphnn.nn.BatchNorm2d(3)
    conv = graphnn.nn.Conv2d(2, 3, 3, padding=1)
    x = graphnn.tensor(np.sin(np.arange(2 * 2 * 5 * 5, dtype=np.float32)).reshape(2, 2, 5, 5))
    means = []
    for _ in range(4):
        y = bn(conv(x))
        means.append(bn.running_mean.numpy().copy())
    # each training call moved the running mean once: m_k = 0.9 m_{k-1} + 0.1 batch mean, from 0
    batch_mean = conv(x).detach().numpy().mean(axis=(0, 2, 3))
    np.testing.assert_allclose(means[-1], batch_mean * (1 - 0.9**4), rtol=1e-5, atol=1e-7)
    assert int(bn.num_batches_tracked) == 4
    bn.eval()
    outs = [bn(conv(x)).detach().numpy() for _ in range(4)]
    for o in outs[1:]:
        np.testing.assert_array_equal(o, outs[0])
    assert any(isinstance(e, _Plan) for e in F.batch_norm.replay_entries.values())
    assert any(isinstance(e, _Plan) for e in F._conv.replay_entries.values())
    assert y.requires_grad
