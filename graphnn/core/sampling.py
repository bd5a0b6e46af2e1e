"""Random draws of PyTorch's API beyond the factories (torch.normal, torch.bernoulli, Tensor.bernoulli_,
Tensor.exponential_), from graphnn's generator: now in eager code, at every call inside graphnn.compile."""

from __future__ import annotations

import numpy as np

from graphnn.core import random as _random
from graphnn.core.tensor import Tensor, as_tensor, random_tensor


def normal(mean, std=1.0, size=None, *, generator=None, dtype=None, out=None, **_kw) -> Tensor:
    """Normal draws with the given means and standard deviations (tensors broadcast together, or numbers with
    `size`); no gradient flows to mean or std (as PyTorch's)."""
    if not isinstance(mean, Tensor) and not isinstance(std, Tensor):
        if size is None:
            raise TypeError("normal() with number mean and std needs a size")
        shape, dt = tuple(size), "float32" if dtype is None else as_tensor(0.0, dtype=dtype).dtype_name
        return random_tensor(shape, dt, lambda: _random.generator(generator).normal(mean, std, shape).astype(dt))
    like = mean if isinstance(mean, Tensor) else std
    mean, std = as_tensor(mean).to(like.dtype).detach(), as_tensor(std).to(like.dtype).detach()
    shape, dt = tuple((mean + std).shape), like.dtype_name
    eps = random_tensor(shape, dt, lambda: _random.generator(generator).standard_normal(shape).astype(dt))
    return mean + eps * std


def bernoulli(input: Tensor, p=None, *, generator=None) -> Tensor:
    """1 with probability input (or p), else 0, in input's dtype."""
    shape, dt = tuple(input.shape), input.dtype_name
    u = random_tensor(shape, dt, lambda: _random.generator(generator).random(shape).astype(dt))
    prob = input.detach() if p is None else p
    return (u < prob).to(input.dtype)


def bernoulli_(self: Tensor, p=0.5, *, generator=None) -> Tensor:
    shape, dt = tuple(self.shape), self.dtype_name

    def draw():
        u = random_tensor(shape, dt, lambda: _random.generator(generator).random(shape).astype(dt))
        return (u < (p.detach() if isinstance(p, Tensor) else p)).to(self.dtype)

    return self._inplace_op("bernoulli_", draw, "BernoulliBackward0")


def exponential_(self: Tensor, lambd: float = 1.0, *, generator=None) -> Tensor:
    shape, dt = tuple(self.shape), self.dtype_name
    draw = lambda: random_tensor(  # noqa: E731
        shape, dt, lambda: (_random.generator(generator).standard_exponential(shape) / lambd).astype(dt)
    )
    return self._inplace_op("exponential_", draw, "ExponentialBackward0")


def _fill(name: str, grad_name: str, draw_numpy):
    """Tensor.<name>(...): self filled in place with draws draw_numpy(rng, shape, *args) (new ones at every call
    when compiled)."""

    def method(self: Tensor, *args, generator=None) -> Tensor:
        shape, dt = tuple(self.shape), self.dtype_name
        draw = lambda: random_tensor(  # noqa: E731
            shape, dt, lambda: np.asarray(draw_numpy(_random.generator(generator), shape, *args)).astype(dt)
        )
        return self._inplace_op(name, draw, grad_name)

    method.__name__ = name
    return method


geometric_ = _fill("geometric_", "GeometricBackward0", lambda rng, shape, p: rng.geometric(p, shape))
log_normal_ = _fill(
    "log_normal_", "LogNormalBackward0", lambda rng, shape, mean=1.0, std=2.0: np.exp(rng.normal(mean, std, shape))
)
cauchy_ = _fill(
    "cauchy_", "CauchyBackward0", lambda rng, shape, median=0.0, sigma=1.0: median + sigma * rng.standard_cauchy(shape)
)


def poisson(input: Tensor, generator=None) -> Tensor:
    """Poisson draws with the rates `input` (eager: the rates must be known when drawing)."""
    rates = input._concrete("poisson")
    if (rates < 0).any() or not np.isfinite(rates).all():
        raise RuntimeError("poisson: invalid Poisson rate, expected rate to be non-negative and finite")
    return Tensor._wrap(_random.generator(generator).poisson(rates).astype(rates.dtype))


METHODS = {
    "bernoulli": bernoulli,
    "bernoulli_": bernoulli_,
    "exponential_": exponential_,
    "geometric_": geometric_,
    "log_normal_": log_normal_,
    "cauchy_": cauchy_,
}
FUNCTIONS = {"normal": normal, "bernoulli": bernoulli, "poisson": poisson}
