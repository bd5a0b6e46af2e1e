"""The base class of graphnn.distributions: shapes, argument validation and the sampling entry points."""

from __future__ import annotations

import math

import numpy as np

from graphnn.core.grad_mode import no_grad
from graphnn.core.tensor import Size, Tensor, as_tensor

_VALIDATE = [True]  # as PyTorch's default (Python run without -O)


def as_float_tensor(value, like: Tensor | None = None) -> Tensor:
    """A parameter given as a tensor or a number, as a floating tensor (numbers take `like`'s dtype)."""
    if isinstance(value, Tensor):
        return value if value.is_floating_point() else value.float()
    dt = like.dtype if like is not None and like.is_floating_point() else None
    return as_tensor(float(value), dtype=dt) if dt is not None else as_tensor(float(value))


def broadcast_all(*values) -> list:
    """The parameters broadcast to one shape (numbers become tensors of the tensors' dtype)."""
    like = next((v for v in values if isinstance(v, Tensor)), None)
    tensors = [as_float_tensor(v, like) for v in values]
    shape = tuple(np.broadcast_shapes(*(tuple(t.shape) for t in tensors)))
    return [t if tuple(t.shape) == shape else t.expand(*shape) for t in tensors]


def check_values(t: Tensor, test, message) -> None:
    """Raise ValueError(message()) when test(array) is False somewhere; on concrete values only (inside
    graphnn.compile the check runs at every call, on the traced inputs it depends on directly)."""
    from graphnn.compiler.tracer import check_values as _check

    def check(a):
        with np.errstate(invalid="ignore"):
            ok = test(np.asarray(a))
        if not np.all(ok):
            raise ValueError(message())

    _check(t, check)


class Distribution:
    """A batch of distributions of shape batch_shape, each over events of shape event_shape."""

    has_rsample = False
    arg_constraints: dict = {}

    def __init__(self, batch_shape=(), event_shape=(), validate_args=None):
        self._batch_shape, self._event_shape = Size(tuple(batch_shape)), Size(tuple(event_shape))
        self._validate_args = _VALIDATE[0] if validate_args is None else bool(validate_args)

    @staticmethod
    def set_default_validate_args(value: bool) -> None:
        _VALIDATE[0] = bool(value)

    @property
    def batch_shape(self) -> Size:
        return self._batch_shape

    @property
    def event_shape(self) -> Size:
        return self._event_shape

    def _extended_shape(self, sample_shape=()) -> tuple:
        return tuple(sample_shape) + tuple(self._batch_shape) + tuple(self._event_shape)

    def _invalid(self, name: str, value: Tensor, constraint: str) -> str:
        return (
            f"Expected parameter {name} ({type(value).__name__} of shape {tuple(value.shape)}) of distribution "
            f"{self!r} to satisfy the constraint {constraint}, but found invalid values:\n{value}"
        )

    def sample(self, sample_shape=()) -> Tensor:
        """Values drawn without a gradient (rsample's, detached, when the distribution has one)."""
        with no_grad():
            return self.rsample(sample_shape).detach()

    def rsample(self, sample_shape=()) -> Tensor:
        raise NotImplementedError(f"{type(self).__name__} has no reparameterized sample (rsample)")

    def sample_n(self, n: int) -> Tensor:
        return self.sample((n,))

    def log_prob(self, value) -> Tensor:
        raise NotImplementedError

    def entropy(self) -> Tensor:
        raise NotImplementedError

    def perplexity(self) -> Tensor:
        return self.entropy().exp()

    def cdf(self, value) -> Tensor:
        raise NotImplementedError

    @property
    def mean(self) -> Tensor:
        raise NotImplementedError

    @property
    def mode(self) -> Tensor:
        raise NotImplementedError

    @property
    def variance(self) -> Tensor:
        raise NotImplementedError

    @property
    def stddev(self) -> Tensor:
        return self.variance.sqrt()

    def _shown_params(self) -> dict:
        """The parameters the repr shows (those the distribution was made with)."""
        return {k: self.__dict__[k] for k in self.arg_constraints if k in self.__dict__}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}: {v if v.numel() == 1 else v.size()}" for k, v in self._shown_params().items())
        return f"{type(self).__name__}({args})"


def log_of(x: Tensor) -> Tensor:
    """log(x) with x = 0 giving the most negative finite number of its dtype (as PyTorch's clamp_probs does for
    entropies: 0 * log 0 counts as 0)."""
    tiny = float(np.finfo(x.dtype_name).tiny)
    return x.clamp(min=tiny).log()


LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)
