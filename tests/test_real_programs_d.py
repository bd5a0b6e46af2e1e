"""Seven more PyTorch programs (tests/real_programs_d.py: a convolutional VAE, a style network with a total-variation
loss, ESPCN, a siamese network, a two-cell sequence predictor, forward-forward with per-layer optimizers, a data
pipeline with chained schedulers and checkpoint/resume) run with graphnn in place of torch and give PyTorch's
results, eagerly and with the program's step function under graphnn.compile; then focused tests of what they
needed fixed (torch.pdist / pairwise_distance / ..., the hinge and distance-triplet losses, a norm's gradient at 0).

The harness and its tolerances are test_classic_programs.py's: PyTorch's models take graphnn's initial weights,
PyTorch's random draws come from a NumPy generator with graphnn's formulas (same_noise), and a value computed n steps
into training may differ by n R roundings, R counted on the IR of one eager forward and backward pass
(probe_roundings) plus the update's.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest

import graphnn
import real_programs_d as rp
from parity_util import check, close, steps_tolerance, to_np
from test_classic_programs import (
    MODES,
    UPDATE_ROUNDINGS,
    adam_step_bound,
    compare_series,
    compare_state,
    compile_for,
    noise_gradients,
    pair_models,
    probe_roundings,
    same_noise,
)

pytestmark = [pytest.mark.filterwarnings("ignore:'pin_memory' argument is set as true:UserWarning")]


def _rng(seed=0):
    return np.random.default_rng(seed)


def _run(torch, build, train, build_args=(), seed=None, compiled=False, **data):
    """(graphnn's result, PyTorch's result, graphnn's model(s), PyTorch's) of one program trained by both."""
    g, t = pair_models(torch, build, *build_args)
    if seed is None:
        t_res = train(torch, t, **data)
        g_res = train(graphnn, g, compile=compile_for(compiled), **data)
    else:
        with same_noise(torch, seed):
            t_res = train(torch, t, **data)
        graphnn.manual_seed(seed)
        g_res = train(graphnn, g, compile=compile_for(compiled), **data)
    return g_res, t_res, g, t


# -- a. convolutional VAE ------------------------------------------------------------------------------------------
@MODES
def test_conv_vae(torch, compiled):
    images = _rng(1).random((8, 1, 28, 28)).astype(np.float32)
    g0, _ = pair_models(torch, rp.build_conv_vae)
    x = graphnn.tensor(images[:4])
    rounds = probe_roundings(lambda: rp.conv_vae_loss(graphnn, g0(x)[0], x, *g0(x)[1:])[0]) + UPDATE_ROUNDINGS["adam"]
    g_res, t_res, g, t = _run(torch, rp.build_conv_vae, rp.train_conv_vae, seed=1, compiled=compiled, images=images)
    compare_series(g_res["losses"], t_res["losses"], "loss, BCE, KL", rounds)
    steps = len(t_res["losses"])
    for k in ("sample", "walk", "grid_max"):
        close(g_res[k], t_res[k], k, steps_tolerance(t_res[k], rounds * (steps + 1)))
    compare_state(g, t, rounds * steps)


# -- b. style network with a total-variation loss -----------------------------------------------------------------
@MODES
def test_small_style(torch, compiled):
    r = _rng(2)
    content, style = r.random((2, 3, 12, 12)).astype(np.float32), r.random((1, 3, 12, 12)).astype(np.float32)
    (net, feats), _ = pair_models(torch, rp.build_small_style)
    x = graphnn.tensor(content)
    probe = lambda: rp.total_variation(graphnn, net(x)) + feats(net(x))[1].sum()  # noqa: E731
    rounds = probe_roundings(probe) + 2 * 8 + UPDATE_ROUNDINGS["adam"]  # (+ the Gram products, the losses' sum)
    noise = noise_gradients(probe, net, rounds)
    assert all(noise[f"{m}.conv.bias"].all() for m in ("c1", "c2", "r1", "u1"))  # an instance norm follows each
    g_res, t_res, g, t = _run(
        torch, rp.build_small_style, rp.train_small_style, compiled=compiled, content=content, style=style
    )
    compare_series(g_res["history"], t_res["history"], "loss, TV", rounds)
    close(g_res["stylized"], t_res["stylized"], "stylized", steps_tolerance(t_res["stylized"], rounds * 4))
    compare_state(g[0], t[0], rounds * 3, noise, 3 * adam_step_bound(1e-2, (0.9, 0.999)))


# -- c. ESPCN --------------------------------------------------------------------------------------------------------
@MODES
def test_espcn(torch, compiled):
    high = _rng(3).random((4, 1, 16, 16)).astype(np.float32)
    low = np.ascontiguousarray(high[:, :, ::2, ::2])
    g0, _ = pair_models(torch, rp.build_espcn)
    rounds = probe_roundings(lambda: ((g0(graphnn.tensor(low[:2])) - graphnn.tensor(high[:2])) ** 2).mean())
    rounds += UPDATE_ROUNDINGS["adam"]
    g_res, t_res, g, t = _run(torch, rp.build_espcn, rp.train_espcn, compiled=compiled, low=low, high=high)
    compare_series(g_res["losses"], t_res["losses"], "loss", rounds)
    compare_series(g_res["mse"], t_res["mse"], "test MSE", rounds, offset=2)
    assert g_res["lrs"] == t_res["lrs"]
    compare_state(g, t, rounds * 8)
    w = to_np(rp.build_espcn(graphnn).body[0].weight).reshape(8, -1)  # orthogonal rows, scaled by tanh's gain
    # (rows of 100 float32 elements, each rounded once: |W W^T - g^2 I| <= 2 u g^2 per element, and the sums')
    close(w @ w.T, np.eye(8) * (5 / 3) ** 2, "W W^T", steps_tolerance(np.ones(1, np.float32), 100, (5 / 3) ** 2))


# -- d. siamese network ----------------------------------------------------------------------------------------------
@MODES
def test_siamese(torch, compiled):
    r = _rng(4)
    labels = np.repeat(np.arange(3), 4)
    x = (r.standard_normal((12, 10)) + np.eye(3, 10)[labels] * 2).astype(np.float32)
    pairs = r.integers(0, 12, (10, 2))
    pairs[0] = [5, 5]  # an identical pair: its distance is 0
    g0, _ = pair_models(torch, rp.build_siamese)
    xs = graphnn.tensor(x)
    rounds = probe_roundings(lambda: graphnn.nn.TripletMarginLoss()(*g0(xs, xs.flip(0)), g0.get_embedding(xs)))
    rounds += UPDATE_ROUNDINGS["sgd"] + 2  # (+ the momentum buffer's product and sum)
    g_res, t_res, g, t = _run(
        torch, rp.build_siamese, rp.train_siamese, compiled=compiled, x=x, labels=labels, pairs=pairs
    )
    compare_series(g_res["history"], t_res["history"], "losses", rounds)
    assert to_np(g_res["nearest"]).tolist() == to_np(t_res["nearest"]).tolist()
    for k in ("cos", "dist"):
        close(g_res[k], t_res[k], k, steps_tolerance(t_res[k], rounds * 5))
    compare_state(g, t, rounds * 4)


# -- e. time-sequence prediction ----------------------------------------------------------------------------------
@pytest.mark.parametrize("optimizer,compiled", [("adam", False), ("adam", True), ("lbfgs", False), ("lbfgs", True)])
def test_sequence_prediction(torch, optimizer, compiled):
    dtype = "float32" if optimizer == "adam" else "float64"
    # (L-BFGS divides by curvatures s.y of its steps: a small one amplifies rounding differences beyond n R, as on
    # length-10 waves from the 7th evaluation; these waves keep the two steps well conditioned)
    data = rp.sine_waves(length=10 if optimizer == "adam" else 12, dtype=np.dtype(dtype))
    g0, _ = pair_models(torch, rp.build_sequence2, 10, dtype)
    probe = lambda: ((g0(graphnn.tensor(data[2:, :-1])) - graphnn.tensor(data[2:, 1:])) ** 2).mean()  # noqa: E731
    rounds = probe_roundings(probe) + UPDATE_ROUNDINGS["adam"]  # (L-BFGS's update: a few dot products, fewer)
    g_res, t_res, g, t = _run(
        torch,
        rp.build_sequence2,
        rp.train_sequence2,
        (10, dtype),
        compiled=compiled,
        data=data,
        optimizer_name=optimizer,
        steps=3 if optimizer == "adam" else 2,
    )
    compare_series(g_res["losses"], t_res["losses"], "loss", rounds, dtype=dtype)
    compare_series(g_res["test_losses"], t_res["test_losses"], "test loss", 3 * rounds, dtype=dtype)
    n = len(t_res["losses"])
    close(g_res["prediction"], t_res["prediction"], "prediction", steps_tolerance(t_res["prediction"], rounds * n))
    compare_state(g, t, rounds * n)


# -- f. forward-forward with per-layer optimizers -------------------------------------------------------------------
@MODES
def test_forward_forward_layers(torch, compiled):
    r = _rng(5)
    x = r.standard_normal((12, 16)).astype(np.float32)
    y = r.integers(0, 4, 12)
    y_wrong = (y + r.integers(1, 4, 12)) % 4
    g0, _ = pair_models(torch, rp.build_ff_layers)
    h = graphnn.tensor(x)
    rounds = probe_roundings(lambda: g0.layer_loss(g0.layers[1], g0.layers[0](h), g0.layers[0](-h)))
    rounds += UPDATE_ROUNDINGS["adam"]
    g_res, t_res, g, t = _run(
        torch, rp.build_ff_layers, rp.train_ff_layers, compiled=compiled, x=x, y=y, y_wrong=y_wrong
    )
    compare_series(g_res["losses"], t_res["losses"], "layer loss", rounds)
    n = len(t_res["losses"])
    close(g_res["scores"], t_res["scores"], "goodness", steps_tolerance(t_res["scores"], rounds * n))
    assert to_np(g_res["predicted"]).tolist() == to_np(t_res["predicted"]).tolist()
    compare_state(g, t, rounds * n)


# -- g. the data pipeline ------------------------------------------------------------------------------------------
def _points(n=23, seed=6):
    r = _rng(seed)
    labels = r.integers(0, 3, n)
    feats = (r.standard_normal((n, 6)) * 3 + 1 + np.eye(3, 6)[labels] * 4).astype(np.float32)
    return feats, labels


def _pipeline_rounds(torch):
    feats, labels = _points()
    g0, _ = pair_models(torch, rp.build_pipeline_model)
    x = graphnn.tensor((feats[:5] - feats.mean(0)) / feats.std(0))
    loss = lambda: graphnn.nn.functional.cross_entropy(g0(x), graphnn.tensor(labels[:5]))  # noqa: E731
    return probe_roundings(loss) + UPDATE_ROUNDINGS["sgd"] + 2 + 12  # (+ momentum, the gradient clipping's norm)


@pytest.mark.parametrize(
    "schedule,compiled", [("sequential", False), ("chained", True), ("onecycle", False), ("plateau", True)]
)
def test_pipeline_schedules(torch, schedule, compiled):
    feats, labels = _points()
    rounds = _pipeline_rounds(torch)
    g_res, t_res, g, t = _run(
        torch, rp.build_pipeline_model, rp.train_pipeline, compiled=compiled, features=feats, labels=labels,
        schedule=schedule,
    )  # fmt: skip
    assert g_res["seen"] == t_res["seen"] and g_res["scale"] == t_res["scale"]
    compare_series(g_res["history"], t_res["history"], "loss", rounds)
    close(np.array(g_res["lrs"]), np.array(t_res["lrs"]), "lr", steps_tolerance(np.array(t_res["lrs"]), 16))
    compare_state(g, t, rounds * len(t_res["history"]))


@MODES
def test_pipeline_checkpoint_resumes_identically(torch, compiled, tmp_path, monkeypatch):
    """Training 4 epochs straight, and training 2, saving {model, optimizer, schedulers, scaler, epoch}, loading
    that into fresh objects and training the 2 others give the same losses and weights, also through 2 loader
    workers; PyTorch's resumed run agrees. Bit for bit with every update and every backward() interpreted
    (GRAPHNN_HOT_OPTIMIZER=0, GRAPHNN_HOT_BACKWARD=0): by default an optimizer's updates run compiled after its
    first 8 steps, so a fresh optimizer's first resumed steps round as eager code does, where the straight run's
    were compiled (checked by test_pipeline_schedules' tolerances); likewise a backward() structure runs natively
    after 8 reuses in the process, so the straight run's first steps rounded otherwise than the resumed ones (the
    test failed when run alone, and passed after other tests had made that structure hot). Compiled, a graph
    structure seen at two batch sizes (the loader's short last batch) runs code compiled for every size from then
    on, in the whole process: the straight run's first steps ran size-specialized code, the later runs' the dynamic
    code; a throwaway epoch first makes every run use the same code (the test passed in the suite's order only)."""
    monkeypatch.setenv("GRAPHNN_HOT_OPTIMIZER", "0")
    monkeypatch.setenv("GRAPHNN_HOT_BACKWARD", "0")
    feats, labels = _points()
    rounds = _pipeline_rounds(torch)
    kw = dict(features=feats, labels=labels, schedule="sequential", compile=compile_for(compiled))
    graphnn.manual_seed(0)
    straight = rp.build_pipeline_model(graphnn)
    first = copy.deepcopy(straight)
    if compiled:
        rp.train_pipeline(graphnn, copy.deepcopy(straight), **{**kw, "epochs": 1})
    whole = rp.train_pipeline(graphnn, straight, **kw)
    ckpt = str(tmp_path / "ckpt.pt")
    part1 = rp.train_pipeline(graphnn, first, epochs=2, save_path=ckpt, save_at=1, **kw)
    graphnn.manual_seed(1)
    fresh = rp.build_pipeline_model(graphnn)
    part2 = rp.train_pipeline(graphnn, fresh, resume=ckpt, num_workers=2, **kw)
    assert part1["history"] + part2["history"] == whole["history"]
    assert part1["lrs"] + part2["lrs"] == whole["lrs"] and part2["scale"] == whole["scale"]
    for k, v in straight.state_dict().items():
        np.testing.assert_array_equal(to_np(fresh.state_dict()[k]), to_np(v), err_msg=k)
    saved = graphnn.load(ckpt)
    assert saved["epoch"] == 1 and set(saved) == {"model", "optimizer", "schedulers", "scaler", "epoch"}
    _, t_first = pair_models(torch, rp.build_pipeline_model)
    t_ckpt = str(tmp_path / "torch.pt")
    rp.train_pipeline(torch, t_first, feats, labels, "sequential", epochs=2, save_path=t_ckpt, save_at=1)
    t_res = rp.train_pipeline(torch, rp.build_pipeline_model(torch), feats, labels, "sequential", resume=t_ckpt)
    assert graphnn.load(t_ckpt)["epoch"] == 1  # (graphnn reads PyTorch's checkpoint too)
    compare_series(part2["history"], t_res["history"], "resumed loss", rounds, offset=len(part1["history"]) + 1)


def test_dataset_tools(torch):
    """Splits, subsets, concatenations, a weighted sampler and loaders with 0 and 2 workers: the facts a program
    relies on are PyTorch's (the draws themselves come from each library's own generator)."""
    feats, labels = _points()
    g, t = rp.dataset_tools(graphnn, feats, labels), rp.dataset_tools(torch, feats, labels)
    assert g["split_sizes"] == t["split_sizes"] == [14, 5, 4]
    assert sorted(sum(g["split_parts"], [])) == list(range(23)) and g["split_item"]
    assert g["sub"] == t["sub"] and g["concat"][0] == t["concat"][0] == 5 and g["concat"][2] == t["concat"][2]
    close(g["concat"][1], t["concat"][1], "concat item")
    assert len(g["drawn"]) == 60 and set(labels[g["drawn"]]) == {0, 1, 2}
    assert g["drawn"] == rp.dataset_tools(graphnn, feats, labels)["drawn"]  # a seeded generator repeats its draws
    assert g["n_batches"] == t["n_batches"] == 6
    for workers in (0, 2):
        assert len(g["loaders"][workers]) == len(t["loaders"][0])
        for (gx, gy, gi), (tx, ty, ti) in zip(g["loaders"][workers], t["loaders"][0]):
            assert gi == ti
            close(gx, tx, "batch x")
            close(gy, ty, "batch y")


# -- what the programs needed ----------------------------------------------------------------------------------------
def test_torch_level_functional_aliases(torch):
    """PyTorch's torch.pairwise_distance, torch.cosine_similarity, torch.pdist, torch.pixel_shuffle, ... are
    nn.functional's functions."""
    x = _rng(7).standard_normal((2, 8, 3, 3))
    a, b = x[0, :, :, 0], x[1, :, :, 0]
    cases = [
        ("pairwise_distance", (a, b)),
        ("cosine_similarity", (a, b)),
        ("pdist", (a,)),
        ("pixel_shuffle", (x, 2)),
        ("pixel_unshuffle", (x[:, :, :2, :2], 2)),
        ("channel_shuffle", (x, 2)),
        ("layer_norm", (x, (3, 3))),
        ("conv2d", (x, x[:, :, :2, :2])),
        ("selu", (x,)),
    ]
    for name, args in cases:
        want = getattr(torch, name)(*(torch.tensor(v) if isinstance(v, np.ndarray) else v for v in args))
        got = getattr(graphnn, name)(*(graphnn.tensor(v) if isinstance(v, np.ndarray) else v for v in args))
        close(got, want, name, steps_tolerance(want, 72))  # (the largest sum: conv2d's 8 * 2 * 2 terms)
    assert to_np(graphnn.dropout(graphnn.ones(4), 0.5, False)).tolist() == [1.0] * 4


@pytest.mark.parametrize("compiled", [False, True], ids=["eager", "compiled"])
@pytest.mark.parametrize("p", [2.0, 1.0, 3.0])
def test_pdist(torch, p, compiled):
    """Distances of every pair of rows i < j, with a repeated row: a zero distance, whose gradient is 0."""
    x = _rng(8).standard_normal((5, 3))
    x[3] = x[1]
    check(torch, lambda a: graphnn.pdist(a, p), lambda a: torch.pdist(a, p), [x], compiled=compiled)


@pytest.mark.parametrize("p", [2, 3, 1.5, float("inf"), "fro"])
def test_norm_gradient_at_zero_is_zero(torch, p):
    """The gradient of a norm at the zero vector is 0 (PyTorch's subgradient), not NaN from the root's infinite
    slope times |x|^p's zero slope; compiled too. F.normalize of a zero row gets its gradient from the division."""
    x = np.zeros((3, 4))
    x[1] = [3.0, -4.0, 0.0, 1.0]
    for compiled in (False, True):
        check(torch, lambda a: a.norm(p, dim=1), lambda a: a.norm(p, dim=1), [x], compiled=compiled)
    check(torch, lambda a: graphnn.linalg.vector_norm(a), lambda a: torch.linalg.vector_norm(a), [x * 0])
    check(torch, graphnn.nn.functional.normalize, torch.nn.functional.normalize, [x])


@MODES
def test_metric_losses(torch, compiled):
    r = _rng(9)
    a, b, c = (r.standard_normal((4, 5)) for _ in range(3))
    t = np.sign(r.standard_normal((4, 5)))
    t[0, 0] = 0.0  # neither 1 nor -1: both terms

    def hinge(lib):
        return lambda x: lib.nn.HingeEmbeddingLoss(margin=0.7)(x, lib.tensor(t))

    check(torch, hinge(graphnn), hinge(torch), [a], compiled=compiled)
    F = graphnn.nn.functional
    check(
        torch,
        lambda x: F.hinge_embedding_loss(x, graphnn.tensor(t), reduction="none"),
        lambda x: torch.nn.functional.hinge_embedding_loss(x, torch.tensor(t), reduction="none"),
        [a],
        compiled=compiled,
    )

    def triplet(lib, **kw):
        return lib.nn.TripletMarginWithDistanceLoss(**kw)

    cos = lambda lib: lambda u, v: 1 - lib.nn.functional.cosine_similarity(u, v)  # noqa: E731
    check(torch, triplet(graphnn), triplet(torch), [a, b, c], compiled=compiled)
    check(
        torch,
        triplet(graphnn, distance_function=cos(graphnn), margin=0.5, swap=True, reduction="sum"),
        triplet(torch, distance_function=cos(torch), margin=0.5, swap=True, reduction="sum"),
        [a, b, c],
        compiled=compiled,
    )
    with pytest.raises(ValueError, match="margin to be greater than 0"):
        graphnn.nn.TripletMarginWithDistanceLoss(margin=0.0)
    with pytest.raises(RuntimeError, match="pdist only supports 2D tensors, got: 1D"):
        graphnn.pdist(graphnn.ones(3))


def test_resize_in_place(torch):
    """Older programs' `label.resize_(n).fill_(v)` and `input.resize_as_(x).copy_(x)`, eagerly; inside
    graphnn.compile a resize to the same shape is nothing, another a TraceError."""

    def program(lib):
        x = lib.arange(6.0)
        out = [x.resize_(2, 3).numpy().copy(), x.resize_((4,)).numpy().copy()]
        out.append(lib.FloatTensor(8).resize_(5).fill_(1.0).numpy().copy())
        real = lib.arange(12.0).view(2, 6)
        out.append(lib.FloatTensor().resize_as_(real).copy_(real).numpy().copy())
        out.append(lib.arange(4.0).resize_(2, 3)[0].numpy().copy())  # (the elements that fit come first)
        return out

    for a, b in zip(program(graphnn), program(torch)):
        close(a, b, "resize_")
    with pytest.raises(RuntimeError, match="cannot resize variables that require grad"):
        graphnn.ones(2, requires_grad=True).resize_(3)
    x = graphnn.ones(4)
    close(graphnn.compile(lambda a: a.resize_(4) * 2)(x), np.full(4, 2.0, np.float32), "same shape")
    with pytest.raises(graphnn.TraceError, match=r"resize_ of f32\[4\] to \[2\]"):
        graphnn.compile(lambda a: a.clone().resize_(2) * 2, fullgraph=True)(x)


@pytest.mark.parametrize("compiled", [False, True], ids=["eager", "compiled"])
@pytest.mark.parametrize("size,scale", [(None, 1.5), (None, 2), ((7, 4), None), ((3, 11), None)])
def test_interpolate_nearest_exact(torch, size, scale, compiled):
    x = _rng(10).standard_normal((2, 3, 5, 6))

    def resize(lib):
        return lambda a: lib.nn.functional.interpolate(a, size=size, scale_factor=scale, mode="nearest-exact")

    check(torch, resize(graphnn), resize(torch), [x], compiled=compiled)
    up = graphnn.nn.Upsample(scale_factor=2, mode="nearest-exact")(graphnn.tensor(x))
    close(up, torch.nn.Upsample(scale_factor=2, mode="nearest-exact")(torch.tensor(x)), "Upsample")


@MODES
def test_binary_cross_entropy_gradient_where_saturated(torch, compiled):
    """A sigmoid output of exactly 0 or 1 (a VAE's saturated pixel) has PyTorch's finite BCE gradient,
    (x - y) / max(x (1 - x), 1e-12), not the NaN of the clamped logs' chain rule; the loss's values are unchanged."""
    x = np.array([[0.0, 1.0, 0.5, 1e-30], [1.0, 0.0, 0.25, 1.0 - 2.0**-40]])
    y = np.array([[0.0, 1.0, 1.0, 1.0], [0.0, 1.0, 0.0, 0.5]])
    w = np.array([1.0, 2.0, 0.5, 1.0])
    for reduction in ("sum", "none"):

        def loss(lib, reduction=reduction):
            t = lib.tensor(y)  # (data: PyTorch's gradient for a target, log(1 - x) - log(x), is infinite there)
            return lambda a: lib.nn.functional.binary_cross_entropy(a, t, lib.tensor(w), reduction=reduction)

        check(torch, loss(graphnn), loss(torch), [x], compiled=compiled)


@MODES
@pytest.mark.parametrize(
    "kw",
    [
        dict(scale_factor=2),
        dict(scale_factor=2, align_corners=True),
        dict(size=(7, 3)),
        dict(scale_factor=1.7),
        dict(size=(1, 1), align_corners=True),
    ],
)
def test_interpolate_bicubic(torch, kw, compiled):
    """Bicubic resizing (super-resolution baselines): Keys' cubic convolution over 4 clamped taps per axis, as one
    weighted sum of gathers per axis (the |weights| as a matrix per axis here). The matrices' entries are rounded in either library: about 8 operations each (16
    roundings of |M_h| |x| |M_w|^T, and of |M_h|^T |g| |M_w| for the gradient), and the source position's rounding,
    u |position| (position below 6 here), moves each of the 4 weights of an axis by up to 1.35 times that (the
    kernel's largest slope): 2 axes * 6 * 4 * 1.35 ~ 65 roundings of the sum of |x| over the taps, T_h |x| T_w^T."""
    from graphnn.nn._vision import _interp_taps

    def _interp_matrix(n_in, n_out, mode, align_corners, scale):
        m = np.zeros((n_out, n_in))
        for idx, w in _interp_taps(n_in, n_out, mode, align_corners, scale):
            np.add.at(m, (np.arange(n_out), idx), w)
        return m

    x = _rng(11).standard_normal((2, 3, 5, 6))
    g = _rng(12).standard_normal(tuple(torch.nn.functional.interpolate(torch.tensor(x), mode="bicubic", **kw).shape))
    mats = []
    for n_in, n_out, d in ((5, g.shape[2], 0), (6, g.shape[3], 1)):
        scale = None if "size" in kw else kw["scale_factor"]
        mats.append(np.abs(_interp_matrix(n_in, n_out, "cubic", kw.get("align_corners", False), scale)))
    outs, grads = [], []
    for lib in (graphnn, torch):
        xt = lib.tensor(x, requires_grad=True)
        f = lambda a, lib=lib: lib.nn.functional.interpolate(a, mode="bicubic", **kw)  # noqa: E731
        y = (graphnn.compile(f) if compiled and lib is graphnn else f)(xt)
        (y * lib.tensor(g)).sum().backward()
        outs.append(y)
        grads.append(xt.grad)
    mh, mw = mats
    th, tw = (m > 0 for m in mats)  # (the taps)

    def tol(a, b, c, d, v):
        return steps_tolerance(np.zeros(1), 16, a @ np.abs(v) @ b) + steps_tolerance(np.zeros(1), 65, c @ np.abs(v) @ d)

    close(outs[0], outs[1], "bicubic", tol(mh, mw.T, th, tw.T, x))
    close(grads[0], grads[1], "d bicubic", tol(mh.T, mw, th.T, tw, g))
    assert compiled or "UpsampleBicubic2DBackward0" in repr(outs[0].grad_fn)


@pytest.mark.parametrize("kw", [dict(size=(3, 4)), dict(size=(10, 12)), dict(scale_factor=0.5)])
def test_interpolate_area(torch, kw):
    x = _rng(13).standard_normal((2, 3, 5, 6))
    for compiled in (False, True):
        check(
            torch,
            lambda a: graphnn.nn.functional.interpolate(a, mode="area", **kw),
            lambda a: torch.nn.functional.interpolate(a, mode="area", **kw),
            [x],
            compiled=compiled,
        )
