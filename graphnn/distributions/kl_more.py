"""KL divergences of the distributions added to graphnn.distributions (the pairs PyTorch registers), registered into
kl.kl_divergence when graphnn.distributions is imported."""

from __future__ import annotations

import math

import numpy as np

from graphnn.core.tensor import Tensor, as_tensor
from graphnn.distributions.beta import Beta
from graphnn.distributions.continuous_bernoulli import ContinuousBernoulli
from graphnn.distributions.extreme_value import EULER_GAMMA, Gumbel, Pareto
from graphnn.distributions.gamma import Exponential, Gamma
from graphnn.distributions.independent import Independent
from graphnn.distributions.kl import kl_divergence, register_kl
from graphnn.distributions.laplace import Laplace
from graphnn.distributions.low_rank_mvn import LowRankMultivariateNormal
from graphnn.distributions.multivariate_normal import MultivariateNormal, kl_mvn_mvn
from graphnn.distributions.normal import Normal
from graphnn.distributions.student_cauchy import Cauchy, HalfNormal
from graphnn.distributions.transforms import TransformedDistribution
from graphnn.distributions.uniform import Uniform


def _infinite(p, q) -> Tensor:
    """KL(p || q) = inf: p puts mass where q has none (broadcast over both batch shapes)."""
    shape = tuple(np.broadcast_shapes(tuple(p.batch_shape), tuple(q.batch_shape)))
    dt = next(v for v in vars(p).values() if isinstance(v, Tensor) and v.is_floating_point()).dtype_name
    return as_tensor(np.full(shape, np.inf, dt))


@register_kl(Independent, Independent)
def _independent_independent(p, q):
    """The base KL summed over the dimensions reinterpreted as events (both must reinterpret the same number)."""
    if p.reinterpreted_batch_ndims != q.reinterpreted_batch_ndims:
        raise NotImplementedError
    out = kl_divergence(p.base_dist, q.base_dist)
    for _ in range(p.reinterpreted_batch_ndims):
        out = out.sum(-1)
    return out


@register_kl(TransformedDistribution, TransformedDistribution)
def _transformed_transformed(p, q):
    """Bijections keep KL unchanged: the bases' KL, when both apply the same transforms to the same event shape."""
    if p.transforms != q.transforms or p.event_shape != q.event_shape:
        raise NotImplementedError
    out = kl_divergence(p.base_dist, q.base_dist)
    extra = len(p.event_shape) - len(p.base_dist.event_shape)
    for _ in range(extra):
        out = out.sum(-1)
    return out


@register_kl(HalfNormal, HalfNormal)
def _halfnormal_halfnormal(p, q):
    ratio = (p.scale / q.scale).pow(2)
    return 0.5 * (ratio - 1 - ratio.log())


@register_kl(Cauchy, Cauchy)
def _cauchy_cauchy(p, q):
    """log((g_p + g_q)^2 + (m_p - m_q)^2) - log(4 g_p g_q) (Chyzak and Nielsen, 2019)."""
    num = (p.scale + q.scale).pow(2) + (p.loc - q.loc).pow(2)
    return num.log() - (4 * p.scale * q.scale).log()


@register_kl(Gumbel, Gumbel)
def _gumbel_gumbel(p, q):
    """E_p[-log q] - H(p), with E_p[exp(-(x - m) / s)] = Gamma(1 + s_p / s) exp(-(m_p - m) / s)."""
    ratio = p.scale / q.scale
    shift = (p.loc - q.loc) / q.scale
    return (q.scale / p.scale).log() + EULER_GAMMA * (ratio - 1) + shift + ((1 + ratio).lgamma() - shift).exp() - 1


@register_kl(Pareto, Pareto)
def _pareto_pareto(p, q):
    """Finite when p's support lies inside q's (p.scale >= q.scale)."""
    sp, ap, sq, aq = p.scale, p.alpha, q.scale, q.alpha
    out = (ap / aq).log() + aq * (sp / sq).log() + (aq - ap) / ap
    return out.masked_fill(sp < sq, math.inf)


@register_kl(ContinuousBernoulli, ContinuousBernoulli)
def _cb_cb(p, q):
    """E_p[log p(x) - log q(x)] = log C_p - log C_q + mean_p (logit_p - logit_q) + log(1 - p) - log(1 - q)."""
    pp, qp = p.probs, q.probs
    t1 = p.mean * (pp.log() - (-pp).log1p() - qp.log() + (-qp).log1p())
    return t1 + p._log_normalizer() - q._log_normalizer() + (-pp).log1p() - (-qp).log1p()


def _as_mvn(d) -> MultivariateNormal:
    return MultivariateNormal(d.loc, covariance_matrix=d.covariance_matrix, validate_args=False)


@register_kl(LowRankMultivariateNormal, LowRankMultivariateNormal)
def _lowrank_lowrank(p, q):
    return kl_mvn_mvn(_as_mvn(p), _as_mvn(q))


@register_kl(MultivariateNormal, LowRankMultivariateNormal)
def _mvn_lowrank(p, q):
    return kl_mvn_mvn(p, _as_mvn(q))


@register_kl(LowRankMultivariateNormal, MultivariateNormal)
def _lowrank_mvn(p, q):
    return kl_mvn_mvn(_as_mvn(p), q)


@register_kl(Normal, Gumbel)
def _normal_gumbel(p, q):
    """E_p[(x - m) / s + exp(-(x - m) / s)] + log s - H(p), with the normal's moment generating function."""
    mean_shift = (p.loc - q.loc) / q.scale
    ratio = p.scale / q.scale
    return (
        (q.scale / p.scale).log()
        - 0.5 * math.log(2 * math.pi)
        - 0.5
        + mean_shift
        + (0.5 * ratio.pow(2) - mean_shift).exp()
    )


@register_kl(Gumbel, Normal)
def _gumbel_normal(p, q):
    """E_p[(x - mu)^2] / (2 sigma^2) + log(sigma sqrt(2 pi)) - H(p), Gumbel moments: mean m + s gamma, var (pi s)^2/6."""
    mean = p.loc + p.scale * EULER_GAMMA
    second = p.scale.pow(2) * math.pi**2 / 6 + (mean - q.loc).pow(2)
    entropy = p.scale.log() + 1 + EULER_GAMMA
    return second / (2 * q.scale.pow(2)) + q.scale.log() + 0.5 * math.log(2 * math.pi) - entropy


@register_kl(Exponential, Gumbel)
def _exponential_gumbel(p, q):
    """E_p[(x - m) / s + exp(-(x - m) / s)] + log s - H(p); E_p[exp(-x / s)] = rate / (rate + 1 / s)."""
    rs = p.rate * q.scale
    shift = q.loc / q.scale
    return rs.log() + rs.reciprocal() - shift + shift.exp() * rs / (rs + 1) - 1


@register_kl(Gamma, Gumbel)
def _gamma_gumbel(p, q):
    """E_p[(x - m) / s + exp(-(x - m) / s)] + log s - H(p); E_p[exp(-x / s)] = (1 + 1 / (rate s))^-a."""
    a, b, m, s = p.concentration, p.rate, q.loc, q.scale
    cross = (a / b - m) / s + (m / s).exp() * (-a * (1 / (b * s)).log1p()).exp() + s.log()
    return cross - p.entropy()


@register_kl(Uniform, Gumbel)
def _uniform_gumbel(p, q):
    """E_p over [l, h) of (x - m) / s + exp(-(x - m) / s), plus log s - log(h - l)."""
    lo, hi, m, s = p.low, p.high, q.loc, q.scale
    width = hi - lo
    mean_term = ((lo + hi) / 2 - m) / s
    exp_term = s * ((-(lo - m) / s).exp() - (-(hi - m) / s).exp()) / width
    return mean_term + exp_term + s.log() - width.log()


@register_kl(Pareto, Exponential)
def _pareto_exponential(p, q):
    """rate E_p[x] - log rate - H(p) (infinite mean for alpha <= 1)."""
    return (q.rate * p.mean - q.rate.log() - p.entropy()).masked_fill(p.alpha <= 1, math.inf)


@register_kl(Pareto, Gamma)
def _pareto_gamma(p, q):
    """E_p[-log q(x)] - H(p); E_p[log x] = log scale + 1 / alpha."""
    a, b = q.concentration, q.rate
    e_log = p.scale.log() + p.alpha.reciprocal()
    cross = a.lgamma() - a * b.log() - (a - 1) * e_log + b * p.mean
    return (cross - p.entropy()).masked_fill(p.alpha <= 1, math.inf)


@register_kl(Pareto, Normal)
def _pareto_normal(p, q):
    """E_p[(x - mu)^2] / (2 sigma^2) + log(sigma sqrt(2 pi)) - H(p) (infinite for alpha <= 2)."""
    second = p.variance.masked_fill(p.alpha <= 2, 0.0) + (p.mean.masked_fill(p.alpha <= 1, 0.0) - q.loc).pow(2)
    out = second / (2 * q.scale.pow(2)) + q.scale.log() + 0.5 * math.log(2 * math.pi) - p.entropy()
    return out.masked_fill(p.alpha <= 2, math.inf)


@register_kl(Uniform, Pareto)
def _uniform_pareto(p, q):
    """E_p[-log q(x)] - log(h - l), infinite when [l, h) reaches below q.scale."""
    lo, hi = p.low, p.high
    width = hi - lo
    e_log = (hi * hi.log() - lo * lo.log()) / width - 1  # mean of log x over [l, h)
    cross = -q.alpha.log() - q.alpha * q.scale.log() + (q.alpha + 1) * e_log
    return (cross - width.log()).masked_fill(lo < q.scale, math.inf)


@register_kl(Beta, Pareto)
@register_kl(ContinuousBernoulli, Pareto)
@register_kl(Exponential, Pareto)
@register_kl(Exponential, ContinuousBernoulli)
@register_kl(Gamma, Pareto)
@register_kl(Gamma, ContinuousBernoulli)
@register_kl(Gumbel, Uniform)
@register_kl(Gumbel, Pareto)
@register_kl(Gumbel, Gamma)
@register_kl(Gumbel, Exponential)
@register_kl(Gumbel, ContinuousBernoulli)
@register_kl(Gumbel, Beta)
@register_kl(Laplace, Pareto)
@register_kl(Laplace, ContinuousBernoulli)
@register_kl(Normal, Pareto)
@register_kl(Normal, ContinuousBernoulli)
@register_kl(Pareto, Uniform)
@register_kl(Pareto, ContinuousBernoulli)
@register_kl(Pareto, Beta)
def _support_mismatch(p, q):
    return _infinite(p, q)
