"""Layers, losses, optimizers and utilities real PyTorch programs use (LocalResponseNorm, RReLU, AlphaDropout,
shrinks, gumbel_softmax, LP pooling, pdist, margin losses, RAdam, CyclicLR, SWA, lazy modules, SyncBatchNorm, full
backward hooks, bicubic / area interpolation, SummaryWriter, profiler) against PyTorch."""

import math

import numpy as np
import pytest

import graphnn
import graphnn.nn as nn
import graphnn.nn.functional as F

RNG = np.random.default_rng(0)
# float32 composites of a few ops each, over sums of at most ~30 terms: a few ulps of the values' magnitude
TOL = dict(rtol=2e-5, atol=2e-6)


def _arr(*shape, scale=1.0):
    return (RNG.standard_normal(shape) * scale).astype(np.float32)


def _same(torch, fn_g, fn_t, arrays, compiled=False, tol=TOL, nograd=()):
    """fn on graphnn and on PyTorch tensors made from `arrays` (float arrays require grad, but those at positions
    `nograd`): values and the gradients of sum(out * w) agree."""
    rg = [a.dtype.kind == "f" and i not in nograd for i, a in enumerate(arrays)]
    gs = [graphnn.tensor(a, requires_grad=r) for a, r in zip(arrays, rg)]
    ts = [torch.tensor(a, requires_grad=r) for a, r in zip(arrays, rg)]
    go = (graphnn.compile(fn_g) if compiled else fn_g)(*gs)
    to = fn_t(*ts)
    np.testing.assert_allclose(go.detach().numpy(), to.detach().numpy(), **tol)
    w = _arr(*tuple(to.shape))
    (go * graphnn.tensor(w)).sum().backward()
    (to * torch.tensor(w)).sum().backward()
    for g, t in zip(gs, ts):
        if t.requires_grad and t.grad is None:
            assert g.grad is None or not g.grad.numpy().any()
        elif t.requires_grad:
            np.testing.assert_allclose(g.grad.numpy(), t.grad.numpy(), **tol)


# -- 1. layers -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("compiled", [False, True])
@pytest.mark.parametrize("shape, size", [((2, 6, 3), 3), ((2, 5, 3, 4), 4), ((1, 4, 2, 2, 3), 5)])
def test_local_response_norm(torch, shape, size, compiled):
    x = _arr(*shape, scale=3.0)
    gm, tm = nn.LocalResponseNorm(size, alpha=0.1, beta=0.75, k=2.0), torch.nn.LocalResponseNorm(size, 0.1, 0.75, 2.0)
    _same(torch, gm, tm, [x], compiled)
    assert repr(gm) == repr(tm)
    with pytest.raises(ValueError, match="Expected 3D or higher"):
        F.local_response_norm(graphnn.zeros(2, 3), 2)


@pytest.mark.parametrize("name", ["hardshrink", "softshrink"])
def test_shrinks(torch, name):
    x = _arr(3, 7)
    for lambd in (0.5, 0.3):
        _same(torch, lambda t: getattr(F, name)(t, lambd), lambda t: getattr(torch.nn.functional, name)(t, lambd), [x])
    cls = name.capitalize()
    assert repr(getattr(nn, cls)(0.3)) == repr(getattr(torch.nn, cls)(0.3))
    with pytest.raises(RuntimeError, match="lambda must be greater or equal to 0"):
        F.softshrink(graphnn.tensor(x), -1.0)


def test_rrelu_eval_training_and_inplace(torch):
    x = _arr(4, 50)
    m, tm = nn.RReLU(0.1, 0.3), torch.nn.RReLU(0.1, 0.3)
    assert repr(m) == repr(tm)
    m.eval(), tm.eval()
    _same(torch, m, tm, [x])  # evaluation: the mean slope
    m.train()
    g = graphnn.tensor(x, requires_grad=True)
    y = m(g)
    y.sum().backward()
    neg = x <= 0
    slope = y.detach().numpy()[neg] / x[neg]
    assert np.all((slope >= 0.1 - 1e-6) & (slope <= 0.3 + 1e-6)) and slope.std() > 0.01  # random, in the range
    np.testing.assert_allclose(y.detach().numpy()[~neg], x[~neg])
    np.testing.assert_allclose(g.grad.numpy()[neg], slope, rtol=1e-5)  # the gradient is each element's slope
    np.testing.assert_allclose(g.grad.numpy()[~neg], 1.0)
    h = graphnn.tensor(x.copy())
    assert F.rrelu_(h) is h
    np.testing.assert_allclose(h.numpy(), torch.nn.functional.rrelu(torch.tensor(x)).numpy(), **TOL)


def test_inplace_functional_variants(torch):
    x = _arr(3, 5, scale=2.0)
    for name, args in [("relu_", ()), ("elu_", (0.5,)), ("leaky_relu_", (0.2,)), ("hardtanh_", (-0.5, 0.5)),
                       ("threshold_", (0.1, 9.0)), ("celu_", (0.7,)), ("selu_", ())]:  # fmt: skip
        g, t = graphnn.tensor(x.copy()), torch.tensor(x.copy())
        assert getattr(F, name)(g, *args) is g
        getattr(torch.nn.functional, name)(t, *args)
        np.testing.assert_allclose(g.numpy(), t.numpy(), **TOL, err_msg=name)


def test_softmax2d(torch):
    x = _arr(2, 3, 4, 5)
    _same(torch, nn.Softmax2d(), torch.nn.Softmax2d(), [x])
    _same(torch, nn.Softmax2d(), torch.nn.Softmax2d(), [x[0]])
    with pytest.raises(ValueError, match="Softmax2d: expected input to be 3D or 4D, got 2D instead"):
        nn.Softmax2d()(graphnn.zeros(2, 3))


@pytest.mark.parametrize("feature", [False, True])
def test_alpha_dropout(torch, feature):
    cls = nn.FeatureAlphaDropout if feature else nn.AlphaDropout
    m = cls(0.2)
    assert repr(m) == repr(getattr(torch.nn, cls.__name__)(0.2))
    x = RNG.standard_normal((64, 32, 8)).astype(np.float32)
    m.eval()
    assert m(graphnn.tensor(x)).numpy() is not None and np.array_equal(m(graphnn.tensor(x)).numpy(), x)
    m.train()
    g = graphnn.tensor(x, requires_grad=True)
    y = m(g)
    y.sum().backward()
    yn, grad = y.detach().numpy(), g.grad.numpy()
    alpha = 1.7580993408473766
    a = 1.0 / math.sqrt((alpha**2 * 0.2 + 1) * 0.8)
    dropped = grad == 0
    np.testing.assert_allclose(yn[dropped], a * alpha * (0.2 - 1), rtol=1e-6)  # SELU's saturation, rescaled
    np.testing.assert_allclose(yn[~dropped], a * x[~dropped] + a * alpha * 0.2, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(grad[~dropped], a, rtol=1e-6)
    # 16384 draws of keep probability 0.8 (per element or per channel): 5 standard deviations
    n = x.size if not feature else x.shape[0] * x.shape[1]
    assert abs(dropped.mean() - 0.2) < 5 * math.sqrt(0.16 / n)
    if feature:  # whole channels
        assert np.all(dropped.all(-1) | (~dropped).all(-1))
    assert abs(yn.mean()) < 0.1 and abs(yn.std() - 1) < 0.1  # self-normalizing: mean 0, variance 1 kept
    with pytest.raises(ValueError, match="dropout probability has to be between 0 and 1, but got 1.5"):
        F.alpha_dropout(g, 1.5, True)


@pytest.mark.parametrize("compiled", [False, True])
def test_gumbel_softmax(torch, compiled):
    logits = graphnn.tensor(_arr(6, 5), requires_grad=True)
    soft = (graphnn.compile(F.gumbel_softmax) if compiled else F.gumbel_softmax)(logits, tau=0.5)
    np.testing.assert_allclose(soft.detach().numpy().sum(-1), 1.0, rtol=1e-6)
    fn = (
        graphnn.compile(lambda t: F.gumbel_softmax(t, hard=True))
        if compiled
        else (lambda t: F.gumbel_softmax(t, hard=True))
    )
    hard = fn(logits)
    h = hard.detach().numpy()
    assert set(np.unique(h)) <= {0.0, 1.0} and np.all(h.sum(-1) == 1)
    w = graphnn.tensor(_arr(6, 5))
    (hard * w).sum().backward()
    # straight-through: the gradient of the soft sample y at the one-hot's values: y_i (w_i - sum_j y_j w_j) / tau,
    # whose row sums are 0 and which is not zero
    grad = logits.grad.numpy()
    np.testing.assert_allclose(grad.sum(-1), 0.0, atol=1e-5)
    assert np.abs(grad).max() > 1e-4
    # the same distribution as PyTorch's: the argmax frequency follows softmax(logits)
    many = graphnn.tensor(np.tile(np.array([[0.0, 1.0, 2.0]], np.float32), (4000, 1)))
    freq = F.gumbel_softmax(many, hard=True).numpy().mean(0)
    p = np.exp([0.0, 1.0, 2.0]) / np.exp([0.0, 1.0, 2.0]).sum()
    assert np.all(np.abs(freq - p) < 5 * np.sqrt(p * (1 - p) / 4000))


@pytest.mark.parametrize("compiled", [False, True])
@pytest.mark.parametrize(
    "nsp, norm, kernel, stride, ceil",
    [
        (1, 2.0, 3, None, False),
        (1, 3, 2, 1, True),
        (2, 2, (2, 3), None, False),
        (2, 1.5, 2, (1, 2), True),
        (3, 2, 2, None, False),
    ],  # fmt: skip
)
def test_lp_pool(torch, nsp, norm, kernel, stride, ceil, compiled):
    x = np.abs(_arr(2, 3, *(7,) * nsp)) + 0.1 if norm % 1 else _arr(2, 3, *(7,) * nsp)
    gm = getattr(nn, f"LPPool{nsp}d")(norm, kernel, stride, ceil)
    tm = getattr(torch.nn, f"LPPool{nsp}d")(norm, kernel, stride, ceil)
    assert repr(gm) == repr(tm)
    _same(torch, gm, tm, [x], compiled, tol=dict(rtol=1e-4, atol=1e-5))


@pytest.mark.parametrize("p", [2.0, 1.0, 3.0, 0.0, math.inf])
def test_pdist(torch, p):
    x = _arr(5, 4)
    x[3] = x[1]  # a zero distance: gradient 0 there, as PyTorch
    if p == 0:  # a count: no gradient
        np.testing.assert_array_equal(
            F.pdist(graphnn.tensor(x), 0).numpy(), torch.nn.functional.pdist(torch.tensor(x), 0)
        )
        return
    _same(
        torch, lambda t: F.pdist(t, p), lambda t: torch.nn.functional.pdist(t, p), [x], tol=dict(rtol=1e-5, atol=1e-5)
    )
    with pytest.raises(RuntimeError, match="pdist only supports 2D tensors, got: 3D"):
        F.pdist(graphnn.zeros(2, 3, 4))


# -- 2. losses -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("compiled", [False, True])
@pytest.mark.parametrize("p, margin, weighted, reduction", [(1, 1.0, False, "mean"), (2, 0.5, True, "sum"),
                                                            (1, 2.0, True, "none")])  # fmt: skip
def test_multi_margin_loss(torch, p, margin, weighted, reduction, compiled):
    x, y = _arr(6, 4), RNG.integers(0, 4, 6)
    w = np.abs(_arr(4)) if weighted else None
    gm = nn.MultiMarginLoss(p, margin, None if w is None else graphnn.tensor(w), reduction=reduction)
    tm = torch.nn.MultiMarginLoss(p, margin, None if w is None else torch.tensor(w), reduction=reduction)
    _same(torch, gm, tm, [x, y], compiled)
    _same(torch, gm, tm, [x[0], y[:1]])  # 1-d input
    with pytest.raises(ValueError, match="only p == 1 and p == 2 supported"):
        nn.MultiMarginLoss(p=3)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_hinge_soft_margin_losses(torch, reduction):
    x, y = _arr(4, 5), np.where(RNG.random((4, 5)) > 0.5, 1.0, -1.0).astype(np.float32)
    _same(torch, nn.HingeEmbeddingLoss(0.7, reduction=reduction),
          torch.nn.HingeEmbeddingLoss(0.7, reduction=reduction), [x, y])  # fmt: skip
    _same(
        torch, nn.SoftMarginLoss(reduction=reduction), torch.nn.SoftMarginLoss(reduction=reduction), [x, y], nograd=(1,)
    )


@pytest.mark.parametrize("compiled", [False, True])
@pytest.mark.parametrize("custom, swap", [(False, False), (True, True)])
def test_triplet_margin_with_distance_loss(torch, custom, swap, compiled):
    a, p, n = _arr(5, 6), _arr(5, 6), _arr(5, 6)

    def cos_dist(lib):
        return (lambda u, v: 1.0 - lib.nn.functional.cosine_similarity(u, v)) if custom else None

    gm = nn.TripletMarginWithDistanceLoss(distance_function=cos_dist(graphnn), margin=0.5, swap=swap)
    tm = torch.nn.TripletMarginWithDistanceLoss(distance_function=cos_dist(torch), margin=0.5, swap=swap)
    _same(torch, gm, tm, [a, p, n], compiled)
    with pytest.raises(ValueError, match="expected margin to be greater than 0"):
        nn.TripletMarginWithDistanceLoss(margin=0)


# -- 3. optimizers and schedulers --------------------------------------------------------------------------------
STEP_ROUNDINGS = 120  # roundings per training step of the float64 MLP (see test_optim_more.py)


@pytest.mark.parametrize("compiled", [False, True])
@pytest.mark.parametrize(
    "kw",
    [
        dict(lr=0.01),
        dict(lr=0.01, betas=(0.8, 0.9), weight_decay=0.1, decoupled_weight_decay=True, maximize=True),
        dict(lr=0.02, weight_decay=0.05),
    ],  # fmt: skip
)
def test_radam_trajectory(torch, kw, compiled):
    from parity_util import close, compare_params, steps_tolerance
    from train_steps import mlp_pair, mse_step, regression_batches

    g, t = mlp_pair(torch)
    gopt, topt = graphnn.optim.RAdam(g.parameters(), **kw), torch.optim.RAdam(t.parameters(), **kw)
    g_step, t_step = mse_step(graphnn, g, gopt), mse_step(torch, t, topt)
    g_step = graphnn.compile(g_step) if compiled else g_step
    n = 0
    for x, y in regression_batches(8):  # rho_t > 5 from step 6 (beta2 0.999) or 3 (beta2 0.9): both branches
        n += 1
        close(g_step(graphnn.tensor(x), graphnn.tensor(y)), t_step(torch.tensor(x), torch.tensor(y)), f"step {n}",
              steps_tolerance(1.0, STEP_ROUNDINGS * n))  # fmt: skip
    compare_params(g, t, STEP_ROUNDINGS * n)
    for p, q in zip(g.parameters(), t.parameters()):
        assert list(gopt.state[p]) == list(topt.state[q]) == ["step", "exp_avg", "exp_avg_sq"]
    assert gopt.state_dict()["param_groups"] == topt.state_dict()["param_groups"]
    with pytest.raises(ValueError, match="Invalid beta parameter at index 1: 1.0"):
        graphnn.optim.RAdam(g.parameters(), betas=(0.9, 1.0))


def _lr_momentum_trace(lib, sched_fn, opt_name="SGD", steps=25):
    opt_kw = {"lr": 0.1, "momentum": 0.9} if opt_name == "SGD" else {"lr": 0.1}
    opt = getattr(lib.optim, opt_name)([lib.nn.Parameter(lib.zeros(2))], **opt_kw)
    s = sched_fn(lib, opt)
    out = []
    for _ in range(steps):
        g = opt.param_groups[0]
        out.append((s.get_last_lr()[0], g.get("momentum", g.get("betas", (None,))[0])))
        opt.step()
        s.step()
    return out, s


class _Halving:
    """A callable object as scale_fn: PyTorch's state_dict keeps its attributes."""

    def __init__(self):
        self.base = 0.5

    def __call__(self, x):
        return self.base**x


@pytest.mark.parametrize(
    "kw, opt_name",
    [
        (dict(mode="triangular"), "SGD"),
        (dict(mode="triangular2", step_size_down=2), "SGD"),
        (dict(mode="exp_range", gamma=0.9), "Adam"),
        (dict(scale_fn="halving", scale_mode="iterations"), "SGD"),
        (dict(cycle_momentum=False, mode="triangular2"), "Adam"),
    ],  # fmt: skip
)
def test_cyclic_lr(torch, kw, opt_name):
    def make(lib, opt):
        k = dict(kw)
        if k.get("scale_fn") == "halving":
            k["scale_fn"] = _Halving()
        return lib.optim.lr_scheduler.CyclicLR(opt, 0.01, 0.1, step_size_up=3, **k)

    (g, gs), (t, ts) = _lr_momentum_trace(graphnn, make, opt_name), _lr_momentum_trace(torch, make, opt_name)
    np.testing.assert_allclose(np.array(g, float), np.array(t, float), rtol=1e-12)
    sd, tsd = gs.state_dict(), ts.state_dict()
    assert set(sd) <= set(tsd) and sd["_scale_fn_custom"] == tsd["_scale_fn_custom"]
    gs.load_state_dict(sd)
    with pytest.raises(ValueError, match="mode is invalid and scale_fn is None"):
        graphnn.optim.lr_scheduler.CyclicLR(graphnn.optim.SGD([nn.Parameter(graphnn.zeros(1))], 0.1), 0.1, 1, mode="x")


@pytest.mark.parametrize("anneal_epochs, strategy", [(3, "cos"), (4, "linear"), (0, "cos")])
def test_swalr(torch, anneal_epochs, strategy):
    def make(lib, opt):
        return lib.optim.swa_utils.SWALR(opt, swa_lr=0.02, anneal_epochs=anneal_epochs, anneal_strategy=strategy)

    g, t = _lr_momentum_trace(graphnn, make, steps=8)[0], _lr_momentum_trace(torch, make, steps=8)[0]
    np.testing.assert_allclose(np.array(g, float), np.array(t, float), rtol=1e-12)


def _bn_net(lib):
    lib.manual_seed(0)
    return lib.nn.Sequential(lib.nn.Linear(3, 4), lib.nn.BatchNorm1d(4), lib.nn.ReLU(), lib.nn.Linear(4, 2))


def _copy_weights(torch, g, t):
    t.load_state_dict({k: torch.tensor(v.numpy().copy()) for k, v in g.state_dict().items()})


@pytest.mark.parametrize("avg", ["swa", "ema", "ema_multi", "ema_buffers"])
def test_averaged_model(torch, avg):
    def averaged(lib, net):
        su = lib.optim.swa_utils
        if avg == "ema":
            return su.AveragedModel(net, avg_fn=su.get_ema_avg_fn(0.9))
        if avg.startswith("ema_"):
            return su.AveragedModel(net, multi_avg_fn=su.get_ema_multi_avg_fn(0.9), use_buffers=avg == "ema_buffers")
        return su.AveragedModel(net)

    g_net, t_net = _bn_net(graphnn), _bn_net(torch)
    _copy_weights(torch, g_net, t_net)
    g_avg, t_avg = averaged(graphnn, g_net), averaged(torch, t_net)
    for step in range(4):
        x = _arr(8, 3)
        for net, lib in ((g_net, graphnn), (t_net, torch)):
            net.train()
            with lib.no_grad():
                for p in net.parameters():
                    p.mul_(0.9).add_(0.1 * step)
            net(lib.tensor(x))  # moves the BatchNorm statistics
        g_avg.update_parameters(g_net)
        t_avg.update_parameters(t_net)
    gsd, tsd = g_avg.state_dict(), t_avg.state_dict()
    assert list(gsd) == list(tsd)  # module.* and n_averaged
    for k in tsd:
        np.testing.assert_allclose(gsd[k].numpy(), tsd[k].numpy(), rtol=1e-5, atol=1e-6, err_msg=k)
    assert gsd["n_averaged"].dtype == graphnn.int64 and int(gsd["n_averaged"]) == 4
    x = _arr(5, 3)
    g_avg.eval(), t_avg.eval()
    np.testing.assert_allclose(
        g_avg(graphnn.tensor(x)).detach().numpy(), t_avg(torch.tensor(x)).detach().numpy(), **TOL
    )


def test_update_bn(torch):
    g_net, t_net = _bn_net(graphnn), _bn_net(torch)
    _copy_weights(torch, g_net, t_net)
    data = [_arr(6, 3) for _ in range(3)]
    g_net.eval(), t_net.eval()
    graphnn.optim.swa_utils.update_bn([(graphnn.tensor(x), 0) for x in data], g_net)
    torch.optim.swa_utils.update_bn([(torch.tensor(x), 0) for x in data], t_net)
    assert not g_net.training and g_net[1].momentum == 0.1
    for k, v in t_net.state_dict().items():
        np.testing.assert_allclose(g_net.state_dict()[k].numpy(), v.numpy(), rtol=1e-5, atol=1e-6, err_msg=k)


# -- 4. modules ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "name, args, shape",
    [
        ("LazyLinear", (5,), (2, 3)),
        ("LazyConv1d", (4, 3), (2, 3, 7)),
        ("LazyConv2d", (4, 3), (3, 6, 6)),
        ("LazyConv3d", (2, 2), (1, 2, 3, 3, 3)),
        ("LazyBatchNorm2d", (), (2, 3, 4, 4)),
    ],  # fmt: skip
)
def test_lazy_modules(torch, name, args, shape):
    kw = {"padding": 1} if "Conv" in name else {}
    g, t = getattr(nn, name)(*args, **kw), getattr(torch.nn, name)(*args, **kw)
    assert repr(g) == repr(t)
    assert list(g.state_dict()) == list(t.state_dict())
    params = list(g.parameters())
    opt = graphnn.optim.SGD(g.parameters(), lr=0.1)  # built before the first call, as PyTorch allows
    x = _arr(*shape)
    g(graphnn.tensor(x)), t(torch.tensor(x))
    assert type(g).__name__ == type(t).__name__ == name.replace("Lazy", "")
    assert repr(g) == repr(t)
    tsd = t.state_dict()
    assert list(g.state_dict()) == list(tsd)
    assert [tuple(v.shape) for v in g.state_dict().values()] == [tuple(v.shape) for v in tsd.values()]
    assert all(a is b for a, b in zip(params, g.parameters()))  # materialized in place
    g.load_state_dict({k: graphnn.tensor(v.numpy().copy()) for k, v in tsd.items()})
    g.eval(), t.eval()
    y = g(graphnn.tensor(x))
    np.testing.assert_allclose(y.detach().numpy(), t(torch.tensor(x)).detach().numpy(), rtol=1e-5, atol=1e-5)
    y.sum().backward()
    opt.step()


def test_sync_batchnorm_without_process_group_is_batchnorm(torch):
    net = nn.Sequential(nn.Conv2d(3, 4, 1), nn.BatchNorm2d(4), nn.Sequential(nn.BatchNorm2d(4)))
    tnet = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 1), torch.nn.BatchNorm2d(4),
                               torch.nn.Sequential(torch.nn.BatchNorm2d(4)))  # fmt: skip
    _copy_weights(torch, net, tnet)
    bn = net[1]
    g, t = nn.SyncBatchNorm.convert_sync_batchnorm(net), torch.nn.SyncBatchNorm.convert_sync_batchnorm(tnet)
    assert repr(g) == repr(t)
    assert isinstance(g[2][0], nn.SyncBatchNorm) and g[1].weight is bn.weight and g[1].running_mean is bn.running_mean
    m = nn.SyncBatchNorm(4, momentum=None)
    x = _arr(2, 4, 3, 3)
    tm = torch.nn.BatchNorm2d(4, momentum=None)  # (PyTorch's SyncBatchNorm needs a process group on the CPU)
    _same(torch, m, tm, [x])
    np.testing.assert_allclose(m.running_var.numpy(), tm.running_var.numpy(), rtol=1e-5)
    with pytest.raises(ValueError, match="expected at least 2D input"):
        m(graphnn.zeros(4))


@pytest.mark.parametrize("compiled", [False, True])
def test_full_backward_hooks(torch, compiled):
    def record(lib):
        seen = []
        m = lib.nn.Linear(3, 2)
        m.register_full_backward_pre_hook(lambda mod, go: seen.append(("pre", [g.shape for g in go])) or (go[0] * 2,))
        m.register_full_backward_hook(lambda mod, gi, go: seen.append(("post", [g.shape for g in gi], go[0].sum())))
        m.register_full_backward_hook(lambda mod, gi, go: (gi[0] + 1,))
        return m, seen

    (g, gseen), (t, tseen) = record(graphnn), record(torch)
    _copy_weights(torch, g, t)
    x = _arr(4, 3)
    gx, tx = graphnn.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    gy = (graphnn.compile(g) if compiled else g)(gx)
    ty = t(tx)
    w = _arr(4, 2)
    (gy * graphnn.tensor(w)).sum().backward()
    (ty * torch.tensor(w)).sum().backward()
    assert [s[:2] for s in gseen] == [(k, [tuple(s) for s in v]) for k, v, *_ in tseen]
    if not compiled:  # (compiled: the hooks ran while tracing, on symbolic gradients)
        np.testing.assert_allclose(float(gseen[1][2]), float(tseen[1][2]), rtol=1e-5)
    np.testing.assert_allclose(gx.grad.numpy(), tx.grad.numpy(), **TOL)  # doubled grad_output, grad_input + 1
    np.testing.assert_allclose(g.weight.grad.numpy(), t.weight.grad.numpy(), **TOL)


def test_full_backward_hook_input_without_grad(torch):
    seen = []
    m = nn.Linear(3, 2)
    m.register_full_backward_hook(lambda mod, gi, go: seen.append((gi, go[0].shape)))
    m(graphnn.ones(2, 3)).sum().backward()
    assert seen == [((None,), (2, 2))]


def test_to_empty(torch):
    m = nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2))
    shapes = {k: (tuple(v.shape), v.dtype) for k, v in m.state_dict().items()}
    assert m.to_empty(device="cpu") is m
    assert {k: (tuple(v.shape), v.dtype) for k, v in m.state_dict().items()} == shapes
    with pytest.raises(RuntimeError, match="cuda"):
        m.to_empty(device="cuda")


# -- 5. interpolation ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("compiled", [False, True])
@pytest.mark.parametrize(
    "mode, kw",
    [
        ("bicubic", dict(size=(7, 5))),
        ("bicubic", dict(size=(3, 9), align_corners=True)),
        ("bicubic", dict(scale_factor=1.5)),
        ("bicubic", dict(scale_factor=(2, 0.5), align_corners=False)),
        ("area", dict(size=(3, 4))),
        ("area", dict(scale_factor=0.5)),
        ("area", dict(size=7)),
    ],  # fmt: skip
)
def test_interpolate_bicubic_area(torch, mode, kw, compiled):
    x = _arr(2, 3, 6, 5)
    fn_g = lambda t: F.interpolate(t, mode=mode, **kw)  # noqa: E731
    fn_t = lambda t: torch.nn.functional.interpolate(t, mode=mode, **kw)  # noqa: E731
    # at most 16 products of weights below 1.3 (cubic) or a mean (area), in float32: a few ulps of the sum
    _same(torch, fn_g, fn_t, [x], compiled, tol=dict(rtol=1e-5, atol=1e-5))
    if not compiled:
        _same(
            torch, nn.Upsample(mode=mode, **kw), torch.nn.Upsample(mode=mode, **kw), [x], tol=dict(rtol=1e-5, atol=1e-5)
        )
        x1 = _arr(2, 3, 8)
        if mode == "area":
            _same(torch, lambda t: F.interpolate(t, size=3, mode="area"),
                  lambda t: torch.nn.functional.interpolate(t, size=3, mode="area"), [x1])  # fmt: skip
    with pytest.raises(ValueError, match="align_corners option can only be set with the interpolating modes"):
        F.interpolate(graphnn.tensor(x), size=3, mode="area", align_corners=True)
