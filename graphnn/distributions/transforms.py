"""torch.distributions.transforms and TransformedDistribution: a base distribution pushed through invertible maps
(a squashed Gaussian policy: Normal then TanhTransform, as soft actor-critic samples its actions).

A transform maps x to y = transform(x), inverts it (transform.inv(y)) and gives log |dy/dx| elementwise
(log_abs_det_jacobian(x, y)); TransformedDistribution samples the base and applies the transforms in order, and
scores a value by inverting them: log p(y) = base.log_prob(x) - sum of the log |dy/dx| along the way.
"""

from __future__ import annotations

import math

from graphnn.core.tensor import Tensor, as_tensor
from graphnn.distributions.distribution import Distribution


class Transform:
    """An invertible elementwise map with the log of its Jacobian's absolute determinant."""

    bijective = True

    def __call__(self, x: Tensor) -> Tensor:
        return self._call(x)

    def _call(self, x: Tensor) -> Tensor:
        raise NotImplementedError

    def _inverse(self, y: Tensor) -> Tensor:
        raise NotImplementedError

    @property
    def inv(self) -> "Transform":
        return _Inverse(self)

    def log_abs_det_jacobian(self, x: Tensor, y: Tensor) -> Tensor:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class _Inverse(Transform):
    def __init__(self, t: Transform):
        self._t = t

    def _call(self, x):
        return self._t._inverse(x)

    def _inverse(self, y):
        return self._t._call(y)

    @property
    def inv(self) -> Transform:
        return self._t

    def log_abs_det_jacobian(self, x, y):
        return -self._t.log_abs_det_jacobian(y, x)


class ExpTransform(Transform):
    def _call(self, x):
        return x.exp()

    def _inverse(self, y):
        return y.log()

    def log_abs_det_jacobian(self, x, y):
        return x


class SigmoidTransform(Transform):
    def _call(self, x):
        return x.sigmoid()

    def _inverse(self, y):
        return y.log() - (-y).log1p()

    def log_abs_det_jacobian(self, x, y):
        from graphnn.nn.functional import softplus

        return -softplus(-x) - softplus(x)


class TanhTransform(Transform):
    def _call(self, x):
        return x.tanh()

    def _inverse(self, y):
        return y.atanh()

    def log_abs_det_jacobian(self, x, y):
        from graphnn.nn.functional import softplus

        return 2.0 * (math.log(2.0) - x - softplus(-2.0 * x))  # log(1 - tanh(x)^2), without cancellation


class AffineTransform(Transform):
    def __init__(self, loc, scale, event_dim: int = 0):
        self.loc, self.scale, self.event_dim = loc, scale, event_dim

    def _call(self, x):
        return self.loc + self.scale * x

    def _inverse(self, y):
        return (y - self.loc) / self.scale

    def log_abs_det_jacobian(self, x, y):
        out = (x * 0 + self.scale).abs().log()  # (log |scale| at every element of x)
        return _event_sum(out, self.event_dim)


class ComposeTransform(Transform):
    def __init__(self, parts: list):
        self.parts = list(parts)

    def _call(self, x):
        for t in self.parts:
            x = t(x)
        return x

    def _inverse(self, y):
        for t in reversed(self.parts):
            y = t.inv(y)
        return y

    def log_abs_det_jacobian(self, x, y):
        total = 0
        for t in self.parts:
            nxt = t(x)
            total = total + t.log_abs_det_jacobian(x, nxt)
            x = nxt
        return total


class TransformedDistribution(Distribution):
    """base_distribution pushed through `transforms` (one Transform or a list, applied in order)."""

    def __init__(self, base_distribution: Distribution, transforms, validate_args=None):
        self.base_dist = base_distribution
        self.transforms = list(transforms) if isinstance(transforms, (list, tuple)) else [transforms]
        super().__init__(base_distribution.batch_shape, base_distribution.event_shape, validate_args)

    @property
    def has_rsample(self) -> bool:
        return getattr(self.base_dist, "has_rsample", True)

    def rsample(self, sample_shape=()) -> Tensor:
        x = self.base_dist.rsample(sample_shape)
        for t in self.transforms:
            x = t(x)
        return x

    def sample(self, sample_shape=()) -> Tensor:
        x = self.base_dist.sample(sample_shape)
        for t in self.transforms:
            x = t(x)
        return x

    def log_prob(self, value) -> Tensor:
        y = as_tensor(value)
        total = 0
        for t in reversed(self.transforms):
            x = t.inv(y)
            total = total - _event_sum(t.log_abs_det_jacobian(x, y), len(self.event_shape))
            y = x
        return self.base_dist.log_prob(y) + total


def _event_sum(t: Tensor, event_dims: int) -> Tensor:
    for _ in range(event_dims):
        t = t.sum(-1)
    return t
