"""Ten classic PyTorch example programs (tests/classic_programs.py) run with graphnn in place of torch and give
PyTorch's results: each is built in both libraries, PyTorch's model takes graphnn's initial weights (state_dict),
both train a few steps on the same tiny synthetic data, and the losses, metrics and final weights must agree;
eagerly, and with the program's training-step function under graphnn.compile.

Random numbers drawn while training (dropout masks, the VAE's noise, the GAN's latent vectors) come from each
library's own generator, so PyTorch's are replaced while it trains by draws from a NumPy generator seeded as
graphnn.manual_seed seeds graphnn's, with graphnn's formulas (same_noise): both see the same noise.

Tolerances: a value computed n steps into training may differ by steps_tolerance(value, n * R) (parity_util: n R
roundings relative to the array's largest magnitude), R being the rounding steps of one training step: the
longest accumulation chain of the joint forward and backward graph, counted on the IR an eager graphnn run of the
program's loss records (probe_roundings; what test_gpt.py's step_roundings counts by hand), plus the update's
(UPDATE_ROUNDINGS; a gradient clipping adds the norm's steps(n) + 4). The running error bound of the recorded
graph (tolerance.recorded_bounds) is no use here: over a deep network its worst case, which multiplies the errors
by the absolute values of every layer's weights, grows far beyond any difference two evaluations show. As in
test_gpt.py, errors are assumed not to grow from step to step beyond n R (a few steps of stable training).
"""

from __future__ import annotations

import contextlib
import copy

import numpy as np
import pytest

import classic_programs as cp
import graphnn
from graphnn.autograd import _collect
from graphnn.ir import Graph, grad_graph
from graphnn.ir.registry import graph_flops, node_flops
from graphnn.ir.roundoff import steps
from parity_util import check, close, copy_state, steps_tolerance, to_np

# Roundings of one parameter update: Adam's moments, bias corrections, square root and step (15), Adadelta's two
# running averages, two square roots, a quotient and the step (12), a plain gradient step (2).
UPDATE_ROUNDINGS = {"adam": 15, "adadelta": 12, "sgd": 2}

pytestmark = [
    pytest.mark.filterwarnings("ignore:dropout2d. Received a 2-D input:UserWarning"),
    pytest.mark.filterwarnings("ignore:enable_nested_tensor is True:UserWarning"),
]

MODES = pytest.mark.parametrize("compiled", [False, True], ids=["eager", "compiled"])


# -- the harness ---------------------------------------------------------------------------------------------------
@contextlib.contextmanager
def same_noise(torch, seed: int):
    """While the block runs PyTorch's randn, randn_like, randperm, dropout and dropout2d draw from a NumPy generator
    seeded as graphnn.manual_seed(seed) seeds graphnn's, with graphnn's formulas, so that both libraries see the same
    noise (a DataLoader's iterator draws a base seed from it, as graphnn's and PyTorch's do from their generators)."""
    rng = np.random.default_rng(seed)
    F, loader = torch.nn.functional, torch.utils.data.DataLoader
    saved = {
        (torch, "randn"): torch.randn,
        (torch, "randn_like"): torch.randn_like,
        (torch, "randperm"): torch.randperm,
    }
    saved.update({(F, "dropout"): F.dropout, (F, "dropout2d"): F.dropout2d, (loader, "__iter__"): loader.__iter__})

    def normal(shape, dtype):
        return torch.from_numpy(rng.standard_normal(tuple(shape)).astype(str(dtype).replace("torch.", "")))

    def randn(*size, dtype=None, device=None, **_kw):
        shape = size[0] if len(size) == 1 and isinstance(size[0], (tuple, list)) else size
        return normal(shape, dtype or torch.float32)

    def masked(input, p, training, shape):
        if not training or p == 0.0:
            return input
        if p == 1.0:
            return input * 0.0
        dt = str(input.dtype).replace("torch.", "")
        mask = torch.from_numpy((rng.random(shape) >= p).astype(dt))
        return input * mask * (1.0 / (1.0 - p))

    def dropout(input, p=0.5, training=True, inplace=False):
        return masked(input, p, training, tuple(input.shape))

    def dropout2d(input, p=0.5, training=True, inplace=False):
        keep = 2  # (PyTorch's feature dropout: dimensions 0 and 1 of any input, (N, C) element by element)
        return masked(input, p, training, tuple(input.shape[:keep]) + (1,) * (input.dim() - keep))

    torch.randn, torch.randn_like = randn, lambda t, dtype=None, **_kw: normal(t.shape, dtype or t.dtype)
    torch.randperm = lambda n, **_kw: torch.from_numpy(rng.permutation(n).astype(np.int64))
    F.dropout, F.dropout2d = dropout, dropout2d
    loader_iter = loader.__iter__

    def iterate(self):
        rng.integers(0, 2**63 - 1)
        return loader_iter(self)

    loader.__iter__ = iterate
    graphnn.manual_seed(seed)
    try:
        yield rng  # (for callers that replace more of PyTorch's draws: test_real_programs_b.py)
    finally:
        for (owner, name), fn in saved.items():
            setattr(owner, name, fn)


def _node_steps(node) -> float:
    """Rounding steps one op adds to the chain through it: a reduction of K terms into each result element (K from
    its FLOP rule) steps(K), at least 8, the count of a transcendental function's 4-ulp approximation twice, which is
    what any elementwise op counts (ir/roundoff.py); data movement nothing; an op running a body graph (a scan) the
    body's chain once per evaluation of the body."""
    flops = node_flops(node)
    if not flops:
        return 0.0
    bodies = [a.graph for a in node.attrs.values() if isinstance(getattr(a, "graph", None), Graph)]
    if bodies:
        per_call = graph_flops(bodies[0])
        return flops / per_call * graph_chain(bodies[0]) if per_call else 0.0
    return max(8.0, steps(flops / max(1, sum(o.type.size for o in node.outputs))))


def graph_chain(graph) -> float:
    """Rounding steps on the longest dependency chain from the inputs of `graph` to its outputs."""
    depth: dict = {}
    for n in graph.nodes:
        d = max((depth.get(v.id, 0.0) for v in n.inputs), default=0.0) + _node_steps(n)
        for o in n.outputs:
            depth[o.id] = d
    return max((depth.get(v.id, 0.0) for v in graph.outputs), default=0.0)


def probe_roundings(loss_fn) -> float:
    """Rounding steps of one forward and backward pass: the longest chain of the joint graph of the loss and its
    gradients, built from the IR an eager run of loss_fn() (on copies of the models) records."""
    loss = loss_fn()
    nodes, leaves = _collect([loss._value])
    g = Graph("recorded")
    g.inputs, g.nodes, g.outputs = list(leaves), list(nodes), [loss._value]
    wrt = [v for v in leaves if v.type.is_float and getattr(v.meta.get("tensor"), "requires_grad", False)]
    return graph_chain(grad_graph(g, wrt))


def pair_models(torch, build, *args):
    """The program's model(s) in both libraries, PyTorch's with graphnn's initial weights."""
    graphnn.manual_seed(0)
    g, t = build(graphnn, *args), build(torch, *args)
    for a, b in zip(g if isinstance(g, tuple) else (g,), t if isinstance(t, tuple) else (t,)):
        copy_state(torch, a, b)
    return g, t


def compile_for(compiled: bool):
    return graphnn.compile if compiled else cp._identity


def compare_series(g_values, t_values, what: str, rounds: float, offset: int = 1, dtype: str = "float32") -> None:
    """The i-th values (0-based; numbers or arrays, computed in `dtype`) were computed i + offset steps into
    training."""
    assert len(g_values) == len(t_values), f"{what}: {len(g_values)} values, PyTorch gives {len(t_values)}"
    for i, (a, b) in enumerate(zip(g_values, t_values)):
        a, b = np.asarray(to_np(a), dtype), np.asarray(to_np(b), dtype)
        close(a, b, f"{what} {i}", steps_tolerance(b, rounds * (i + offset)))


def compare_state(g, t, rounds: float, noise: dict | None = None, step_bound: float = 0.0) -> None:
    """Parameters and buffers after training (integer buffers exactly); `noise`: name -> mask of the elements whose
    gradient is rounding noise (noise_gradients), which each library may move by up to `step_bound`."""
    g_sd, t_sd = g.state_dict(), t.state_dict()
    assert list(g_sd) == list(t_sd)
    for k in g_sd:
        tol = steps_tolerance(t_sd[k], rounds)
        if noise and k in noise:
            tol = tol + np.where(noise[k], 2 * step_bound, 0.0)
        close(g_sd[k], t_sd[k], k, tol)


def noise_gradients(loss_fn, model, rounds: float) -> dict:
    """name -> mask of the parameter elements whose gradient (one eager backward pass of loss_fn() on `model`, a
    copy) is within `rounds` roundings of the model's largest gradient from zero: a gradient that is zero in exact
    arithmetic (a bias that a normalization removes) is rounding noise there, which Adam's normalized update turns
    into steps as large as the learning rate, in either library."""
    loss_fn().backward()
    grads = {k: np.abs(to_np(p.grad)) for k, p in model.named_parameters() if p.grad is not None}
    largest = max(g.max() for g in grads.values())
    floor = steps_tolerance(np.asarray(largest), rounds)
    return {k: g <= floor for k, g in grads.items()}


def adam_step_bound(lr: float, betas: tuple) -> float:
    """The largest change of one parameter element in one Adam step: lr * max(1, (1 - beta1) / sqrt(1 - beta2))
    (Kingma & Ba, Adam, section 2.1)."""
    return lr * max(1.0, (1 - betas[0]) / np.sqrt(1 - betas[1]))


def _rng(seed=0):
    return np.random.default_rng(seed)


# -- 1. MNIST CNN --------------------------------------------------------------------------------------------------
def _digits(n: int, size: int, seed: int):
    r = _rng(seed)
    labels = r.integers(0, 10, n)
    images = r.standard_normal((n, 1, size, size)).astype(np.float32) * 0.3
    for i, k in enumerate(labels):  # a class-dependent bright row, so that the classes can be learnt
        images[i, 0, k % size] += 2.0
    return images, labels


@MODES
def test_mnist_cnn(torch, compiled, tmp_path):
    g, t = pair_models(torch, cp.build_mnist_cnn)
    images, labels = _digits(40, 12, 1)
    gm = copy.deepcopy(g)
    rounds = (
        probe_roundings(
            lambda: graphnn.nn.functional.nll_loss(gm(graphnn.tensor(images[:8])), graphnn.tensor(labels[:8]))
        )
        + UPDATE_ROUNDINGS["adadelta"]
    )
    (tmp_path / "g").mkdir()
    (tmp_path / "t").mkdir()
    with same_noise(torch, 7):
        t_res = cp.train_mnist_cnn(torch, t, torch.tensor(images), torch.tensor(labels), str(tmp_path / "t"))
    graphnn.manual_seed(7)
    g_res = cp.train_mnist_cnn(
        graphnn, g, graphnn.tensor(images), graphnn.tensor(labels), str(tmp_path / "g"), compile=compile_for(compiled)
    )
    compare_series(g_res["losses"], t_res["losses"], "loss", rounds)
    compare_series(g_res["test_losses"], t_res["test_losses"], "test loss", rounds, offset=3)
    assert g_res["correct"] == t_res["correct"]
    compare_state(g, t, rounds * 6)
    saved = graphnn.load(str(tmp_path / "g" / "mnist_cnn.pt"))
    assert list(saved) == list(t.state_dict())
    close(saved["fc2.bias"], t.state_dict()["fc2.bias"], "saved fc2.bias", steps_tolerance(t.fc2.bias, rounds * 6))


# -- 2. MNIST RNN --------------------------------------------------------------------------------------------------
@MODES
def test_mnist_rnn(torch, compiled):
    g, t = pair_models(torch, cp.build_mnist_rnn)
    images, labels = _digits(24, 12, 2)
    gm = copy.deepcopy(g)
    rounds = (
        probe_roundings(
            lambda: graphnn.nn.functional.nll_loss(gm(graphnn.tensor(images[:8])), graphnn.tensor(labels[:8]))
        )
        + UPDATE_ROUNDINGS["adadelta"]
    )
    with same_noise(torch, 3):
        t_res = cp.train_mnist_rnn(torch, t, torch.tensor(images), torch.tensor(labels))
    graphnn.manual_seed(3)
    g_res = cp.train_mnist_rnn(graphnn, g, graphnn.tensor(images), graphnn.tensor(labels), compile_for(compiled))
    compare_series(g_res["losses"], t_res["losses"], "loss", rounds)
    assert g_res["correct"] == t_res["correct"]
    compare_state(g, t, rounds * 6)


# -- 3. DCGAN ------------------------------------------------------------------------------------------------------
@MODES
def test_dcgan(torch, compiled, tmp_path):
    (g_g, g_d), (t_g, t_d) = pair_models(torch, cp.build_dcgan)
    images = np.tanh(_rng(3).standard_normal((8, cp.NC, 16, 16))).astype(np.float32)
    gg, gd = copy.deepcopy(g_g), copy.deepcopy(g_d)
    noise = graphnn.tensor(_rng(4).standard_normal((4, cp.NZ, 1, 1)).astype(np.float32))
    rounds = probe_roundings(lambda: graphnn.nn.BCELoss()(gd(gg(noise)), graphnn.ones(4))) + UPDATE_ROUNDINGS["adam"]
    (tmp_path / "g").mkdir()
    (tmp_path / "t").mkdir()
    with same_noise(torch, 5):
        t_res = cp.train_dcgan(torch, (t_g, t_d), torch.tensor(images), str(tmp_path / "t"))
    graphnn.manual_seed(5)
    g_res = cp.train_dcgan(graphnn, (g_g, g_d), graphnn.tensor(images), str(tmp_path / "g"), compile_for(compiled))
    compare_series(g_res["history"], t_res["history"], "errD, errG, D(x), D(G(z))", rounds)
    compare_series([g_res["fake"]], [t_res["fake"]], "generated", rounds, offset=4)
    compare_state(g_g, t_g, rounds * 4)
    compare_state(g_d, t_d, rounds * 4)
    assert list(graphnn.load(str(tmp_path / "g" / "netG.pth"))) == list(t_g.state_dict())


# -- 4. fast neural style ------------------------------------------------------------------------------------------
@MODES
def test_fast_neural_style(torch, compiled, tmp_path):
    (g_tr, g_ft), (t_tr, t_ft) = pair_models(torch, cp.build_style)
    r = _rng(6)
    images = r.uniform(0, 255, (8, 3, 12, 12)).astype(np.float32)
    style = r.uniform(0, 255, (1, 3, 12, 12)).astype(np.float32)
    gt, gf = copy.deepcopy(g_tr), copy.deepcopy(g_ft)

    def probe():
        x = graphnn.tensor(images[:4])
        y = cp.normalize_batch(gt(x.clone()))
        fy, fx = gf(y), gf(cp.normalize_batch(x.clone()))
        fs = gf(cp.normalize_batch(graphnn.tensor(style).repeat(4, 1, 1, 1)))
        loss = 1e5 * graphnn.nn.functional.mse_loss(fy.relu2_2, fx.relu2_2)
        for a, b in zip(fy, fs):
            loss = loss + 1e10 * graphnn.nn.functional.mse_loss(cp.gram_matrix(a), cp.gram_matrix(b))
        return loss

    rounds = probe_roundings(probe) + UPDATE_ROUNDINGS["adam"]
    gt = copy.deepcopy(g_tr)
    noise = noise_gradients(probe, gt, rounds)
    assert noise["conv1.conv2d.bias"].all()  # removed by the instance normalization that follows
    t_res = cp.train_style(torch, (t_tr, t_ft), torch.tensor(images), torch.tensor(style), str(tmp_path))
    g_res = cp.train_style(
        graphnn, (g_tr, g_ft), graphnn.tensor(images), graphnn.tensor(style), str(tmp_path), compile_for(compiled)
    )
    compare_series(g_res["history"], t_res["history"], "content and style loss", rounds)
    compare_series([g_res["stylized"]], [t_res["stylized"]], "stylized", rounds, offset=2)
    compare_state(g_tr, t_tr, rounds * 2, noise, 2 * adam_step_bound(1e-3, (0.9, 0.999)))


# -- 5. word language model ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("model_type", ["LSTM", "GRU", "RNN_TANH", "Transformer"])
@MODES
def test_word_language_model(torch, model_type, compiled):
    g, t = pair_models(torch, cp.build_word_lm, model_type)
    tokens = _rng(7).integers(0, 29, 110)
    gm = copy.deepcopy(g)

    def probe():
        data = graphnn.tensor(tokens[:20].reshape(5, 4))
        target = graphnn.tensor(tokens[1:21].reshape(5, 4)).view(-1)
        if model_type == "Transformer":
            out = gm(data).view(-1, 29)
        else:
            out, _ = gm(data, gm.init_hidden(4))
        return graphnn.nn.functional.nll_loss(out, target)

    n = sum(p.numel() for p in g.parameters())
    rounds = probe_roundings(probe) + steps(n) + 4 + UPDATE_ROUNDINGS["sgd"]
    # lr 5 (the README's for the Transformer): with the default 20 and clipping at 0.25 a step moves the weights
    # by up to 5 in norm, and rounding differences grow from step to step, which the tolerance does not allow for
    lr = 5.0
    t_res = cp.train_word_lm(torch, t, torch.tensor(tokens), model_type, lr)
    g_res = cp.train_word_lm(graphnn, g, graphnn.tensor(tokens), model_type, lr, compile=compile_for(compiled))
    compare_series(g_res["losses"], t_res["losses"], "loss", rounds)
    compare_series(g_res["val_losses"], t_res["val_losses"], "validation loss", rounds, offset=5)
    compare_state(g, t, rounds * 10)


# -- 6. forward-forward --------------------------------------------------------------------------------------------
@MODES
def test_forward_forward(torch, compiled):
    g, t = pair_models(torch, cp.build_forward_forward)
    r = _rng(8)
    x, y = r.uniform(0, 1, (16, 20)).astype(np.float32), r.integers(0, 10, 16)
    gm = copy.deepcopy(g)
    xp = cp.overlay_y_on_x(graphnn, graphnn.tensor(x), graphnn.tensor(y))
    layer = gm.layers[0]
    rounds = (
        probe_roundings(lambda: graphnn.log(1 + graphnn.exp(-layer(xp).pow(2).mean(1) + 2.0)).mean()) * len(g.layers)
        + UPDATE_ROUNDINGS["adam"]
    )
    with same_noise(torch, 9):
        t_res = cp.train_forward_forward(torch, t, torch.tensor(x), torch.tensor(y))
    graphnn.manual_seed(9)
    g_res = cp.train_forward_forward(graphnn, g, graphnn.tensor(x), graphnn.tensor(y), compile_for(compiled))
    compare_series(g_res["losses"], t_res["losses"], "loss", rounds)
    assert g_res["error"] == t_res["error"]
    compare_state(g, t, rounds * 10)


# -- 7. time-sequence prediction -----------------------------------------------------------------------------------
def _sine_waves(n: int, length: int) -> np.ndarray:
    x = np.arange(length) + _rng(9).integers(-20, 20, (n, 1))
    return np.sin(x / 4.0).astype(np.float64)


@MODES
def test_time_sequence_prediction(torch, compiled):
    g, t = pair_models(torch, cp.build_sequence)
    data = _sine_waves(7, 12)
    gm = copy.deepcopy(g)
    x, y = graphnn.from_numpy(data[3:, :-1]), graphnn.from_numpy(data[3:, 1:])
    # L-BFGS: each closure evaluation, plus the two-loop recursion's dot products over every parameter per
    # history entry (history_size 100 > the evaluations here, so each earlier evaluation's)
    n = sum(p.numel() for p in g.parameters())
    per_eval = probe_roundings(lambda: graphnn.nn.MSELoss()(gm(x), y))
    t_res = cp.train_sequence(torch, t, data)
    g_res = cp.train_sequence(graphnn, g, data, compile=compile_for(compiled))
    evals = len(t_res["losses"])
    rounds = per_eval + evals * (2 * steps(n) + 6)
    compare_series(g_res["losses"], t_res["losses"], "closure loss", rounds, dtype="float64")
    compare_series(g_res["test_losses"], t_res["test_losses"], "test loss", rounds * evals, dtype="float64")
    compare_series([g_res["prediction"]], [t_res["prediction"]], "prediction", rounds * evals, dtype="float64")
    compare_state(g, t, rounds * evals)


# -- 8. VAE --------------------------------------------------------------------------------------------------------
@MODES
def test_vae(torch, compiled):
    g, t = pair_models(torch, cp.build_vae)
    images = (_rng(10).uniform(0, 1, (16, 1, 6, 6)) > 0.6).astype(np.float32)
    gm = copy.deepcopy(g)

    def probe():
        recon, mu, logvar = gm(graphnn.tensor(images[:8]))
        return cp.vae_loss_function(graphnn, recon, graphnn.tensor(images[:8]), mu, logvar)

    rounds = probe_roundings(probe) + UPDATE_ROUNDINGS["adam"]
    with same_noise(torch, 11):
        t_res = cp.train_vae(torch, t, torch.tensor(images))
    graphnn.manual_seed(11)
    g_res = cp.train_vae(graphnn, g, graphnn.tensor(images), compile_for(compiled))
    compare_series(g_res["losses"], t_res["losses"], "loss", rounds)
    compare_series([g_res["test_loss"]], [t_res["test_loss"]], "test loss", rounds, offset=4)
    compare_series([g_res["sample"]], [t_res["sample"]], "sample", rounds, offset=4)
    compare_state(g, t, rounds * 4)


# -- 9. polynomial regression --------------------------------------------------------------------------------------
@MODES
def test_polynomial_regression(torch, compiled):
    g, t = pair_models(torch, cp.build_poly)
    gm = copy.deepcopy(g)
    feats = cp.make_features(graphnn, graphnn.tensor(_rng(12).standard_normal(32).astype(np.float32)))
    w = graphnn.tensor(_rng(13).standard_normal((cp.POLY_DEGREE, 1)).astype(np.float32))
    rounds = (
        probe_roundings(lambda: graphnn.nn.functional.smooth_l1_loss(gm(feats), feats.mm(w) + 1.0))
        + UPDATE_ROUNDINGS["sgd"]
    )
    with same_noise(torch, 12):
        t_res = cp.train_poly(torch, t)
    graphnn.manual_seed(12)
    g_res = cp.train_poly(graphnn, g, compile=compile_for(compiled))
    compare_series(g_res["losses"], t_res["losses"], "loss", rounds)
    compare_series([g_res["weight"], g_res["bias"]], [t_res["weight"], t_res["bias"]], "weights", rounds * 7)
    assert g_res["learned"].startswith("y = ") and g_res["learned"].count("x^") == cp.POLY_DEGREE


# -- 10. super-resolution ------------------------------------------------------------------------------------------
@MODES
def test_super_resolution(torch, compiled):
    g, t = pair_models(torch, cp.build_super_resolution)
    r = _rng(13)
    high = r.uniform(0, 1, (8, 1, 8, 8)).astype(np.float32)
    low = high.reshape(8, 1, 4, 2, 4, 2).mean((3, 5))
    gm = copy.deepcopy(g)
    rounds = (
        probe_roundings(lambda: graphnn.nn.MSELoss()(gm(graphnn.tensor(low[:4])), graphnn.tensor(high[:4])))
        + UPDATE_ROUNDINGS["adam"]
    )
    t_res = cp.train_super_resolution(torch, t, torch.tensor(low), torch.tensor(high))
    g_res = cp.train_super_resolution(graphnn, g, graphnn.tensor(low), graphnn.tensor(high), compile_for(compiled))
    compare_series(g_res["losses"], t_res["losses"], "loss", rounds)
    compare_series(g_res["psnr"], t_res["psnr"], "PSNR", rounds * 2, offset=1)
    compare_state(g, t, rounds * 4)


def test_super_resolution_initialization_is_orthogonal(torch):
    """The program's init: orthogonal rows scaled by calculate_gain('relu') = sqrt(2), as PyTorch's."""
    graphnn.manual_seed(0)
    net = cp.build_super_resolution(graphnn)
    w = to_np(net.conv2.weight).reshape(8, -1)
    gain = torch.nn.init.calculate_gain("relu")
    assert graphnn.nn.init.calculate_gain("relu") == gain
    close(w @ w.T, gain**2 * np.eye(8), "W W^T", steps_tolerance(np.float32(gain**2), 2 * w.shape[1]))


# -- what the programs ask of the library beyond layers ------------------------------------------------------------
def test_platform_queries_answer_as_a_cpu_only_pytorch(torch):
    """Device and backend queries answer as a CPU-only PyTorch does, and the switches programs set (cudnn.benchmark,
    deterministic algorithms) are accepted."""
    import graphnn.backends.cudnn as cudnn

    for lib in (graphnn, torch):
        assert not lib.cuda.is_available() and not lib.backends.mps.is_available()
        assert not lib.backends.cudnn.is_available()
        assert not lib.accelerator.is_available() and lib.accelerator.current_accelerator() is None
        assert lib.accelerator.device_count() == 0
        lib.use_deterministic_algorithms(True)
        assert lib.are_deterministic_algorithms_enabled()
        lib.use_deterministic_algorithms(False)
        assert not lib.are_deterministic_algorithms_enabled()
    cudnn.benchmark = True
    assert graphnn.backends.cudnn.benchmark
    cudnn.benchmark = False


def test_data_parallel_runs_the_module(torch):
    g, t = pair_models(torch, lambda lib: lib.nn.DataParallel(lib.nn.Linear(3, 2)))
    assert list(g.state_dict()) == list(t.state_dict()) == ["module.weight", "module.bias"]
    x = _rng(14).standard_normal((4, 3)).astype(np.float32)
    out = g(graphnn.tensor(x))
    close(out, g.module(graphnn.tensor(x)), "DataParallel output")
    close(graphnn.nn.parallel.data_parallel(g.module, graphnn.tensor(x)), out, "data_parallel output")


def test_formatting_iterating_and_random_permutations(torch):
    for lib in (graphnn, torch):
        w = lib.tensor([1.5, -2.25])
        assert ["{:+.2f}".format(v) for v in w] == ["+1.50", "-2.25"]
        assert f"{lib.tensor(0.125):.3f}" == "0.125"
        with pytest.raises(TypeError, match="unsupported format string"):
            "{:.2f}".format(w)
    graphnn.manual_seed(3)
    p = graphnn.randperm(10)
    assert p.dtype_name == "int64" and sorted(to_np(p).tolist()) == list(range(10))
    gen = graphnn.Generator().manual_seed(4)
    assert to_np(graphnn.randperm(6, generator=gen)).tolist() == np.random.default_rng(4).permutation(6).tolist()
    step = graphnn.compile(lambda x: x[graphnn.randperm(8)])
    a, b = to_np(step(graphnn.arange(8.0))), to_np(step(graphnn.arange(8.0)))
    assert sorted(a.tolist()) == sorted(b.tolist()) == list(range(8)) and (a != b).any()  # drawn at every call
    x = graphnn.zeros(3, 4)
    x[range(3), graphnn.tensor([0, 2, 3])] = 1.0  # a range indexes as a list does
    assert to_np(x).tolist() == [[1, 0, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]]


def _module_functions(L, a, b):
    """Functions of the torch module that programs call (torch.gt(a, b), ...), and a continuous-Bernoulli style
    log-normalizer built from them (as a VAE variant writes it)."""
    lam = L.sigmoid(a)
    outside = L.max(L.le(lam, 0.4), L.gt(lam, 0.6))
    cut = L.where(outside, lam, 0.4 * L.ones_like(lam))
    log_norm = L.log(L.abs(2.0 * (0.5 * (L.log1p(1 - 2.0 * cut) - L.log1p(2.0 * cut - 1))))) - L.log(
        L.abs(1 - 2.0 * cut)
    )
    taylor = L.log(L.tensor(2.0, dtype=lam.dtype)) + 4.0 / 3.0 * L.pow(lam - 0.5, 2)
    return (
        L.where(outside, log_norm, taylor),
        L.lt(a, b),
        L.ge(a, 0.1),
        L.eq(a, a),
        L.ne(a, b),
        L.add(a, b, alpha=2),
        L.sub(a, b),
        L.mul(a, 3.0),
        L.div(a, L.abs(b) + 1),
        L.norm(a),
        L.std(a),
        L.var(a, 0),
        L.logical_and(L.gt(a, 0), L.gt(b, 0)),
        L.logical_or(L.gt(a, 0), L.gt(b, 0)),
        L.logical_not(L.gt(a, 0)),
        L.clip(a, -0.5, 0.5),
        L.sin(a) + L.cos(b),
        L.expm1(a) + L.rsqrt(L.abs(b) + 1) + L.erf(a),
        L.clone(a) * 2,
        L.detach(a) + 0,
    )


@MODES
def test_module_level_functions(torch, compiled):
    r = _rng(15)
    check(
        torch,
        lambda a, b: _module_functions(graphnn, a, b),
        lambda a, b: _module_functions(torch, a, b),
        [r.standard_normal((3, 4)), r.standard_normal((3, 4))],
        compiled=compiled,
    )


def test_what_the_word_language_model_scripts_call(torch, tmp_path):
    """Its corpus reader's tensor(ids).type(int64), its generator's randint(high, size), flatten_parameters()
    after loading, the whole model saved with torch.save and loaded with weights_only=False, and `import torch.onnx`
    for its optional export (which graphnn refuses clearly)."""
    import graphnn.onnx

    for lib in (graphnn, torch):
        ids = lib.tensor([3, 1, 2]).type(lib.int64)
        assert ids.dtype == lib.int64 and ids.type(lib.float64).dtype == lib.float64
        assert ids.type("torch.FloatTensor").dtype == lib.float32 and ids.type_as(lib.zeros(1)).dtype == lib.float32
        assert ids.type().endswith(".LongTensor") and lib.zeros(2).type().endswith(".FloatTensor")
        assert tuple(lib.randint(7, (1, 1), dtype=lib.long).shape) == (1, 1)
        x = lib.randint(2, 7, (50,))
        assert 2 <= int(x.min()) and int(x.max()) < 7
    rnn = graphnn.nn.LSTM(3, 4, 2)
    with open(tmp_path / "model.pt", "wb") as f:
        graphnn.save(rnn, f)
    with open(tmp_path / "model.pt", "rb") as f:
        model = graphnn.load(f, weights_only=False)
    model.flatten_parameters()
    x = graphnn.randn(5, 2, 3)
    close(model(x)[0], rnn(x)[0], "reloaded LSTM")
    with pytest.raises(NotImplementedError, match="does not write ONNX"):
        graphnn.onnx.export(model, (x,), str(tmp_path / "m.onnx"))
