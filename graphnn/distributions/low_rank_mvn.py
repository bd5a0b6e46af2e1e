"""LowRankMultivariateNormal(loc, cov_factor W, cov_diag d): the Gaussian with covariance W W^T + diag(d) (W of
shape (n, r), r small), scored without forming the n x n matrix: by the Woodbury identity through the r x r
"capacitance" C = I + W^T D^-1 W,
    x^T (W W^T + D)^-1 x = x^T D^-1 x - |L_C^-1 W^T D^-1 x|^2,   log det(W W^T + D) = log det C + sum log d."""

from __future__ import annotations

import math

import numpy as np

from graphnn.core.tensor import Tensor, as_tensor, eye, randn
from graphnn.distributions import constraints
from graphnn.distributions.distribution import Distribution, as_float_tensor


def _linalg():
    from graphnn import linalg

    return linalg


class LowRankMultivariateNormal(Distribution):
    has_rsample = True
    arg_constraints = {
        "loc": constraints.real_vector,
        "cov_factor": constraints.independent(constraints.real, 2),
        "cov_diag": constraints.independent(constraints.positive, 1),
    }
    support = constraints.real_vector

    def __init__(self, loc, cov_factor, cov_diag, validate_args=None):
        loc, cov_factor, cov_diag = (as_float_tensor(v) for v in (loc, cov_factor, cov_diag))
        if loc.ndim < 1:
            raise ValueError("loc must be at least one-dimensional.")
        n = loc.shape[-1]
        if cov_factor.ndim < 2:
            raise ValueError("cov_factor must be at least two-dimensional, with optional leading batch dimensions")
        if cov_factor.shape[-2] != n:
            raise ValueError(f"cov_factor must be a batch of matrices with shape {n} x m")
        if cov_diag.ndim < 1 or cov_diag.shape[-1] != n:
            raise ValueError(f"cov_diag must be a batch of vectors with shape {(n,)}")
        r = cov_factor.shape[-1]
        batch = tuple(
            np.broadcast_shapes(tuple(loc.shape[:-1]), tuple(cov_factor.shape[:-2]), tuple(cov_diag.shape[:-1]))
        )
        self.loc = loc.expand(*(batch + (n,)))
        self.cov_factor = cov_factor.expand(*(batch + (n, r)))
        self.cov_diag = cov_diag.expand(*(batch + (n,)))
        super().__init__(batch, (n,), validate_args)
        if self._validate_args:
            self._validate_params(loc=self.loc, cov_factor=self.cov_factor, cov_diag=self.cov_diag)

    def _capacitance_tril(self) -> Tensor:
        w, d = self.cov_factor, self.cov_diag
        wt_dinv = w.transpose(-2, -1) / d.unsqueeze(-2)
        r = w.shape[-1]
        return _linalg().cholesky(eye(r, dtype=w.dtype) + wt_dinv @ w)

    @property
    def mean(self) -> Tensor:
        return self.loc

    @property
    def mode(self) -> Tensor:
        return self.loc

    @property
    def variance(self) -> Tensor:
        return self.cov_factor.pow(2).sum(-1) + self.cov_diag

    @property
    def covariance_matrix(self) -> Tensor:
        w = self.cov_factor
        return w @ w.transpose(-2, -1) + self.cov_diag.diag_embed()

    @property
    def scale_tril(self) -> Tensor:
        return _linalg().cholesky(self.covariance_matrix)

    @property
    def precision_matrix(self) -> Tensor:
        """D^-1 - D^-1 W C^-1 W^T D^-1 (Woodbury)."""
        w, d = self.cov_factor, self.cov_diag
        dinv_w = w / d.unsqueeze(-1)
        lc = self._capacitance_tril()
        a = _linalg().solve_triangular(lc, dinv_w.transpose(-2, -1), upper=False)  # L_C^-1 W^T D^-1
        return d.reciprocal().diag_embed() - a.transpose(-2, -1) @ a

    def rsample(self, sample_shape=()) -> Tensor:
        """loc + W e1 + sqrt(d) e2, e1 (r) and e2 (n) standard normal."""
        shape = self._extended_shape(sample_shape)
        r = self.cov_factor.shape[-1]
        e1 = randn(*(shape[:-1] + (r,)), dtype=self.loc.dtype)
        e2 = randn(*shape, dtype=self.loc.dtype)
        return self.loc + (self.cov_factor @ e1.unsqueeze(-1)).squeeze(-1) + self.cov_diag.sqrt() * e2

    def _log_det(self) -> Tensor:
        lc = self._capacitance_tril()
        return 2 * lc.diagonal(dim1=-2, dim2=-1).log().sum(-1) + self.cov_diag.log().sum(-1)

    def log_prob(self, value) -> Tensor:
        value = as_tensor(value)
        diff = value - self.loc
        w, d = self.cov_factor, self.cov_diag
        batch = tuple(np.broadcast_shapes(tuple(diff.shape[:-1]), tuple(self.batch_shape)))
        n, r = w.shape[-2], w.shape[-1]
        diff = diff.expand(*(batch + (n,)))
        lc = self._capacitance_tril().expand(*(batch + (r, r)))
        wt = w.transpose(-2, -1).expand(*(batch + (r, n)))
        proj = _linalg().solve_triangular(lc, (wt @ (diff / d).unsqueeze(-1)), upper=False).squeeze(-1)
        maha = (diff * diff / d).sum(-1) - proj.pow(2).sum(-1)
        return -0.5 * (n * math.log(2 * math.pi) + maha + self._log_det())

    def entropy(self) -> Tensor:
        n = self._event_shape[0]
        return 0.5 * (n * (1.0 + math.log(2 * math.pi)) + self._log_det())
