"""Small pieces of PyTorch's API real programs use: torch.linalg's norms and Tensor.norm's spellings, SGDR
(CosineAnnealingWarmRestarts), torch.utils.checkpoint, set_float32_matmul_precision, half()/bfloat16() (computed as
float32) - against PyTorch where it has the same thing."""

import math

import numpy as np
import pytest

import graphnn
import graphnn.nn as nn

NORM_CASES = [
    ("norm", {}),
    ("norm", {"ord": 1}),
    ("norm", {"ord": math.inf, "dim": 1}),
    ("norm", {"ord": "fro"}),
    ("norm", {"ord": -math.inf}),
    ("norm", {"dim": (0, 1)}),
    ("vector_norm", {"ord": 3, "dim": 0, "keepdim": True}),
    ("vector_norm", {"ord": 0}),
    ("vector_norm", {"ord": -math.inf, "dim": (0, 1)}),
    ("matrix_norm", {}),
    ("matrix_norm", {"ord": 1}),
    ("matrix_norm", {"ord": -1, "keepdim": True}),
    ("matrix_norm", {"ord": math.inf}),
]


@pytest.mark.parametrize("fn, kwargs", NORM_CASES)
def test_linalg_norms_as_pytorch(torch, fn, kwargs):
    a = np.random.default_rng(0).standard_normal((4, 5)).astype(np.float32)
    g = graphnn.tensor(a, requires_grad=True)
    t = torch.tensor(a, requires_grad=True)
    gy, ty = getattr(graphnn.linalg, fn)(g, **kwargs), getattr(torch.linalg, fn)(t, **kwargs)
    # sums of at most 20 float32 terms and a root: a few ulps
    np.testing.assert_allclose(gy.detach().numpy(), ty.detach().numpy(), rtol=1e-5, atol=1e-6)
    if fn == "vector_norm" and kwargs.get("ord") == 0:
        return  # (no gradient)
    gy.sum().backward()
    ty.sum().backward()
    np.testing.assert_allclose(g.grad.numpy(), t.grad.numpy(), rtol=1e-5, atol=1e-6)


def test_tensor_norm_spellings_as_pytorch(torch):
    a = np.random.default_rng(1).standard_normal((3, 4)).astype(np.float32)
    g, t = graphnn.tensor(a), torch.tensor(a)
    for args, kwargs in [((), {}), (("fro",), {}), ((1,), {"dim": 1}), ((math.inf,), {}), ((3,), {"dim": 0})]:
        want = t.norm(*args, **kwargs).numpy()
        np.testing.assert_allclose(g.norm(*args, **kwargs).numpy(), want, rtol=1e-5, atol=1e-6)
    # ord 2 from the singular values (float32: within a few units of roundoff of the largest one)
    want = torch.linalg.matrix_norm(t, ord=2).item()
    assert abs(graphnn.linalg.matrix_norm(g, ord=2).item() - want) <= 4 * 4 * np.finfo(np.float32).eps * want


@pytest.mark.parametrize("t_mult", [1, 2])
def test_cosine_annealing_warm_restarts_as_pytorch(torch, t_mult):
    def lrs(lib, epochs=None):
        opt = lib.optim.SGD([lib.nn.Parameter(lib.zeros(2))], lr=0.1)
        s = lib.optim.lr_scheduler.CosineAnnealingWarmRestarts(opt, T_0=3, T_mult=t_mult, eta_min=0.001)
        out = []
        for e in epochs or range(20):
            opt.step()
            s.step() if epochs is None else s.step(e)
            out.append(s.get_last_lr()[0])
        return out

    np.testing.assert_allclose(lrs(graphnn), lrs(torch), rtol=1e-12)
    fractional = [0.5, 1.25, 2.0, 3.5, 7.0, 10.2]
    np.testing.assert_allclose(lrs(graphnn, fractional), lrs(torch, fractional), rtol=1e-12)


def test_checkpoint_and_precision_and_half():
    lin = nn.Linear(4, 3)
    x = graphnn.randn(2, 4, requires_grad=True)
    y = graphnn.utils.checkpoint.checkpoint(lin, x, use_reentrant=False)
    np.testing.assert_array_equal(y.detach().numpy(), lin(x).detach().numpy())
    y.sum().backward()
    assert x.grad is not None
    seq = nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 2))
    out = graphnn.utils.checkpoint.checkpoint_sequential(seq, 2, x, use_reentrant=False)
    np.testing.assert_array_equal(out.detach().numpy(), seq(x).detach().numpy())
    graphnn.set_float32_matmul_precision("high")
    assert graphnn.get_float32_matmul_precision() == "high"
    with pytest.raises(RuntimeError, match="invalid precision"):
        graphnn.set_float32_matmul_precision("fast")
    graphnn.set_float32_matmul_precision("highest")
    with pytest.warns(UserWarning, match="no float16"):
        assert graphnn.randn(2).half().dtype == graphnn.float32
    with pytest.warns(UserWarning, match="no bfloat16"):
        assert nn.Linear(2, 2).bfloat16().weight.dtype == graphnn.float32


FOLD_CASES = [
    {"kernel_size": 2, "stride": 2},
    {"kernel_size": (3, 2), "padding": 1, "dilation": (1, 2)},
    {"kernel_size": 3, "stride": (2, 1), "padding": (1, 0)},
]


@pytest.mark.parametrize("compiled", [False, True])
@pytest.mark.parametrize("kwargs", FOLD_CASES)
def test_unfold_and_fold_as_pytorch(torch, kwargs, compiled):
    a = np.random.default_rng(2).standard_normal((2, 3, 7, 8)).astype(np.float32)

    def run(lib, x):
        cols = lib.nn.functional.unfold(x, **kwargs)
        back = lib.nn.Fold((7, 8), **kwargs)(cols * 0.5)
        return cols, back

    g, t = graphnn.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
    gc, gb = (graphnn.compile(lambda x: run(graphnn, x)) if compiled else lambda x: run(graphnn, x))(g)
    tc, tb = run(torch, t)
    np.testing.assert_array_equal(gc.detach().numpy(), tc.detach().numpy())  # data movement: exact
    np.testing.assert_allclose(gb.detach().numpy(), tb.detach().numpy(), rtol=1e-6, atol=1e-6)  # a few sums
    (gb * gb).sum().backward()
    (tb * tb).sum().backward()
    np.testing.assert_allclose(g.grad.numpy(), t.grad.numpy(), rtol=1e-5, atol=1e-5)


def test_fold_errors():
    with pytest.raises(Exception, match="divisible by the product of kernel_size"):
        graphnn.nn.functional.fold(graphnn.randn(1, 5, 4), (3, 3), 2)
    with pytest.raises(Exception, match="sliding blocks"):
        graphnn.nn.functional.fold(graphnn.randn(1, 4, 5), (3, 3), 2)


@pytest.mark.parametrize("mode", ["reflect", "replicate", "circular"])
@pytest.mark.parametrize("padding", [1, "same", (2, 1)])
def test_conv_padding_modes_as_pytorch(torch, mode, padding):
    a = np.random.default_rng(3).standard_normal((2, 3, 7, 6)).astype(np.float32)
    graphnn.manual_seed(0)
    gconv = graphnn.nn.Conv2d(3, 4, 3, padding=padding, padding_mode=mode)
    tconv = torch.nn.Conv2d(3, 4, 3, padding=padding, padding_mode=mode)
    tconv.load_state_dict({k: torch.from_numpy(v.detach().numpy().copy()) for k, v in gconv.state_dict().items()})
    g, t = graphnn.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
    gy, ty = gconv(g), tconv(t)
    # sums of 27 float32 products of O(1) terms
    np.testing.assert_allclose(gy.detach().numpy(), ty.detach().numpy(), rtol=1e-5, atol=1e-5)
    gy.square().sum().backward()
    ty.square().sum().backward()
    np.testing.assert_allclose(g.grad.numpy(), t.grad.numpy(), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(gconv.weight.grad.numpy(), tconv.weight.grad.numpy(), rtol=1e-4, atol=1e-3)
    assert repr(gconv) == repr(tconv)
    with pytest.raises(ValueError, match="padding_mode"):
        graphnn.nn.Conv2d(3, 4, 3, padding_mode="mirror")
    with pytest.raises(ValueError, match='Only "zeros" padding mode'):
        graphnn.nn.ConvTranspose2d(3, 4, 3, padding_mode=mode)


LOSS_CASES = [
    ("GaussianNLLLoss", {}, "var_full"),
    ("GaussianNLLLoss", {"full": True, "reduction": "sum"}, "var_row"),
    ("GaussianNLLLoss", {"reduction": "none"}, "var_dropped"),
    ("PoissonNLLLoss", {}, "counts"),
    ("PoissonNLLLoss", {"log_input": False, "full": True}, "counts"),
    ("MultiLabelSoftMarginLoss", {}, "labels"),
    ("MultiLabelSoftMarginLoss", {"reduction": "none"}, "labels"),
]


@pytest.mark.parametrize("compiled", [False, True])
@pytest.mark.parametrize("name, kwargs, extra", LOSS_CASES)
def test_more_losses_as_pytorch(torch, name, kwargs, extra, compiled):
    r = np.random.default_rng(4)
    x = r.standard_normal((4, 3)).astype(np.float32)
    if name == "PoissonNLLLoss" and not kwargs.get("log_input", True):
        x = np.abs(x) + 0.1  # a rate, not its log
    args = {
        "var_full": [
            r.standard_normal((4, 3)).astype(np.float32),
            np.abs(r.standard_normal((4, 3))).astype(np.float32),
        ],
        "var_row": [r.standard_normal((4, 3)).astype(np.float32), np.abs(r.standard_normal((4, 1))).astype(np.float32)],
        "var_dropped": [r.standard_normal((4, 3)).astype(np.float32), np.abs(r.standard_normal(4)).astype(np.float32)],
        "counts": [r.integers(0, 5, (4, 3)).astype(np.float32)],
        "labels": [r.integers(0, 2, (4, 3)).astype(np.float32)],
    }[extra]

    def run(lib, xs, *rest):
        return getattr(lib.nn, name)(**kwargs)(xs, *rest)

    g = graphnn.tensor(x, requires_grad=True)
    t = torch.tensor(x, requires_grad=True)
    fn = graphnn.compile(lambda *a: run(graphnn, *a)) if compiled else (lambda *a: run(graphnn, *a))
    gy = fn(g, *[graphnn.tensor(a) for a in args])
    ty = run(torch, t, *[torch.tensor(a) for a in args])
    # a few float32 logs, exps and sums of 12 terms
    np.testing.assert_allclose(gy.detach().numpy(), ty.detach().numpy(), rtol=1e-5, atol=1e-5)
    gy.sum().backward()
    ty.sum().backward()
    np.testing.assert_allclose(g.grad.numpy(), t.grad.numpy(), rtol=1e-5, atol=1e-5)


def _optimizer_run(lib, name: str, kwargs: dict, compiled: bool, seed: int) -> tuple:
    """Losses and final weights of a few steps of optimizer `name` on a small tanh regression (the step compiled by
    graphnn.compile when asked)."""
    r = np.random.default_rng(seed)
    w0, xs = r.standard_normal((3, 4)).astype(np.float32), r.standard_normal((7, 5, 4)).astype(np.float32)
    w = lib.nn.Parameter(lib.tensor(w0))
    opt = getattr(lib.optim, name)([w], **kwargs)

    def step(x):
        opt.zero_grad()
        loss = (x @ w.t()).tanh().square().mean()
        loss.backward()
        opt.step()
        return loss

    run = lib.compile(step) if compiled else step
    return [float(run(lib.tensor(x)).detach()) for x in xs], w.detach().numpy()


@pytest.mark.parametrize("compiled", [False, True])
@pytest.mark.parametrize("kwargs", [{}, {"lr": 0.01, "weight_decay": 0.1, "maximize": True}])
def test_adamax_as_pytorch(torch, kwargs, compiled, monkeypatch):
    monkeypatch.setenv("GRAPHNN_HOT_OPTIMIZER", "0")
    gl, gw = _optimizer_run(graphnn, "Adamax", kwargs, compiled, 5)
    tl, tw = _optimizer_run(torch, "Adamax", kwargs, False, 5)
    # seven float32 steps of at most lr each: rounding of a few ulps per step
    np.testing.assert_allclose(gl, tl, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(gw, tw, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("compiled", [False, True])
def test_bilinear_and_channel_shuffle_as_pytorch(torch, compiled):
    r = np.random.default_rng(6)
    a1, a2 = r.standard_normal((2, 3, 4)).astype(np.float32), r.standard_normal((2, 3, 5)).astype(np.float32)
    img = r.standard_normal((2, 6, 3, 2)).astype(np.float32)
    graphnn.manual_seed(0)
    gb = graphnn.nn.Bilinear(4, 5, 3)
    tb = torch.nn.Bilinear(4, 5, 3)
    tb.load_state_dict({k: torch.from_numpy(v.detach().numpy().copy()) for k, v in gb.state_dict().items()})
    assert repr(gb) == repr(tb) and repr(graphnn.nn.ChannelShuffle(3)) == repr(torch.nn.ChannelShuffle(3))

    def run(lib, bil, x1, x2, im):
        return bil(x1, x2), lib.nn.ChannelShuffle(3)(im)

    gx = [graphnn.tensor(a, requires_grad=True) for a in (a1, a2, img)]
    tx = [torch.tensor(a, requires_grad=True) for a in (a1, a2, img)]
    fn = graphnn.compile(lambda *x: run(graphnn, gb, *x)) if compiled else (lambda *x: run(graphnn, gb, *x))
    gy, ty = fn(*gx), run(torch, tb, *tx)
    # sums of 20 float32 products of O(1) terms; the shuffle moves data exactly
    np.testing.assert_allclose(gy[0].detach().numpy(), ty[0].detach().numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(gy[1].detach().numpy(), ty[1].detach().numpy())
    (gy[0].square().sum() + (gy[1] * gx[2]).sum()).backward()
    (ty[0].square().sum() + (ty[1] * tx[2]).sum()).backward()
    for g, t in zip(gx + [gb.weight, gb.bias], tx + [tb.weight, tb.bias]):
        np.testing.assert_allclose(g.grad.numpy(), t.grad.numpy(), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", ["expit", "ndtr", "entr", "log1p", "expm1", "exp2", "logit", "sinc", "erf"])
def test_special_functions_as_pytorch(torch, name):
    x = np.array([-2.0, -0.5, 0.0, 0.25, 0.5, 0.9, 3.0], dtype=np.float64)
    if name == "logit":
        x = np.array([0.01, 0.25, 0.5, 0.9], dtype=np.float64)
    got = getattr(graphnn.special, name)(graphnn.tensor(x)).numpy()
    want = getattr(torch.special, name)(torch.tensor(x)).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)  # float64: a few ulps
    assert graphnn.special.softmax(graphnn.tensor(x), 0).numpy().sum() == pytest.approx(1.0)


@pytest.mark.parametrize("compiled", [False, True])
@pytest.mark.parametrize("shape, dim, size, step", [((2, 7), 1, 3, 2), ((5, 2, 3), 0, 2, 1), ((6,), 0, 6, 1)])
def test_tensor_unfold_as_pytorch(torch, shape, dim, size, step, compiled):
    a = np.random.default_rng(7).standard_normal(shape).astype(np.float32)
    g, t = graphnn.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
    fn = (lambda x: x.unfold(dim, size, step)) if not compiled else graphnn.compile(lambda x: x.unfold(dim, size, step))
    gy, ty = fn(g), t.unfold(dim, size, step)
    np.testing.assert_array_equal(gy.detach().numpy(), ty.detach().numpy())
    (gy * gy).sum().backward()
    (ty * ty).sum().backward()
    np.testing.assert_allclose(g.grad.numpy(), t.grad.numpy(), rtol=1e-6)


def test_fill_diagonal_and_index_put_as_pytorch(torch):
    for shape, wrap in [((3, 3), False), ((7, 3), True), ((7, 3), False), ((2, 5), False), ((3, 3, 3), False)]:
        g, t = graphnn.zeros(*shape), torch.zeros(*shape)
        g.fill_diagonal_(2.5, wrap=wrap)
        t.fill_diagonal_(2.5, wrap=wrap)
        np.testing.assert_array_equal(g.numpy(), t.numpy())
    for accumulate in (False, True):
        g, t = graphnn.arange(12.0).reshape(4, 3), torch.arange(12.0).reshape(4, 3)
        idx = [0, 2, 0, 3] if accumulate else [0, 2, 3]  # (repeats add up only when accumulating)
        vals = np.arange(3.0 * len(idx), dtype=np.float32).reshape(len(idx), 3) * 10
        g.index_put_((graphnn.tensor(idx),), graphnn.tensor(vals), accumulate=accumulate)
        t.index_put_((torch.tensor(idx),), torch.tensor(vals), accumulate=accumulate)
        np.testing.assert_array_equal(g.numpy(), t.numpy())
    out = graphnn.zeros(3).index_put((graphnn.tensor([1]),), graphnn.tensor(4.0))
    np.testing.assert_array_equal(out.numpy(), [0.0, 4.0, 0.0])


@pytest.mark.parametrize("compiled", [False, True])
@pytest.mark.parametrize("kwargs", [{}, {"lr": 0.05, "etas": (0.3, 1.5), "step_sizes": (1e-3, 0.1), "maximize": True}])
def test_rprop_as_pytorch(torch, kwargs, compiled, monkeypatch):
    monkeypatch.setenv("GRAPHNN_HOT_OPTIMIZER", "0")
    gl, gw = _optimizer_run(graphnn, "Rprop", kwargs, compiled, 8)
    tl, tw = _optimizer_run(torch, "Rprop", kwargs, False, 8)
    # signs and products of step sizes: exact unless a gradient's sign differs by rounding (not at these values)
    np.testing.assert_allclose(gl, tl, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(gw, tw, rtol=1e-5, atol=1e-6)


def test_jit_entry_points_change_nothing(tmp_path):
    lin = nn.Linear(2, 3)
    assert not isinstance(lin, graphnn.jit.ScriptModule)
    assert graphnn.jit.script(lin) is lin and graphnn.jit.trace(lin, graphnn.randn(1, 2)) is lin
    assert isinstance(lin, graphnn.jit.ScriptModule) and not isinstance(lin, graphnn.jit.ScriptFunction)

    @graphnn.jit.script
    def double(x):
        return x * 2

    np.testing.assert_array_equal(double(graphnn.ones(2)).numpy(), [2.0, 2.0])
    assert graphnn.jit.ignore(double) is double and not graphnn.jit.is_scripting()
    assert isinstance(double, graphnn.jit.ScriptFunction)
    assert graphnn.jit.wait(graphnn.jit.fork(double, graphnn.ones(1))).tolist() == [2.0]
    assert graphnn.jit.annotate(list, []) == [] and graphnn.jit.isinstance([1], list)
    with pytest.raises(RuntimeError, match="eval mode"):
        graphnn.jit.freeze(lin)
    assert graphnn.jit.freeze(lin.eval()) is lin and graphnn.jit.optimize_for_inference(lin) is lin
    # save / load: the module itself, round trip with extra files
    path = str(tmp_path / "m.pt")
    graphnn.jit.save(lin, path, _extra_files={"vocab.txt": "a b c"})
    extra = {"vocab.txt": ""}
    back = graphnn.jit.load(path, _extra_files=extra)
    assert extra["vocab.txt"] == "a b c" and isinstance(back, nn.Linear)
    x = graphnn.randn(4, 2)
    np.testing.assert_array_equal(back(x).detach().numpy(), lin(x).detach().numpy())
    graphnn.save({"w": graphnn.ones(2)}, str(tmp_path / "w.pt"))
    with pytest.raises(RuntimeError, match="no module saved by graphnn.jit.save"):
        graphnn.jit.load(str(tmp_path / "w.pt"))


def test_narrow_integer_dtypes_compute_as_int64(torch):
    """torch.int32/int16/int8/uint8 are accepted (with a warning) and keep the values, as int64."""
    for name in ("int32", "int16", "int8", "uint8"):
        with pytest.warns(UserWarning, match=f"no {name}"):
            g = graphnn.tensor([1, 2, 120], dtype=getattr(graphnn, name))
        t = torch.tensor([1, 2, 120], dtype=getattr(torch, name))
        np.testing.assert_array_equal(g.numpy(), t.numpy().astype(np.int64))
        assert g.dtype == graphnn.int64
        assert graphnn.iinfo(getattr(graphnn, name)).max == torch.iinfo(getattr(torch, name)).max
    assert graphnn.int == graphnn.int32 and graphnn.short == graphnn.int16 and not graphnn.uint8.is_signed
    x = graphnn.tensor([1.7, -2.2, 3.0])
    for m in ("byte", "char", "short", "int"):
        np.testing.assert_array_equal(getattr(x, m)().numpy(), [1, -2, 3])


def test_matrix_transposes_and_apply_(torch):
    a = np.random.default_rng(1).standard_normal((2, 3, 4))
    g, t = graphnn.tensor(a), torch.tensor(a)
    np.testing.assert_array_equal(g.mT.numpy(), t.mT.numpy())
    np.testing.assert_array_equal(g.mH.numpy(), t.mH.numpy())
    np.testing.assert_array_equal(g[0].H.numpy(), t[0].H.numpy())
    with pytest.raises(RuntimeError, match="only supported on matrices"):
        g.H
    np.testing.assert_array_equal(
        g.clone().apply_(lambda v: v * v + 1).numpy(), t.clone().apply_(lambda v: v * v + 1).numpy()
    )
    w = graphnn.tensor(a[0], requires_grad=True)
    f = graphnn.compile(lambda w: (w.mT @ w).sum())
    f(w).backward()
    np.testing.assert_allclose(w.grad.numpy(), 2 * a[0] @ np.ones((4, 4)), rtol=1e-12)
