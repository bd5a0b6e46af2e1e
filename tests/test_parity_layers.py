"""PyTorch parity suite (issue 3): every layer, loss, optimizer, init and the tensor surface against PyTorch.

Same weights, same float64 inputs; forward values and the gradients of inputs and parameters must agree within
twice their rounding-error bound (parity_util, tolerance.py), eagerly and through graphnn.compile (a subset of the
argument combinations is compiled, to keep the number of distinct native graphs reasonable). Everything skips
without PyTorch.

Values compared after training steps (losses, parameters, buffers, optimizer states) have no single recorded
graph; they get parity_util.steps_tolerance with the rounding steps of the computation that produced them:
"""

import copy
import math
import warnings

import numpy as np
import pytest

import graphnn
import graphnn.nn as gnn
import graphnn.nn.functional as gF
import graphnn.optim as goptim
from parity_util import (
    Lambda,
    check,
    close,
    compare_grads,
    compare_params,
    copy_state,
    pair,
    recorded_bounds,
    steps_tolerance,
    to_np,
)
from tolerance import accumulation_tolerance

# One training step of _mlp (Linear 4->6, tanh, Linear 6->2, MSE over 8x2): forward 4 + 1 + 8 (tanh) + 6 + 1 +
# 2 + 16 (mean) + 2 = 40 roundings, the backward pass ~30 on top, an optimizer update or gradient clipping (a norm
# over the 44 parameters) up to ~50 more: 120. Errors in the parameters carry into the next step: n steps, n * 120.
STEP_ROUNDINGS = 120
# One BatchNorm training step: mean and variance over K <= 24 values per channel (two passes, 2K + 4), normalizing
# and the affine map (5), the backward pass (2K + 10), the running statistics and an SGD update (6): 2 (2K) + 25 < 125.
BN_STEP_ROUNDINGS = 125

# PyTorch's own advisory warnings about the arguments it is given
pytestmark = [
    pytest.mark.filterwarnings("ignore:Using padding='same':UserWarning"),
    pytest.mark.filterwarnings("ignore:reduction. 'mean' divides:UserWarning"),
    pytest.mark.filterwarnings("ignore:The use of `x.T`:UserWarning"),
]


def _rng(seed=0):
    return np.random.default_rng(seed)


def _id(v):
    if isinstance(v, dict):
        return ",".join(f"{k}={_id(x)}" for k, x in v.items()) or "default"
    if isinstance(v, (tuple, list)):
        return "x".join(_id(x) for x in v)
    if isinstance(v, np.ndarray):
        return "arr"
    if callable(v):
        return "fn"
    return str(v)


def params(table, compile_every: int = 1):
    """Every case eagerly; every `compile_every`-th case (0 = none) also compiled."""
    out = []
    for i, case in enumerate(table):
        name = "-".join(_id(c) for c in case)
        out.append(pytest.param(case, False, id=name + "-eager"))
        if compile_every and i % compile_every == 0:
            out.append(pytest.param(case, True, id=name + "-compiled"))
    return out


MODES = pytest.mark.parametrize("compiled", [False, True], ids=["eager", "compiled"])


# -- convolution ---------------------------------------------------------------------------------------------------
CONV = [
    ("Conv1d", (3, 4, 3), {}, (2, 3, 9)),
    ("Conv1d", (4, 6, 3), dict(stride=2, padding=1, dilation=2, groups=2, bias=False), (2, 4, 10)),
    ("Conv1d", (3, 4, 4), dict(padding="same", dilation=2), (2, 3, 9)),
    ("Conv1d", (2, 4, 3), dict(padding=(2,), stride=(3,)), (2, 8)),  # unbatched input
    ("Conv2d", (3, 4, 3), {}, (2, 3, 7, 6)),
    ("Conv2d", (4, 6, (3, 2)), dict(stride=(2, 1), padding=(1, 0), dilation=(1, 2), groups=2), (2, 4, 7, 8)),
    ("Conv2d", (3, 4, (2, 3)), dict(padding="same", bias=False), (1, 3, 5, 6)),
    ("Conv2d", (2, 4, 3), dict(padding="valid", stride=2), (2, 2, 7, 7)),
    ("Conv2d", (4, 4, 3), dict(groups=4, padding=2, dilation=2), (1, 4, 6, 6)),
    ("Conv3d", (2, 4, 2), {}, (1, 2, 4, 4, 3)),
    ("Conv3d", (2, 2, (2, 3, 1)), dict(stride=(1, 2, 1), padding=(1, 0, 1), groups=2, bias=False), (2, 2, 4, 5, 3)),
    ("Conv3d", (2, 3, 3), dict(padding="same", dilation=(1, 2, 1)), (1, 2, 4, 5, 4)),
]


@pytest.mark.parametrize("case,compiled", params(CONV))
def test_conv_modules(torch, case, compiled):
    name, args, kw, shape = case
    g, t = pair(torch, name, *args, **kw)
    check(torch, g, t, [_rng().standard_normal(shape)], g, t, compiled=compiled)


FCONV = [
    ("conv1d", (2, 3, 9), (4, 3, 3), True, dict(stride=2, padding=1)),
    ("conv1d", (4, 7), (2, 4, 2), False, dict(padding="valid", dilation=3)),
    ("conv2d", (2, 4, 6, 7), (6, 2, 3, 3), True, dict(stride=(1, 2), padding=(2, 1), dilation=(2, 1), groups=2)),
    ("conv2d", (1, 3, 5, 5), (2, 3, 2, 2), False, dict(padding="same")),
    ("conv3d", (1, 2, 4, 4, 4), (3, 2, 2, 2, 2), True, dict(stride=2, padding=1)),
    ("conv3d", (2, 4, 3, 3, 3), (2, 2, 1, 2, 3), True, dict(groups=2, padding=(0, 1, 1))),
]


@pytest.mark.parametrize("case,compiled", params(FCONV))
def test_functional_conv(torch, case, compiled):
    name, xs, ws, bias, kw = case
    r = _rng(1)
    inputs = [r.standard_normal(xs), r.standard_normal(ws)] + ([r.standard_normal(ws[0])] if bias else [])
    check(
        torch,
        lambda *a: getattr(gF, name)(*a, **kw),
        lambda *a: getattr(torch.nn.functional, name)(*a, **kw),
        inputs,
        compiled=compiled,
    )


# -- pooling -------------------------------------------------------------------------------------------------------
MAXPOOL = [
    (dict(kernel_size=2), (2, 3, 6, 6)),
    (dict(kernel_size=3, stride=2, padding=1), (2, 3, 7, 7)),
    (dict(kernel_size=(3, 2), stride=(2, 1), padding=(1, 0), dilation=(1, 2)), (1, 2, 7, 8)),
    (dict(kernel_size=3, stride=2, ceil_mode=True), (1, 2, 8, 8)),
    (dict(kernel_size=2, return_indices=True), (2, 2, 5, 6)),
    (dict(kernel_size=3, stride=2, padding=1, dilation=2, return_indices=True, ceil_mode=True), (1, 2, 9, 8)),
    (dict(kernel_size=(2, 3), stride=(1, 2), padding=(1, 1), return_indices=True), (3, 6, 7)),  # unbatched
    (dict(kernel_size=2, stride=2, padding=1, ceil_mode=True), (1, 2, 5, 6)),  # last window would start in padding
]


@pytest.mark.parametrize("case,compiled", params(MAXPOOL))
def test_maxpool2d(torch, case, compiled):
    kw, shape = case
    g, t = pair(torch, "MaxPool2d", **kw)
    check(torch, g, t, [_rng(2).standard_normal(shape)], compiled=compiled)


UNPOOL = [
    (dict(kernel_size=2), (2, 2, 6, 6), False),
    (dict(kernel_size=3, stride=2, padding=1), (1, 2, 7, 7), True),
    (dict(kernel_size=(2, 3), stride=(2, 2)), (1, 3, 6, 7), True),
]


@pytest.mark.parametrize("case,compiled", params(UNPOOL))
def test_maxunpool2d(torch, case, compiled):
    kw, shape, with_size = case
    gp, tp = pair(torch, "MaxPool2d", return_indices=True, **kw)
    gu, tu = pair(torch, "MaxUnpool2d", **kw)
    size = shape if with_size else None

    def run(pool, unpool):
        def f(x):
            y, idx = pool(x)
            return y, idx, unpool(y, idx, output_size=size)

        return f

    check(torch, run(gp, gu), run(tp, tu), [_rng(3).standard_normal(shape)], compiled=compiled)


AVGPOOL = [
    (dict(kernel_size=2), (2, 3, 6, 6)),
    (dict(kernel_size=3, stride=2, padding=1), (2, 2, 7, 7)),
    (dict(kernel_size=3, stride=2, padding=1, count_include_pad=False), (2, 2, 7, 6)),
    (dict(kernel_size=(3, 2), stride=(2, 1), padding=(1, 1), ceil_mode=True), (1, 2, 8, 7)),
    (dict(kernel_size=3, stride=2, padding=1, ceil_mode=True, count_include_pad=False), (1, 2, 8, 8)),
    (dict(kernel_size=2, stride=2, ceil_mode=True), (1, 1, 5, 5)),
    (dict(kernel_size=3, stride=2, padding=1, ceil_mode=True), (2, 1, 6, 5)),
    (dict(kernel_size=2, stride=2, padding=1, ceil_mode=True, count_include_pad=False), (1, 2, 5, 6)),
    (dict(kernel_size=(2, 3), stride=1, padding=(1, 0), divisor_override=4), (2, 5, 6)),  # unbatched
]


@pytest.mark.parametrize("case,compiled", params(AVGPOOL))
def test_avgpool2d(torch, case, compiled):
    kw, shape = case
    g, t = pair(torch, "AvgPool2d", **kw)
    check(torch, g, t, [_rng(4).standard_normal(shape)], compiled=compiled)


# -- padding -------------------------------------------------------------------------------------------------------
PADS = [
    ("ReplicationPad2d", 2, (2, 3, 4, 5)),
    ("ReplicationPad2d", (1, 0, 2, 3), (3, 4, 5)),
    ("ZeroPad2d", 1, (2, 3, 4, 5)),
    ("ZeroPad2d", (1, 2, 0, 3), (2, 3, 4, 5)),
    ("ZeroPad2d", (-1, 2, 1, -2), (1, 2, 4, 5)),
]


@pytest.mark.parametrize("case,compiled", params(PADS))
def test_pad_modules(torch, case, compiled):
    name, padding, shape = case
    g, t = pair(torch, name, padding)
    check(torch, g, t, [_rng(5).standard_normal(shape)], compiled=compiled)


FPAD = [
    ((1, 2), "constant", 0.0, (2, 3, 4)),
    ((1, 2, 0, 3), "constant", 2.5, (2, 3, 4, 5)),
    ((1, 1, 2, 0, 1, 1), "constant", -1.0, (2, 3, 4, 5)),
    ((-1, 2, 1, 0), "constant", 0.5, (2, 3, 4, 5)),
    ((2, 1), "replicate", 0.0, (2, 3, 4)),
    ((1, 2, 3, 0), "replicate", 0.0, (2, 3, 4, 5)),
    ((1, 0, 0, 2, 1, 1), "replicate", 0.0, (1, 2, 3, 4, 2)),
]


@pytest.mark.parametrize("case,compiled", params(FPAD))
def test_functional_pad(torch, case, compiled):
    pad, mode, value, shape = case
    kw = {"value": value} if mode == "constant" else {}
    check(
        torch,
        lambda x: gF.pad(x, pad, mode, **kw),
        lambda x: torch.nn.functional.pad(x, pad, mode, **kw),
        [_rng(6).standard_normal(shape)],
        compiled=compiled,
    )


# -- activations ---------------------------------------------------------------------------------------------------
ACTS = [
    ("ReLU", {}),
    ("LeakyReLU", {}),
    ("LeakyReLU", dict(negative_slope=0.2)),
    ("Sigmoid", {}),
    ("Tanh", {}),
    ("Softplus", {}),
    ("Softplus", dict(beta=2.0, threshold=5.0)),
    ("Softplus", dict(beta=0.5, threshold=1.0)),
    ("Softmax", dict(dim=1)),
    ("Softmax", dict(dim=-1)),
    ("LogSoftmax", dict(dim=1)),
    ("LogSoftmax", dict(dim=0)),
]


@pytest.mark.parametrize("case,compiled", params(ACTS))
def test_activations(torch, case, compiled):
    name, kw = case
    g, t = pair(torch, name, **kw)
    x = _rng(7).standard_normal((3, 4, 5)) * 4  # crosses every threshold (softplus's included)
    check(torch, g, t, [x], compiled=compiled)


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
def test_softmax_dtype_argument(torch, name):
    x = _rng(8).standard_normal((3, 4)).astype(np.float32)
    check(
        torch,
        lambda a: getattr(gF, name)(a, 1, dtype=graphnn.float64),
        lambda a: getattr(torch.nn.functional, name)(a, 1, dtype=torch.float64),
        [x],
    )


@pytest.mark.parametrize("shape", [(5,), (3, 4), (2, 3, 4), (2, 3, 2, 2)], ids=_id)
@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
def test_implicit_softmax_dim_is_pytorch_legacy(torch, name, shape):
    """F.softmax(x) / nn.Softmax() without dim: PyTorch's legacy choice (0 for 0-, 1- and 3-d input, else 1) and
    its deprecation warning."""
    x = _rng(8).standard_normal(shape)
    mod = {"softmax": "Softmax", "log_softmax": "LogSoftmax"}[name]
    for g_call, t_call in [
        (getattr(gF, name), getattr(torch.nn.functional, name)),
        (getattr(gnn, mod)(), getattr(torch.nn, mod)()),
    ]:
        with pytest.warns(UserWarning, match="Implicit dimension choice"):
            gx = graphnn.tensor(x, requires_grad=True)
            go = g_call(gx)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tx = torch.tensor(x, requires_grad=True)
            to = t_call(tx)
        w = _rng(9).standard_normal(shape)
        g_loss = (go * graphnn.tensor(w)).sum()
        bounds = recorded_bounds([go], g_loss)
        close(go, to, "output", bounds.tol(0))
        g_loss.backward()
        (to * torch.tensor(w)).sum().backward()
        close(gx.grad, tx.grad, "d input", bounds.grad_tol(gx))


# -- batch normalization -------------------------------------------------------------------------------------------
BN = [
    ("BatchNorm1d", dict(), (6, 3)),
    ("BatchNorm1d", dict(affine=False, momentum=None), (4, 3, 5)),
    ("BatchNorm1d", dict(eps=1e-3, momentum=0.5), (5, 3, 2)),
    ("BatchNorm2d", dict(), (4, 3, 3, 2)),
    ("BatchNorm2d", dict(momentum=None, eps=1e-2), (3, 3, 2, 2)),
    ("BatchNorm2d", dict(track_running_stats=False), (4, 3, 2, 3)),
    ("BatchNorm2d", dict(affine=False, track_running_stats=False, momentum=None), (2, 3, 3, 3)),
]


def _bn_pair(torch, name, kw, seed=0):
    g, t = pair(torch, name, 3, **kw)
    if g.affine:  # non-trivial affine parameters
        r = _rng(seed)
        g.weight.data = r.uniform(0.5, 1.5, 3)
        g.bias.data = r.standard_normal(3)
        copy_state(torch, g, t)
    return g, t


@pytest.mark.parametrize("case,compiled", params(BN))
def test_batchnorm_train_and_eval(torch, case, compiled):
    """Three training steps (outputs, gradients, running statistics and num_batches_tracked), then eval mode
    (running statistics used, not updated)."""
    name, kw, shape = case
    g, t = _bn_pair(torch, name, kw)
    model = graphnn.compile(g) if compiled else g
    r = _rng(10)
    for i in range(3):
        check(torch, model, t, [r.standard_normal(shape) * 2 + 1], g, t)
        compare_params(g, t, BN_STEP_ROUNDINGS * (i + 1))
        g.zero_grad()
        t.zero_grad()
    g.eval()
    t.eval()
    stats = {k: steps_tolerance(v, BN_STEP_ROUNDINGS * 3) for k, v in t.state_dict().items() if k.startswith("running")}
    check(torch, model, t, [r.standard_normal(shape) * 2 + 1], g, t, state_errors=stats)
    compare_params(g, t, BN_STEP_ROUNDINGS * 3)
    if compiled:  # inference path (no gradients): eval mode, then training mode updating the statistics
        for mode in (False, True):
            g.train(mode)
            t.train(mode)
            x = r.standard_normal(shape)
            with graphnn.no_grad():
                out = model(graphnn.tensor(x))
            with torch.no_grad():
                t_out = t(torch.tensor(x))
            close(out, t_out, f"no_grad output (train={mode})", steps_tolerance(t_out, BN_STEP_ROUNDINGS * 5))
            compare_params(g, t, BN_STEP_ROUNDINGS * 5)


BN_STEP = [
    ("BatchNorm2d", dict(), (4, 3, 2, 2)),
    ("BatchNorm2d", dict(momentum=None), (3, 3, 2, 3)),
    ("BatchNorm1d", dict(momentum=0.3, eps=1e-3), (5, 3)),
]


@pytest.mark.parametrize("case", BN_STEP, ids=_id)
def test_batchnorm_compiled_training_step(torch, case):
    """A whole compiled step (forward, backward, SGD) updates the parameters and the running statistics."""
    name, kw, shape = case
    g, t = _bn_pair(torch, name, kw, seed=1)
    gopt, topt = goptim.SGD(g.parameters(), lr=0.1), torch.optim.SGD(t.parameters(), lr=0.1)

    @graphnn.compile
    def step(x, w):
        gopt.zero_grad()
        out = g(x)
        loss = (out * w).sum()
        loss.backward()
        gopt.step()
        return out, loss

    r = _rng(11)
    for i in range(4):
        x, w = r.standard_normal(shape) * 3 - 1, r.standard_normal(shape)
        out, loss = step(graphnn.tensor(x), graphnn.tensor(w))
        topt.zero_grad()
        t_out = t(torch.tensor(x))
        t_loss = (t_out * torch.tensor(w)).sum()
        t_loss.backward()
        topt.step()
        close(out, t_out, "output", steps_tolerance(t_out, BN_STEP_ROUNDINGS * (i + 1)))
        sum_of_terms = float((t_out.detach().abs() * torch.tensor(w).abs()).sum())
        close(loss, t_loss, "loss", steps_tolerance(t_loss, BN_STEP_ROUNDINGS * (i + 1), sum_of_terms))
        compare_params(g, t, BN_STEP_ROUNDINGS * (i + 1))
    g.eval()
    t.eval()
    x = r.standard_normal(shape)
    with graphnn.no_grad():
        out = graphnn.compile(g)(graphnn.tensor(x))
    t_out = t(torch.tensor(x))
    close(out, t_out, "eval output", steps_tolerance(t_out, BN_STEP_ROUNDINGS * 5))


# -- linear, containers, misc layers -------------------------------------------------------------------------------
LINEAR = [((4, 3), {}, (5, 4)), ((4, 2), dict(bias=False), (2, 3, 4)), ((3, 5), {}, (3,))]


@pytest.mark.parametrize("case,compiled", params(LINEAR))
def test_linear(torch, case, compiled):
    args, kw, shape = case
    g, t = pair(torch, "Linear", *args, **kw)
    check(torch, g, t, [_rng(12).standard_normal(shape)], g, t, compiled=compiled)


MISC = [
    ("CosineSimilarity", (), {}, [(4, 5), (4, 5)]),
    ("CosineSimilarity", (), dict(dim=-1, eps=1e-6), [(2, 3, 4), (1, 3, 4)]),
    ("PixelShuffle", (2,), {}, [(2, 8, 3, 2)]),
    ("PixelShuffle", (3,), {}, [(9, 2, 2)]),
    ("Upsample", (), dict(scale_factor=2), [(2, 3, 3, 4)]),
    ("Upsample", (), dict(size=(5, 7)), [(1, 2, 3, 4)]),
    ("Upsample", (), dict(scale_factor=1.5, mode="nearest"), [(1, 2, 4, 3)]),
    ("Upsample", (), dict(scale_factor=2, mode="bilinear"), [(2, 2, 3, 4)]),
    ("Upsample", (), dict(size=(5, 7), mode="bilinear", align_corners=False), [(1, 2, 3, 4)]),
    ("Upsample", (), dict(scale_factor=(2, 3), mode="bilinear", align_corners=True), [(1, 2, 3, 4)]),
    ("Upsample", (), dict(size=4, mode="bilinear", align_corners=True), [(1, 1, 3, 5)]),
    ("UpsamplingBilinear2d", (), dict(scale_factor=2), [(1, 2, 3, 4)]),
    ("UpsamplingBilinear2d", (), dict(size=(4, 6)), [(2, 1, 3, 3)]),
    ("Flatten", (), {}, [(2, 3, 4)]),
    ("Flatten", (), dict(start_dim=0, end_dim=1), [(2, 3, 4)]),
    ("Flatten", (), dict(start_dim=2), [(2, 3, 4, 5)]),
]


@pytest.mark.parametrize("case,compiled", params(MISC))
def test_misc_layers(torch, case, compiled):
    name, args, kw, shapes = case
    g, t = pair(torch, name, *args, **kw)
    r = _rng(13)
    check(torch, g, t, [r.standard_normal(s) for s in shapes], compiled=compiled)


def _seq(nn):
    return nn.Sequential(
        nn.Conv2d(2, 3, 3, padding=1),
        nn.BatchNorm2d(3),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(27, 4),
        nn.LogSoftmax(dim=1),
    )


def _stack_class(nn):
    class Stack(nn.Module):
        def __init__(self):
            super().__init__()
            self.layers = nn.ModuleList([nn.Linear(3, 3) for _ in range(2)])
            self.layers.append(nn.Linear(3, 2))
            self.layers.extend([nn.Linear(2, 2)])

        def forward(self, x):
            for i, layer in enumerate(self.layers):
                x = layer(x)
                if i < len(self.layers) - 1:
                    x = x.tanh()
            return x

    return Stack


@pytest.mark.parametrize("kind", ["Sequential", "ModuleList"])
@MODES
def test_containers(torch, kind, compiled):
    if kind == "Sequential":
        g, t = _seq(gnn).double(), _seq(torch.nn).double()
        shape = (2, 2, 6, 6)
    else:
        g, t = _stack_class(gnn)().double(), _stack_class(torch.nn)().double()
        shape = (4, 3)
    assert list(g.state_dict()) == list(t.state_dict())
    assert len(g if kind == "Sequential" else g.layers) == len(t if kind == "Sequential" else t.layers)
    copy_state(torch, g, t)
    check(torch, g, t, [_rng(14).standard_normal(shape)], g, t, compiled=compiled)
    compare_params(g, t, BN_STEP_ROUNDINGS)  # Sequential: BatchNorm's running statistics
    if kind == "Sequential":
        check(torch, g[:3], t[:3], [_rng(15).standard_normal(shape)], grad=False)
        assert isinstance(g[-1], gnn.LogSoftmax)


def test_sequential_from_ordered_dict(torch):
    from collections import OrderedDict

    def build(nn):
        return nn.Sequential(
            OrderedDict([("fc", nn.Linear(3, 4)), ("act", nn.Softplus(beta=2.0)), ("out", nn.Linear(4, 2, bias=False))])
        ).double()

    g, t = build(gnn), build(torch.nn)
    assert list(g.state_dict()) == list(t.state_dict()) == ["fc.weight", "fc.bias", "out.weight"]
    copy_state(torch, g, t)
    check(torch, g, t, [_rng(15).standard_normal((5, 3))], g, t)
    assert isinstance(g.act, gnn.Softplus) and g[1] is g.act


@MODES
def test_float32_network(torch, compiled):
    """The default dtype: a small conv net in float32 agrees with PyTorch's float32 to float32 accuracy."""

    def build(nn):
        return nn.Sequential(
            nn.Conv2d(1, 4, 3, padding=1),
            nn.BatchNorm2d(4),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(4, 4, 3, groups=2),
            nn.Tanh(),
            nn.AvgPool2d(2, ceil_mode=True),
            nn.Flatten(),
            nn.Linear(4 * 2 * 2, 3),
            nn.LogSoftmax(dim=1),
        )

    g, t = build(gnn), build(torch.nn)
    copy_state(torch, g, t)
    x = _rng(25).standard_normal((3, 1, 10, 10)).astype(np.float32)
    out = check(torch, g, t, [x], g, t, compiled=compiled)[0]
    assert out.dtype_name == "float32" and all(p.grad.dtype_name == "float32" for p in g.parameters())
    # BatchNorm's running statistics: a 3x3 convolution (10 roundings), mean and variance over 3 x 10 x 10 values
    # (2 x 300 + 4), the running update (3)
    compare_params(g, t, 620)


# -- dropout -------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("p", [0.0, 0.4, 1.0])
@MODES
def test_dropout_deterministic_cases(torch, p, compiled):
    """Eval mode is the identity; p=0 (identity) and p=1 (zeros, zero gradient) in training mode."""
    g, t = pair(torch, "Dropout", p)
    x = _rng(16).standard_normal((3, 4))
    g.eval()
    t.eval()
    check(torch, g, t, [x], compiled=compiled)
    if p in (0.0, 1.0):
        g.train()
        t.train()
        check(torch, g, t, [x], compiled=compiled)


@pytest.mark.parametrize("p", [0.2, 0.5, 0.75])
@MODES
def test_dropout_statistics(p, compiled):
    """Kept fraction ~ 1-p, kept values scaled by 1/(1-p), gradient = the same mask times 1/(1-p)."""
    drop = gnn.Dropout(p)
    model = graphnn.compile(drop) if compiled else drop
    n = 40000
    x = graphnn.tensor(np.full((n,), 2.0), requires_grad=True)
    out = model(x)
    out.sum().backward()
    y = to_np(out)
    kept = y != 0
    assert abs(kept.mean() - (1 - p)) < 4 * math.sqrt(p * (1 - p) / n)
    # x * mask / (1 - p) in some order: the difference 1 - p, a division or reciprocal, a product (3 roundings)
    close(
        y[kept],
        np.full(int(kept.sum()), 2.0 / (1 - p)),
        "kept values",
        accumulation_tolerance("float64", 3, 2 / (1 - p)),
    )
    close(x.grad, kept / (1 - p), "d input", accumulation_tolerance("float64", 3, 1 / (1 - p)))


@MODES
def test_dropout_reproducible_with_manual_seed(compiled):
    drop = gnn.Dropout(0.5)
    model = graphnn.compile(drop) if compiled else drop
    x = graphnn.tensor(np.ones((8, 16)), requires_grad=True)
    graphnn.manual_seed(123)
    a = to_np(model(x))
    b = to_np(model(x))
    graphnn.manual_seed(123)
    c = to_np(model(x))
    np.testing.assert_array_equal(a, c)
    assert (a != b).any(), "consecutive calls must draw new masks"
    graphnn.manual_seed(123)
    eager = to_np(drop(x))  # compiled and eager code draw from the same generator
    np.testing.assert_array_equal(a, eager)
    with graphnn.no_grad():
        graphnn.manual_seed(123)
        np.testing.assert_array_equal(to_np(model(graphnn.tensor(np.ones((8, 16))))), a)


# -- embedding -----------------------------------------------------------------------------------------------------
EMB = [
    ((10, 3), {}, (2, 4)),
    ((7, 4), dict(padding_idx=2), (3, 5)),
    ((6, 2), dict(padding_idx=-1), (9,)),
    ((8, 3), dict(max_norm=1.0), (3, 4)),
    ((5, 4), dict(max_norm=0.5, norm_type=1.0, padding_idx=0), (2, 6)),
    ((6, 3), dict(scale_grad_by_freq=True, padding_idx=2), (4, 5)),
]


@pytest.mark.parametrize("case,compiled", params(EMB))
def test_embedding(torch, case, compiled):
    args, kw, shape = case
    g, t = pair(torch, "Embedding", *args, **kw)
    idx = _rng(17).integers(0, args[0], shape)
    idx.flat[:4] = [args[0] - 1, 2, 0, 2]  # the padding rows appear, row 2 twice at least
    assert idx.dtype == np.int64
    check(torch, g, t, [idx], g, t, compiled=compiled)
    compare_params(g, t, 10)  # max_norm renormalizes the looked-up rows in place: a norm of 3 values, a scale (~10)
    if "padding_idx" in kw:
        assert not to_np(g.weight.grad)[kw["padding_idx"]].any()


@MODES
def test_embedding_max_norm_training_step(torch, compiled):
    """max_norm's in-place renormalization and an AdamW update of the same weight, step after step."""
    g, t = pair(torch, "Embedding", 6, 3, max_norm=1.0, padding_idx=1)
    g.weight.data = _rng(30).standard_normal((6, 3)) * 2
    copy_state(torch, g, t)
    gopt, topt = goptim.AdamW(g.parameters(), lr=0.1), torch.optim.AdamW(t.parameters(), lr=0.1)

    def step(idx):
        gopt.zero_grad()
        loss = (g(idx) ** 2).sum()
        loss.backward()
        gopt.step()
        return loss

    step = graphnn.compile(step) if compiled else step
    r = _rng(31)
    for i in range(
        3
    ):  # per step: a row norm and rescaling (~10), the loss over 6 x 3 values (20), the AdamW update (15)
        idx = r.integers(0, 6, (2, 3))
        topt.zero_grad()
        t_loss = (t(torch.tensor(idx)) ** 2).sum()
        t_loss.backward()
        topt.step()
        close(step(graphnn.tensor(idx)), t_loss, "loss", steps_tolerance(t_loss, 45 * (i + 1)))
        compare_params(g, t, 45 * (i + 1))


@MODES
def test_embedding_out_of_range_is_op_error(compiled):
    emb = gnn.Embedding(5, 2)
    model = graphnn.compile(emb) if compiled else emb
    for bad in ([[0, 5]], [[-1, 2]]):
        with pytest.raises(graphnn.OpError, match="out of range"):
            model(graphnn.tensor(bad))
    with pytest.raises(graphnn.OpError, match="int64"):
        emb(graphnn.tensor([[0.0, 1.0]]))


@MODES
def test_index_errors_are_op_errors(compiled):
    """Out-of-range class targets and unpooling indices are OpErrors, also when they reach compiled code."""

    def wrap(f):
        return graphnn.compile(Lambda(f)) if compiled else f

    nll = wrap(lambda x, t: gF.nll_loss(x, t, ignore_index=-1))
    x = graphnn.tensor(np.zeros((2, 3)), requires_grad=True)
    nll(x, graphnn.tensor([0, -1]))  # ignored
    with pytest.raises(graphnn.OpError, match="out of bounds"):
        nll(x, graphnn.tensor([0, 3]))
    unpool = wrap(lambda v, i: gF.max_unpool2d(v, i, 2))
    v = graphnn.tensor(np.ones((1, 1, 2, 2)), requires_grad=True)
    unpool(v, graphnn.tensor([[[[0, 2], [9, 15]]]]))
    with pytest.raises(graphnn.OpError, match="out of bounds"):
        unpool(v, graphnn.tensor([[[[0, 2], [9, 16]]]]))


# -- losses --------------------------------------------------------------------------------------------------------
REDUCTIONS = ["none", "mean", "sum"]


def _loss_inputs(kind, r, shape):
    if kind == "reg":
        return [r.standard_normal(shape), r.standard_normal(shape)]
    if kind == "bce":
        return [1 / (1 + np.exp(-r.standard_normal(shape))), r.uniform(0, 1, shape)]
    if kind == "kl":
        x = r.standard_normal(shape)
        return [x - np.log(np.exp(x).sum(-1, keepdims=True)), r.dirichlet(np.ones(shape[-1]), shape[:-1])]
    if kind == "kl_log":
        x, y = r.standard_normal(shape), r.standard_normal(shape)
        return [x - np.log(np.exp(x).sum(-1, keepdims=True)), y - np.log(np.exp(y).sum(-1, keepdims=True))]
    if kind == "ce_prob":  # class probabilities, shaped as the (N, C, d...) scores
        p = r.dirichlet(np.ones(shape[1]), (shape[0],) + shape[2:])
        return [r.standard_normal(shape), np.moveaxis(p, -1, 1)]
    # class indices: (N, C) or (N, C, d1, d2) scores, target over the rest; class 1 occurs (ignore_index tests)
    x = r.standard_normal(shape)
    target = r.integers(0, shape[1], (shape[0],) + shape[2:])
    target.flat[:2] = 1
    if kind == "nll":
        x = x - np.log(np.exp(x).sum(1, keepdims=True))
    return [x, target]


W4 = np.array([0.5, 2.0, 1.0, 0.25])
LOSSES = [
    ("L1Loss", {}, "reg", (3, 4)),
    ("MSELoss", {}, "reg", (2, 3, 2)),
    ("SmoothL1Loss", {}, "reg", (4, 5)),
    ("SmoothL1Loss", dict(beta=0.5), "reg", (4, 5)),
    ("SmoothL1Loss", dict(beta=0.0), "reg", (6,)),
    ("BCELoss", {}, "bce", (3, 4)),
    ("BCELoss", dict(weight=W4), "bce", (3, 4)),
    ("KLDivLoss", {}, "kl", (3, 4)),
    ("KLDivLoss", dict(log_target=True), "kl_log", (3, 4)),
    ("NLLLoss", {}, "nll", (5, 4)),
    ("NLLLoss", dict(weight=W4, ignore_index=1), "nll", (5, 4)),
    ("NLLLoss", dict(weight=W4), "nll", (2, 4, 3, 2)),
    ("NLLLoss", dict(ignore_index=1), "nll", (2, 4, 3, 2)),
    ("CrossEntropyLoss", {}, "ce", (5, 4)),
    ("CrossEntropyLoss", dict(weight=W4), "ce", (5, 4)),
    ("CrossEntropyLoss", dict(ignore_index=1), "ce", (5, 4)),
    ("CrossEntropyLoss", dict(label_smoothing=0.1), "ce", (5, 4)),
    ("CrossEntropyLoss", dict(weight=W4, ignore_index=1, label_smoothing=0.2), "ce", (5, 4)),
    ("CrossEntropyLoss", dict(weight=W4, label_smoothing=0.15), "ce", (5, 4)),
    ("CrossEntropyLoss", {}, "ce", (2, 4, 3, 2)),
    ("CrossEntropyLoss", dict(weight=W4, ignore_index=1), "ce", (2, 4, 3, 2)),
    ("CrossEntropyLoss", dict(ignore_index=1, label_smoothing=0.1), "ce", (2, 4, 3, 2)),
    ("CrossEntropyLoss", dict(weight=W4, ignore_index=1, label_smoothing=0.3), "ce", (2, 4, 2, 3)),
    ("CrossEntropyLoss", {}, "ce_prob", (5, 4)),
    ("CrossEntropyLoss", dict(weight=W4, label_smoothing=0.2), "ce_prob", (5, 4)),
    ("CrossEntropyLoss", dict(label_smoothing=0.1), "ce_prob", (2, 4, 3, 2)),
    ("CrossEntropyLoss", dict(weight=W4), "ce_prob", (2, 4, 3)),
]
LOSS_CASES = [c[:1] + ({**c[1], "reduction": red},) + c[2:] for c in LOSSES for red in REDUCTIONS]


def _make(lib, name, kw):
    kw = {k: (lib.tensor(v) if isinstance(v, np.ndarray) else v) for k, v in kw.items()}
    return getattr(lib.nn, name)(**kw)


@pytest.mark.parametrize("case,compiled", params(LOSS_CASES, 2))
def test_losses(torch, case, compiled):
    name, kw, kind, shape = case
    g, t = _make(graphnn, name, kw).double(), _make(torch, name, kw).double()
    check(torch, g, t, _loss_inputs(kind, _rng(18), shape), compiled=compiled)


def test_cross_entropy_probability_targets_unbatched_and_ignore_index(torch):
    r = _rng(20)
    x, p = r.standard_normal(5), r.dirichlet(np.ones(5))
    check(
        torch,
        lambda a, b: gF.cross_entropy(a, b, label_smoothing=0.1),
        lambda a, b: torch.nn.functional.cross_entropy(a, b, label_smoothing=0.1),
        [x, p],
    )
    for lib in (graphnn, torch):
        with pytest.raises(RuntimeError, match="ignore_index is not supported for floating point target"):
            lib.nn.functional.cross_entropy(lib.tensor(x[None]), lib.tensor(p[None]), ignore_index=1)


KL_REDUCTIONS = [dict(reduction=r, log_target=lt) for r in ("none", "mean", "sum", "batchmean") for lt in (False, True)]
KL_REDUCTIONS += [dict(size_average=False), dict(size_average=False, log_target=True), dict(reduce=False)]


@pytest.mark.parametrize("case,compiled", params([(kw,) for kw in KL_REDUCTIONS], 2))
def test_kldiv_reductions(torch, case, compiled):
    kw = case[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # PyTorch's reduction='mean' and size_average deprecation warnings
        g, t = gnn.KLDivLoss(**kw), torch.nn.KLDivLoss(**kw)
        check(
            torch,
            g,
            t,
            _loss_inputs("kl_log" if kw.get("log_target") else "kl", _rng(19), (3, 2, 4)),
            compiled=compiled,
        )


LEGACY = [
    dict(size_average=False),
    dict(reduce=False),
    dict(size_average=True, reduce=True),
    dict(size_average=False, reduction="mean"),
]


@pytest.mark.parametrize(
    "name,kind,shape",
    [
        ("L1Loss", "reg", (3, 4)),
        ("MSELoss", "reg", (3, 4)),
        ("SmoothL1Loss", "reg", (5,)),
        ("BCELoss", "bce", (2, 3)),
        ("NLLLoss", "nll", (4, 3)),
        ("CrossEntropyLoss", "ce", (2, 3, 2)),
    ],
)
def test_legacy_size_average_and_reduce(torch, name, kind, shape):
    for kw in LEGACY:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # PyTorch's deprecation warnings
            g, t = getattr(gnn, name)(**kw), getattr(torch.nn, name)(**kw)
        assert g.reduction == t.reduction, kw
        check(torch, g, t, _loss_inputs(kind, _rng(29), shape))


def test_bce_clamps_log_like_pytorch(torch):
    x = np.array([0.0, 1.0, 0.3, 1e-50])
    y = np.array([1.0, 0.0, 1.0, 0.5])
    for red in REDUCTIONS:
        check(torch, gnn.BCELoss(reduction=red), torch.nn.BCELoss(reduction=red), [x, y], grad=False)


def test_loss_weight_is_a_buffer_like_pytorch(torch):
    g, t = _make(graphnn, "CrossEntropyLoss", dict(weight=W4)), _make(torch, "CrossEntropyLoss", dict(weight=W4))
    assert list(g.state_dict()) == list(t.state_dict()) == ["weight"]


# -- optimizers ----------------------------------------------------------------------------------------------------
OPTIMS = [
    ("SGD", dict(lr=0.1)),
    ("SGD", dict(lr=0.1, momentum=0.9)),
    ("SGD", dict(lr=0.05, momentum=0.9, dampening=0.3, weight_decay=0.1)),
    ("SGD", dict(lr=0.05, momentum=0.8, nesterov=True)),
    ("SGD", dict(lr=0.05, momentum=0.5, weight_decay=0.2, maximize=True)),
    ("Adam", dict(lr=0.1)),
    ("Adam", dict(lr=0.02, betas=(0.8, 0.9), amsgrad=True)),
    ("Adam", dict(lr=0.05, eps=1e-6, weight_decay=0.1, maximize=True)),
    ("AdamW", dict(lr=0.1)),
    ("AdamW", dict(lr=0.02, weight_decay=0.3, amsgrad=True)),
]


def _mlp(nn):
    return nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 2)).double()


def _model_pair(torch, seed=0):
    graphnn.manual_seed(seed)
    g, t = _mlp(gnn), _mlp(torch.nn)
    copy_state(torch, g, t)
    return g, t


def _train_step(lib, model, opt):
    def step(x, y):
        opt.zero_grad()
        loss = lib.nn.functional.mse_loss(model(x), y)
        loss.backward()
        opt.step()
        return loss

    return step


def _batches(n, seed=20):
    r = _rng(seed)
    return [(r.standard_normal((8, 4)), r.standard_normal((8, 2))) for _ in range(n)]


def _run(torch, g_step, t_step, batches, done: int = 0) -> int:
    """Run both steps on the batches, comparing losses; returns the number of steps taken in all."""
    for x, y in batches:
        done += 1
        t_loss = t_step(torch.tensor(x), torch.tensor(y))
        close(
            g_step(graphnn.tensor(x), graphnn.tensor(y)), t_loss, "loss", steps_tolerance(t_loss, STEP_ROUNDINGS * done)
        )
    return done


@pytest.mark.parametrize("case,compiled", params(OPTIMS))
def test_optimizers(torch, case, compiled):
    name, kw = case
    g, t = _model_pair(torch)
    gopt, topt = getattr(goptim, name)(g.parameters(), **kw), getattr(torch.optim, name)(t.parameters(), **kw)
    g_step = _train_step(graphnn, g, gopt)
    n = _run(torch, graphnn.compile(g_step) if compiled else g_step, _train_step(torch, t, topt), _batches(5))
    compare_params(g, t, STEP_ROUNDINGS * n)
    for p, q in zip(g.parameters(), t.parameters()):
        for k, v in topt.state[q].items():
            close(gopt.state[p][k], v, k, steps_tolerance(v, STEP_ROUNDINGS * n))


@pytest.mark.parametrize(
    "name,kw", [("SGD", dict(lr=0.1, momentum=0.9)), ("Adam", dict(lr=0.01, amsgrad=True))], ids=["SGD", "Adam"]
)
@MODES
def test_optimizer_state_dict_round_trip(torch, name, kw, compiled):
    """state_dict mirrors PyTorch's layout; a fresh optimizer (or one whose compiled step already ran) loading it
    continues exactly where the first left off."""
    batches = _batches(6, seed=21)
    g1, t = _model_pair(torch)
    opt1, topt = getattr(goptim, name)(g1.parameters(), **kw), getattr(torch.optim, name)(t.parameters(), **kw)
    n = _run(torch, _train_step(graphnn, g1, opt1), _train_step(torch, t, topt), batches[:3])
    sd, tsd = opt1.state_dict(), topt.state_dict()
    assert list(sd) == list(tsd) == ["state", "param_groups"]
    assert sorted(sd["state"]) == sorted(tsd["state"])
    for i in tsd["state"]:
        assert sorted(sd["state"][i]) == sorted(tsd["state"][i])
        for k, v in tsd["state"][i].items():
            close(sd["state"][i][k], v, k, steps_tolerance(v, STEP_ROUNDINGS * n))
    for k, v in sd["param_groups"][0].items():
        assert k in tsd["param_groups"][0] and v == tsd["param_groups"][0][k], k
    sd = copy.deepcopy(sd)

    g2, _ = _model_pair(torch, seed=1)
    opt2 = getattr(goptim, name)(g2.parameters(), lr=0.5)
    step2 = _train_step(graphnn, g2, opt2)
    if compiled:
        step2 = graphnn.compile(step2)
        for x, y in _batches(2, seed=22):  # state exists and the compiled step has captured it
            step2(graphnn.tensor(x), graphnn.tensor(y))
    g2.load_state_dict(g1.state_dict())
    opt2.load_state_dict(sd)
    assert opt2.param_groups[0]["lr"] == kw["lr"]
    step1 = _train_step(graphnn, g1, opt1)
    t_step = _train_step(torch, t, topt)
    for x, y in batches[3:]:
        n += 1
        l1, l2 = step1(graphnn.tensor(x), graphnn.tensor(y)), step2(graphnn.tensor(x), graphnn.tensor(y))
        close(l2, l1, "resumed loss", None if not compiled else steps_tolerance(l1, STEP_ROUNDINGS * (n - 3)))
        t_loss = t_step(torch.tensor(x), torch.tensor(y))
        close(l1, t_loss, "loss", steps_tolerance(t_loss, STEP_ROUNDINGS * n))
    compare_params(g2, t, STEP_ROUNDINGS * n)
    compare_params(g1, t, STEP_ROUNDINGS * n)


@MODES
def test_optimizer_param_groups_and_lr_changes(torch, compiled):
    """Two parameter groups with their own hyper-parameters; changing lr between steps (as a scheduler does) takes
    effect, also in a compiled step traced with the old value."""
    g, t = _model_pair(torch)

    def groups(m):
        return [{"params": list(m[0].parameters()), "lr": 0.05, "momentum": 0.9}, {"params": list(m[2].parameters())}]

    gopt, topt = goptim.SGD(groups(g), lr=0.1, nesterov=False), torch.optim.SGD(groups(t), lr=0.1)
    g_step = _train_step(graphnn, g, gopt)
    g_step = graphnn.compile(g_step) if compiled else g_step
    t_step = _train_step(torch, t, topt)
    for i, batch in enumerate(_batches(6, seed=26)):
        if i == 3:
            for opt in (gopt, topt):
                opt.param_groups[0]["lr"] *= 0.1
                opt.param_groups[1]["lr"] = 0.3
        _run(torch, g_step, t_step, [batch], i)
    compare_params(g, t, STEP_ROUNDINGS * 6)


# -- gradient clipping ---------------------------------------------------------------------------------------------
CLIPS = [("norm", 0.5, 2.0), ("norm", 0.05, math.inf), ("norm", 100.0, 2.0), ("norm", 0.3, 1.0), ("value", 0.05, None)]


@pytest.mark.parametrize("case", CLIPS, ids=_id)
@MODES
def test_clip_grad(torch, case, compiled):
    kind, limit, norm_type = case
    g, t = _model_pair(torch)

    def g_step(x, y):
        g.zero_grad()
        gF.mse_loss(g(x), y).backward()
        if kind == "value":
            gnn.utils.clip_grad_value_(g.parameters(), limit)
            return None
        return gnn.utils.clip_grad_norm_(g.parameters(), limit, norm_type)

    step = graphnn.compile(g_step) if compiled else g_step
    for x, y in _batches(2, seed=23):  # the parameters do not change: one step's roundings each time
        norm = step(graphnn.tensor(x), graphnn.tensor(y))
        t.zero_grad()
        torch.nn.functional.mse_loss(t(torch.tensor(x)), torch.tensor(y)).backward()
        if kind == "value":
            torch.nn.utils.clip_grad_value_(t.parameters(), limit)
        else:
            t_norm = torch.nn.utils.clip_grad_norm_(t.parameters(), limit, norm_type)
            close(norm, t_norm, "total norm", steps_tolerance(t_norm, STEP_ROUNDINGS))
        compare_grads(g, t, {n: steps_tolerance(p.grad, STEP_ROUNDINGS) for n, p in t.named_parameters()})


# -- init ----------------------------------------------------------------------------------------------------------
GAINS = [
    ("linear", None),
    ("conv1d", None),
    ("conv2d", None),
    ("conv3d", None),
    ("conv_transpose2d", None),
    ("sigmoid", None),
    ("tanh", None),
    ("relu", None),
    ("leaky_relu", None),
    ("leaky_relu", 0.2),
    ("leaky_relu", 1),
    ("selu", None),
]


def test_calculate_gain(torch):
    for nl, param in GAINS:
        assert gnn.init.calculate_gain(nl, param) == torch.nn.init.calculate_gain(nl, param), (nl, param)
    with pytest.raises(ValueError):
        gnn.init.calculate_gain("softsign_typo")


@pytest.mark.parametrize(
    "fn,shape,kw",
    [
        ("eye_", (3, 5), {}),
        ("eye_", (4, 2), {}),
        ("dirac_", (4, 3, 3), {}),
        ("dirac_", (6, 2, 3, 3), dict(groups=2)),
        ("dirac_", (2, 3, 3, 2, 3), {}),
        ("constant_", (2, 3), dict(val=0.7)),
        ("zeros_", (3, 2, 2), {}),
        ("ones_", (5,), {}),
    ],
    ids=_id,
)
def test_deterministic_init(torch, fn, shape, kw):
    g, t = graphnn.empty(*shape, dtype="float64"), torch.empty(*shape, dtype=torch.float64)
    out = getattr(gnn.init, fn)(g, **kw)
    getattr(torch.nn.init, fn)(t, **kw)
    assert out is g
    np.testing.assert_array_equal(g.numpy(), t.numpy())


RANDOM_INITS = [
    ("uniform_", (300, 400), dict(a=-0.5, b=2.0)),
    ("normal_", (300, 400), dict(mean=1.0, std=0.3)),
    ("xavier_uniform_", (200, 30, 3), dict(gain=2.0)),
    ("xavier_normal_", (300, 200), {}),
    ("kaiming_uniform_", (250, 40, 2, 2), dict(a=math.sqrt(5))),
    ("kaiming_uniform_", (300, 200), dict(mode="fan_out", nonlinearity="relu")),
    ("kaiming_normal_", (200, 30, 5), {}),
    ("kaiming_normal_", (300, 200), dict(a=0.1, mode="fan_out")),
]


@pytest.mark.parametrize("fn,shape,kw", RANDOM_INITS, ids=_id)
def test_random_init_statistics(torch, fn, shape, kw):
    """Same distribution as PyTorch's: shape, dtype, mean, standard deviation and range agree."""
    graphnn.manual_seed(0)
    torch.manual_seed(0)
    g = gnn.Parameter(graphnn.empty(*shape, dtype="float64"))
    t = torch.nn.Parameter(torch.empty(*shape, dtype=torch.float64))
    assert getattr(gnn.init, fn)(g, **kw) is g
    with torch.no_grad():
        getattr(torch.nn.init, fn)(t, **kw)
    a, b = g.detach().numpy(), t.detach().numpy()
    assert a.shape == b.shape and a.dtype == b.dtype and g.requires_grad
    scale = b.std()
    assert abs(a.mean() - b.mean()) < 0.02 * scale + 0.01 * abs(b.mean())
    assert abs(a.std() - scale) < 0.02 * scale
    if "uniform" in fn:
        assert b.min() - 0.01 * scale <= a.min() and a.max() <= b.max() + 0.01 * scale
        assert abs(a.min() - b.min()) < 0.01 * scale and abs(a.max() - b.max()) < 0.01 * scale


@pytest.mark.parametrize("shape,gain", [((3, 5), 1.0), ((6, 4), 1.0), ((4, 2, 3), 2.0), ((5, 5), 0.5)], ids=_id)
def test_orthogonal_init(torch, shape, gain):
    g = graphnn.empty(*shape, dtype="float64")
    gnn.init.orthogonal_(g, gain=gain)
    w = g.numpy().reshape(shape[0], -1)
    rows, cols = w.shape
    gram = w @ w.T if rows <= cols else w.T @ w
    # Householder QR gives orthonormal columns up to ~ rows * cols roundings (Higham, Accuracy and Stability,
    # 19.3); the Gram matrix adds max(rows, cols)-term sums; everything scaled by gain^2
    tol = accumulation_tolerance("float64", rows * cols + max(rows, cols), gain**2)
    close(gram, gain**2 * np.eye(min(rows, cols)), "Gram matrix", tol)
    t = torch.empty(*shape, dtype=torch.float64)
    torch.nn.init.orthogonal_(t, gain=gain)
    assert t.shape == tuple(g.shape)


def test_fan_in_and_fan_out(torch):
    for shape in [(3, 4), (5, 2, 3), (4, 3, 2, 2), (2, 3, 1, 2, 3)]:
        assert gnn.init._calculate_fan_in_and_fan_out(
            graphnn.empty(*shape)
        ) == torch.nn.init._calculate_fan_in_and_fan_out(torch.empty(*shape))


# -- tensor surface ------------------------------------------------------------------------------------------------
def _pos(x):
    return x.abs() + 0.5


SURFACE = [
    (
        "broadcast_arith",
        lambda L, a, b: (a + b * 2 - 1, a * b / (b * b + 1), 1 - a + 2 / _pos(b), -a),
        [(3, 1, 4), (2, 4)],
    ),
    (
        "scalar_arith",
        lambda L, a: (a * 3, 2 + a, a / 4, 5 - a, a.add(a, alpha=2), a.sub(1.5), a.mul(a), a.div(2.0)),
        [(2, 3)],
    ),
    ("pow", lambda L, a, b: (_pos(a) ** 1.5, a**2, 2**a, _pos(a).pow(b), a.pow(3)), [(3, 4), (3, 4)]),
    (
        "comparisons",
        lambda L, a, b: (
            a > b,
            a >= 0.5,
            a < b,
            a <= -0.2,
            a == a,
            a != b,
            (a > b).sum(),
            L.where(a > b, a, b * 2),
            (a > 0).double() * b,
        ),
        [(3, 4), (1, 4)],
    ),
    (
        "sum_mean",
        lambda L, a: (
            a.sum(),
            a.sum(1),
            a.sum((0, 2), keepdim=True),
            a.sum(-1, keepdim=True),
            a.mean(),
            a.mean(0),
            a.mean((1, 2)),
            a.mean(-1, keepdim=True),
            L.sum(a, 2),
        ),
        [(2, 3, 4)],
    ),
    (
        "max_min",
        lambda L, a: (
            a.max(),
            a.min(),
            a.max(1),
            a.min(0, keepdim=True),
            a.max(-1, keepdim=True),
            L.max(a),
            L.maximum(a, a.t()),
            L.minimum(a, a * 0 + 0.1),
        ),
        [(4, 4)],
    ),
    ("argmax", lambda L, a: (a.argmax(), a.argmax(1), a.argmax(-1, keepdim=True), a.argmin(0), a.argmin()), [(3, 5)]),
    (
        "shape",
        lambda L, a: (
            a.reshape(6, 4),
            a.reshape(-1, 3),
            a.view(2, 12),
            a.permute(2, 0, 1),
            a.transpose(0, 2),
            a.unsqueeze(1).squeeze(1),
            a[:, :1].squeeze(),
            a[:, :1].squeeze(1),
            a.unsqueeze(-1),
            a.flatten(),
            L.transpose(a, 1, 2),
            a.T,
        ),
        [(2, 3, 4)],
    ),
    (
        "cat_stack",
        lambda L, a, b: (
            L.cat([a, b], 1),
            L.cat([b, a, b], -1),
            L.cat([a, a]),
            L.stack([a, a * 2]),
            L.stack([a, b[:, :2]], 2),
        ),
        [(2, 2), (2, 3)],
    ),
    (
        "indexing",
        lambda L, a: (
            a[1],
            a[:, 1:3],
            a[..., ::2],
            a[None, 0, :, -1],
            a[-1, 1:, 2],
            a[:, :, 1:4:2],
            a[1:, None],
            a[0][1][2],
        ),
        [(3, 4, 5)],
    ),
    (
        "unary",
        lambda L, a: (
            a.exp(),
            _pos(a).log(),
            _pos(a).sqrt(),
            a.tanh(),
            a.abs(),
            a.clamp(-0.5, 0.5),
            a.clamp(min=0.1),
            a.clamp(max=-0.1),
            L.exp(a),
            L.log(_pos(a)),
            L.sqrt(_pos(a)),
            L.tanh(a),
            L.abs(a),
            L.clamp(a, -1, 1),
            a.sigmoid(),
            a.relu(),
        ),
        [(3, 4)],
    ),
    (
        "matmul",
        lambda L, a, b, v: (
            a @ b,
            L.matmul(a, b),
            a.t(),
            b.t() @ a.t(),
            a.mm(b),
            v[:4] @ b,
            a @ v[:4],
            b @ v,
            L.matmul(v, v),
            L.mm(a, b),
        ),
        [(3, 4), (4, 5), (5,)],
    ),
    ("batched_matmul", lambda L, a, b: (a @ b, L.matmul(a[0], b), a @ b[0]), [(2, 3, 4), (1, 4, 2)]),
]


@pytest.mark.parametrize("case,compiled", params(SURFACE))
def test_tensor_surface(torch, case, compiled):
    name, fn, shapes = case
    r = _rng(24)
    check(
        torch,
        lambda *xs: fn(graphnn, *xs),
        lambda *xs: fn(torch, *xs),
        [r.standard_normal(s) for s in shapes],
        compiled=compiled,
    )


TIES = np.array([[1.0, 3.0, 3.0, 0.0], [2.0, 2.0, 2.0, 2.0], [-1.0, 0.0, -1.0, 0.5]])
EDGES = [  # explicit inputs on ties, kinks and bounds, where gradient conventions matter
    (
        "max_min_ties",
        lambda L, a: (
            a.max(1),
            a.min(1),
            a.max(0, keepdim=True),
            a.min(-1, keepdim=True),
            a.max(),
            a.amax(1),
            a.argmax(1),
            a.argmin(0),
        ),
        [TIES],
    ),
    (
        "clamp_bounds",
        lambda L, a: (a.clamp(-1, 1), a.clamp(min=0.0), a.clamp(max=2.0), L.clamp(a, 0.5, 3.0)),
        [np.array([-1.0, 1.0, 0.5, 2.0, 3.0, -2.0])],
    ),
    (
        "kinks",
        lambda L, a: (
            L.relu(a),
            a.abs(),
            L.nn.functional.leaky_relu(a, 0.1),
            L.maximum(a, a * 0),
            L.nn.functional.hardtanh(a),
            L.nn.functional.relu6(a * 6),
            L.nn.functional.elu(a),
            L.nn.functional.silu(a),
            L.nn.functional.softplus(a * 20),
            L.nn.functional.softplus(a, beta=2.0, threshold=2.0),
        ),
        [np.array([0.0, -1.0, 1.0, -0.5])],
    ),
    (
        "where_scalar",
        lambda L, a: (L.where(a > 0.5, a, 0.1), a.masked_fill(a < 0, 0.3), L.where(a > 0, 0.7, a)),
        [np.array([0.1, 0.9, -0.4, 0.6])],
    ),
    (
        "zero_dim",
        lambda L, a, b: (a * b, (a + 1).exp(), b.sum(), b[0] * a, L.tensor(2.5, dtype=L.float64) * a),
        [np.array(1.5), np.array([1.0, -2.0])],
    ),
]


@pytest.mark.parametrize("case,compiled", params(EDGES))
def test_tensor_edge_cases(torch, case, compiled):
    name, fn, arrays = case
    check(torch, lambda *xs: fn(graphnn, *xs), lambda *xs: fn(torch, *xs), arrays, compiled=compiled)


def test_scalar_tensors_are_zero_dimensional(torch):
    for v in (2.0, 3, np.array(1.5), np.float64(2.0), True):
        assert tuple(graphnn.tensor(v).shape) == tuple(torch.tensor(v).shape) == ()
    assert graphnn.nn.Parameter(graphnn.tensor(1.0)).shape == ()


UPSAMPLE_NEAREST = [(2.3, (1, 1, 3, 7)), (0.5, (1, 2, 4, 6)), (1.7, (2, 1, 5, 3)), ((2.0, 1.25), (1, 1, 3, 4))]


@pytest.mark.parametrize("case,compiled", params(UPSAMPLE_NEAREST, 2))
def test_upsample_nearest_index_rule(torch, case, compiled):
    """PyTorch's legacy 'nearest': output == input and output == 2 * input are special-cased, else float32 scale."""
    scale, shape = case
    g, t = gnn.Upsample(scale_factor=scale), torch.nn.Upsample(scale_factor=scale)
    check(torch, g, t, [_rng(27).standard_normal(shape)], compiled=compiled)


CLASS_1D = [("NLLLoss", {}), ("CrossEntropyLoss", dict(label_smoothing=0.2)), ("CrossEntropyLoss", dict(weight=W4))]


@pytest.mark.parametrize("case,compiled", params(CLASS_1D, 2))
def test_class_losses_unbatched_and_default_ignore_index(torch, case, compiled):
    """(C,) input with a 0-d target; and targets equal to the default ignore_index -100."""
    name, kw = case
    r = _rng(28)
    for red in REDUCTIONS:
        g, t = _make(graphnn, name, {**kw, "reduction": red}).double(), _make(torch, name, {**kw, "reduction": red})
        check(torch, g, t.double(), [r.standard_normal(4), np.array(2)], compiled=compiled)
        check(torch, g, t, [r.standard_normal((4, 4)), np.array([0, -100, 3, -100])], compiled=compiled)
