"""The base class of graphnn.distributions: shapes, argument validation and the sampling entry points."""

from __future__ import annotations

import copy
import functools
import math

import numpy as np

from graphnn.core.grad_mode import no_grad
from graphnn.distributions import constraints
from graphnn.core.tensor import Size, Tensor, as_tensor
from graphnn.distributions.utils import probs_to_logits

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
    _pytree_object = True  # (a compiled function may return one: rebuilt from its attributes, tensors as results)

    def __init__(self, batch_shape=(), event_shape=(), validate_args=None):
        self._batch_shape, self._event_shape = Size(tuple(batch_shape)), Size(tuple(event_shape))
        self._validate_args = _VALIDATE[0] if validate_args is None else bool(validate_args)

    def __init_subclass__(cls, **kwargs):
        """With validate_args (PyTorch's default), every distribution refuses NaN parameters once made, and its
        log_prob a value outside the support, as PyTorch's do, whatever checks its own code makes."""
        super().__init_subclass__(**kwargs)
        init, log_prob = cls.__dict__.get("__init__"), cls.__dict__.get("log_prob")
        if init is not None:

            @functools.wraps(init)
            def checked_init(self, *args, **kw):
                init(self, *args, **kw)
                if type(self).__init__ is checked_init and getattr(self, "_validate_args", False):
                    self._refuse_nan_params()  # (the most derived class's constructor is done)

            cls.__init__ = checked_init
        if log_prob is not None:

            @functools.wraps(log_prob)
            def checked_log_prob(self, value, *args, **kw):
                if self._validate_args:
                    self._validate_sample(as_tensor(value))
                return log_prob(self, value, *args, **kw)

            cls.log_prob = checked_log_prob

    def _refuse_nan_params(self) -> None:
        """ValueError for a floating parameter in arg_constraints holding NaN (stored as given or as _name)."""
        for name, c in self.arg_constraints.items():
            v = self.__dict__.get(name, self.__dict__.get("_" + name))
            if isinstance(v, Tensor) and v.is_floating_point():
                check_values(v, lambda a: a == a, lambda n=name, v=v, c=c: self._invalid(n, v, repr(c)))

    @staticmethod
    def set_default_validate_args(value: bool) -> None:
        _VALIDATE[0] = bool(value)

    @property
    def batch_shape(self) -> Size:
        return self._batch_shape

    @property
    def event_shape(self) -> Size:
        return self._event_shape

    support = None  # (a constraints.Constraint in each distribution)

    # the tensor attributes expand() broadcasts to a new batch shape (the parameters; each keeps its event part)
    _expand_names: tuple = ()

    def _param_names(self) -> tuple:
        return self._expand_names or (tuple(self.arg_constraints) + ("_probs", "_logits"))

    def expand(self, batch_shape, _instance=None):
        """A new distribution of batch shape `batch_shape` whose parameters are this one's broadcast to it (views:
        no copy); its batch dimensions draw independent samples."""
        new = copy.copy(self) if _instance is None else _instance
        batch_shape = tuple(batch_shape)
        old = len(self._batch_shape)
        for name in self._param_names():
            t = self.__dict__.get(name)
            if isinstance(t, Tensor):
                new.__dict__[name] = t.expand(*(batch_shape + tuple(t.shape[old:])))
        self._expand_children(new, batch_shape)
        Distribution.__init__(new, batch_shape, self._event_shape, validate_args=False)
        new._validate_args = self._validate_args
        return new

    def _expand_children(self, new, batch_shape: tuple) -> None:
        """Expand the distributions this one is built from (base_dist and the like) into `new`."""

    def _init_params(self, validate_args, **params) -> None:
        """A distribution of scalar parameters: broadcast them to one batch shape, set them as attributes, initialize
        with that batch shape (no event dimensions) and validate them (in arg_constraints order)."""
        values = dict(zip(params, broadcast_all(*params.values())))
        for name, v in values.items():
            setattr(self, name, v)
        Distribution.__init__(self, tuple(next(iter(values.values())).shape), (), validate_args)
        if self._validate_args:
            self._validate_params(**{k: values[k] for k in self.arg_constraints if k in values})

    def _validate_params(self, **params) -> None:
        """Raise ValueError when a parameter breaks its constraint in arg_constraints (a NumPy test on the
        parameter itself where the constraint has fixed bounds: also at every call of compiled code)."""
        for name, value in params.items():
            c = self.arg_constraints[name]
            if constraints.is_dependent(c):
                continue
            test = c._np()
            target = value
            if test is None:
                target, test = c.check(value), (lambda a: a)
            check_values(target, test, lambda name=name, value=value, c=c: self._invalid(name, value, repr(c)))

    def _validate_sample(self, value: Tensor) -> None:
        """Raise ValueError when `value` lies outside the support (validate_args)."""
        support = self.support
        if support is None or constraints.is_dependent(support):
            return
        test = support._np()
        target = value
        if test is None:
            target, test = support.check(value), (lambda a: a)
        check_values(
            target,
            test,
            lambda: (
                f"Expected value argument ({type(value).__name__} of shape {tuple(value.shape)}) to be within the "
                f"support ({support!r}) of the distribution {self!r}, but found invalid values:\n{value}"
            ),
        )

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

    def icdf(self, value) -> Tensor:
        """The inverse of cdf (the value below which a fraction `value` of the mass lies)."""
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


class LocScale(Distribution):
    """A location-scale family with a real loc and a positive scale (Normal, Laplace)."""

    has_rsample = True
    arg_constraints = {"loc": constraints.real, "scale": constraints.positive}
    support = constraints.real

    def __init__(self, loc, scale, validate_args=None):
        self.loc, self.scale = broadcast_all(loc, scale)
        super().__init__(tuple(self.loc.shape), (), validate_args)
        if self._validate_args:
            check_values(self.scale, lambda a: a > 0, lambda: self._invalid("scale", self.scale, "GreaterThan(0.0)"))

    @property
    def mean(self) -> Tensor:
        return self.loc

    @property
    def mode(self) -> Tensor:
        return self.loc


class ProbsOrLogits(Distribution):
    """A distribution given by a success probability `probs` or its `logits` (exactly one of them); `low`: the
    smallest valid probability's comparison (Geometric needs p > 0)."""

    arg_constraints = {"probs": constraints.unit_interval, "logits": constraints.real}
    _probs_positive = False

    @staticmethod
    def _given(probs, logits):
        """The one of probs and logits that is given."""
        if (probs is None) == (logits is None):
            raise ValueError("Either `probs` or `logits` must be specified, but not both.")
        return probs if probs is not None else logits

    def _set_probs(self, probs, logits, given: Tensor, validate_args) -> None:
        super().__init__(tuple(given.shape), (), validate_args)
        self._probs, self._logits = (given, None) if probs is not None else (None, given)
        if probs is not None and self._validate_args:
            low = (lambda a: a > 0) if self._probs_positive else (lambda a: a >= 0)
            check_values(
                given, lambda a: low(a) & (a <= 1), lambda: self._invalid("probs", given, "Interval(0.0, 1.0)")
            )

    @property
    def probs(self) -> Tensor:
        return self._probs if self._probs is not None else self._logits.sigmoid()

    @property
    def logits(self) -> Tensor:
        return self._logits if self._logits is not None else probs_to_logits(self._probs, is_binary=True)
