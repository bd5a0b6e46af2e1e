"""PyTorch parity of the layers and losses the classic example programs use (issue 15): transposed convolutions,
instance normalization, reflection / replication / circular padding, adaptive pooling, channel-wise dropout, pixel
unshuffle, and the losses on logits, margins and distances. Same weights and float64 inputs in both libraries;
values and gradients agree within twice their rounding-error bound (parity_util.check), eagerly and compiled.
"""

import math
import warnings

import numpy as np
import pytest

import graphnn
import graphnn.nn as gnn
import graphnn.nn.functional as gF
from parity_util import check, compare_params, copy_state, pair, to_np
from tolerance import accumulation_tolerance


def _rng(seed=0):
    return np.random.default_rng(seed)


def _id(v):
    if isinstance(v, dict):
        return ",".join(f"{k}={_id(x)}" for k, x in v.items()) or "default"
    if isinstance(v, (tuple, list)):
        return "x".join(_id(x) for x in v)
    return "arr" if isinstance(v, np.ndarray) else str(v)


def params(table, compile_every: int = 1):
    """Every case eagerly; every `compile_every`-th case also compiled."""
    out = []
    for i, case in enumerate(table):
        name = "-".join(_id(c) for c in case)
        out.append(pytest.param(case, False, id=name + "-eager"))
        if compile_every and i % compile_every == 0:
            out.append(pytest.param(case, True, id=name + "-compiled"))
    return out


MODES = pytest.mark.parametrize("compiled", [False, True], ids=["eager", "compiled"])


# -- transposed convolution ----------------------------------------------------------------------------------------
CONVT = [
    ("ConvTranspose1d", (3, 4, 3), {}, (2, 3, 5)),
    ("ConvTranspose1d", (4, 6, 3), dict(stride=2, padding=1, output_padding=1, groups=2, dilation=2), (2, 4, 4)),
    ("ConvTranspose1d", (2, 3, 2), dict(stride=3, output_padding=2, bias=False), (2, 6)),  # unbatched
    ("ConvTranspose2d", (4, 2, 4), dict(stride=2, padding=1, bias=False), (2, 4, 3, 3)),  # DCGAN's layer
    ("ConvTranspose2d", (3, 4, (3, 2)), dict(stride=(2, 1), padding=(1, 0), output_padding=(1, 0)), (2, 3, 3, 4)),
    ("ConvTranspose2d", (4, 6, 3), dict(stride=2, padding=1, output_padding=1, groups=2, dilation=2), (1, 4, 3, 4)),
    ("ConvTranspose2d", (3, 2, 3), dict(stride=3, padding=0, output_padding=2), (2, 3, 2, 3)),  # output_padding > 0
    ("ConvTranspose3d", (2, 3, 2), dict(stride=2), (1, 2, 2, 3, 2)),
    (
        "ConvTranspose3d",
        (2, 2, (2, 3, 1)),
        dict(stride=(1, 2, 2), padding=(1, 1, 0), output_padding=(0, 1, 1)),
        (2, 2, 3, 3, 2),
    ),
]


@pytest.mark.parametrize("case,compiled", params(CONVT))
def test_conv_transpose_modules(torch, case, compiled):
    name, args, kw, shape = case
    g, t = pair(torch, name, *args, **kw)
    check(torch, g, t, [_rng().standard_normal(shape)], g, t, compiled=compiled)


@pytest.mark.parametrize("size", [(7, 7), (8, 8), [1, 2, 8, 7]], ids=_id)
@MODES
def test_conv_transpose_output_size(torch, size, compiled):
    g, t = pair(torch, "ConvTranspose2d", 3, 2, 3, stride=2)

    def run(m):
        return lambda x: m(x, output_size=size)

    out = check(torch, run(g), run(t), [_rng(1).standard_normal((1, 3, 3, 3))], g, t, compiled=compiled)[0]
    assert tuple(out.shape[2:]) == tuple(size[-2:])


FCONVT = [
    ("conv_transpose1d", (2, 4, 5), (4, 3, 3), True, dict(stride=2, padding=1, output_padding=1)),
    ("conv_transpose2d", (2, 4, 3, 3), (4, 1, 3, 2), True, dict(stride=(2, 1), groups=2, dilation=(1, 2))),
    ("conv_transpose2d", (1, 2, 4, 4), (2, 3, 1, 1), False, dict(stride=2, output_padding=1)),
    ("conv_transpose3d", (1, 2, 2, 2, 3), (2, 2, 2, 2, 2), True, dict(stride=2, padding=1, output_padding=1)),
]


@pytest.mark.parametrize("case,compiled", params(FCONVT))
def test_functional_conv_transpose(torch, case, compiled):
    name, xs, ws, bias, kw = case
    r = _rng(2)
    inputs = [r.standard_normal(xs), r.standard_normal(ws)] + (
        [r.standard_normal(ws[1] * kw.get("groups", 1))] if bias else []
    )
    check(
        torch,
        lambda *a: getattr(gF, name)(*a, **kw),
        lambda *a: getattr(torch.nn.functional, name)(*a, **kw),
        inputs,
        compiled=compiled,
    )


def test_conv_transpose_errors_and_repr(torch):
    g = gnn.ConvTranspose2d(4, 2, 3, stride=2, padding=1, output_padding=1, groups=2, dilation=2, bias=False)
    t = torch.nn.ConvTranspose2d(4, 2, 3, stride=2, padding=1, output_padding=1, groups=2, dilation=2, bias=False)
    assert repr(g) == repr(t)
    assert tuple(g.weight.shape) == tuple(t.weight.shape) == (4, 1, 3, 3)
    x = graphnn.randn(1, 4, 3, 3)
    with pytest.raises(graphnn.OpError, match="output padding must be smaller than either stride or dilation"):
        gF.conv_transpose2d(x, graphnn.randn(4, 2, 3, 3), stride=2, output_padding=2)
    with pytest.raises(graphnn.OpError, match=r"conv_transpose2d\(input f32\[1,4,3,3\], weight f32\[3,2,3,3\]\)"):
        gF.conv_transpose2d(x, graphnn.randn(3, 2, 3, 3))
    with pytest.raises(ValueError, match=r"requested an output size of \(9, 9\), but valid sizes range from"):
        gnn.ConvTranspose2d(4, 2, 3, stride=2)(x, output_size=(9, 9))


# -- instance normalization ----------------------------------------------------------------------------------------
INORM = [
    ("InstanceNorm1d", dict(), (3, 3, 5)),
    ("InstanceNorm1d", dict(affine=True), (3, 6)),  # unbatched
    ("InstanceNorm2d", dict(affine=True), (2, 3, 4, 3)),
    ("InstanceNorm2d", dict(affine=True, track_running_stats=True, momentum=0.3), (2, 3, 3, 3)),
    ("InstanceNorm2d", dict(track_running_stats=True, momentum=None, eps=1e-3), (4, 3, 2, 3)),
    ("InstanceNorm3d", dict(affine=True, track_running_stats=True), (2, 3, 2, 3, 2)),
]
# One training step: mean and variance over K <= 18 values (2K + 4), normalizing and the affine map (5), the
# running statistics' batch means and update (K + 8), the backward pass (2K + 10).
INORM_STEP_ROUNDINGS = 5 * 18 + 27


@pytest.mark.parametrize("case,compiled", params(INORM))
def test_instance_norm(torch, case, compiled):
    """Training steps (outputs, gradients, running statistics), then eval mode."""
    name, kw, shape = case
    g, t = pair(torch, name, 3, **kw)
    if g.affine:
        r = _rng(3)
        g.weight.data = r.uniform(0.5, 1.5, 3)
        g.bias.data = r.standard_normal(3)
        copy_state(torch, g, t)
    model = graphnn.compile(g) if compiled else g
    r = _rng(4)
    for i in range(2):
        check(torch, model, t, [r.standard_normal(shape) * 2 + 1], g, t)
        compare_params(g, t, INORM_STEP_ROUNDINGS * (i + 1))
        g.zero_grad()
        t.zero_grad()
    g.eval()
    t.eval()
    if g.track_running_stats:
        stats = {
            k: accumulation_tolerance("float64", INORM_STEP_ROUNDINGS * 2, to_np(v))
            for k, v in t.state_dict().items()
            if k.startswith("running")
        }
    else:
        stats = None
    check(torch, model, t, [r.standard_normal(shape) * 2 + 1], g, t, state_errors=stats)


@MODES
def test_functional_instance_norm(torch, compiled):
    r = _rng(5)
    x, w, b = r.standard_normal((2, 3, 4, 5)), r.uniform(0.5, 1.5, 3), r.standard_normal(3)
    check(
        torch,
        lambda x, w, b: gF.instance_norm(x, weight=w, bias=b, eps=1e-3),
        lambda x, w, b: torch.nn.functional.instance_norm(x, weight=w, bias=b, eps=1e-3),
        [x, w, b],
        compiled=compiled,
    )


def test_instance_norm_errors_and_repr(torch):
    for kw in (dict(), dict(affine=True, track_running_stats=True)):
        g, t = gnn.InstanceNorm2d(3, **kw), torch.nn.InstanceNorm2d(3, **kw)
        assert repr(g) == repr(t)
        assert list(g.state_dict()) == list(t.state_dict())
    with pytest.raises(ValueError, match="Expected more than 1 spatial element when training"):
        gnn.InstanceNorm2d(3)(graphnn.randn(2, 3, 1, 1))
    with pytest.raises(ValueError, match=r"expected input's size at dim=1 to match num_features \(3\), but got: 4"):
        gnn.InstanceNorm1d(3, affine=True)(graphnn.randn(2, 4, 5))
    with pytest.warns(UserWarning, match="does not match num_features"):
        gnn.InstanceNorm1d(3)(graphnn.randn(2, 4, 5))


# -- padding -------------------------------------------------------------------------------------------------------
PADS = [
    ("ReflectionPad1d", 2, (2, 3, 4)),
    ("ReflectionPad1d", (1, 3), (3, 5)),
    ("ReflectionPad2d", 1, (2, 3, 4, 5)),
    ("ReflectionPad2d", (3, 0, 2, 1), (3, 4, 5)),
    ("ReflectionPad3d", (1, 0, 2, 1, 1, 1), (1, 2, 3, 4, 2)),
    ("ReplicationPad3d", 1, (1, 2, 3, 2, 2)),
    ("CircularPad1d", (2, 1), (2, 3, 4)),
    ("CircularPad2d", (1, 2, 3, 0), (2, 1, 3, 4)),
    ("CircularPad3d", 1, (1, 1, 2, 3, 2)),
    ("ConstantPad1d", (2, 1), (2, 3)),
    ("ConstantPad3d", 1, (1, 2, 2, 2, 2)),
    ("ZeroPad1d", (1, 2), (2, 3, 4)),
    ("ZeroPad3d", (1, 0, 0, 1, 2, 0), (2, 2, 2, 3)),
]


@pytest.mark.parametrize("case,compiled", params(PADS))
def test_pad_modules(torch, case, compiled):
    name, padding, shape = case
    args = (padding, 1.5) if name.startswith("Constant") else (padding,)
    g, t = pair(torch, name, *args)
    assert repr(g) == repr(t)
    check(torch, g, t, [_rng(6).standard_normal(shape)], compiled=compiled)


FPAD = [
    ((2, 2, 1, 1), "reflect", (2, 3, 4, 5)),
    ((1, -1, 0, 2), "reflect", (1, 2, 3, 3)),  # negative padding crops (after reflecting, as PyTorch)
    ((-1, 2), "reflect", (2, 4)),
    ((3, 3), "circular", (1, 2, 3)),  # the whole size
    ((-1, 2, 1, 0), "circular", (1, 2, 3, 3)),  # crops, then wraps
    ((1, 1, 1, 1, 1, 1), "circular", (1, 2, 2, 3, 2)),
    ((2, 0, 0, 1), "replicate", (2, 3, 2)),
]


@pytest.mark.parametrize("case,compiled", params(FPAD))
def test_functional_pad_modes(torch, case, compiled):
    pad, mode, shape = case
    check(
        torch,
        lambda x: gF.pad(x, pad, mode),
        lambda x: torch.nn.functional.pad(x, pad, mode),
        [_rng(7).standard_normal(shape)],
        compiled=compiled,
    )


@pytest.mark.parametrize(
    "pad,mode,shape,message",
    [
        ((3, 3), "reflect", (1, 2, 3), "padding size should be less than the corresponding input dimension"),
        ((4, 0), "circular", (1, 2, 3), "wrapping around more than once"),
        ((1, 1), "reflect", (3,), "padding size 2 is not supported for a 1D input"),
        ((1, 1, 1, 1, 1, 1), "replicate", (2, 3, 4), "padding size 6 is not supported for a 3D input"),
        ((1, 1), "wrap", (1, 2, 3), "unrecognised padding mode 'wrap'"),
    ],
    ids=_id,
)
def test_pad_errors(pad, mode, shape, message):
    with pytest.raises((graphnn.OpError, NotImplementedError), match=message):
        gF.pad(graphnn.randn(*shape), pad, mode)


# -- adaptive pooling ----------------------------------------------------------------------------------------------
ADAPTIVE = [
    ("AdaptiveAvgPool1d", (3,), (2, 3, 7)),
    ("AdaptiveAvgPool1d", (4,), (3, 8)),
    ("AdaptiveAvgPool2d", ((1, 1),), (2, 3, 5, 4)),
    ("AdaptiveAvgPool2d", ((3, None),), (2, 2, 7, 5)),
    ("AdaptiveAvgPool2d", (4,), (1, 2, 6, 9)),
    ("AdaptiveAvgPool2d", ((5, 7),), (1, 2, 2, 3)),  # larger than the input: windows overlap
    ("AdaptiveAvgPool3d", ((2, 1, 3),), (1, 2, 3, 4, 5)),
    ("AdaptiveMaxPool1d", (3,), (2, 3, 7)),
    ("AdaptiveMaxPool1d", (3, True), (3, 7)),
    ("AdaptiveMaxPool2d", (2,), (2, 3, 6, 4)),
    ("AdaptiveMaxPool2d", ((3, 2), True), (2, 2, 7, 5)),
    ("AdaptiveMaxPool2d", ((None, 3), True), (3, 5, 7)),
    ("AdaptiveMaxPool2d", ((5, 4),), (1, 2, 3, 3)),
    ("AdaptiveMaxPool3d", ((2, 2, 1), True), (1, 2, 3, 4, 3)),
]


@pytest.mark.parametrize("case,compiled", params(ADAPTIVE))
def test_adaptive_pooling(torch, case, compiled):
    name, args, shape = case
    g, t = pair(torch, name, *args)
    assert repr(g) == repr(t)
    check(torch, g, t, [_rng(8).standard_normal(shape)], compiled=compiled)


@MODES
def test_functional_adaptive_pooling(torch, compiled):
    def run(F):
        def f(x):
            values, idx = F.adaptive_max_pool2d(x, (2, 3), return_indices=True)
            return F.adaptive_avg_pool2d(x, 3), F.adaptive_avg_pool1d(x[0], 2), values, idx

        return f

    check(torch, run(gF), run(torch.nn.functional), [_rng(9).standard_normal((2, 3, 5, 7))], compiled=compiled)


def test_adaptive_pooling_errors():
    with pytest.raises(graphnn.OpError, match=r"adaptive_avg_pool2d\(\): Expected 3D or 4D tensor"):
        gF.adaptive_avg_pool2d(graphnn.randn(5, 5), 2)
    with pytest.raises(graphnn.OpError, match="output_size must be 2"):
        gF.adaptive_max_pool2d(graphnn.randn(1, 2, 5, 5), (2, 2, 2))


# -- channel-wise dropout ------------------------------------------------------------------------------------------
DROPOUTS = [
    ("Dropout1d", (4, 5, 3)),
    ("Dropout1d", (5, 3)),
    ("Dropout2d", (4, 5, 3, 2)),
    ("Dropout3d", (3, 5, 2, 2, 2)),
]


@pytest.mark.parametrize("name,shape", DROPOUTS, ids=_id)
@MODES
def test_channel_dropout(torch, name, shape, compiled):
    """Eval mode and p=0 are the identity, p=1 zeros (= PyTorch); in training each channel is all zero or all
    scaled by 1 / (1 - p), and so is its gradient."""
    for p, train in ((0.5, False), (0.0, True), (1.0, True)):
        g, t = pair(torch, name, p)
        g.train(train)
        t.train(train)
        check(torch, g, t, [_rng(10).standard_normal(shape)], compiled=compiled)
    drop = getattr(gnn, name)(0.5)
    model = graphnn.compile(drop) if compiled else drop
    graphnn.manual_seed(1)
    x = graphnn.tensor(np.full(shape, 3.0), requires_grad=True)
    out = model(x)
    out.sum().backward()
    y, dx = to_np(out), to_np(x.grad)
    batched = len(shape) == int(name[-2]) + 2
    channels = y.reshape(shape[: 2 if batched else 1] + (-1,))
    assert ((channels == 0).all(-1) | (channels == 6.0).all(-1)).all(), "a channel is dropped as a whole"
    assert 0 < (channels == 0).all(-1).sum() < channels[..., 0].size
    np.testing.assert_array_equal(dx, y / 3.0)


def test_dropout2d_warns_on_3d_input_and_drops_channels_of_dim_1():
    graphnn.manual_seed(0)
    with pytest.warns(UserWarning, match="Received a 3D input to dropout2d"):
        y = to_np(gF.dropout2d(graphnn.ones(4, 6, 5), 0.5))
    assert ((y == 0).all(-1) | (y == 2.0).all(-1)).all()
    with pytest.raises(RuntimeError, match="dropout1d: Expected 2D or 3D input"):
        gF.dropout1d(graphnn.ones(2, 3, 4, 5))


# -- pixel unshuffle -----------------------------------------------------------------------------------------------
@MODES
def test_pixel_unshuffle(torch, compiled):
    g, t = pair(torch, "PixelUnshuffle", 2)
    assert repr(g) == repr(t)
    check(torch, g, t, [_rng(11).standard_normal((2, 3, 4, 6))], compiled=compiled)
    shuffle = lambda F: lambda x: F.pixel_shuffle(F.pixel_unshuffle(x, 3), 3)  # noqa: E731
    out = check(torch, shuffle(gF), shuffle(torch.nn.functional), [_rng(12).standard_normal((3, 6, 9))])[0]
    assert tuple(out.shape) == (3, 6, 9)


@pytest.mark.parametrize(
    "args,shape", [((1, (2, 3)), (4, 6, 5)), ((-1, (5, 1)), (2, 5)), ((0, [2, -1]), (8,))], ids=_id
)
@MODES
def test_unflatten(torch, args, shape, compiled):
    g, t = pair(torch, "Unflatten", *args)
    assert repr(g) == repr(t)
    check(torch, g, t, [_rng(16).standard_normal(shape)], compiled=compiled)


# -- losses --------------------------------------------------------------------------------------------------------
REDUCTIONS = ("mean", "sum", "none")


def _logit_inputs(r, shape):
    return [r.standard_normal(shape) * 3, r.uniform(0, 1, shape)]


LOSSES = [
    ("BCEWithLogitsLoss", {}, (4, 3)),
    ("BCEWithLogitsLoss", dict(pos_weight=np.array([0.5, 2.0, 3.0])), (4, 3)),
    ("BCEWithLogitsLoss", dict(weight=np.array([1.5, 0.2, 1.0]), pos_weight=np.array([2.0, 1.0, 0.5])), (2, 5, 3)),
    ("HuberLoss", {}, (4, 5)),
    ("HuberLoss", dict(delta=0.5), (3, 4)),
    ("HuberLoss", dict(delta=2.5), (6,)),
]


def _make(lib, name, kw):
    kw = {k: (lib.tensor(v) if isinstance(v, np.ndarray) else v) for k, v in kw.items()}
    return getattr(lib.nn, name)(**kw)


@pytest.mark.parametrize(
    "case,compiled", params([c[:1] + ({**c[1], "reduction": r},) + c[2:] for c in LOSSES for r in REDUCTIONS], 2)
)
def test_elementwise_losses(torch, case, compiled):
    name, kw, shape = case
    g, t = _make(graphnn, name, kw).double(), _make(torch, name, kw).double()
    r = _rng(13)
    inputs = (
        _logit_inputs(r, shape) if name.startswith("BCE") else [r.standard_normal(shape) * 2, r.standard_normal(shape)]
    )
    check(torch, g, t, inputs, compiled=compiled)


def test_bce_with_logits_is_finite_for_large_logits(torch):
    """Values only: PyTorch's gradient sigmoid(x) - y cancels for large |x| (graphnn's, from log-sigmoid, does not),
    so the two gradients differ by more than graphnn's rounding bound there."""
    x = np.array([-800.0, -30.0, 0.0, 30.0, 800.0])
    y = np.array([1.0, 0.0, 0.5, 1.0, 0.0])
    check(
        torch,
        lambda x, y: gF.binary_cross_entropy_with_logits(x, y, reduction="none"),
        lambda x, y: torch.nn.functional.binary_cross_entropy_with_logits(x, y, reduction="none"),
        [x, y],
        grad=False,
    )
    with pytest.raises(ValueError, match=r"Target size \(\[3\]\) must be the same as input size \(\[4\]\)"):
        gF.binary_cross_entropy_with_logits(graphnn.zeros(4), graphnn.zeros(3))


TRIPLET = [dict(), dict(margin=0.5, p=1.0), dict(swap=True), dict(margin=2.0, p=3.0, eps=1e-3, swap=True)]


@pytest.mark.parametrize("case,compiled", params([(kw, r) for kw in TRIPLET for r in REDUCTIONS], 2))
def test_triplet_margin_loss(torch, case, compiled):
    kw, red = case
    g, t = gnn.TripletMarginLoss(**kw, reduction=red), torch.nn.TripletMarginLoss(**kw, reduction=red)
    r = _rng(14)
    a = r.standard_normal((6, 4))
    check(torch, g, t, [a, a + 0.5 * r.standard_normal((6, 4)), a + r.standard_normal((6, 4))], compiled=compiled)
    check(torch, g, t, [r.standard_normal(5), r.standard_normal(5), r.standard_normal(5)], compiled=compiled)  # 1-D


@pytest.mark.parametrize("case,compiled", params([(m, r) for m in (0.0, 0.3, -0.2) for r in REDUCTIONS], 2))
def test_cosine_embedding_and_margin_ranking_losses(torch, case, compiled):
    margin, red = case
    r = _rng(15)
    y = np.array([1, -1, 1, -1, -1, 1])
    x1, x2 = r.standard_normal((6, 4)), r.standard_normal((6, 4))
    g, t = gnn.CosineEmbeddingLoss(margin, reduction=red), torch.nn.CosineEmbeddingLoss(margin, reduction=red)
    check(torch, g, t, [x1, x2, y], compiled=compiled)
    check(torch, g, t, [x1[0], x2[0], np.array(-1)], compiled=compiled)  # 1-D inputs, 0-D target
    g, t = gnn.MarginRankingLoss(margin, reduction=red), torch.nn.MarginRankingLoss(margin, reduction=red)
    check(torch, g, t, [x1[:, 0], x2[:, 0], y.astype(np.float64)], compiled=compiled)


def test_loss_reprs_and_buffers(torch):
    for name, kw in (
        ("BCEWithLogitsLoss", dict(pos_weight=np.ones(3))),
        ("HuberLoss", dict(delta=0.5)),
        ("TripletMarginLoss", dict(margin=0.5)),
        ("CosineEmbeddingLoss", dict(margin=0.1)),
        ("MarginRankingLoss", {}),
    ):
        g, t = _make(graphnn, name, kw), _make(torch, name, kw)
        assert repr(g) == repr(t)
        assert list(g.state_dict()) == list(t.state_dict())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        gnn.HuberLoss()(graphnn.zeros(3), graphnn.zeros(3))
    assert math.isclose(gnn.HuberLoss(delta=2.0)(graphnn.tensor([3.0]), graphnn.tensor([0.0])).item(), 4.0)
