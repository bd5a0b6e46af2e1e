"""Fixes of what the probes of session m found (unseen programs run with PyTorch, graphnn eager and compiled)."""

import numpy as np
import pytest

import graphnn


def _second(lib, f, x):
    x = lib.tensor(x, requires_grad=True)
    (g,) = lib.autograd.grad(f(lib, x), x, create_graph=True)
    (h,) = lib.autograd.grad(g.sum(), x)
    return g.detach().numpy(), h.numpy()


LOSSES = {
    "logsigmoid": lambda lib, x: lib.nn.functional.logsigmoid(x).sum(),
    "bce_with_logits": lambda lib, x: lib.nn.functional.binary_cross_entropy_with_logits(
        x, lib.ones_like(x) * 0.3, pos_weight=lib.tensor(2.0), reduction="sum"
    ),
    "soft_margin": lambda lib, x: lib.nn.functional.soft_margin_loss(x, -lib.ones_like(x), reduction="sum"),
    "huber": lambda lib, x: lib.nn.functional.huber_loss(x, lib.zeros_like(x), reduction="sum", delta=0.7),
    "smooth_l1": lambda lib, x: lib.nn.functional.smooth_l1_loss(x, lib.zeros_like(x), reduction="sum", beta=0.5),
}


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_second_derivatives_at_zero_as_pytorch(torch, name):
    """Losses written through |x| had a second derivative of 0 at x = 0 (Newton's method for logistic regression
    from w = 0 diverged): now the true ones, as PyTorch's, at 0 and elsewhere (float64: a few ulps)."""
    x = np.array([0.0, -0.0, 0.3, -2.5, 4.0, 1e-9])
    f = LOSSES[name]
    gg, hg = _second(graphnn, f, x)
    gt, ht = _second(torch, f, x)
    np.testing.assert_allclose(gg, gt, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(hg, ht, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_logsigmoid_far_from_zero(torch, dtype):
    """Far below 0 logsigmoid is x (exp(-x) would overflow), far above -exp(-x) to the dtype's precision."""
    x = np.array([-1000.0, -60.0, -35.0, -20.0, -1.0, 0.0, 1.0, 20.0, 60.0, 1000.0], dtype)
    got = graphnn.nn.functional.logsigmoid(graphnn.tensor(x)).numpy()
    want = torch.nn.functional.logsigmoid(torch.tensor(x)).numpy()
    eps = np.finfo(dtype).eps
    assert np.isfinite(got).all()
    np.testing.assert_allclose(got, want, rtol=4 * eps, atol=0)


def test_lr_set_from_a_tensor_inside_a_compiled_step(torch):
    """`g["lr"] = base * scale` inside graphnn.compile: the step reads the value it set, and the group holds its
    value after every call (the second call raised: the trace had left a symbolic tensor in the group); one trace."""

    def run(lib, compiled):
        p = lib.nn.Parameter(lib.ones(3))
        opt = lib.optim.Adam([p], lr=0.1)

        def step(scale):
            for g in opt.param_groups:
                g["lr"] = 0.1 * scale
            (p**2).sum().backward()
            opt.step()
            opt.zero_grad()

        f = lib.compile(step) if compiled else step
        lrs = []
        for i in range(6):
            f(lib.tensor(min(1.0, (i + 1) / 3)))
            lrs.append(float(opt.param_groups[0]["lr"]))
        return p.detach().numpy(), lrs, f

    want, want_lrs, _ = run(torch, False)
    got, got_lrs, f = run(graphnn, True)
    np.testing.assert_allclose(got, want, rtol=1e-6)
    np.testing.assert_allclose(got_lrs, want_lrs, rtol=1e-7)
    assert len(f.cache) == 1


@pytest.mark.parametrize("n", [2, 4])
def test_class_weights_of_the_wrong_length(torch, n):
    """CrossEntropyLoss / nll_loss with a weight per class of the wrong length: PyTorch's error (4 weights for 3
    classes were silently accepted, 2 raised an index error from take)."""
    x, y = np.zeros((5, 3), np.float32), np.array([0, 1, 2, 1, 0])
    with pytest.raises(RuntimeError) as want:
        torch.nn.CrossEntropyLoss(weight=torch.ones(n))(torch.tensor(x), torch.tensor(y))
    with pytest.raises(RuntimeError, match=str(want.value).replace("[", r"\[").replace("]", r"\]")):
        graphnn.nn.CrossEntropyLoss(weight=graphnn.ones(n))(graphnn.tensor(x), graphnn.tensor(y))


def test_custom_function_backward_differentiates_saved_parameters_when_compiled():
    """The adjoint method's pattern: a custom Function saves the parameters and its backward calls autograd.grad
    with respect to them. Compiled, the saved parameters were copies (not in the recomputed graph): a crash."""
    lin = graphnn.nn.Linear(2, 2)

    class Apply(graphnn.autograd.Function):
        @staticmethod
        def forward(ctx, x, *params):
            ctx.save_for_backward(x, *params)
            with graphnn.no_grad():
                return graphnn.tanh(lin(x))

        @staticmethod
        def backward(ctx, g):
            x, *params = ctx.saved_tensors
            with graphnn.enable_grad():
                xx = x.detach().requires_grad_(True)
                gx, *gp = graphnn.autograd.grad(graphnn.tanh(lin(xx)), (xx, *params), g)
            return (gx, *gp)

    def step(x):
        loss = Apply.apply(x, *lin.parameters()).pow(2).sum()
        loss.backward()
        return loss

    x = graphnn.tensor(np.linspace(-1, 1, 6, dtype=np.float32).reshape(3, 2), requires_grad=True)
    want = [step(x).item(), lin.weight.grad.numpy().copy(), x.grad.numpy().copy()]
    lin.zero_grad()
    x.grad = None
    f = graphnn.compile(step)
    for _ in range(2):
        got = f(x).item()
        assert got == pytest.approx(want[0], rel=1e-6)
        np.testing.assert_allclose(lin.weight.grad.numpy(), want[1], rtol=1e-6)
        np.testing.assert_allclose(x.grad.numpy(), want[2], rtol=1e-6)
        lin.zero_grad()
        x.grad = None


def test_istft_overlap_adds_in_linear_memory_and_compiles(torch):
    """istft's overlap-add is a fold of the frames (it was a product with a dense frames*n_fft x samples 0/1 matrix:
    16 GB for one second of 22 kHz audio at n_fft 1024), as PyTorch's numbers; inside graphnn.compile with
    fullgraph=True (the window's NOLA check no longer reads a traced value)."""
    x = np.random.default_rng(0).standard_normal((2, 22050)).astype(np.float32)

    def roundtrip(lib, sig, n_fft, hop):
        w = lib.hann_window(n_fft)
        spec = lib.stft(sig, n_fft, hop, window=w, return_complex=True)
        return lib.istft(spec, n_fft, hop, window=w, length=sig.shape[-1])

    got = roundtrip(graphnn, graphnn.tensor(x), 1024, 256).numpy()
    want = roundtrip(torch, torch.tensor(x), 1024, 256).numpy()
    np.testing.assert_allclose(got, want, rtol=0, atol=2e-5)  # (float32 FFTs of 1024 points of O(1) values)
    w = graphnn.hann_window(32)
    f = graphnn.compile(
        lambda s: graphnn.istft(graphnn.stft(s, 32, 8, window=w, return_complex=True), 32, 8, window=w, length=200),
        fullgraph=True,
    )
    short = x[:, :200]
    np.testing.assert_allclose(f(graphnn.tensor(short)).numpy(), short, rtol=0, atol=1e-5)
    with pytest.raises(RuntimeError, match="NOLA"):
        graphnn.istft(graphnn.stft(graphnn.tensor(short), 32, 32, window=w, return_complex=True), 32, 32, window=w)


@pytest.mark.parametrize("kind", ["weight_norm", "spectral_norm", "prune"])
def test_recomputed_weight_hooks_compile_once(kind):
    """weight_norm / spectral_norm / prune (the forward-pre-hook forms) in a compiled training step: traced once
    (each call set module.weight and the next call's identity guard on it failed: a retrace at every call, eager
    after 8), with eager's numbers."""
    import copy

    def build():
        graphnn.manual_seed(0)
        conv = graphnn.nn.Conv1d(2, 4, 3)
        if kind == "prune":
            graphnn.nn.utils.prune.l1_unstructured(conv, "weight", amount=0.3)
            return conv
        return getattr(graphnn.nn.utils, kind)(conv)

    eager_m = build()
    comp_m = copy.deepcopy(eager_m)
    x = graphnn.tensor(np.random.default_rng(0).standard_normal((3, 2, 16)).astype(np.float32))

    def make_step(m):
        opt = graphnn.optim.SGD(m.parameters(), lr=0.05, momentum=0.9)

        def step(x):
            opt.zero_grad()
            loss = m(x).pow(2).mean()
            loss.backward()
            opt.step()
            return loss

        return step

    eager, compiled = make_step(eager_m), graphnn.compile(make_step(comp_m))
    for i in range(10):
        assert compiled(x).item() == pytest.approx(eager(x).item(), rel=1e-5), i
    np.testing.assert_allclose(comp_m.weight.detach().numpy(), eager_m.weight.detach().numpy(), rtol=1e-5, atol=1e-7)
    assert len(compiled.cache) == 1 and compiled._retraces <= 1  # (the first step creates the momentum buffers)


def test_module_attribute_updated_from_its_own_value_when_compiled():
    """`self.running = 0.5 * self.running + y` on a module inside graphnn.compile: each call reads the tensor the
    attribute holds then (it read the one captured when tracing, so the average never moved), traced once."""

    class M(graphnn.nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = graphnn.nn.Linear(2, 1)
            self.running = graphnn.zeros(())

        def forward(self, x):
            y = self.lin(x).sum()
            self.running = 0.5 * self.running + y.detach()
            return y

    def run(compiled):
        graphnn.manual_seed(0)
        m = M()
        f = graphnn.compile(m) if compiled else m
        x = graphnn.ones(3, 2)
        seen = []
        for _ in range(5):
            f(x)
            seen.append(float(m.running))
        return seen, f

    want, _ = run(False)
    got, f = run(True)
    np.testing.assert_allclose(got, want, rtol=1e-6)
    assert len(set(want)) == 5 and len(f.cache) == 1


class _Trainer:
    """A plain object (not a Module) keeping a running loss and a metrics dict of tensors, updated by its step."""

    def __init__(self, compiled: bool):
        graphnn.manual_seed(0)
        self.model = graphnn.nn.Sequential(graphnn.nn.Linear(8, 16), graphnn.nn.ReLU(), graphnn.nn.Linear(16, 3))
        self.opt = graphnn.optim.Adam(self.model.parameters(), lr=1e-2)
        self.running = graphnn.zeros(())
        self.metrics = {"loss": graphnn.zeros(()), "name": "train"}
        self.step = graphnn.compile(self.train_step) if compiled else self.train_step

    def train_step(self, x, y):
        self.opt.zero_grad()
        loss = graphnn.nn.functional.cross_entropy(self.model(x), y)
        loss.backward()
        self.opt.step()
        self.running = 0.9 * self.running + 0.1 * loss.detach()
        self.metrics["loss"] = loss.detach()
        return loss.detach()


def test_tensors_a_compiled_step_keeps_on_a_plain_object_and_in_a_dict():
    """A trainer object's running-loss tensor and a metrics dict entry replaced at every step: stores set after each
    call (each call ran eagerly: 'entries added or removed'), the running value read from its place at each call."""
    rng = np.random.default_rng(0)
    x = graphnn.tensor(rng.standard_normal((32, 8)).astype(np.float32))
    y = graphnn.tensor(rng.integers(0, 3, 32))
    eager, comp = _Trainer(False), _Trainer(True)
    for i in range(6):
        le, lc = eager.step(x, y).item(), comp.step(x, y).item()
        assert lc == pytest.approx(le, rel=1e-5), i
        assert float(comp.running) == pytest.approx(float(eager.running), rel=1e-5), i
        assert float(comp.metrics["loss"]) == pytest.approx(le, rel=1e-5)
    assert len(comp.step.cache) == 1 and comp.step._retraces <= 1 and not comp.step._eager


def test_functional_call_inside_compile_traces_once():
    """torch.func.functional_call in a compiled function: the swapped-in parameters are the call's arguments (each
    call traced again: the trace guarded the module's parameter table to hold the argument, eager after 8)."""
    graphnn.manual_seed(0)
    model = graphnn.nn.Linear(3, 2)
    x = graphnn.tensor(np.arange(12, dtype=np.float32).reshape(4, 3))
    sets = [{k: v.detach() * s for k, v in model.named_parameters()} for s in (1.0, -2.0, 0.5)]
    f = graphnn.compile(lambda p, x: graphnn.func.functional_call(model, p, (x,)).pow(2).sum())
    for i in range(9):
        p = sets[i % 3]
        want = (x @ p["weight"].t() + p["bias"]).pow(2).sum().item()
        assert f(p, x).item() == pytest.approx(want, rel=1e-6), i
    assert len(f.cache) == 1 and f._retraces == 0
    np.testing.assert_array_equal(model.weight.detach().numpy(), sets[0]["weight"].numpy())


@pytest.mark.parametrize("stride, dilation, padding", [(1, 1, 1), (2, 1, 0), (1, 2, 2), (3, 2, 1)])
def test_conv1d_training_over_varying_lengths(stride, dilation, padding):
    """A compiled Conv1d training step over inputs of varying length (programs symbolic in the length now that
    im2col's column count stays symbolic): eager's numbers forward and backward."""

    def make():
        graphnn.manual_seed(0)
        return graphnn.nn.Sequential(
            graphnn.nn.Conv1d(2, 4, 3, stride=stride, dilation=dilation, padding=padding),
            graphnn.nn.Tanh(),
            graphnn.nn.Conv1d(4, 3, 3, padding=1),
        )

    eager_m, comp_m = make(), make()

    def step(m, x):
        loss = m(x).pow(2).mean()
        loss.backward()
        return loss

    f = graphnn.compile(lambda x: step(comp_m, x))
    rng = np.random.default_rng(0)
    for n in (40, 33, 57, 64, 21, 48):
        x = rng.standard_normal((3, 2, n)).astype(np.float32)
        want = step(eager_m, graphnn.tensor(x)).item()
        assert f(graphnn.tensor(x)).item() == pytest.approx(want, rel=1e-5), n
        for a, b in zip(comp_m.parameters(), eager_m.parameters()):
            np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=1e-4, atol=1e-6)


def test_conv1d_over_varying_lengths_shares_one_dynamic_program():
    """A compiled Conv1d (padding 1) over inputs of varying length: one program symbolic in the length after the
    second length (im2col's column count was forced to an integer: every dynamic program was pinned to its own
    length, a compile per length, 3-5 s each for a WaveNet step)."""
    from graphnn.codegen import dynamic

    graphnn.manual_seed(0)
    conv = graphnn.nn.Conv1d(1, 4, 3, padding=1)
    f = graphnn.compile(lambda x: conv(x).pow(2).mean())
    before = dict(dynamic.STATS)
    rng = np.random.default_rng(0)
    for n in (128, 96, 64, 200, 100, 72):
        x = rng.standard_normal((3, 1, n)).astype(np.float32)
        assert f(graphnn.tensor(x)).item() == pytest.approx(conv(graphnn.tensor(x)).pow(2).mean().item(), rel=1e-5)
    assert dynamic.STATS["dynamic_reused"] - before["dynamic_reused"] >= 3
    assert dynamic.STATS["dynamic_compiled"] - before["dynamic_compiled"] <= 2


def test_linalg_eig_and_eigvals(torch):
    """linalg.eig / eigvals of general matrices: complex values in LAPACK's order, as PyTorch's; unit eigenvectors
    with A v = lambda v (each unique up to a complex phase); refused for a matrix that requires grad."""
    A = np.random.default_rng(0).standard_normal((3, 5, 5)).astype(np.float32)
    got = graphnn.linalg.eig(graphnn.tensor(A))
    want = torch.linalg.eig(torch.tensor(A))
    assert got.eigenvalues.dtype == graphnn.complex64 and tuple(got.eigenvectors.shape) == (3, 5, 5)
    np.testing.assert_allclose(got.eigenvalues.numpy(), want.eigenvalues.numpy(), rtol=1e-5, atol=1e-5)
    w, v = got.eigenvalues.numpy().astype(np.complex128), got.eigenvectors.numpy().astype(np.complex128)
    np.testing.assert_allclose(A @ v, v * w[:, None, :], atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(graphnn.linalg.eigvals(graphnn.tensor(A[0])).numpy(), w[0], rtol=1e-6)
    with pytest.raises(RuntimeError, match="without gradients"):
        graphnn.linalg.eig(graphnn.tensor(A[0], requires_grad=True))
    with pytest.raises(RuntimeError, match="square"):
        graphnn.linalg.eig(graphnn.ones(2, 3))


def test_full_backward_hooks_see_the_gradient_after_tensor_hooks(torch):
    """A module's full backward hook gets grad_output after the tensor hooks the caller put on the module's output
    (PyTorch hands the caller a copy of the output); with a module returning a tuple too."""

    def run(lib):
        lin = lib.nn.Linear(2, 2)
        seen = {}
        lin.register_full_backward_hook(lambda m, gi, go: seen.__setitem__("go", go[0].clone()))
        y = lin(lib.ones(1, 2))
        y.register_hook(lambda g: g * 0 + 7.0)
        y.sum().backward()
        lstm = lib.nn.LSTM(2, 3)
        lstm.register_full_backward_hook(lambda m, gi, go: seen.__setitem__("lstm", go[0].clone()))
        out, (h, c) = lstm(lib.ones(4, 1, 2))
        out.register_hook(lambda g: g * 2.0)
        out.sum().backward()
        return seen["go"].numpy(), seen["lstm"].numpy()

    for got, want in zip(run(graphnn), run(torch)):
        np.testing.assert_array_equal(got, want)


def test_requires_grad_set_on_an_argument_inside_a_compiled_forward():
    """`x.requires_grad_(True)` on the input inside a compiled module's forward (a Hamiltonian network) leaves the
    caller's tensor requiring grad, as eagerly; the results are eager's."""

    class HNN(graphnn.nn.Module):
        def __init__(self):
            super().__init__()
            self.H = graphnn.nn.Linear(2, 1)

        def forward(self, x):
            x = x.requires_grad_(True)
            return graphnn.autograd.grad(self.H(x).pow(2).sum(), x, create_graph=True)[0]

    m = HNN()
    c = graphnn.compile(m)
    for _ in range(2):
        xe, xc = graphnn.ones(3, 2), graphnn.ones(3, 2)
        want, got = m(xe), c(xc)
        assert xc.requires_grad and xe.requires_grad
        np.testing.assert_allclose(got.detach().numpy(), want.detach().numpy(), rtol=1e-6)


def test_state_change_fallback_warns_once_per_function():
    """A counter kept in a dict inside a compiled step with batches of varying size runs eagerly with one warning
    (its message names the changing value, so it was printed for every new argument signature)."""
    import warnings

    m = graphnn.nn.Linear(4, 1)
    opt = graphnn.optim.SGD(m.parameters(), lr=0.1)
    state = {"step": 0}

    def step(x):
        opt.zero_grad()
        loss = m(x).pow(2).mean()
        loss.backward()
        opt.step()
        state["step"] += 1
        return loss.detach()

    f = graphnn.compile(step)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(2):
            for n in range(5, 11):
                f(graphnn.randn(n, 4))
    assert state["step"] == 12
    assert len([w for w in caught if "changed Python state" in str(w.message)]) == 1


def test_sparse_adam_updates_whole_looked_up_rows(torch, tmp_path):
    """SparseAdam updates every entry of a row the gradient touches, as PyTorch updates the rows of a sparse gradient
    (an entry whose gradient was exactly 0 in a looked-up row stayed put); a PyTorch checkpoint of it (its step a
    Python int) loads and steps."""
    w0 = np.arange(12, dtype=np.float32).reshape(4, 3) / 10

    def run(lib):
        emb = lib.nn.Embedding(4, 3, sparse=True)
        with lib.no_grad():
            emb.weight.copy_(lib.tensor(w0))
        opt = lib.optim.SparseAdam(list(emb.parameters()), lr=0.1)
        for ids in ([1, 2], [1, 3]):
            opt.zero_grad()
            (emb(lib.tensor(ids)) * lib.tensor([1.0, 0.0, 2.0])).sum().backward()
            opt.step()
        return emb, opt

    (ge, _), (te, topt) = run(graphnn), run(torch)
    np.testing.assert_allclose(ge.weight.detach().numpy(), te.weight.detach().numpy(), rtol=1e-6)
    torch.save(topt.state_dict(), tmp_path / "opt.pt")
    gopt = graphnn.optim.SparseAdam(list(ge.parameters()), lr=0.1)
    gopt.load_state_dict(graphnn.load(tmp_path / "opt.pt"))
    ge(graphnn.tensor([0])).sum().backward()
    gopt.step()


def test_scheduler_stepped_in_a_compiled_step_saves(tmp_path):
    """An LR scheduler whose step() ran inside a compiled step has a state_dict graphnn.save writes (it held the
    trace the step was deferred in)."""
    p = graphnn.nn.Parameter(graphnn.ones(2))
    opt = graphnn.optim.SGD([p], lr=0.1)
    sched = graphnn.optim.lr_scheduler.StepLR(opt, 2, 0.5)

    @graphnn.compile
    def step():
        opt.zero_grad()
        p.pow(2).sum().backward()
        opt.step()
        sched.step()

    for _ in range(3):
        step()
    state = sched.state_dict()
    assert "_deferred_in" not in state and state["last_epoch"] == 3
    graphnn.save({"sched": state}, tmp_path / "s.pt")
    assert graphnn.load(tmp_path / "s.pt")["sched"]["last_epoch"] == 3


def test_custom_function_saves_a_tensor_changed_in_place_in_a_compiled_step():
    """A tensor made and changed in place inside the step (`s = x.new_zeros(1); s.fill_(4)`, a center loss's batch
    size) and saved by a custom Function: its backward sees the changed value compiled too (it saw 0: inf grads)."""

    class Div(graphnn.autograd.Function):
        @staticmethod
        def forward(ctx, x, s):
            ctx.save_for_backward(s)
            return x / s

        @staticmethod
        def backward(ctx, g):
            (s,) = ctx.saved_tensors
            return g / s, None

    def f(x):
        s = x.new_zeros(1)
        s.fill_(4.0)
        y = Div.apply(x, s).sum()
        y.backward()
        return y.detach()

    x = graphnn.tensor([1.0, 2.0], requires_grad=True)
    c = graphnn.compile(f)
    for _ in range(2):
        x.grad = None
        assert c(x).item() == pytest.approx(0.75)
        np.testing.assert_allclose(x.grad.numpy(), [0.25, 0.25])


@pytest.mark.parametrize("reentrant", [False, True])
def test_checkpointed_dropout_when_compiled(reentrant):
    """A random op inside torch.utils.checkpoint, compiled: the rerun in the backward draws the first run's numbers
    (it drew new graph inputs: a compiled module crashed with 'takes 4 inputs, got 5', and a compiled step moved the
    generator past where eager leaves it). Gradients, results and the generator's next draws are eager's."""

    class M(graphnn.nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = graphnn.nn.Linear(8, 8)
            self.drop = graphnn.nn.Dropout(0.5)

        def forward(self, x):
            f = lambda a: self.drop(self.lin(a)).relu()  # noqa: E731
            return graphnn.utils.checkpoint.checkpoint(f, x, use_reentrant=reentrant)

    x = graphnn.tensor(np.linspace(-1, 1, 16, dtype=np.float32).reshape(2, 8), requires_grad=True)

    def run(compile_what):
        graphnn.manual_seed(0)
        m = M()
        graphnn.manual_seed(1)
        x.grad = None
        if compile_what == "module":
            y = graphnn.compile(m)(x).sum()
            y.backward()
        else:

            def step(x):
                y = m(x).sum()
                y.backward()
                return y

            y = (graphnn.compile(step) if compile_what == "step" else step)(x)
        return y.item(), m.lin.weight.grad.numpy().copy(), x.grad.numpy().copy(), graphnn.rand(3).numpy()

    want = run(None)
    for what in ("module", "step"):
        for got, exp in zip(run(what), want):
            np.testing.assert_allclose(got, exp, rtol=1e-6, atol=1e-7, err_msg=what)


@pytest.mark.parametrize("which", ["causal_lower_right", "causal_upper_left"])
def test_causal_bias_masks(torch, which):
    """torch.nn.attention.bias's causal masks for fewer queries than keys, as attn_mask of
    scaled_dot_product_attention: PyTorch's attention, eagerly and compiled."""
    from torch.nn.attention import bias as tbias

    from graphnn.nn.attention import bias as gbias

    rng = np.random.default_rng(0)
    q, k, v = (rng.standard_normal(s).astype(np.float32) for s in ((1, 2, 3, 8), (1, 2, 5, 8), (1, 2, 5, 8)))
    want = torch.nn.functional.scaled_dot_product_attention(
        *map(torch.tensor, (q, k, v)), attn_mask=getattr(tbias, which)(3, 5)
    ).numpy()

    def f(q, k, v):
        return graphnn.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=getattr(gbias, which)(3, 5))

    for fn in (f, graphnn.compile(f)):
        got = fn(*map(graphnn.tensor, (q, k, v))).numpy()
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "dims, kernel, stride, padding, dilation, ceil",
    [
        (2, 3, 2, 1, 1, False),
        (2, 3, 1, 1, 1, False),
        (2, (3, 2), (2, 1), (1, 0), 1, True),
        (2, 3, 2, 0, 2, False),
        (1, 5, 2, 2, 1, True),
        (3, 3, 2, 1, 1, False),
    ],
)
def test_overlapping_max_pool_gradient_as_pytorch(torch, dims, kernel, stride, padding, dilation, ceil):
    """The gradient of a max pool whose windows overlap (ResNet's 3x3 stride-2 stem pool) runs plane by plane,
    each window's argmax adding its gradient (it searched every window for every input element: 36 ms against
    PyTorch's 2): PyTorch's gradient, ties and sums over windows included, with an epilogue after it."""
    rng = np.random.default_rng(0)
    shape = (2, 3) + (9, 8, 7)[:dims]
    x = rng.integers(-3, 4, shape).astype(np.float32)  # (ties: the first maximum of a window takes the gradient)
    pool = {1: "max_pool1d", 2: "max_pool2d", 3: "max_pool3d"}[dims]

    def grad(lib, compiled):
        def f(x):
            y = getattr(lib.nn.functional, pool)(x, kernel, stride, padding, dilation, ceil_mode=ceil)
            (y * lib.arange(y.numel(), dtype=lib.float32).reshape(y.shape)).sum().backward()
            return x.grad.relu()

        t = lib.tensor(x, requires_grad=True)
        return (graphnn.compile(f) if compiled else f)(t).detach().numpy()

    want = grad(torch, False)
    np.testing.assert_array_equal(grad(graphnn, False), want)
    np.testing.assert_array_equal(grad(graphnn, True), want)


def test_traced_and_scripted_modules_save_and_show_code(tmp_path):
    """torch.jit.trace(model, x).save(path) and script(model).save(path) (the usual way to save a TorchScript model):
    graphnn.jit.load gives the module back; `.code` is the forward's source, `.graph` graphnn's IR of the trace."""
    m = graphnn.nn.Sequential(graphnn.nn.Linear(4, 2)).eval()
    x = graphnn.randn(1, 4)
    traced = graphnn.jit.trace(m, x)
    traced.save(tmp_path / "t.pt")
    graphnn.jit.script(m).save(tmp_path / "s.pt")
    back = graphnn.jit.load(tmp_path / "t.pt")
    np.testing.assert_array_equal(back(x).detach().numpy(), m(x).detach().numpy())
    assert isinstance(graphnn.jit.load(tmp_path / "s.pt"), graphnn.nn.Sequential)
    assert "def forward" in traced.code and "matmul" in str(traced.graph)
    with pytest.raises(AttributeError):
        graphnn.nn.Linear(2, 2).save  # noqa: B018 (not scripted: no such attribute)


def test_checkpoint_without_use_reentrant_warns_as_pytorch():
    """checkpoint(fn, x) without use_reentrant warns, as PyTorch does; with it, nothing."""
    import warnings

    x = graphnn.ones(2, requires_grad=True)
    with pytest.warns(UserWarning, match="use_reentrant parameter should be passed explicitly"):
        graphnn.utils.checkpoint.checkpoint(lambda a: a * 2, x)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        graphnn.utils.checkpoint.checkpoint(lambda a: a * 2, x, use_reentrant=False)


@pytest.mark.parametrize("norm", [None, "forward", "ortho"])
def test_hermitian_n_dimensional_ffts(torch, norm):
    """fft.hfft2 / hfftn / ihfft2 / ihfftn as PyTorch's (s and dim included)."""
    rng = np.random.default_rng(0)
    real = rng.standard_normal((3, 6, 8)).astype(np.float64)
    half = (rng.standard_normal((3, 6, 5)) + 1j * rng.standard_normal((3, 6, 5))).astype(np.complex128)
    for name, x, kw in (
        ("ihfft2", real, {}),
        ("ihfftn", real, {"dim": (0, 2)}),
        ("hfft2", half, {}),
        ("hfftn", half, {"s": (6, 8)}),
        ("hfftn", half, {"dim": (0, 1, 2), "s": (3, 4, 7)}),
    ):
        want = getattr(torch.fft, name)(torch.tensor(x), norm=norm, **kw).numpy()
        got = getattr(graphnn.fft, name)(graphnn.tensor(x), norm=norm, **kw).numpy()
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12, err_msg=name)
