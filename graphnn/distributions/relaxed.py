"""Relaxed (Concrete / Gumbel-softmax) distributions: continuous, reparameterizable stand-ins for Bernoulli and
one-hot categorical draws whose sharpness is set by `temperature` (Maddison et al. 2017, Jang et al. 2017).

LogitRelaxedBernoulli: x = (logit + log u - log(1 - u)) / t, i.e. t x - logit is standard logistic, so
    log p(x) = log t - s - 2 softplus(-s), s = t x - logit;
RelaxedBernoulli is its sigmoid. ExpRelaxedCategorical: x = log softmax((logits + g) / t) with g Gumbel, whose
density (on the K - 1 dimensional set where logsumexp(x) = 0, as PyTorch scores it) is
    log p(x) = lgamma(K) + (K - 1) log t + sum(logits - t x) - K logsumexp(logits - t x);
RelaxedOneHotCategorical is its exp."""

from __future__ import annotations

import math

import numpy as np

from graphnn.core.tensor import Tensor, as_tensor, rand
from graphnn.distributions import constraints
from graphnn.distributions.categorical import Categorical
from graphnn.distributions.distribution import Distribution, ProbsOrLogits, as_float_tensor, broadcast_all
from graphnn.distributions.transforms import ExpTransform, SigmoidTransform, TransformedDistribution


def _softplus(x: Tensor) -> Tensor:
    from graphnn.nn.functional import softplus

    return softplus(x)


def _open_uniform(shape, dtype) -> Tensor:
    u = rand(*shape, dtype=dtype)
    fi = np.finfo(u.dtype_name)
    return u.clamp(min=float(fi.tiny), max=1 - float(fi.eps))


class LogitRelaxedBernoulli(ProbsOrLogits):
    has_rsample = True
    support = constraints.real

    def __init__(self, temperature, probs=None, logits=None, validate_args=None):
        given = as_float_tensor(self._given(probs, logits))
        self.temperature = as_float_tensor(temperature, given)
        (given,) = broadcast_all(given)
        self._set_probs(probs, logits, given, validate_args)

    _expand_names = ("_probs", "_logits")

    def _shown_params(self) -> dict:
        return {"probs": self._probs} if self._logits is None else {"logits": self._logits}

    def rsample(self, sample_shape=()) -> Tensor:
        u = _open_uniform(self._extended_shape(sample_shape), self.logits.dtype)
        return (self.logits + u.log() - (-u).log1p()) / self.temperature

    def log_prob(self, value) -> Tensor:
        x = as_tensor(value)
        s = self.temperature * x - self.logits
        return self.temperature.log() - s - 2 * _softplus(-s)


class _Relaxed(TransformedDistribution):
    """A relaxed distribution: a base over logits (`_base`) mapped by one transform (`_transform`); its temperature,
    probs and logits are the base's."""

    has_rsample = True
    _base: type
    _transform: type

    def __init__(self, temperature, probs=None, logits=None, validate_args=None):
        base = self._base(temperature, probs, logits, validate_args=validate_args)
        super().__init__(base, [self._transform()], validate_args=validate_args)

    @property
    def temperature(self) -> Tensor:
        return self.base_dist.temperature

    @property
    def probs(self) -> Tensor:
        return self.base_dist.probs

    @property
    def logits(self) -> Tensor:
        return self.base_dist.logits

    def __repr__(self) -> str:
        shown = ", ".join(f"{k}: {v.size()}" for k, v in self.base_dist._shown_params().items())
        return f"{type(self).__name__}({shown})"


class RelaxedBernoulli(_Relaxed):
    """Values in (0, 1): the sigmoid of a LogitRelaxedBernoulli."""

    arg_constraints = {"probs": constraints.unit_interval, "logits": constraints.real}
    support = constraints.unit_interval
    _base, _transform = LogitRelaxedBernoulli, SigmoidTransform


class ExpRelaxedCategorical(Distribution):
    has_rsample = True
    arg_constraints = {"probs": constraints.simplex, "logits": constraints.real_vector}
    support = constraints.real_vector

    def __init__(self, temperature, probs=None, logits=None, validate_args=None):
        self._categorical = Categorical(probs, logits, validate_args=validate_args)
        self.temperature = as_float_tensor(temperature, self._categorical.logits)
        k = self._categorical.param_shape[-1]
        super().__init__(tuple(self._categorical.batch_shape), (k,), validate_args)

    def _expand_children(self, new, batch_shape: tuple) -> None:
        new._categorical = self._categorical.expand(batch_shape)

    @property
    def probs(self) -> Tensor:
        return self._categorical.probs

    @property
    def logits(self) -> Tensor:
        return self._categorical.logits

    @property
    def param_shape(self):
        return self._categorical.param_shape

    def rsample(self, sample_shape=()) -> Tensor:
        u = _open_uniform(self._extended_shape(sample_shape), self.logits.dtype)
        gumbels = -(-u.log()).log()
        x = (self.logits + gumbels) / self.temperature
        return x - x.logsumexp(-1, keepdim=True)

    def log_prob(self, value) -> Tensor:
        x = as_tensor(value)
        k = self.event_shape[0]
        t = self.temperature
        scores = self.logits - t * x
        log_scale = math.lgamma(k) + (k - 1) * t.log()
        return log_scale + scores.sum(-1) - k * scores.logsumexp(-1)

    def _shown_params(self) -> dict:
        return self._categorical._shown_params()


class RelaxedOneHotCategorical(_Relaxed):
    """Points of the simplex: the exp of an ExpRelaxedCategorical."""

    arg_constraints = {"probs": constraints.simplex, "logits": constraints.real_vector}
    support = constraints.simplex
    _base, _transform = ExpRelaxedCategorical, ExpTransform
