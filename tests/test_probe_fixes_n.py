"""Fixes of session n's findings: register tiles that fit 16 vector registers, and what the probes of unseen programs
found (hooks, parametrizations, module API, spatial transformers)."""

import warnings

import numpy as np
import pytest

import graphnn
import graphnn.nn as nn
import graphnn.nn.modules.module as module_api
from graphnn.codegen import gemm


@pytest.mark.parametrize("registers, budget", [(16, 12), (32, 16)])
def test_register_tiles_fit_the_targets_vector_registers(monkeypatch, registers, budget):
    """With AVX2's 16 vector registers a 4 x 4 dot tile (16 accumulators and 8 loaded vectors) spilled on every k
    step: accumulators stay within the budget that leaves registers for the operands."""
    monkeypatch.setattr(gemm, "vector_registers", lambda: registers)
    for m in (1, 2, 3, 4, 7, 64):
        mr, nr = gemm.dot_tile_shape(m)
        assert mr * nr <= budget and mr <= max(m, 1) + 3
    for m in (8, 16, 24, 64, 100, 128, 1000, 1024):  # 2 MR accumulators, two vectors of B and a broadcast of A
        assert 2 * gemm.gemm_rows_per_tile(m) + 3 <= registers


def test_hooks_added_after_a_compiled_call_that_sets_train_mode_run():
    """A step calling model.train() itself skipped the module's hook guard with its training-flag guard: a hook
    added (or removed) later never ran (a feature-extraction dict stopped filling)."""
    m = nn.Sequential(nn.Linear(4, 3), nn.ReLU())

    def f(x):
        m.train()
        return m(x)

    cf = graphnn.compile(f)
    x = graphnn.ones(2, 4)
    plain = cf(x).detach().numpy()
    h = m[1].register_forward_hook(lambda mod, args, out: out * 0 + 7)
    np.testing.assert_array_equal(cf(x).detach().numpy(), np.full((2, 3), 7.0, np.float32))
    h.remove()
    np.testing.assert_array_equal(cf(x).detach().numpy(), plain)


def test_global_forward_hooks_run_for_every_module_eagerly_and_compiled():
    m = nn.Sequential(nn.Linear(4, 3), nn.ReLU())
    seen = []
    pre = module_api.register_module_forward_pre_hook(lambda mod, args: seen.append("pre " + type(mod).__name__))
    post = module_api.register_module_forward_hook(lambda mod, args, out: seen.append(type(mod).__name__))
    try:
        x = graphnn.ones(2, 4)
        m(x)
        eager = list(seen)
        assert eager == ["pre Sequential", "pre Linear", "Linear", "pre ReLU", "ReLU", "Sequential"]
        seen.clear()
        graphnn.compile(m)(x)  # (hooks run while tracing)
        assert seen == eager
    finally:
        pre.remove()
        post.remove()
    seen.clear()
    m(x)
    assert seen == []


def test_a_global_forward_hook_replaces_the_output_in_compiled_code():
    m = nn.Linear(4, 3)
    c = graphnn.compile(m)
    x = graphnn.ones(2, 4)
    plain = c(x).detach().numpy()
    with module_api.register_module_forward_hook(lambda mod, args, out: out * 2):
        np.testing.assert_allclose(c(x).detach().numpy(), 2 * plain, rtol=1e-6)
    np.testing.assert_allclose(c(x).detach().numpy(), plain, rtol=1e-6)


@pytest.mark.parametrize("kind", ["matrix_exp", "cayley"])
def test_orthogonal_without_trivialization_starts_from_the_identity_map(kind):
    """right_inverse raising NotImplementedError counts as the identity (as PyTorch): it raised."""
    lin = nn.utils.parametrizations.orthogonal(nn.Linear(4, 4), orthogonal_map=kind, use_trivialization=False)
    w = lin.weight.detach().numpy()
    np.testing.assert_allclose(w @ w.T, np.eye(4), atol=1e-5)


def test_vector_to_parameters_rebinds_data_and_load_state_dict_keys_are_a_namedtuple():
    p = nn.Parameter(graphnn.ones(3))
    before = p.detach()
    nn.utils.vector_to_parameters(graphnn.zeros(3), [p])
    np.testing.assert_array_equal(p.detach().numpy(), np.zeros(3, np.float32))
    np.testing.assert_array_equal(before.numpy(), np.ones(3, np.float32))  # (as PyTorch's `p.data = ...`)
    m = nn.Linear(2, 2)
    keys = m.load_state_dict({"weight": m.weight.detach().clone()}, strict=False)
    assert keys._fields == ("missing_keys", "unexpected_keys")
    assert keys._asdict() == {"missing_keys": ["bias"], "unexpected_keys": []}
    missing, unexpected = keys
    assert missing == ["bias"] and unexpected == []


@pytest.mark.parametrize("size", [(1, 1, 1, 3), (1, 1, 3, 1), (1, 1, 1, 1), (1, 1, 2, 3)])
@pytest.mark.parametrize("align_corners", [True, False])
def test_affine_grid_over_a_unit_size_dimension_as_pytorch(torch, size, align_corners):
    """A dimension of size 1 has its one base coordinate at 0 (it was -1 with align_corners)."""
    theta = np.array([[[1.0, 0.5, 0.2], [0.3, 1.0, 0.1]]], np.float32)
    with warnings.catch_warnings():  # (PyTorch warns that unit-size grids are not an intended use)
        warnings.simplefilter("ignore")
        want = torch.nn.functional.affine_grid(torch.tensor(theta), list(size), align_corners=align_corners)
    got = nn.functional.affine_grid(graphnn.tensor(theta), list(size), align_corners=align_corners)
    np.testing.assert_allclose(got.numpy(), want.numpy(), atol=1e-6)


def test_nearest_grid_sample_depends_on_the_grid_with_zero_gradient():
    """As PyTorch: the output requires grad through the grid alone, whose gradient is zeros (it was None: weight
    decay and momentum skipped a spatial transformer's localization net)."""
    theta = nn.Parameter(graphnn.tensor([[[1.1, 0.1, 0.05], [0.0, 0.9, 0.1]]]))
    grid = nn.functional.affine_grid(theta, [1, 1, 5, 5], align_corners=False)
    img = graphnn.tensor(np.random.default_rng(0).random((1, 1, 5, 5), np.float32))
    y = nn.functional.grid_sample(img, grid, mode="nearest", align_corners=False)
    assert y.requires_grad
    y.sum().backward()
    np.testing.assert_array_equal(theta.grad.numpy(), np.zeros((1, 2, 3), np.float32))


def test_bool_arguments_compile_a_bounded_number_of_programs():
    """Per-token teacher-forcing flags passed as a tuple of bools compiled every new combination (20 steps of a
    seq2seq took 44 s, PyTorch 1.3 s): as numbers, NUMBER_VALUES combinations are compiled, the others run eagerly
    after one warning (torch.compile's recompile limit)."""
    from graphnn.compiler.program import NUMBER_VALUES

    lin = nn.Linear(4, 4)

    def step(x, flags):
        for f in flags:
            x = lin(x) if f else x * 2
        return x.sum()

    c = graphnn.compile(step)
    x = graphnn.randn(2, 4)
    combos = [tuple(bool(i >> b & 1) for b in range(4)) for i in range(16)]
    with pytest.warns(graphnn.TraceWarning, match="int, float or bool"):
        got = [c(x, f).item() for f in combos]
    for f, g in zip(combos, got):
        assert g == pytest.approx(step(x, f).item(), rel=1e-5, abs=1e-5)
    assert c.cache.programs == NUMBER_VALUES


@pytest.mark.parametrize("padding_mode", ["zeros", "border", "reflection"])
@pytest.mark.parametrize("align_corners", [False, True])
def test_bicubic_grid_sample_as_pytorch_with_gradients(torch, padding_mode, align_corners):
    """grid_sample(mode="bicubic") raised NotImplementedError. float64: sums of 16 taps of weights below 1.3, a few
    ulps; the grid's gradient sums those of up to 16 taps over 3 channels."""
    rng = np.random.default_rng(0)
    img = rng.standard_normal((2, 3, 6, 7))
    grid = rng.random((2, 5, 4, 2)) * 2.6 - 1.3
    res = []
    for lib in (torch, graphnn):
        x, g = lib.tensor(img, requires_grad=True), lib.tensor(grid, requires_grad=True)
        y = lib.nn.functional.grid_sample(x, g, mode="bicubic", padding_mode=padding_mode, align_corners=align_corners)
        (y * y).sum().backward()
        res.append((y.detach().numpy(), x.grad.numpy(), g.grad.numpy()))
    for got, want in zip(res[1], res[0]):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12 * np.abs(want).max())


@pytest.mark.parametrize("mode", ["bilinear", "nearest"])
@pytest.mark.parametrize("padding_mode", ["zeros", "border", "reflection"])
def test_volumetric_affine_grid_and_grid_sample_as_pytorch(torch, mode, padding_mode):
    """3-D spatial transformers (5-D inputs; "bilinear" is trilinear) raised NotImplementedError. float64."""
    rng = np.random.default_rng(1)
    img, theta = rng.standard_normal((2, 3, 5, 6, 7)), rng.standard_normal((2, 3, 4)) * 0.6
    res = []
    for lib in (torch, graphnn):
        x, t = lib.tensor(img, requires_grad=True), lib.tensor(theta, requires_grad=True)
        grid = lib.nn.functional.affine_grid(t, [2, 3, 4, 3, 5], align_corners=False)
        y = lib.nn.functional.grid_sample(x, grid, mode=mode, padding_mode=padding_mode, align_corners=False)
        (y * y).sum().backward()
        res.append((grid.detach().numpy(), y.detach().numpy(), x.grad.numpy(), t.grad.numpy()))
    for got, want in zip(res[1], res[0]):
        np.testing.assert_allclose(got, want, rtol=1e-11, atol=1e-11 * max(1.0, np.abs(want).max()))


@pytest.mark.parametrize("how", ["no_grad", "data"])
def test_an_argument_changed_in_place_without_gradient_stays_a_leaf_in_compiled_code(how):
    """`with no_grad(): x.mul_(2)` (or x.data.mul_(2)) on an argument that requires grad, then a backward in the
    same compiled call: x.grad was None (its new value was cut from the argument); eagerly and in PyTorch 2x."""

    def f(x):
        if how == "no_grad":
            with graphnn.no_grad():
                x.mul_(2)
        else:
            x.data.mul_(2)
        (x * x).sum().backward()

    for run in (f, graphnn.compile(f)):
        for _ in range(2):
            x = graphnn.ones(3, requires_grad=True)
            run(x)
            np.testing.assert_array_equal(x.detach().numpy(), [2.0, 2.0, 2.0])
            np.testing.assert_array_equal(x.grad.numpy(), [4.0, 4.0, 4.0])


def test_slices_and_sums_of_sizes_are_sizes():
    s = graphnn.ones(2, 3, 4).shape
    assert isinstance(s[1:], graphnn.Size) and s[1:].numel() == 12
    assert isinstance(s + (5,), graphnn.Size) and (1,) + s == (1, 2, 3, 4) and isinstance((1,) + s, graphnn.Size)
    assert isinstance(s * 2, graphnn.Size) and s * 2 == (2, 3, 4, 2, 3, 4) and s[0] == 2


def test_dropout2d_of_a_2d_input_drops_elements_as_pytorch():
    """PyTorch's feature dropout keeps dimensions 0 and 1: a 2-D (N, C) input (an RNN's features) is dropped
    element by element; whole rows were dropped."""
    graphnn.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # (PyTorch's deprecation warning for 2-D inputs)
        y = nn.Dropout2d(0.5)(graphnn.ones(64, 32)).numpy()
    zeros = (y == 0).sum(axis=1)
    assert set(np.unique(y)) <= {0.0, 2.0}
    assert ((zeros > 0) & (zeros < 32)).sum() > 60  # rows mix kept and dropped elements (all-or-none: 0 of 64)


def test_grad_fn_names_of_products_reductions_and_losses_as_pytorch(torch):
    """Printed losses and results show PyTorch's grad_fn names (a probe found ten that differed)."""

    def names(lib):
        F = lib.nn.functional
        x = lib.tensor(np.arange(12.0).reshape(4, 3) / 7 - 0.5, dtype=lib.float32, requires_grad=True)
        t, v = lib.ones(4, 3), lib.tensor([0.5, -1.0, 2.0], requires_grad=True)
        img = lib.tensor(np.linspace(-1, 1, 96).reshape(2, 3, 4, 4), dtype=lib.float32, requires_grad=True)
        out = [v @ v, x @ v, x[0] @ x.t(), x.reshape(2, 2, 3) @ x.reshape(2, 3, 2), x.reshape(2, 2, 3) @ v]
        out += [x.reshape(12), x.t().reshape(12), x.var(), x.var(1), x.min(), x.max()]
        out += [F.l1_loss(x, t, reduction=r) for r in ("mean", "sum", "none")]
        lp, q = F.log_softmax(x, 1), F.softmax(t, 1)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # (reduction="mean"'s warning)
            out += [F.kl_div(lp, q, reduction=r) for r in ("mean", "sum", "none", "batchmean")]
        out += [
            F.adaptive_avg_pool2d(img, 1),
            F.adaptive_avg_pool2d(img, 2),
            F.adaptive_avg_pool3d(img.unsqueeze(0), 1),
        ]
        return [type(o.grad_fn).__name__ if lib is torch else o.grad_fn.name() for o in out]

    assert names(graphnn) == names(torch)


@pytest.mark.parametrize("scale, eps", [(1e-5, 1e-3), (1.0, 1e-8), (0.0, 1e-8)])
def test_cosine_similarity_gradient_below_eps_as_pytorch(torch, scale, eps):
    """PyTorch clamps the norms without gradient: below eps the gradient is the unclamped norm's (it was the clamp's:
    -67.8 where PyTorch gives -80.7). float64: a few ulps of gradients up to 1 / eps."""
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((3, 4)) * scale, rng.standard_normal((3, 4))
    res = []
    for lib in (torch, graphnn):
        x, y = lib.tensor(a, requires_grad=True), lib.tensor(b, requires_grad=True)
        out = lib.nn.functional.cosine_similarity(x, y, dim=1, eps=eps)
        (out * lib.tensor([1.0, 2.0, 3.0], dtype=lib.float64)).sum().backward()
        res.append((out.detach().numpy(), x.grad.numpy(), y.grad.numpy()))
    for got, want in zip(res[1], res[0]):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14 / eps)


def test_compiled_ex_factorizations_report_failing_matrices(torch):
    """cholesky_ex / inv_ex inside graphnn.compile reported info 0 for any matrix (the compiled code had no values):
    the GP's "add jitter while info != 0" never fired. The info is now computed by the compiled code (factor_info),
    as eagerly and as PyTorch's, and the failing matrices' factors are NaN."""
    good, bad = [[2.0, 1.0], [1.0, 2.0]], [[1.0, 2.0], [2.0, 1.0]]
    chol = graphnn.compile(lambda k: graphnn.linalg.cholesky_ex(k))
    for mats in ([good], [bad], [good, bad], [bad, good]):
        a = np.array(mats, np.float32)
        got, want = chol(graphnn.tensor(a)), torch.linalg.cholesky_ex(torch.tensor(a))
        assert got.info.tolist() == want.info.tolist()
        ok = want.info.numpy() == 0
        np.testing.assert_allclose(got.L.numpy()[ok], want.L.numpy()[ok], rtol=1e-6)
        assert np.isnan(got.L.numpy()[~ok]).all()
    inv = graphnn.compile(lambda k: graphnn.linalg.inv_ex(k))
    for m in ([[1.0, 2.0], [2.0, 4.0]], good):
        a = np.array(m, np.float32)
        assert inv(graphnn.tensor(a)).info.tolist() == torch.linalg.inv_ex(torch.tensor(a)).info.tolist()


def test_constant_pad_with_a_value_keeps_the_inside_exactly(torch):
    """F.pad(x, value=v) was pad(x - v) + v: -inf gave NaN inside, -1e9 lost the values, bool inputs raised."""
    for lib in (torch, graphnn):
        F = lib.nn.functional
        x = lib.tensor([1.2345, -0.5, 3.0])
        got = [
            F.pad(x, (1, 1), value=float("-inf")).tolist(),
            F.pad(x, (1, 1), value=-1e9).tolist(),
            F.pad(lib.tensor([True, False]), (1, 1), value=True).tolist(),
            F.pad(lib.tensor([1, 2]), (1, 1), value=7).tolist(),
            F.pad(x, (-1, 1), value=5.0).tolist(),
        ]
        if lib is torch:
            want = got
    assert got == want
    pad = graphnn.compile(lambda t: graphnn.nn.functional.pad(t, (1, 1), value=float("-inf")))
    assert pad(graphnn.tensor([1.2345, -0.5, 3.0])).tolist() == want[0]


def test_a_buffer_reassigned_in_a_compiled_module_keeps_its_running_value():
    """`self.avg = self.avg * 0.5 + x` on a registered buffer inside graphnn.compile left a symbolic tensor in the
    buffer (the next call raised TraceError): it is read from and written back to its place at every call, with
    one program."""

    class M(nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("avg", graphnn.zeros(3))

        def forward(self, x):
            self.avg = self.avg * 0.5 + x
            return x * 2

    m = M()
    f = graphnn.compile(m)
    want = 0.0
    for i in range(4):
        f(graphnn.ones(3) * i)
        want = want * 0.5 + i
        np.testing.assert_allclose(m.avg.numpy(), [want] * 3, rtol=1e-6)
        np.testing.assert_allclose(m.state_dict()["avg"].numpy(), [want] * 3, rtol=1e-6)
    assert f.cache.programs == 1


def test_post_accumulate_grad_hooks_run_in_a_compiled_backward(torch):
    """The optimizer-in-backward pattern (a per-parameter optimizer stepped by a post-accumulate-grad hook): inside a
    compiled step the hooks never ran, so the parameters never moved."""
    res = []
    for lib in (torch, graphnn):
        w, v = lib.nn.Parameter(lib.tensor([1.0, 2.0])), lib.nn.Parameter(lib.tensor([3.0]))
        opts = {p: lib.optim.SGD([p], lr=0.1, momentum=0.9) for p in (w, v)}

        def hook(p, opts=opts):
            opts[p].step()
            opts[p].zero_grad()

        for p in (w, v):
            p.register_post_accumulate_grad_hook(hook)

        def step(x, w=w, v=v):
            loss = (w * x).sum() * v.sum()
            loss.backward()
            return loss

        run = graphnn.compile(step) if lib is graphnn else step
        for i in range(3):
            run(lib.ones(2) * (i + 1))
        assert w.grad is None and v.grad is None
        res.append((w.detach().numpy().copy(), v.detach().numpy().copy()))
    for got, want in zip(res[1], res[0]):
        np.testing.assert_allclose(got, want, rtol=1e-6)  # (float32, three momentum steps)
