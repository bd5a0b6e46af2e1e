"""kl_divergence(p, q): KL(p || q) between two distributions, by rules registered per pair of types."""

from __future__ import annotations

import math

from graphnn.distributions.bernoulli import Bernoulli
from graphnn.distributions.beta import Beta, Dirichlet
from graphnn.distributions.categorical import Categorical
from graphnn.distributions.gamma import Exponential, Gamma
from graphnn.distributions.multivariate_normal import MultivariateNormal, kl_mvn_mvn
from graphnn.distributions.normal import Normal
from graphnn.distributions.uniform import Uniform

_RULES: dict = {}


def register_kl(type_p, type_q):
    """Decorator: fn(p, q) computes KL(p || q) for p of type_p and q of type_q (subclasses included)."""

    def add(fn):
        _RULES[type_p, type_q] = fn
        return fn

    return add


def kl_divergence(p, q):
    """KL(p || q), elementwise over the batch."""
    matches = [(tp, tq) for tp, tq in _RULES if isinstance(p, tp) and isinstance(q, tq)]
    if not matches:
        raise NotImplementedError(f"kl_divergence: no rule for {type(p).__name__} and {type(q).__name__}")
    # the most specific rule: the one whose types come first in the distributions' class hierarchies
    best = min(matches, key=lambda m: (type(p).__mro__.index(m[0]), type(q).__mro__.index(m[1])))
    return _RULES[best](p, q)


def normal_normal_of(loc1, scale1, loc2, scale2):
    """KL(N(loc1, scale1^2) || N(loc2, scale2^2))."""
    ratio = (scale1 / scale2).pow(2)
    mean_term = ((loc1 - loc2) / scale2).pow(2)
    return 0.5 * (ratio + mean_term - 1 - ratio.log())


@register_kl(Normal, Normal)
def _normal_normal(p, q):
    return normal_normal_of(p.loc, p.scale, q.loc, q.scale)


@register_kl(Categorical, Categorical)
def _categorical_categorical(p, q):
    terms = p.probs * (p.logits - q.logits)
    terms = terms.masked_fill(p.probs == 0, 0.0)  # 0 log 0 = 0
    terms = terms.masked_fill((q.probs == 0) & (p.probs > 0), math.inf)
    return terms.sum(-1)


@register_kl(Bernoulli, Bernoulli)
def _bernoulli_bernoulli(p, q):
    from graphnn.nn.functional import softplus

    t1 = p.probs * (softplus(-q.logits) - softplus(-p.logits))
    t2 = (1 - p.probs) * (softplus(q.logits) - softplus(p.logits))
    return t1 + t2


@register_kl(Uniform, Uniform)
def _uniform_uniform(p, q):
    result = ((q.high - q.low) / (p.high - p.low)).log()
    outside = (q.low > p.low) | (q.high < p.high)
    return result.masked_fill(outside, math.inf)


@register_kl(Gamma, Gamma)
def _gamma_gamma(p, q):
    a, b, c, d = p.concentration, p.rate, q.concentration, q.rate
    return (a - c) * a.digamma() - a.lgamma() + c.lgamma() + c * (b / d).log() + a * (d - b) / b


@register_kl(Beta, Beta)
def _beta_beta(p, q):
    a1, b1, a2, b2 = p.concentration1, p.concentration0, q.concentration1, q.concentration0
    s1 = a1 + b1
    lbeta1 = a1.lgamma() + b1.lgamma() - s1.lgamma()
    lbeta2 = a2.lgamma() + b2.lgamma() - (a2 + b2).lgamma()
    return lbeta2 - lbeta1 + (a1 - a2) * a1.digamma() + (b1 - b2) * b1.digamma() + (a2 - a1 + b2 - b1) * s1.digamma()


@register_kl(Dirichlet, Dirichlet)
def _dirichlet_dirichlet(p, q):
    a, b = p.concentration, q.concentration
    a0 = a.sum(-1)
    t1 = a0.lgamma() - a.lgamma().sum(-1) - b.sum(-1).lgamma() + b.lgamma().sum(-1)
    return t1 + ((a - b) * (a.digamma() - a0.digamma().unsqueeze(-1))).sum(-1)


@register_kl(Exponential, Exponential)
def _exponential_exponential(p, q):
    ratio = q.rate / p.rate
    return ratio - ratio.log() - 1


register_kl(MultivariateNormal, MultivariateNormal)(kl_mvn_mvn)
