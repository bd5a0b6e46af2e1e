"""LogisticNormal(loc, scale): points of the K-simplex obtained by stick-breaking a Gaussian vector of K - 1
independent Normal(loc, scale) coordinates (transforms.StickBreakingTransform)."""

from __future__ import annotations

from graphnn.core.tensor import Tensor
from graphnn.distributions import constraints
from graphnn.distributions.distribution import broadcast_all
from graphnn.distributions.independent import Independent
from graphnn.distributions.normal import Normal
from graphnn.distributions.transforms import StickBreakingTransform, TransformedDistribution


class LogisticNormal(TransformedDistribution):
    arg_constraints = {"loc": constraints.real, "scale": constraints.positive}
    support = constraints.simplex
    has_rsample = True

    def __init__(self, loc, scale, validate_args=None):
        loc, scale = broadcast_all(loc, scale)
        if loc.ndim < 1:
            loc, scale = loc.reshape(1), scale.reshape(1)
        base = Independent(Normal(loc, scale, validate_args=validate_args), 1, validate_args=validate_args)
        super().__init__(base, [StickBreakingTransform()], validate_args=validate_args)
        k = base.event_shape[0]
        self._event_shape = type(self._event_shape)((k + 1,))

    @property
    def loc(self) -> Tensor:
        return self.base_dist.base_dist.loc

    @property
    def scale(self) -> Tensor:
        return self.base_dist.base_dist.scale

    def __repr__(self) -> str:
        return f"LogisticNormal(loc: {self.loc.size()}, scale: {self.scale.size()})"
