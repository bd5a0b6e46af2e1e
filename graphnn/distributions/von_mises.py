"""VonMises(loc, concentration): the circular normal on [-pi, pi), density exp(k cos(x - loc)) / (2 pi I0(k)).

log I0 and log I1 (the modified Bessel functions of the first kind) are built from tensor ops, so they are
differentiable and compile: for k <= 20 their power series sum_j (k/2)^(2j + n) / (j! (j + n)!) summed in log space
(60 terms: the last is below 1e-40 of the first at k = 20), above it the large-argument expansion
I_n(k) ~ e^k / sqrt(2 pi k) sum_j (-1)^j a_j(n) / k^j, a_j(n) = prod_{i<=j} (4n^2 - (2i - 1)^2) / (j! 8^j), with 30
terms (term j shrinks by about j / (2k) per step: the 30th is ~30! / 40^30 < 3e-16 at k = 20). Samples: Best and Fisher's (1979) wrapped-Cauchy rejection sampler, the
first accepted of _CANDIDATES proposals drawn at once (each is accepted with probability above 0.65)."""

from __future__ import annotations

import math


from graphnn.core.dispatch import apply
from graphnn.core.tensor import Tensor, arange, as_tensor, rand
from graphnn.distributions import constraints
from graphnn.distributions.distribution import Distribution

_SERIES_TERMS, _ASYMPTOTIC_TERMS, _SWITCH = 60, 30, 20.0
_CANDIDATES = 40  # all rejected: probability below 0.35 ** 40 < 1e-18


def log_bessel_i(order: int, x: Tensor) -> Tensor:
    """log I_order(x) for x > 0 (order 0 or 1)."""
    tiny = 1e-300 if x.dtype_name == "float64" else 1e-37  # (a positive number in the dtype: log(x / 2) is finite)
    small = x.clamp(max=_SWITCH).clamp(min=tiny)
    j = arange(_SERIES_TERMS, dtype=x.dtype)
    log_terms = (2 * j + order) * (small / 2).log().unsqueeze(-1) - (j + 1).lgamma() - (j + 1 + order).lgamma()
    series = log_terms.logsumexp(-1)
    big = x.clamp(min=_SWITCH)
    total, coef = 1.0, 1.0
    for i in range(1, _ASYMPTOTIC_TERMS):
        coef = coef * (4 * order * order - (2 * i - 1) ** 2) / (i * 8)
        total = total + (-1) ** i * coef * big.pow(-i)
    asymptotic = big - 0.5 * (2 * math.pi * big).log() + total.log()
    return series.where(x <= _SWITCH, asymptotic)


class VonMises(Distribution):
    has_rsample = False
    arg_constraints = {"loc": constraints.real, "concentration": constraints.positive}
    support = constraints.real

    def __init__(self, loc, concentration, validate_args=None):
        self._init_params(validate_args, loc=loc, concentration=concentration)

    @property
    def mean(self) -> Tensor:
        return self.loc

    @property
    def mode(self) -> Tensor:
        return self.loc

    @property
    def circular_variance(self) -> Tensor:
        k = self.concentration
        return 1 - (log_bessel_i(1, k) - log_bessel_i(0, k)).exp()

    @property
    def variance(self) -> Tensor:
        return self.circular_variance

    def log_prob(self, value) -> Tensor:
        x = as_tensor(value)
        k = self.concentration
        return k * (x - self.loc).cos() - math.log(2 * math.pi) - log_bessel_i(0, k)

    def sample(self, sample_shape=()) -> Tensor:
        """Best-Fisher: z = cos(pi u1), f = (1 + r z) / (r + z), c = k (r - f); accept when c (2 - c) > u2 or
        log(c / u2) + 1 - c >= 0; the angle is +-acos(f) (sign from u3) around loc, wrapped to [-pi, pi).
        Drawn in float64 (r is a difference of nearly equal numbers at small k)."""
        from graphnn.core.grad_mode import no_grad

        with no_grad():
            shape = self._extended_shape(sample_shape)
            k = self.concentration.detach().to("float64").expand(*shape)
            tau = 1 + (1 + 4 * k * k).sqrt()
            rho = (tau - (2 * tau).sqrt()) / (2 * k)
            r = (1 + rho * rho) / (2 * rho)
            out = taken = None
            for _ in range(_CANDIDATES):
                u1, u2, u3 = (rand(*shape, dtype="float64") for _ in range(3))
                u2 = u2.clamp(min=1e-300)
                z = (math.pi * u1).cos()
                f = (1 + r * z) / (r + z)
                c = k * (r - f)
                ok = (c * (2 - c) - u2 > 0) | ((c / u2).clamp(min=1e-300).log() + 1 - c >= 0)
                theta = (u3 - 0.5).sign() * f.clamp(min=-1, max=1).acos()
                if out is None:
                    out, taken = theta, ok
                else:
                    out, taken = apply("select", [taken, out, theta]), taken | ok
            angle = out + self.loc.detach().to("float64")
            wrapped = (angle + math.pi).remainder(2 * math.pi) - math.pi
            return wrapped.to(self.loc.dtype)
