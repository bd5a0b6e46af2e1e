"""More of PyTorch's registered KL pairs: same-family pairs of the count and Laplace families, one-hot categoricals,
log-normals, and the pairs against a Normal, an Exponential or a Gamma computed as -H(p) - E_p[log q(x)] from p's
entropy and moments; registered into kl.kl_divergence when graphnn.distributions is imported."""

from __future__ import annotations

import math

from graphnn.distributions.beta import Beta
from graphnn.distributions.bernoulli import Bernoulli
from graphnn.distributions.continuous_bernoulli import ContinuousBernoulli
from graphnn.distributions.counts import Binomial, Geometric, Poisson
from graphnn.distributions.gamma import Exponential, Gamma
from graphnn.distributions.independent import OneHotCategorical
from graphnn.distributions.kl import kl_divergence, normal_normal_of, register_kl
from graphnn.distributions.kl_more import _infinite, _support_mismatch
from graphnn.distributions.laplace import Laplace, LogNormal
from graphnn.distributions.normal import Normal
from graphnn.distributions.uniform import Uniform

EULER = 0.5772156649015329


@register_kl(Laplace, Laplace)
def _laplace_laplace(p, q):
    d = (p.loc - q.loc).abs()
    return (q.scale / p.scale).log() + d / q.scale + p.scale / q.scale * (-d / p.scale).exp() - 1


@register_kl(Poisson, Poisson)
def _poisson_poisson(p, q):
    r, s = p.rate, q.rate
    return (r * (r.log() - s.log())).masked_fill(r == 0, 0.0) - (r - s)  # (0 log 0 = 0)


@register_kl(Geometric, Geometric)
def _geometric_geometric(p, q):
    return -p.entropy() - (-q.probs).log1p() / p.probs - q.logits


@register_kl(Binomial, Binomial)
def _binomial_binomial(p, q):
    """n times the Bernoulli KL of the success probabilities (the same number of trials only, as PyTorch)."""
    if not bool((p.total_count == q.total_count).all()):
        raise NotImplementedError("KL between Binomials where q.total_count > p.total_count is not implemented")
    return p.total_count * kl_divergence(Bernoulli(logits=p.logits), Bernoulli(logits=q.logits))


@register_kl(OneHotCategorical, OneHotCategorical)
def _onehot_onehot(p, q):
    return kl_divergence(p._categorical, q._categorical)


@register_kl(LogNormal, LogNormal)
def _lognormal_lognormal(p, q):
    return normal_normal_of(p.loc, p.scale, q.loc, q.scale)


@register_kl(Bernoulli, Poisson)
def _bernoulli_poisson(p, q):
    return -p.entropy() - (p.probs * q.rate.log() - q.rate)


def _to_normal(p, q):
    """-H(p) - E_p[log N(x; m, s)]: log s + log(2 pi) / 2 + (Var p + (E p - m)^2) / (2 s^2) after -H(p)."""
    spread = p.variance + (p.mean - q.loc).pow(2)
    return -p.entropy() + q.scale.log() + 0.5 * math.log(2 * math.pi) + spread / (2 * q.scale.pow(2))


for _p in (Uniform, Exponential, Gamma, Beta, ContinuousBernoulli, Laplace):
    register_kl(_p, Normal)(_to_normal)


@register_kl(Normal, Laplace)
def _normal_laplace(p, q):
    """E|x - m| for x ~ N(mu, s): d erf(d / (s sqrt 2)) + s sqrt(2 / pi) exp(-d^2 / (2 s^2)), d = mu - m."""
    d = p.loc - q.loc
    mean_abs = (
        d * (d / (p.scale * math.sqrt(2))).erf()
        + p.scale * math.sqrt(2 / math.pi) * (-d.pow(2) / (2 * p.scale.pow(2))).exp()
    )
    return -p.entropy() + (2 * q.scale).log() + mean_abs / q.scale


def _to_exponential(p, q):
    """-H(p) - E_p[log(r) - r x] for p on the positive half-line."""
    return -p.entropy() - q.rate.log() + q.rate * p.mean


for _p in (Gamma, Beta, ContinuousBernoulli):
    register_kl(_p, Exponential)(_to_exponential)


@register_kl(Uniform, Exponential)
def _uniform_exponential(p, q):
    return _to_exponential(p, q).masked_fill(p.low < 0, math.inf)  # (mass below 0, where q has none)


@register_kl(Exponential, Gamma)
def _exponential_gamma(p, q):
    """-H(p) - E_p[a log b + (a - 1) log x - b x - lgamma a], E log x = -gamma - log r, E x = 1 / r."""
    a, b, r = q.concentration, q.rate, p.rate
    e_log = -EULER - r.log()
    return -p.entropy() - (a * b.log() + (a - 1) * e_log - b / r - a.lgamma())


for _q in (Uniform, Beta, Gamma, Exponential):  # (a real-valued p puts mass where these have none)
    register_kl(Normal, _q)(_support_mismatch)
register_kl(Poisson, Bernoulli)(_infinite)
register_kl(Laplace, Exponential)(_support_mismatch)
