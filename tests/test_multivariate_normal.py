"""MultivariateNormal (from a covariance, a precision or a Cholesky factor, batched) and its KL against PyTorch:
values and gradients, eagerly and compiled; rsample's moments."""

import numpy as np
import pytest

import graphnn
from tolerance import accumulation_tolerance

RNG = np.random.default_rng(4)
N = 3


def spd(batch=()):
    a = RNG.standard_normal(batch + (N, N))
    return a @ np.swapaxes(a, -1, -2) + N * np.eye(N)


LOC = RNG.standard_normal((2, N))
COV = spd((2,))
VALUE = RNG.standard_normal((4, 2, N))


def tol(x, terms=64):
    """float64, condition number of the test matrices < 10: a few dozen roundings of terms <= 10 |x|."""
    return accumulation_tolerance("float64", terms, 10 * max(1.0, float(np.abs(x).max())))


@pytest.mark.parametrize("given", ["covariance_matrix", "precision_matrix", "scale_tril"])
@pytest.mark.parametrize("compiled", [False, True], ids=["eager", "compiled"])
def test_log_prob_entropy_and_gradients_as_pytorch(torch, given, compiled):
    m = {"covariance_matrix": COV, "precision_matrix": np.linalg.inv(COV), "scale_tril": np.linalg.cholesky(COV)}[given]
    results = []
    for L, comp in ((graphnn, compiled), (torch, False)):
        loc, mat = L.tensor(LOC, requires_grad=True), L.tensor(m, requires_grad=True)

        def f(loc, mat):
            d = L.distributions.MultivariateNormal(loc, **{given: mat})
            lp = d.log_prob(L.tensor(VALUE))
            out = lp.sum() + d.entropy().sum() * 0.5
            out.backward()
            return lp.detach(), d.entropy().detach(), d.variance.detach(), d.covariance_matrix.detach()

        outs = (L.compile(f) if comp else f)(loc, mat)
        results.append([o.numpy() for o in outs] + [loc.grad.numpy(), mat.grad.numpy()])
    for g, t in zip(*results):
        np.testing.assert_allclose(g, t, rtol=0, atol=tol(t))


def test_kl_and_properties_as_pytorch(torch):
    cov_q = spd((2,))
    res = []
    for L in (graphnn, torch):
        p = L.distributions.MultivariateNormal(L.tensor(LOC), covariance_matrix=L.tensor(COV))
        q = L.distributions.MultivariateNormal(
            L.tensor(LOC[::-1].copy()), scale_tril=L.tensor(np.linalg.cholesky(cov_q))
        )
        res.append(
            [
                L.distributions.kl_divergence(p, q).numpy(),
                q.precision_matrix.numpy(),
                q.scale_tril.numpy(),
                p.mean.numpy(),
            ]
        )
        assert tuple(p.batch_shape) == (2,) and tuple(p.event_shape) == (N,)
    for g, t in zip(*res):
        np.testing.assert_allclose(g, t, rtol=0, atol=tol(t))


def test_rsample_moments_and_errors():
    graphnn.manual_seed(0)
    n = 20000
    loc = graphnn.tensor(LOC[0])
    d = graphnn.distributions.MultivariateNormal(loc, covariance_matrix=graphnn.tensor(COV[0]))
    x = d.rsample((n,)).numpy()
    # each entry of the sample mean and covariance within 6 standard errors (variances of the entries < 20)
    assert np.abs(x.mean(0) - LOC[0]).max() < 6 * np.sqrt(np.diag(COV[0]).max() / n)
    assert np.abs(np.cov(x.T) - COV[0]).max() < 6 * np.sqrt(2 * np.diag(COV[0]).max() ** 2 / n)
    with pytest.raises(ValueError, match="Exactly one"):
        graphnn.distributions.MultivariateNormal(loc)
    with pytest.raises(ValueError, match="PositiveDefinite"):
        graphnn.distributions.MultivariateNormal(
            loc, covariance_matrix=-graphnn.eye(N, dtype=graphnn.float64), validate_args=True
        )
