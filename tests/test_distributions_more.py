"""The distributions added beside Normal/Categorical/Bernoulli/Uniform against torch.distributions: log_prob,
entropy, mean, variance and their gradients (float64: agreement to a few hundred ulp of compositions of lgamma /
digamma, whose budget is 8 ulp of their terms), KL pairs, parameter validation, and sampling by moments.

Sampling tolerance: the mean of N draws deviates from the true mean by its standard error sigma / sqrt(N); 6
standard errors are exceeded with probability below 2e-9 per check. Variances: the sample variance's standard
error is about sigma^2 sqrt((kurtosis - 1) / N); checked within 6 of those with the distribution's kurtosis
bounded above by 10 at the parameters used."""

import numpy as np
import pytest

import graphnn
import graphnn.distributions as D

torch = pytest.importorskip("torch")
TD = torch.distributions
RTOL = 1e-12

A = np.array([0.3, 1.0, 2.5, 7.0])
B = np.array([0.5, 2.0, 1.5, 4.0])


def _pair(name, *params):
    ours = getattr(D, name)(*[graphnn.tensor(p) for p in params])
    theirs = getattr(TD, name)(*[torch.tensor(p) for p in params])
    return ours, theirs


CASES = [
    ("Gamma", (A, B), np.array([0.2, 1.0, 3.0, 0.5])),
    ("Beta", (A, B), np.array([0.1, 0.5, 0.7, 0.99])),
    ("Exponential", (B,), np.array([0.2, 1.0, 3.0, 0.5])),
    ("Laplace", (A - 1, B), np.array([0.2, -1.0, 3.0, 0.5])),
    ("LogNormal", (A - 1, B), np.array([0.2, 1.0, 3.0, 0.5])),
    ("Poisson", (A,), np.array([0.0, 1.0, 3.0, 5.0])),
    ("Geometric", (B / 5,), np.array([0.0, 1.0, 3.0, 5.0])),
]


@pytest.mark.parametrize("name,params,value", CASES, ids=[c[0] for c in CASES])
def test_log_prob_entropy_moments_as_pytorch(name, params, value):
    ours, theirs = _pair(name, *params)
    v = graphnn.tensor(value)
    np.testing.assert_allclose(ours.log_prob(v).numpy(), theirs.log_prob(torch.tensor(value)).numpy(), rtol=RTOL)
    np.testing.assert_allclose(ours.mean.numpy(), theirs.mean.numpy(), rtol=RTOL)
    np.testing.assert_allclose(ours.variance.numpy(), theirs.variance.numpy(), rtol=RTOL)
    if name != "Poisson":  # (PyTorch has no Poisson entropy)
        np.testing.assert_allclose(ours.entropy().numpy(), theirs.entropy().numpy(), rtol=RTOL, atol=1e-14)
    assert tuple(ours.batch_shape) == tuple(theirs.batch_shape)
    assert tuple(ours.event_shape) == tuple(theirs.event_shape)


def test_gradients_of_log_prob_and_entropy():
    ga, gb = graphnn.tensor(A, requires_grad=True), graphnn.tensor(B, requires_grad=True)
    ta, tb = torch.tensor(A, requires_grad=True), torch.tensor(B, requires_grad=True)
    x = np.array([0.1, 0.5, 0.7, 0.99])
    (D.Beta(ga, gb).log_prob(graphnn.tensor(x)).sum() + D.Gamma(ga, gb).entropy().sum()).backward()
    (TD.Beta(ta, tb).log_prob(torch.tensor(x)).sum() + TD.Gamma(ta, tb).entropy().sum()).backward()
    np.testing.assert_allclose(ga.grad.numpy(), ta.grad.numpy(), rtol=1e-9)  # PyTorch's trigamma: ~1e-10
    np.testing.assert_allclose(gb.grad.numpy(), tb.grad.numpy(), rtol=1e-9)


def test_dirichlet_binomial_onehot_independent():
    c = np.array([[0.5, 1.0, 3.0], [2.0, 2.0, 0.7]])
    x = np.array([[0.2, 0.3, 0.5], [0.6, 0.1, 0.3]])
    ours, theirs = D.Dirichlet(graphnn.tensor(c)), TD.Dirichlet(torch.tensor(c))
    np.testing.assert_allclose(
        ours.log_prob(graphnn.tensor(x)).numpy(), theirs.log_prob(torch.tensor(x)).numpy(), rtol=RTOL
    )
    np.testing.assert_allclose(ours.entropy().numpy(), theirs.entropy().numpy(), rtol=RTOL)
    np.testing.assert_allclose(ours.variance.numpy(), theirs.variance.numpy(), rtol=RTOL)
    assert tuple(ours.event_shape) == (3,) and tuple(ours.batch_shape) == (2,)

    n, p, k = np.array([5.0, 10.0, 3.0]), np.array([0.2, 0.7, 0.5]), np.array([1.0, 7.0, 3.0])
    ob, tb = D.Binomial(graphnn.tensor(n), graphnn.tensor(p)), TD.Binomial(torch.tensor(n), torch.tensor(p))
    np.testing.assert_allclose(ob.log_prob(graphnn.tensor(k)).numpy(), tb.log_prob(torch.tensor(k)).numpy(), rtol=1e-12)
    np.testing.assert_allclose(ob.variance.numpy(), tb.variance.numpy(), rtol=RTOL)

    probs = np.array([[0.2, 0.3, 0.5], [0.1, 0.1, 0.8]])
    oh, th = D.OneHotCategorical(graphnn.tensor(probs)), TD.OneHotCategorical(torch.tensor(probs))
    onehot = np.eye(3)[[2, 0]]
    np.testing.assert_allclose(
        oh.log_prob(graphnn.tensor(onehot)).numpy(), th.log_prob(torch.tensor(onehot)).numpy(), rtol=RTOL
    )
    np.testing.assert_allclose(oh.entropy().numpy(), th.entropy().numpy(), rtol=RTOL)
    s = oh.sample((4,))
    assert tuple(s.shape) == (4, 2, 3) and (s.numpy().sum(-1) == 1).all()

    loc, scale = np.zeros((2, 3)), np.ones((2, 3)) * 2
    oi = D.Independent(D.Normal(graphnn.tensor(loc), graphnn.tensor(scale)), 1)
    ti = TD.Independent(TD.Normal(torch.tensor(loc), torch.tensor(scale)), 1)
    assert tuple(oi.batch_shape) == (2,) and tuple(oi.event_shape) == (3,)
    np.testing.assert_allclose(oi.log_prob(graphnn.tensor(x)).numpy(), ti.log_prob(torch.tensor(x)).numpy(), rtol=RTOL)
    np.testing.assert_allclose(oi.entropy().numpy(), ti.entropy().numpy(), rtol=RTOL)


def test_kl_pairs():
    pairs = [
        ("Gamma", (A, B), (B, A)),
        ("Beta", (A, B), (B, A)),
        ("Exponential", (A,), (B,)),
        ("Normal", (A, B), (B, A)),
    ]
    for name, p, q in pairs:
        o = D.kl_divergence(_pair(name, *p)[0], _pair(name, *q)[0])
        t = TD.kl_divergence(_pair(name, *p)[1], _pair(name, *q)[1])
        np.testing.assert_allclose(o.numpy(), t.numpy(), rtol=1e-11, err_msg=name)
    c1, c2 = np.array([[0.5, 1.0, 3.0]]), np.array([[2.0, 2.0, 0.7]])
    o = D.kl_divergence(D.Dirichlet(graphnn.tensor(c1)), D.Dirichlet(graphnn.tensor(c2)))
    t = TD.kl_divergence(TD.Dirichlet(torch.tensor(c1)), TD.Dirichlet(torch.tensor(c2)))
    np.testing.assert_allclose(o.numpy(), t.numpy(), rtol=1e-11)


def test_validation_errors():
    for make in (
        lambda: D.Gamma(graphnn.tensor([1.0, -1.0]), 1.0),
        lambda: D.Beta(1.0, graphnn.tensor([0.0])),
        lambda: D.Dirichlet(graphnn.tensor([1.0, -2.0])),
        lambda: D.Exponential(graphnn.tensor([-1.0])),
        lambda: D.Laplace(0.0, graphnn.tensor([-1.0])),
        lambda: D.Poisson(graphnn.tensor([-1.0])),
        lambda: D.Binomial(graphnn.tensor([2.5]), graphnn.tensor([0.5])),
        lambda: D.Geometric(graphnn.tensor([1.5])),
    ):
        with pytest.raises(ValueError, match="constraint"):
            make()
    with pytest.raises(ValueError, match="reinterpreted_batch_ndims"):
        D.Independent(D.Normal(0.0, 1.0), 1)


N = 20000


@pytest.mark.parametrize(
    "name,params",
    [
        ("Gamma", (A, B)),
        ("Beta", (A, B)),
        ("Exponential", (B,)),
        ("Laplace", (A, B)),
        ("LogNormal", (A / 4, B / 4)),
        ("Poisson", (A,)),
        ("Geometric", (B / 5,)),
    ],
)
def test_sampling_moments(name, params):
    graphnn.manual_seed(0)
    ours, theirs = _pair(name, *params)
    s = ours.sample((N,)).numpy()
    assert s.shape == (N, 4)
    mean, var = theirs.mean.numpy(), theirs.variance.numpy()
    assert (np.abs(s.mean(0) - mean) <= 6 * np.sqrt(var / N)).all(), (s.mean(0), mean)
    if name in LIGHT_TAILED:  # kurtosis <= 10 at these parameters
        assert (np.abs(s.var(0) - var) <= 6 * var * np.sqrt(9 / N)).all(), (s.var(0), var)


LIGHT_TAILED = ("Beta", "Exponential", "Laplace", "Poisson")


def test_dirichlet_and_binomial_sampling_moments():
    graphnn.manual_seed(1)
    c = np.array([0.5, 1.0, 3.0])
    s = D.Dirichlet(graphnn.tensor(c)).sample((N,)).numpy()
    t = TD.Dirichlet(torch.tensor(c))
    assert np.allclose(s.sum(-1), 1)
    assert (np.abs(s.mean(0) - t.mean.numpy()) <= 6 * np.sqrt(t.variance.numpy() / N)).all()
    n, p = np.array([5.0, 10.0]), np.array([0.2, 0.7])
    s = D.Binomial(graphnn.tensor(n), graphnn.tensor(p)).sample((N,)).numpy()
    assert (np.abs(s.mean(0) - n * p) <= 6 * np.sqrt(n * p * (1 - p) / N)).all()


def test_rsample_gradient_of_gamma_mean():
    """d E[x] / d concentration = 1 / rate: the reparameterized gradient's average, within 6 standard errors."""
    graphnn.manual_seed(2)
    a = graphnn.tensor(np.array([0.5, 2.0, 5.0]), requires_grad=True)
    D.Gamma(a, 2.0).rsample((N,)).mean(0).sum().backward()
    # allowed: the bias of ignoring the acceptance step (below the 5% rejection rate of standard_gamma) plus 6
    # standard errors of the mean of N per-draw gradients, whose spread is below 1 / rate (x / a for a draw x)
    assert np.all(np.abs(a.grad.numpy() - 0.5) <= 0.05 * 0.5 + 6 * 0.5 / np.sqrt(N))


def test_transformed_distributions_match_torch(torch):
    """A squashed Gaussian (Normal, then TanhTransform and an affine map: soft actor-critic's policy), Exp and Sigmoid
    transforms: log_prob as PyTorch's, and rsample differentiable through the transforms."""
    mu, sd = np.array([0.3, -1.2], np.float32), np.array([0.5, 1.5], np.float32)
    got = []
    for lib in (torch, graphnn):
        D = lib.distributions
        base = D.Normal(lib.tensor(mu), lib.tensor(sd))
        squashed = D.TransformedDistribution(base, [D.TanhTransform(), D.AffineTransform(2.0, 3.0)])
        got.append(
            [
                squashed.log_prob(lib.tensor([0.5, -0.25])).numpy(),
                D.TransformedDistribution(base, D.transforms.ExpTransform()).log_prob(lib.tensor([0.7, 2.0])).numpy(),
                D.TransformedDistribution(base, [D.SigmoidTransform()]).log_prob(lib.tensor([0.2, 0.9])).numpy(),
            ]
        )
    for g, t in zip(got[1], got[0]):
        np.testing.assert_allclose(g, t, rtol=1e-5, atol=1e-6)
    loc = graphnn.tensor(mu, requires_grad=True)
    action = graphnn.distributions.TransformedDistribution(
        graphnn.distributions.Normal(loc, graphnn.tensor(sd)), graphnn.distributions.TanhTransform()
    ).rsample((8,))
    action.sum().backward()
    assert loc.grad is not None and (loc.grad.numpy() > 0).all()  # d tanh / dx > 0
