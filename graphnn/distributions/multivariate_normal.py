"""MultivariateNormal: the Gaussian over vectors with mean `loc` and a covariance given as covariance_matrix,
precision_matrix or its lower Cholesky factor scale_tril (exactly one), batched as PyTorch's."""

from __future__ import annotations

import math

import numpy as np

from graphnn.distributions import constraints
from graphnn.core.tensor import Tensor, as_tensor, eye, randn
from graphnn.distributions.distribution import Distribution, as_float_tensor, check_values

_MATRICES = ("covariance_matrix", "precision_matrix", "scale_tril")


def _linalg():
    from graphnn import linalg

    return linalg


def _precision_to_scale_tril(p: Tensor) -> Tensor:
    """L with L L^T = P^-1, from the Cholesky factor of P with its rows and columns reversed (so L is lower)."""
    lf = _linalg().cholesky(p.flip(-2, -1))
    l_inv = lf.flip(-2, -1).transpose(-2, -1)
    n = p.shape[-1]
    return _linalg().solve_triangular(l_inv, eye(n, dtype=p.dtype).expand(tuple(l_inv.shape)), upper=False)


def _mahalanobis(scale_tril: Tensor, diff: Tensor) -> Tensor:
    """|L^-1 diff|^2 over the last dimension (diff and L broadcast over their batch dimensions)."""
    n = diff.shape[-1]
    batch = tuple(__import__("numpy").broadcast_shapes(tuple(diff.shape[:-1]), tuple(scale_tril.shape[:-2])))
    lt = scale_tril.expand(batch + (n, n))
    d = diff.expand(batch + (n,)).unsqueeze(-1)
    return _linalg().solve_triangular(lt, d, upper=False).squeeze(-1).pow(2).sum(-1)


class MultivariateNormal(Distribution):
    has_rsample = True
    arg_constraints = {
        "loc": constraints.real_vector,
        "covariance_matrix": constraints.positive_definite,
        "precision_matrix": constraints.positive_definite,
        "scale_tril": constraints.lower_cholesky,
    }
    support = constraints.real_vector

    def __init__(self, loc, covariance_matrix=None, precision_matrix=None, scale_tril=None, validate_args=None):
        loc = as_float_tensor(loc)
        if loc.ndim < 1:
            raise ValueError("loc must be at least one-dimensional.")
        given = {k: v for k, v in zip(_MATRICES, (covariance_matrix, precision_matrix, scale_tril)) if v is not None}
        if len(given) != 1:
            raise ValueError("Exactly one of covariance_matrix or precision_matrix or scale_tril may be specified.")
        ((name, m),) = given.items()
        m = as_float_tensor(m)
        if m.ndim < 2:
            raise ValueError(f"{name} must be at least two-dimensional, with optional leading batch dimensions")
        batch = tuple(np.broadcast_shapes(tuple(m.shape[:-2]), tuple(loc.shape[:-1])))
        n = loc.shape[-1]
        if tuple(m.shape[-2:]) != (n, n):
            raise ValueError(f"{name} of shape {tuple(m.shape)} does not fit loc of shape {tuple(loc.shape)}")
        self.__dict__[name] = m.expand(batch + (n, n))
        self.loc = loc.expand(batch + (n,))
        super().__init__(batch, (n,), validate_args)
        if self._validate_args and name != "scale_tril":

            def positive_definite(a):
                sym = np.isclose(a, np.swapaxes(a, -1, -2)).all((-2, -1))
                return sym & (np.linalg.eigvalsh((a + np.swapaxes(a, -1, -2)) / 2)[..., 0] > 0)

            check_values(m, positive_definite, lambda: self._invalid(name, m, "PositiveDefinite()"))
        if name == "scale_tril":
            self._unbroadcasted_scale_tril = m
        elif name == "covariance_matrix":
            self._unbroadcasted_scale_tril = _linalg().cholesky(m)
        else:
            self._unbroadcasted_scale_tril = _precision_to_scale_tril(m)

    def _shown_params(self) -> dict:
        return {
            "loc": self.loc,
            **{
                k: self.__dict__[k]
                for k in ("covariance_matrix", "precision_matrix", "scale_tril")
                if k in self.__dict__
            },
        }

    def _expanded(self, m: Tensor) -> Tensor:
        return m.expand(tuple(self._batch_shape) + tuple(self._event_shape) * 2)

    @property
    def scale_tril(self) -> Tensor:
        return (
            self.__dict__["scale_tril"]
            if "scale_tril" in self.__dict__
            else self._expanded(self._unbroadcasted_scale_tril)
        )

    @property
    def covariance_matrix(self) -> Tensor:
        if "covariance_matrix" in self.__dict__:
            return self.__dict__["covariance_matrix"]
        lt = self._unbroadcasted_scale_tril
        return self._expanded(lt @ lt.transpose(-2, -1))

    @property
    def precision_matrix(self) -> Tensor:
        if "precision_matrix" in self.__dict__:
            return self.__dict__["precision_matrix"]
        lt = self._unbroadcasted_scale_tril
        n = lt.shape[-1]
        l_inv = _linalg().solve_triangular(lt, eye(n, dtype=lt.dtype).expand(tuple(lt.shape)), upper=False)
        return self._expanded(l_inv.transpose(-2, -1) @ l_inv)

    @property
    def mean(self) -> Tensor:
        return self.loc

    @property
    def mode(self) -> Tensor:
        return self.loc

    @property
    def variance(self) -> Tensor:
        return self._unbroadcasted_scale_tril.pow(2).sum(-1).expand(tuple(self._batch_shape) + tuple(self._event_shape))

    def rsample(self, sample_shape=()) -> Tensor:
        """loc + L eps with eps standard normal (differentiable in loc and the covariance's factor)."""
        eps = randn(*self._extended_shape(sample_shape), dtype=self.loc.dtype)
        return self.loc + (self._unbroadcasted_scale_tril @ eps.unsqueeze(-1)).squeeze(-1)

    def _half_log_det(self) -> Tensor:
        return self._unbroadcasted_scale_tril.diagonal(dim1=-2, dim2=-1).log().sum(-1)

    def log_prob(self, value) -> Tensor:
        diff = as_tensor(value) - self.loc
        m = _mahalanobis(self._unbroadcasted_scale_tril, diff)
        n = self._event_shape[0]
        return -0.5 * (n * math.log(2 * math.pi) + m) - self._half_log_det()

    def entropy(self) -> Tensor:
        n = self._event_shape[0]
        h = 0.5 * n * (1.0 + math.log(2 * math.pi)) + self._half_log_det()
        return h.expand(tuple(self._batch_shape)) if tuple(h.shape) != tuple(self._batch_shape) else h


def kl_mvn_mvn(p: MultivariateNormal, q: MultivariateNormal) -> Tensor:
    """KL(p || q) = log det Lq - log det Lp + (|Lq^-1 Lp|_F^2 + |Lq^-1 (mu_q - mu_p)|^2 - n) / 2."""
    if p.event_shape != q.event_shape:
        raise ValueError(
            "KL-divergence between two Multivariate Normals with different event shapes cannot be computed"
        )
    n = p.event_shape[0]
    lq, lp = q._unbroadcasted_scale_tril, p._unbroadcasted_scale_tril
    batch = tuple(np.broadcast_shapes(tuple(lq.shape[:-2]), tuple(lp.shape[:-2])))
    term2 = _linalg().solve_triangular(lq.expand(batch + (n, n)), lp.expand(batch + (n, n)), upper=False)
    term2 = term2.pow(2).sum((-2, -1))
    term3 = _mahalanobis(lq, q.loc - p.loc)
    return q._half_log_det() - p._half_log_det() + 0.5 * (term2 + term3 - n)
