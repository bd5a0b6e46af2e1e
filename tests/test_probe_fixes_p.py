"""Findings of session q's probes (dtypes and MoE, module API and hooks, distributions), fixed: each test names the
program pattern that went wrong."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

import graphnn
import graphnn.distributions as D
import graphnn.nn as nn

BIG = 1733036191123456789  # an int64 above 2**53: float64 would lose its last bits


# -- NumPy operands ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "expr, dtype, values",
    [
        (lambda a: a + np.int64(1), "int64", [1, 2, 3]),
        (lambda a: np.int64(1) + a, "int64", [1, 2, 3]),
        (lambda a: a - np.int16(1), "int64", [-1, 0, 1]),
        (lambda a: a % np.int64(2), "int64", [0, 1, 0]),
        (lambda a: a + np.float32(0.5), "float32", [0.5, 1.5, 2.5]),
        (lambda a: a + np.array(2), "int64", [2, 3, 4]),
        (lambda a: a.float() + np.array([1.0, 2.0, 3.0]), "float64", [1.0, 3.0, 5.0]),
        (lambda a: graphnn.where(a > 0, a, np.int64(7)), "int64", [7, 1, 2]),
        (lambda a: graphnn.clamp(a, np.int64(1)), "int64", [1, 1, 2]),
        (lambda a: a.masked_fill(a > 1, np.int64(9)), "int64", [0, 1, 9]),
        (lambda a: graphnn.mul(2, a), "int64", [0, 2, 4]),
        (lambda a: graphnn.add(2, a, alpha=3), "int64", [2, 5, 8]),
        (lambda a: graphnn.sub(2, a), "int64", [2, 1, 0]),
        (lambda a: graphnn.div(6, a + 1, rounding_mode="floor"), "int64", [6, 3, 2]),
    ],
)
def test_numpy_scalars_act_as_python_numbers(expr, dtype, values):
    """`idx = torch.arange(n) + offsets[i]` with offsets a NumPy array: an int64 index, as in PyTorch (was float32,
    which then failed as an index); a NumPy array operand is a tensor of its dtype; torch.mul(2, t)."""
    out = expr(graphnn.arange(3))
    assert out.dtype_name == dtype
    assert out.tolist() == values
    if dtype == "int64":
        assert graphnn.arange(10)[graphnn.arange(3) + np.int64(1)].tolist() == [1, 2, 3]


def test_int_over_a_float64_scalar_tensor_is_float64():
    a = graphnn.tensor([1, 2])
    third = graphnn.tensor(3.0, dtype=graphnn.float64)
    assert (a / third).dtype == graphnn.float64
    assert graphnn.true_divide(a, third).dtype == graphnn.float64
    assert graphnn.div(a, third, rounding_mode="trunc").dtype == graphnn.float64
    assert (a / graphnn.tensor(3.0)).dtype == graphnn.float32 and (a / 3).dtype == graphnn.float32
    assert (a / third).tolist() == [1 / 3, 2 / 3]


# -- int64 beyond 2**53 ------------------------------------------------------------------------------------------
def test_integer_division_and_shifts_are_exact():
    x = graphnn.tensor([2**60 + 3, -7, 7, -7, 0, 5])
    y = graphnn.tensor([2, 2, -2, -2, 3, 3])
    trunc = [int(a / b) if abs(a) < 2**53 else a // b for a, b in zip(x.tolist(), y.tolist())]
    floor = [a // b for a, b in zip(x.tolist(), y.tolist())]
    for fn in (
        lambda a, b: (graphnn.div(a, b, rounding_mode="trunc"), a // b, a >> 1),
        graphnn.compile(lambda a, b: (graphnn.div(a, b, rounding_mode="trunc"), a // b, a >> 1)),
    ):
        t, f, s = fn(x, y)
        assert t.tolist() == trunc and f.tolist() == floor
        assert s.tolist() == [v >> 1 for v in x.tolist()]


def test_scatter_writes_keep_int64_exact():
    """Hash ids and nanosecond timestamps written by index_put / index_add / scatter: every bit kept."""

    def writes(z, i, v):
        put = z.clone()
        put[i] = v
        return (
            put,
            z.index_add(0, i, v),
            z.scatter_add(0, i, v),
            z.scatter(0, i, v),
            z.index_copy(0, i, v),
            z.index_put((i,), v, accumulate=True),
        )

    z = graphnn.zeros(3, dtype=graphnn.int64)
    i, v = graphnn.tensor([1, 2]), graphnn.tensor([BIG, -BIG - 5])
    want = [0, BIG, -BIG - 5]
    for fn in (writes, graphnn.compile(writes)):
        for out in fn(z, i, v):
            assert out.dtype_name == "int64" and out.tolist() == want


# -- distributions -----------------------------------------------------------------------------------------------
def test_categorical_probability_zero_has_the_log_of_eps():
    """PyTorch clamps probabilities to the dtype's eps before the log: a zero-probability action's log_prob and
    the entropy's gradient follow from log(eps), not from the log of the smallest normal number."""
    p = graphnn.tensor([0.0, 0.3, 0.7], requires_grad=True)
    d = D.Categorical(probs=p)
    eps = float(np.finfo(np.float32).eps)
    assert d.log_prob(graphnn.tensor(0)).item() == pytest.approx(math.log(eps), rel=1e-6)
    assert D.OneHotCategorical(probs=p).log_prob(graphnn.tensor([1.0, 0.0, 0.0])).item() == pytest.approx(
        math.log(eps), rel=1e-6
    )
    from graphnn.distributions.utils import clamp_probs, logits_to_probs, probs_to_logits

    q = graphnn.tensor([0.0, 0.25, 1.0])
    assert clamp_probs(q).tolist() == pytest.approx([eps, 0.25, 1 - eps])
    assert probs_to_logits(q).tolist() == pytest.approx([math.log(eps), math.log(0.25), math.log(1 - eps)])
    assert probs_to_logits(q, is_binary=True)[1].item() == pytest.approx(math.log(1 / 3))
    assert logits_to_probs(graphnn.zeros(4)).tolist() == [0.25] * 4
    assert logits_to_probs(graphnn.zeros(2), is_binary=True).tolist() == [0.5, 0.5]


@pytest.mark.parametrize(
    "make",
    [
        lambda: D.Exponential(2.0).log_prob(graphnn.tensor(-1.0)),
        lambda: D.Poisson(2.0).log_prob(graphnn.tensor(1.5)),
        lambda: D.Dirichlet(graphnn.ones(3)).log_prob(graphnn.tensor([0.5, 0.5, 0.5])),
        lambda: D.OneHotCategorical(probs=graphnn.ones(3) / 3).log_prob(graphnn.tensor([1.0, 1.0, 0.0])),
        lambda: D.Uniform(0.0, 1.0).log_prob(graphnn.tensor(2.0)),
        lambda: D.Beta(2.0, 2.0).log_prob(graphnn.tensor(1.5)),
        lambda: D.Categorical(logits=graphnn.tensor([float("nan"), 0.0])),
        lambda: D.Bernoulli(logits=graphnn.tensor(float("nan"))),
        lambda: D.Normal(graphnn.tensor(float("nan")), 1.0),
        lambda: D.MultivariateNormal(graphnn.tensor([float("nan"), 0.0]), graphnn.eye(2)),
    ],
)
def test_distributions_validate_values_and_parameters(make):
    """validate_args is on by default (as in PyTorch): a value outside the support and a NaN parameter raise."""
    with pytest.raises(ValueError, match="Expected (value argument|parameter)"):
        make()


def test_validation_can_be_switched_off():
    assert math.isfinite(D.Exponential(2.0, validate_args=False).log_prob(graphnn.tensor(-1.0)).item())
    assert D.Normal(0.0, 1.0).log_prob(graphnn.tensor(3.0)).item() == pytest.approx(-4.5 - 0.5 * math.log(2 * math.pi))


# -- Python state reached through dicts and hooks under graphnn.compile --------------------------------------------
def _linear(v: float):
    m = nn.Linear(2, 1)
    with graphnn.no_grad():
        m.weight.fill_(v)
        m.bias.zero_()
    return m


def test_a_model_or_optimizer_replaced_in_a_dict_traces_again():
    """`state["model"] = ...` / `state["opt"] = SGD(...)` between training phases: the compiled step uses the new
    one (it kept the old model's weights and the old optimizer's momentum)."""
    x = graphnn.ones(1, 2)
    st = {"m": _linear(1.0)}
    f = graphnn.compile(lambda x: st["m"](x))
    assert f(x).item() == f(x).item() == 2.0
    st["m"] = _linear(3.0)
    assert f(x).item() == 6.0

    def run(compiled: bool) -> float:
        w = graphnn.tensor([1.0], requires_grad=True)
        box = {"opt": graphnn.optim.SGD([w], lr=0.1, momentum=0.9)}

        def step():
            box["opt"].zero_grad()
            (w * w).sum().backward()
            box["opt"].step()

        s = graphnn.compile(step) if compiled else step
        s()
        s()
        box["opt"] = graphnn.optim.SGD([w], lr=0.1, momentum=0.9)
        s()
        s()
        return w.item()

    assert run(True) == pytest.approx(run(False), rel=1e-6)


def test_hooks_reading_and_changing_python_state_under_compile():
    """A forward hook scaling by a global setting follows the setting; a hook counting calls in a global dict is
    Python state compiled calls would not change: the calls run eagerly (with a warning) and count right."""
    cfg = {"scale": 1.0}
    ident = nn.Identity()
    ident.register_forward_hook(lambda mod, i, o: o * cfg["scale"])
    for f in (graphnn.compile(lambda x: ident(x)), graphnn.compile(ident)):
        cfg["scale"] = 1.0
        assert f(graphnn.ones(2)).tolist() == [1.0, 1.0]
        assert f(graphnn.ones(2)).tolist() == [1.0, 1.0]
        cfg["scale"] = 3.0
        assert f(graphnn.ones(2)).tolist() == [3.0, 3.0]

    stats = {"sum": graphnn.zeros(()), "n": 0}

    def count(mod, inp, out):
        stats["sum"] = stats["sum"] + out.detach().sum()
        stats["n"] += 1

    m = nn.Identity()
    m.register_forward_hook(count)
    f = graphnn.compile(m)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for i in range(1, 5):
            f(graphnn.full((2,), float(i)))
    assert stats["n"] == 4 and stats["sum"].item() == 20.0


def test_a_compiled_policy_returns_a_distribution():
    """`policy = graphnn.compile(net)` whose forward returns a Categorical / a tanh-squashed Normal: the
    distribution comes back with the compiled results as its tensors (it failed with a TraceError)."""
    graphnn.manual_seed(0)
    lin = nn.Linear(4, 3)
    x = graphnn.randn(5, 4)
    f = graphnn.compile(lambda x: D.Categorical(logits=lin(x)))
    for _ in range(3):  # (traced at the second call)
        d = f(x)
    actions = graphnn.tensor([0, 1, 2, 0, 1])
    ref = D.Categorical(logits=lin(x))
    assert isinstance(d, D.Categorical) and tuple(d.batch_shape) == (5,)
    np.testing.assert_allclose(d.log_prob(actions).detach().numpy(), ref.log_prob(actions).detach().numpy(), atol=1e-6)

    class Squashed(nn.Module):
        def __init__(self):
            super().__init__()
            self.mu = nn.Linear(4, 2)
            self.log_std = nn.Parameter(graphnn.zeros(2))

        def forward(self, x):
            base = D.Normal(self.mu(x), self.log_std.exp())
            return D.TransformedDistribution(base, [D.transforms.TanhTransform(cache_size=1)])

    p = Squashed()
    cp = graphnn.compile(p)
    for _ in range(3):
        td = cp(x)
    a = graphnn.tensor(np.tanh(np.linspace(-1, 1, 10, dtype=np.float32)).reshape(5, 2))
    want = Squashed.forward(p, x).log_prob(a)
    np.testing.assert_allclose(td.log_prob(a).detach().numpy(), want.detach().numpy(), rtol=1e-5, atol=1e-5)
    td.log_prob(a).sum().backward()
    assert p.log_std.grad is not None and bool((p.log_std.grad != 0).all())


def test_interpolate_gathers_and_takes_integer_images():
    """Resizing is a weighted sum of gathers (it was a product with a dense n_out x n_in matrix per axis: 20x
    PyTorch's time at 1024^2), so integer (uint8) images resize too: nearest exactly, the others rounded."""
    x = np.arange(2 * 3 * 4 * 5).reshape(2, 3, 4, 5) % 251
    up = graphnn.nn.functional.interpolate(graphnn.tensor(x), scale_factor=2)
    assert up.dtype_name == "int64" and up.tolist() == x.repeat(2, 2).repeat(2, 3).tolist()
    lin = graphnn.nn.functional.interpolate(graphnn.tensor(x), size=(4, 9), mode="bilinear", align_corners=True)
    want = graphnn.nn.functional.interpolate(
        graphnn.tensor(x.astype(np.float32)), size=(4, 9), mode="bilinear", align_corners=True
    )
    assert lin.dtype_name == "int64" and lin.tolist() == want.round().long().tolist()


_KL_PAIRS = [
    ("Laplace", (0.3, 1.2), "Laplace", (-0.5, 0.6)),
    ("Poisson", (2.0,), "Poisson", (1.0,)),
    ("Geometric", (0.3,), "Geometric", (0.5,)),
    ("LogNormal", (0.1, 0.5), "LogNormal", (-0.4, 1.0)),
    ("Uniform", (0.2, 1.5), "Normal", (0.2, 1.5)),
    ("Exponential", (0.5,), "Normal", (0.2, 1.5)),
    ("Gamma", (2.0, 1.5), "Normal", (0.2, 1.5)),
    ("Beta", (2.0, 1.5), "Normal", (0.2, 1.5)),
    ("Laplace", (0.3, 1.2), "Normal", (-1.0, 0.5)),
    ("Normal", (0.2, 1.5), "Laplace", (-0.5, 0.6)),
    ("Gamma", (2.0, 1.5), "Exponential", (0.5,)),
    ("Uniform", (0.2, 1.5), "Exponential", (2.0,)),
    ("Uniform", (-1.0, 1.5), "Exponential", (2.0,)),
    ("Exponential", (0.5,), "Gamma", (2.0, 1.5)),
    ("Normal", (0.2, 1.5), "Gamma", (2.0, 1.5)),
    ("Bernoulli", (0.3,), "Poisson", (2.0,)),
]


@pytest.mark.parametrize("p, pa, q, qa", _KL_PAIRS)
def test_kl_pairs_as_pytorch(torch, p, pa, q, qa):
    """The KL pairs PyTorch registers that kl_divergence lacked (NotImplementedError before)."""

    def kl(lib):
        D = lib.distributions
        make = lambda name, args: getattr(D, name)(*[lib.tensor(a) for a in args])  # noqa: E731
        return float(D.kl_divergence(make(p, pa), make(q, qa)))

    assert kl(graphnn) == pytest.approx(kl(torch), rel=2e-6, abs=1e-6)


def test_kl_of_binomials_and_one_hot_categoricals(torch):
    for lib in (graphnn, torch):
        D = lib.distributions
        b = D.kl_divergence(D.Binomial(5, lib.tensor([0.3, 0.6])), D.Binomial(5, lib.tensor([0.5, 0.1])))
        o = D.kl_divergence(
            D.OneHotCategorical(probs=lib.tensor([0.2, 0.3, 0.5])),
            D.OneHotCategorical(probs=lib.tensor([0.6, 0.3, 0.1])),
        )
        if lib is graphnn:
            got = (b.tolist(), o.item())
    assert got[0] == pytest.approx(b.tolist(), rel=1e-6) and got[1] == pytest.approx(o.item(), rel=1e-6)


def test_clamp_propagates_a_nan_bound():
    x = graphnn.tensor([1.0, 2.0, float("nan")])
    lo = graphnn.tensor([float("nan"), 0.0, 0.0])
    for f in (lambda x, lo: graphnn.clamp(x, min=lo), graphnn.compile(lambda x, lo: graphnn.clamp(x, min=lo))):
        for _ in range(2):
            got = f(x, lo).tolist()
            assert math.isnan(got[0]) and got[1] == 2.0 and math.isnan(got[2])
    assert all(math.isnan(v) for v in graphnn.clamp(x, min=0.5, max=float("nan")).tolist())
    assert graphnn.clamp(x, 0, 1.5).tolist()[:2] == [1.0, 1.5]


def test_integer_matmul():
    a, b = graphnn.tensor([[1], [2]]), graphnn.tensor([[3, 4]])
    for f in (lambda a, b: a @ b, graphnn.compile(lambda a, b: a @ b)):
        out = f(a, b)
        assert out.dtype_name == "int64" and out.tolist() == [[3, 4], [6, 8]]
    assert graphnn.bmm(a[None], b[None]).tolist() == [[[3, 4], [6, 8]]]
    assert (graphnn.tensor([1, 2]) @ graphnn.tensor([3, 4])).item() == 11


_DIST_MORE = {
    "inverse_gamma_log_prob": lambda l, D: D.InverseGamma(l.tensor([2.0, 3.5]), l.tensor([1.5, 0.5])).log_prob(
        l.tensor([0.7, 0.2])
    ),
    "inverse_gamma_entropy": lambda l, D: D.InverseGamma(l.tensor([2.0, 3.5]), l.tensor([1.5, 0.5])).entropy(),
    "inverse_gamma_variance": lambda l, D: D.InverseGamma(l.tensor([2.0, 3.5]), l.tensor([1.5, 0.5])).variance,
    "softplus_log_det": lambda l, D: D.transforms.SoftplusTransform().log_abs_det_jacobian(
        l.tensor([-3.0, 0.0, 2.0]), l.tensor([0.0486, 0.6931, 2.1269])
    ),
    "softplus_inverse": lambda l, D: D.transforms.SoftplusTransform().inv(l.tensor([0.1, 1.0, 5.0])),
    "biject_positive": lambda l, D: D.biject_to(D.constraints.positive)(l.tensor([-1.0, 2.0])),
    "biject_interval": lambda l, D: D.biject_to(D.constraints.interval(-2.0, 3.0))(l.tensor([-1.0, 2.0])),
    "biject_simplex": lambda l, D: D.biject_to(D.constraints.simplex)(l.tensor([-1.0, 2.0])),
    "transform_simplex": lambda l, D: D.transform_to(D.constraints.simplex)(l.tensor([-1.0, 2.0])),
    "biject_greater_than": lambda l, D: D.biject_to(D.constraints.greater_than(1.5))(l.tensor([-1.0, 2.0])),
    "transform_lower_cholesky": lambda l, D: D.transform_to(D.constraints.lower_cholesky)(
        l.tensor([[0.5, 2.0], [1.0, -1.0]])
    ),
    "reshape": lambda l, D: D.transforms.ReshapeTransform((4,), (2, 2))(l.arange(8.0).reshape(2, 4)),
    "independent_log_det": lambda l, D: D.transforms.IndependentTransform(
        D.transforms.ExpTransform(), 1
    ).log_abs_det_jacobian(l.tensor([[1.0, 2.0]]), l.tensor([[1.0, 2.0]]).exp()),
}


@pytest.mark.parametrize("name", sorted(_DIST_MORE))
def test_more_distributions_and_transforms_as_pytorch(torch, name):
    """InverseGamma, the Softplus / Reshape / Independent / LowerCholesky transforms and biject_to / transform_to,
    with PyTorch's module paths."""
    from graphnn.distributions.one_hot_categorical import OneHotCategoricalStraightThrough  # noqa: F401
    from graphnn.distributions.transformed_distribution import TransformedDistribution  # noqa: F401

    f = _DIST_MORE[name]
    want = f(torch, torch.distributions).detach().numpy()
    got = f(graphnn, graphnn.distributions).detach().numpy()
    np.testing.assert_allclose(got, want, rtol=2e-6, atol=1e-6)


def test_straight_through_one_hot_passes_gradients_to_probs():
    logits = graphnn.tensor([0.1, -0.4, 0.3], requires_grad=True)
    s = D.OneHotCategoricalStraightThrough(logits=logits).rsample((5,))
    assert s.detach().sum(-1).tolist() == [1.0] * 5
    (s * graphnn.arange(3.0)).sum().backward()
    p = D.Categorical(logits=logits.detach()).probs.numpy()
    want = 5 * p * (np.arange(3.0) - (p * np.arange(3.0)).sum())  # d/dlogits of 5 * sum(probs * w) through softmax
    np.testing.assert_allclose(logits.grad.numpy(), want, rtol=1e-5, atol=1e-6)


# -- autograd calls inside graphnn.compile -------------------------------------------------------------------------
def _both(f, *args):
    """f's results eagerly and compiled (the second compiled call: traced by then)."""
    c = graphnn.compile(f)
    c(*args)
    return f(*args), c(*args)


def test_autograd_calls_inside_a_compiled_function():
    """GradCache's autograd.backward([e1, e2], [g1, g2]) used the first tensor only; `xa.requires_grad = True`
    left xa.grad None; detach_() broke the tensor; backward(inputs=[a parameter]) raised."""
    w = graphnn.ones(3, requires_grad=True)

    def several(x):
        w.grad = None
        graphnn.autograd.backward([(w * x).sum(), (2 * w * x).sum()], [graphnn.tensor(1.0), graphnn.tensor(0.5)])
        return w.grad.clone()

    def flag(x):
        xa = x.clone()
        xa.requires_grad = True
        (xa * xa).sum().backward()
        return xa.grad

    def detached(x):
        y = x * 2
        y.detach_()
        return y + 1

    def only_inputs(x):
        w.grad = None
        (w * x).sum().backward(inputs=[w])
        return w.grad.clone()

    x = graphnn.tensor([1.0, 2.0, 3.0])
    for f, want in (
        (several, [2.0, 4.0, 6.0]),
        (flag, [2.0, 4.0, 6.0]),
        (detached, [3.0, 5.0, 7.0]),
        (only_inputs, [1.0, 2.0, 3.0]),
    ):
        for got in _both(f, x):
            assert got.tolist() == want, f.__name__


def test_cdist_p0_has_a_zero_gradient():
    a = graphnn.tensor([[1.0, float("nan"), 2.0]], requires_grad=True)
    d = graphnn.cdist(a, graphnn.zeros(1, 3), p=0)
    assert d.item() == 3.0
    d.sum().backward()
    assert a.grad.tolist() == [[0.0, 0.0, 0.0]]


def test_loss_arguments_pytorch_refuses():
    a = graphnn.randn(2, 3)
    for m in (0.0, -1.0):
        with pytest.raises(ValueError, match="margin must be greater than 0"):
            graphnn.nn.functional.triplet_margin_loss(a, a, a, margin=m)
    with pytest.raises(RuntimeError, match="label_smoothing must be between 0.0 and 1.0"):
        graphnn.nn.functional.cross_entropy(a, graphnn.tensor([0, 1]), label_smoothing=1.5)


def test_an_operand_that_is_no_number_is_a_clear_error():
    """`t + None` gave NaN; a forward hook returning a RemovableHandle failed inside float()."""
    for v in (None, object()):
        with pytest.raises(TypeError, match="add: expected a tensor or a number as an operand, got"):
            graphnn.ones(2) + v


def test_bool_tensors_shift_as_integers():
    b = graphnn.tensor([True, False])
    assert (b << 1).tolist() == [2, 0] and (b >> 1).tolist() == [0, 0]
    assert (graphnn.tensor([1, 2]) << b).tolist() == [2, 2]


def test_a_compiled_module_reports_the_original_modules_training_flag():
    m = nn.Sequential(nn.Linear(2, 2), nn.Dropout())
    c = graphnn.compile(m)
    c.eval()
    m.train()
    assert m.training and c.training
    c.train()
    m.eval()
    assert not m.training and not c.training and not m[1].training
