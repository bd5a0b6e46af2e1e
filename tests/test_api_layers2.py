"""PyTorch parity of EmbeddingBag, weight / spectral normalization and parametrizations, CTC loss, masked_scatter,
ASGD / SparseAdam and graphnn.autograd.functional: values and gradients against PyTorch (float64), eagerly and, where
it applies, compiled; tolerances from the recorded rounding-error bounds (parity_util.check)."""

import copy

import numpy as np
import pytest

import graphnn
import graphnn.nn as gnn
import graphnn.nn.functional as gF
import graphnn.optim as goptim
from parity_util import check, close, compare_params, copy_state, steps_tolerance, to_np
from tolerance import accumulation_tolerance
from train_steps import mlp_pair, mse_step, regression_batches

MODES = pytest.mark.parametrize("compiled", [False, True], ids=["eager", "compiled"])


def _rng(seed=0):
    return np.random.default_rng(seed)


# -- EmbeddingBag ------------------------------------------------------------------------------------------------------
IDX1 = np.array([1, 2, 4, 5, 4, 3, 2, 0])
IDX2 = np.array([[1, 4, 4], [4, 4, 4], [0, 5, 2]])
BAGS = [
    ("2d-mean", IDX2, None, dict(mode="mean")),
    ("2d-sum-pad", IDX2, None, dict(mode="sum", padding_idx=4)),
    ("2d-max-pad", IDX2, None, dict(mode="max", padding_idx=-2)),
    ("1d-sum", IDX1, [0, 2, 2, 5], dict(mode="sum")),
    ("1d-mean-pad", IDX1, [0, 2, 5], dict(mode="mean", padding_idx=4)),
    ("1d-max-empty", IDX1, [0, 3, 3, 6], dict(mode="max")),
    ("1d-max-last", IDX1, [0, 2, 5], dict(mode="max", include_last_offset=True)),
    ("1d-mean-last", IDX1, [0, 2, 5], dict(mode="mean", include_last_offset=True)),
    ("1d-psw", IDX1, [0, 3, 5], dict(mode="sum", per_sample_weights=True)),
    ("2d-psw-pad", IDX2, None, dict(mode="sum", per_sample_weights=True, padding_idx=4)),
]


def _params(table, compile_every: int = 2) -> list:
    """Every case eagerly; every `compile_every`-th case also compiled (compiling is the slow part)."""
    out = []
    for i, case in enumerate(table):
        out.append(pytest.param(case, False, id=f"{case[0]}-eager"))
        if i % compile_every == 0:
            out.append(pytest.param(case, True, id=f"{case[0]}-compiled"))
    return out


@pytest.mark.parametrize("case, compiled", _params(BAGS))
def test_embedding_bag(torch, case, compiled):
    _, idx, offsets, kw = case
    kw = dict(kw)
    rng = _rng()
    w = rng.standard_normal((6, 3))
    inputs = [w, idx] + ([np.array(offsets)] if offsets is not None else [])
    if kw.pop("per_sample_weights", False):
        inputs.append(rng.standard_normal(idx.shape))

    def call(F):
        def f(w, idx, *rest):
            off = rest[0] if offsets is not None else None
            psw = rest[-1] if len(rest) > (offsets is not None) else None
            return F.embedding_bag(idx, w, off, per_sample_weights=psw, **kw)

        return f

    check(torch, call(gF), call(torch.nn.functional), inputs, compiled=compiled)


def test_embedding_bag_module(torch):
    w = _rng(1).standard_normal((5, 4))
    g = gnn.EmbeddingBag.from_pretrained(graphnn.tensor(w), freeze=False, mode="max", padding_idx=0)
    t = torch.nn.EmbeddingBag.from_pretrained(torch.tensor(w), freeze=False, mode="max", padding_idx=0)
    assert repr(g) == repr(t)
    assert not gnn.EmbeddingBag.from_pretrained(graphnn.tensor(w)).weight.requires_grad
    idx, off = np.array([0, 1, 2, 3, 4, 0]), np.array([0, 2, 4])
    check(torch, g, t, [idx, off], g, t)
    m = gnn.EmbeddingBag(7, 3, mode="sum")
    assert list(m.state_dict()) == list(torch.nn.EmbeddingBag(7, 3).state_dict())


@pytest.mark.parametrize(
    "args, msg",
    [
        ((np.array([0, 1]), np.array([1])), "offsets\\[0\\] has to be 0"),
        ((np.array([0, 1]), np.array([0, 3])), "can not be greater than input's length"),
        ((np.array([[0, 1]]), np.array([0])), "offsets has to be None if input is 2D"),
        ((np.array([0, 9]), np.array([0])), "out of range"),
    ],
)
def test_embedding_bag_errors(args, msg):
    w = graphnn.randn(5, 2)
    with pytest.raises(Exception, match=msg):
        gF.embedding_bag(graphnn.tensor(args[0]), w, graphnn.tensor(args[1]))
    with pytest.raises(Exception, match="per_sample_weights is only supported"):
        gF.embedding_bag(graphnn.tensor([[0, 1]]), w, mode="max", per_sample_weights=graphnn.ones(1, 2))


# -- weight / spectral normalization, parametrize ------------------------------------------------------------------------
def _copy_named(torch, g, t) -> None:
    """Every parameter and buffer of the graphnn module into the PyTorch module's tensor of the same name."""
    tp = dict(t.named_parameters()) | dict(t.named_buffers())
    gp = dict(g.named_parameters()) | dict(g.named_buffers())
    assert sorted(tp) == sorted(gp)
    with torch.no_grad():
        for k, v in gp.items():
            tp[k].copy_(torch.from_numpy(to_np(v).copy()))


LAYERS = [("Linear", (3, 4), (2, 3)), ("Conv2d", (2, 3, 2), (1, 2, 4, 4)), ("ConvTranspose1d", (2, 3, 2), (1, 2, 5))]


def _layer_pair(torch, case, seed=0):
    name, args, xshape = case
    graphnn.manual_seed(seed)
    g = getattr(gnn, name)(*args).double()
    t = getattr(torch.nn, name)(*args).double()
    copy_state(torch, g, t)
    return g, t, _rng(seed).standard_normal(xshape)


WN_HOOK = [
    pytest.param(case, dim, compiled, id=f"{case[0]}-{dim}-{'compiled' if compiled else 'eager'}")
    for case in LAYERS
    for dim in (0, 1, None)
    for compiled in (False, True)
    if not (compiled and dim == 1)  # (compiled: once per layer for a norm per row and for the whole tensor)
]


@pytest.mark.parametrize("case, dim, compiled", WN_HOOK)
def test_weight_norm_hook(torch, case, dim, compiled):
    g, t, x = _layer_pair(torch, case)
    with pytest.warns(FutureWarning):
        gnn.utils.weight_norm(g, dim=dim)
    with pytest.warns(FutureWarning):
        torch.nn.utils.weight_norm(t, dim=dim)
    assert list(g.state_dict()) == list(t.state_dict())
    _copy_named(torch, g, t)
    check(torch, g, t, [x], g, t, compiled=compiled)
    gnn.utils.remove_weight_norm(g)
    torch.nn.utils.remove_weight_norm(t)
    assert list(g.state_dict()) == list(t.state_dict())
    close(g.weight, t.weight, "weight", accumulation_tolerance(np.float64, 2 * x.size, 1.0))
    with pytest.raises(ValueError, match="weight_norm of 'weight' not found"):
        gnn.utils.remove_weight_norm(g)


@MODES
@pytest.mark.parametrize("dim", [0, None])
@pytest.mark.parametrize("case", LAYERS[:2], ids=[c[0] for c in LAYERS[:2]])
def test_weight_norm_parametrization(torch, case, dim, compiled):
    g, t, x = _layer_pair(torch, case)
    P, TP = gnn.utils.parametrizations, torch.nn.utils.parametrizations
    P.weight_norm(g, dim=dim)
    TP.weight_norm(t, dim=dim)
    assert repr(g) == repr(t)
    assert list(g.state_dict()) == list(t.state_dict())
    _copy_named(torch, g, t)
    check(torch, g, t, [x], g, t, compiled=compiled)
    assert gnn.utils.parametrize.is_parametrized(g, "weight")
    assert gnn.utils.parametrize.type_before_parametrizations(g) is getattr(gnn, case[0])
    gnn.utils.parametrize.remove_parametrizations(g, "weight")
    torch.nn.utils.parametrize.remove_parametrizations(t, "weight")
    assert type(g) is getattr(gnn, case[0]) and repr(g) == repr(t)
    assert list(g.state_dict()) == list(t.state_dict())
    close(g.weight, t.weight, "weight", accumulation_tolerance(np.float64, 2 * x.size, 1.0))


@pytest.mark.parametrize("case", LAYERS, ids=[c[0] for c in LAYERS])
@pytest.mark.parametrize("api", ["hook", "parametrization"])
def test_spectral_norm(torch, case, api):
    g, t, x = _layer_pair(torch, case)
    if api == "hook":
        gnn.utils.spectral_norm(g)
        torch.nn.utils.spectral_norm(t)
    else:
        gnn.utils.parametrizations.spectral_norm(g, n_power_iterations=2)
        torch.nn.utils.parametrizations.spectral_norm(t, n_power_iterations=2)
    assert list(g.state_dict()) == list(t.state_dict())
    _copy_named(torch, g, t)
    for step in range(3):  # training: one (two) power iterations per forward, updating the buffers
        out_g, out_t = g(graphnn.tensor(x)), t(torch.tensor(x))
        tol = accumulation_tolerance(np.float64, 20 * x.size * (step + 1), 10.0)
        close(out_g, out_t, f"output {step}", tol)
        for (k, a), (_, b) in zip(g.named_buffers(), t.named_buffers()):
            close(a, b, k, tol)
    g.eval()
    t.eval()
    for compiled in (False, True) if case[0] == "Conv2d" else (False,):
        check(torch, g, t, [x], g, t, compiled=compiled, state_errors={k: tol for k, _ in g.named_buffers()})


@pytest.mark.parametrize("api", ["hook", "parametrization"])
def test_spectral_norm_compiled_training(torch, api):
    """In a compiled training forward the power iteration updates the buffers, as eagerly."""
    g, t, x = _layer_pair(torch, LAYERS[0])
    if api == "hook":
        gnn.utils.spectral_norm(g)
        torch.nn.utils.spectral_norm(t)
        u_g, u_t = (lambda: g.weight_u), (lambda: t.weight_u)
    else:
        gnn.utils.parametrizations.spectral_norm(g)
        torch.nn.utils.parametrizations.spectral_norm(t)
        u_g, u_t = (lambda: g.parametrizations.weight[0]._u), (lambda: t.parametrizations.weight[0]._u)
    _copy_named(torch, g, t)
    cg = graphnn.compile(g)
    tol = accumulation_tolerance(np.float64, 400, 10.0)
    for step in range(2):
        close(cg(graphnn.tensor(x)), t(torch.tensor(x)), f"output {step}", tol)
        close(u_g(), u_t(), "u", tol)
    if api == "hook":
        gnn.utils.remove_spectral_norm(g)
        torch.nn.utils.remove_spectral_norm(t)
    else:
        gnn.utils.parametrize.remove_parametrizations(g, "weight")
        torch.nn.utils.parametrize.remove_parametrizations(t, "weight")
    assert list(g.state_dict()) == list(t.state_dict())
    close(g.weight, t.weight, "weight", tol)


class _Symmetric(gnn.Module):
    def forward(self, x):
        return x.triu() + x.triu(1).transpose(-1, -2)

    def right_inverse(self, a):
        return a.triu()


class _Transposed(gnn.Module):
    def forward(self, x):
        return x.t()


def test_parametrize_register_cache_remove(torch):
    m = gnn.Linear(3, 3).double()
    weight = m.weight
    P = gnn.utils.parametrize
    P.register_parametrization(m, "weight", _Symmetric())
    assert m.parametrizations.weight.original is weight  # the same Parameter object: optimizers keep working
    w = to_np(m.weight)
    np.testing.assert_array_equal(w, w.T)
    assert [n for n, _ in m.named_parameters()] == ["bias", "parametrizations.weight.original"]
    a = graphnn.tensor(np.arange(9.0).reshape(3, 3))
    m.weight = a  # stored through right_inverse
    np.testing.assert_array_equal(to_np(m.parametrizations.weight.original), np.triu(np.arange(9.0).reshape(3, 3)))
    twin = copy.deepcopy(m)  # as PyTorch's: the copy is parametrized the same way, with its own tensors
    assert type(twin) is type(m) and twin.parametrizations.weight.original is not weight
    np.testing.assert_array_equal(to_np(twin.weight), to_np(m.weight))
    with P.cached():
        assert m.weight is m.weight
    assert m.weight is not m.weight
    m(graphnn.randn(2, 3, dtype=graphnn.float64)).sum().backward()
    g = m.parametrizations.weight.original.grad.numpy()
    assert (np.tril(g, -1) == 0).all() and g.any()  # the gradient reaches the upper triangle only
    with pytest.raises(ValueError, match="may not change the shape"):
        P.register_parametrization(gnn.Linear(3, 2), "weight", _Transposed())
    with pytest.raises(ValueError, match="does not have a parameter, a buffer"):
        P.register_parametrization(m, "nothing", _Symmetric())
    P.remove_parametrizations(m, "weight", leave_parametrized=False)
    assert type(m) is gnn.Linear and m.weight is weight and "parametrizations" not in m._modules
    with pytest.raises(ValueError, match="does not have a parametrization"):
        P.remove_parametrizations(m, "weight")


# -- CTC loss ------------------------------------------------------------------------------------------------------------
PADDED = np.array([[1, 2, 2], [3, 1, 0], [2, 0, 0]])
CONCAT = np.array([1, 2, 2, 3, 1, 2])
CTC = [
    # (targets, input_lengths, target_lengths, kwargs); lengths as tuples or (np.ndarray) tensors
    ("padded-mean", PADDED, (6, 6, 6), (3, 2, 1), {}),
    ("padded-none-short", PADDED, np.array([6, 4, 2]), np.array([3, 2, 0]), dict(reduction="none")),
    ("padded-sum-blank2", PADDED, (6, 5, 6), (2, 2, 1), dict(reduction="sum", blank=4)),
    ("concat-none", CONCAT, np.array([6, 5, 3]), np.array([3, 2, 1]), dict(reduction="none")),
    ("impossible-inf", PADDED, (2, 6, 6), (3, 2, 1), dict(reduction="none")),
    ("impossible-zero", PADDED, (2, 6, 6), (3, 2, 1), dict(reduction="mean", zero_infinity=True)),
]


@pytest.mark.parametrize("case, compiled", _params(CTC, 2))
def test_ctc_loss(torch, case, compiled):
    """Values and the gradient of the logits (through log_softmax: PyTorch's log_probs gradient carries an extra
    exp(log_probs) that log_softmax's backward cancels)."""
    _, targets, il, tl, kw = case
    logits = _rng(3).standard_normal((6, 3, 5))
    arrays = [a for a in (il, tl) if isinstance(a, np.ndarray)]

    def call(F):
        def f(x, tg, *lengths):
            lens = list(lengths)
            a = lens.pop(0) if isinstance(il, np.ndarray) else il
            b = lens.pop(0) if isinstance(tl, np.ndarray) else tl
            return F.ctc_loss(x.log_softmax(-1), tg, a, b, **kw)

        return f

    if "impossible-inf" in case[0]:  # an infinite loss: values only (PyTorch's gradient there is not defined)
        check(torch, call(gF), call(torch.nn.functional), [logits, targets] + arrays, compiled=compiled, grad=False)
        return
    check(torch, call(gF), call(torch.nn.functional), [logits, targets] + arrays, compiled=compiled)


def test_ctc_loss_module_unbatched(torch):
    logits = _rng(4).standard_normal((5, 4))
    g, t = gnn.CTCLoss(blank=3), torch.nn.CTCLoss(blank=3)
    assert repr(g) == repr(t)
    tg, il, tl = np.array([0, 1, 1]), np.array(5), np.array(3)
    check(torch, lambda x, *a: g(x.log_softmax(-1), *a), lambda x, *a: t(x.log_softmax(-1), *a), [logits, tg, il, tl])


@pytest.mark.parametrize(
    "kw, msg",
    [
        (dict(input_lengths=(7, 6)), "input_lengths to have value at most 6"),
        (dict(target_lengths=(4, 1)), "target_lengths to have value at most 3"),
        (dict(targets=np.array([[1, 2, 9], [1, 1, 1]])), "target label 9 is out of range for 5 classes"),
        (dict(input_lengths=(6,)), "one entry per batch element"),
    ],
)
def test_ctc_loss_errors(kw, msg):
    args = dict(targets=np.array([[1, 2, 3], [1, 1, 1]]), input_lengths=(6, 6), target_lengths=(3, 2)) | kw
    lp = graphnn.randn(6, 2, 5).log_softmax(-1)
    with pytest.raises(Exception, match=msg):
        gF.ctc_loss(lp, graphnn.tensor(args["targets"]), args["input_lengths"], args["target_lengths"])


# -- masked_scatter --------------------------------------------------------------------------------------------------
@MODES
def test_masked_scatter(torch, compiled):
    rng = _rng(5)
    x, src = rng.standard_normal((3, 4)), rng.standard_normal((2, 5))
    mask = rng.random((1, 4)) > 0.4  # broadcast over the rows

    def call(lib):
        return lambda x, src, m: lib.masked_scatter(x * 2, m, src) + x.clone().masked_scatter_(m, src * 3)

    check(torch, call(graphnn), call(torch), [x, src, mask], compiled=compiled)


def test_masked_scatter_errors():
    x = graphnn.zeros(2, 3, dtype=graphnn.float64)
    with pytest.raises(RuntimeError, match="the mask selects 6 elements but source \\(4,\\) has only 4"):
        x.masked_scatter(graphnn.ones(2, 3, dtype=graphnn.bool), graphnn.zeros(4, dtype=graphnn.float64))
    with pytest.raises(RuntimeError, match="expected BoolTensor for mask"):
        x.masked_scatter(graphnn.ones(2, 3), graphnn.zeros(6, dtype=graphnn.float64))


# -- ASGD, SparseAdam ------------------------------------------------------------------------------------------------
STEP_ROUNDINGS = 120  # one training step of the MLP (tests/test_optim_more.py)


def _run_steps(torch, g_step, t_step, batches) -> int:
    for i, (x, y) in enumerate(batches, 1):
        t_loss = t_step(torch.tensor(x), torch.tensor(y))
        close(g_step(graphnn.tensor(x), graphnn.tensor(y)), t_loss, f"loss {i}", steps_tolerance(t_loss, 120 * i))
    return len(batches)


@MODES
@pytest.mark.parametrize(
    "kw", [dict(lr=0.05), dict(lr=0.05, lambd=0.01, alpha=0.5, t0=2, weight_decay=0.1, maximize=False)], ids=["0", "1"]
)
def test_asgd(torch, kw, compiled):
    g, t = mlp_pair(torch)
    gopt, topt = goptim.ASGD(g.parameters(), **kw), torch.optim.ASGD(t.parameters(), **kw)
    step = mse_step(graphnn, g, gopt)
    n = _run_steps(torch, graphnn.compile(step) if compiled else step, mse_step(torch, t, topt), regression_batches(5))
    compare_params(g, t, STEP_ROUNDINGS * n)
    for p, q in zip(g.parameters(), t.parameters()):
        assert list(gopt.state[p]) == list(topt.state[q])
        for k, v in topt.state[q].items():
            close(gopt.state[p][k], v, k, steps_tolerance(v, STEP_ROUNDINGS * n, 1.0))


@MODES
def test_sparse_adam(torch, compiled):
    """PyTorch's SparseAdam on an Embedding(sparse=True) updates only the rows looked up (the entries of the sparse
    gradient); graphnn's, given the dense gradient, only its non-zero entries: the same entries."""
    g, t = gnn.Embedding(8, 3, sparse=True).double(), torch.nn.Embedding(8, 3, sparse=True).double()
    copy_state(torch, g, t)
    initial = to_np(g.weight).copy()
    kw = dict(lr=0.1, betas=(0.8, 0.9))
    gopt, topt = goptim.SparseAdam(g.parameters(), **kw), torch.optim.SparseAdam(t.parameters(), **kw)

    def step(lib, model, opt):
        def f(idx, y):
            opt.zero_grad()
            loss = ((model(idx) - y) ** 2).sum()
            loss.backward()
            opt.step()
            return loss

        return f

    g_step = step(graphnn, g, gopt)
    g_step = graphnn.compile(g_step) if compiled else g_step
    rng = _rng(7)
    for i in range(4):
        idx, y = rng.integers(0, 5, (4,)), rng.standard_normal((4, 3))  # rows 5..7 never looked up
        t_loss = step(torch, t, topt)(torch.tensor(idx), torch.tensor(y))
        close(
            g_step(graphnn.tensor(idx), graphnn.tensor(y)), t_loss, f"loss {i}", steps_tolerance(t_loss, 60 * (i + 1))
        )
    compare_params(g, t, 60 * 4)
    np.testing.assert_array_equal(to_np(g.weight)[5:], initial[5:])
    with pytest.raises(ValueError, match="Invalid beta parameter at index 1: 1.0"):
        goptim.SparseAdam(g.parameters(), betas=(0.9, 1.0))


# -- autograd.functional -------------------------------------------------------------------------------------------------
X = np.array([[1.0, 2.0, 0.5], [0.3, -1.0, 2.0]])
Y = np.array([0.5, -0.2, 1.5])


def _two_outputs(a, b):
    return (a * b).sin().sum(0), (a**2).exp() * b


def _scalar_fn(a, b):
    return (a.sin() * b).sum() + (b**3).sum() * a.mean()


def _near(a, b, what: str) -> None:
    """Short closed-form expressions (a few dozen roundings of values up to the largest magnitude)."""
    b = to_np(b)
    close(a, b, what, accumulation_tolerance(np.float64, 64, np.abs(b).max(initial=1.0)))


def _walk(a, b, what: str = "") -> None:
    if isinstance(b, (tuple, list)):
        assert isinstance(a, tuple) and len(a) == len(b), what
        for i, (x, y) in enumerate(zip(a, b)):
            _walk(x, y, f"{what}[{i}]")
    else:
        assert isinstance(a, graphnn.Tensor), what
        _near(a, b, what)


def _both(torch, name, fn, inputs, *extra, **kw):
    import graphnn.autograd.functional as GA

    t_args = [tuple(torch.tensor(x) for x in a) if isinstance(a, tuple) else torch.tensor(a) for a in extra]
    g_args = [tuple(graphnn.tensor(x) for x in a) if isinstance(a, tuple) else graphnn.tensor(a) for a in extra]
    wrap = lambda xs, lib: tuple(lib.tensor(x) for x in xs) if isinstance(xs, tuple) else lib.tensor(xs)  # noqa: E731
    ref = getattr(torch.autograd.functional, name)(fn, wrap(inputs, torch), *t_args, **kw)
    got = getattr(GA, name)(fn, wrap(inputs, graphnn), *g_args, **kw)
    _walk(got, ref, name)
    return got


def test_jacobian(torch):
    _both(torch, "jacobian", _two_outputs, (X, Y))  # tuple outputs x tuple inputs
    _both(torch, "jacobian", lambda a: (a**2).exp().sum(1), X)  # one tensor each
    _both(torch, "jacobian", lambda a, b: a * b, (Y, Y[::-1].copy()))


def test_vjp_jvp(torch):
    _both(torch, "vjp", _two_outputs, (X, Y), (np.ones(3), np.arange(6.0).reshape(2, 3)))
    _both(torch, "vjp", lambda a: (a**2).sum(), Y)  # v=None for a one-element output
    _both(torch, "jvp", _two_outputs, (X, Y), (np.arange(6.0).reshape(2, 3) - 2, np.array([1.0, -1.0, 0.5])))
    _both(torch, "jvp", lambda a: a.exp(), np.array([0.7]))  # v=None for a one-element input


def test_vjp_create_graph_and_strict():
    import graphnn.autograd.functional as GA

    x = graphnn.tensor(Y, requires_grad=True)
    _, (g,) = GA.vjp(lambda a: (a**3).sum(), (x,), create_graph=True)
    assert g.requires_grad
    g.sum().backward()  # d/dx sum(3 x^2) = 6 x
    _near(x.grad, 6 * Y, "double backward")
    with pytest.raises(RuntimeError, match="independent of input 1"):
        GA.vjp(lambda a, b: a.sum(), (x, graphnn.tensor(Y)), strict=True)
    with pytest.raises(RuntimeError, match="v can only be None"):
        GA.vjp(lambda a: a * 2, x)
    with pytest.raises(RuntimeError, match="Mismatch in shape"):
        GA.jvp(lambda a: a * 2, x, graphnn.ones(2, dtype=graphnn.float64))


def test_hessian_hvp_vhp(torch):
    _both(torch, "hessian", _scalar_fn, (X, Y))
    _both(torch, "hessian", lambda a: (a.sin() * a**2).sum(), Y)
    v = (np.arange(6.0).reshape(2, 3), np.array([1.0, 0.0, -2.0]))
    _both(torch, "hvp", _scalar_fn, (X, Y), v)
    _both(torch, "vhp", _scalar_fn, (X, Y), v)
