"""ContinuousBernoulli(probs | logits, lims=(0.499, 0.501)): the density C(p) p^x (1 - p)^(1 - x) on [0, 1]
(Loaiza-Ganem and Cunningham, 2019), with normalizer C(p) = 2 atanh(1 - 2p) / (1 - 2p) = log((1 - p) / p) / (1 - 2p).

Near p = 1/2 the closed forms divide 0 by 0; inside `lims` they are replaced by Taylor series in d = p - 1/2
(derived from atanh(t) / t = 1 + t^2 / 3 + t^4 / 5 + ..., t = -2d):
    log C = log 2 + 4/3 d^2 + 104/45 d^4,  mean = 1/2 + d / 3 + 16/45 d^3,  variance = 1/12 - d^2 / 15 + 128/945 d^4,
whose next terms are O(d^6) < 1e-17 at |d| < 0.001."""

from __future__ import annotations

import math

import numpy as np

from graphnn.core.tensor import Tensor, as_tensor, rand
from graphnn.distributions import constraints
from graphnn.distributions.distribution import ProbsOrLogits, as_float_tensor
from graphnn.distributions.utils import probs_to_logits


class ContinuousBernoulli(ProbsOrLogits):
    has_rsample = True
    support = constraints.unit_interval

    def __init__(self, probs=None, logits=None, lims=(0.499, 0.501), validate_args=None):
        given = as_float_tensor(self._given(probs, logits))
        self._set_probs(probs, logits, given, validate_args)
        if probs is not None:
            fi = np.finfo(given.dtype_name)
            self._probs = given.clamp(min=float(fi.eps), max=1 - float(fi.eps))
        self._lims = lims

    def _shown_params(self) -> dict:
        return {"probs": self._probs} if self._logits is None else {"logits": self._logits}

    @property
    def probs(self) -> Tensor:
        if self._probs is not None:
            return self._probs
        fi = np.finfo(self._logits.dtype_name)
        return self._logits.sigmoid().clamp(min=float(fi.eps), max=1 - float(fi.eps))

    @property
    def logits(self) -> Tensor:
        return self._logits if self._logits is not None else probs_to_logits(self._probs, is_binary=True)

    def _outside(self) -> Tensor:
        p = self.probs
        return (p <= self._lims[0]) | (p >= self._lims[1])

    def _safe_probs(self) -> Tensor:
        """probs away from 1/2 (the lower lim inside the lims: the closed forms stay finite there, unused)."""
        return self.probs.masked_fill(~self._outside(), self._lims[0])

    def _log_normalizer(self) -> Tensor:
        q = self._safe_probs()
        exact = ((-q).log1p() - q.log()).abs().log() - (1 - 2 * q).abs().log()
        d = self.probs - 0.5
        taylor = math.log(2.0) + (4.0 / 3.0 + 104.0 / 45.0 * d * d) * d * d
        return exact.where(self._outside(), taylor)

    @property
    def mean(self) -> Tensor:
        q = self._safe_probs()
        exact = q / (2 * q - 1) + 1 / ((-q).log1p() - q.log())
        d = self.probs - 0.5
        return exact.where(self._outside(), 0.5 + (1.0 / 3.0 + 16.0 / 45.0 * d * d) * d)

    @property
    def variance(self) -> Tensor:
        q = self._safe_probs()
        exact = q * (q - 1) / (1 - 2 * q).pow(2) + 1 / ((-q).log1p() - q.log()).pow(2)
        d2 = (self.probs - 0.5).pow(2)
        return exact.where(self._outside(), 1.0 / 12.0 - (1.0 / 15.0 - 128.0 / 945.0 * d2) * d2)

    def log_prob(self, value) -> Tensor:
        from graphnn.nn.functional import binary_cross_entropy_with_logits

        x = as_tensor(value)
        logits = self.logits
        shape = tuple(np.broadcast_shapes(tuple(logits.shape), tuple(x.shape)))
        x = x.to(logits.dtype)
        bce = binary_cross_entropy_with_logits(logits.expand(*shape), x.expand(*shape), reduction="none")
        return -bce + self._log_normalizer()

    def cdf(self, value) -> Tensor:
        x = as_tensor(value)
        if self._validate_args:
            self._validate_sample(x)
        q = self._safe_probs()
        exact = (q.pow(x) * (1 - q).pow(1 - x) + q - 1) / (2 * q - 1)
        inside = exact.where(self._outside(), x.to(q.dtype) + 0 * q)
        return inside.masked_fill(x <= 0, 0.0).masked_fill(x >= 1, 1.0)

    def icdf(self, value) -> Tensor:
        u = as_tensor(value)
        q = self._safe_probs()
        exact = ((-q + u * (2 * q - 1)).log1p() - (-q).log1p()) / (q.log() - (-q).log1p())
        return exact.where(self._outside(), u + 0 * q)

    def rsample(self, sample_shape=()) -> Tensor:
        return self.icdf(rand(*self._extended_shape(sample_shape), dtype=self.probs.dtype))

    def entropy(self) -> Tensor:
        log_p1, log_p0 = self.probs.log(), (-self.probs).log1p()
        return self.mean * (log_p0 - log_p1) - self._log_normalizer() - log_p0
