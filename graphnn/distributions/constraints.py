"""graphnn.distributions.constraints: the sets a distribution's parameters and values live in (torch.distributions
.constraints). Each constraint's `check(value)` gives a boolean tensor, one entry per event (the rightmost
`event_dim` dimensions are reduced with `all`), built from graphnn tensor ops; the reprs are PyTorch's.

Distributions name them in `arg_constraints` (their parameters) and `support` (their values); validate_args
checks the parameters against them when a distribution is made and values against the support in log_prob."""

from __future__ import annotations

import numpy as np

from graphnn.core.tensor import Tensor, as_tensor

__all__ = [
    "Constraint",
    "boolean",
    "cat",
    "corr_cholesky",
    "dependent",
    "dependent_property",
    "greater_than",
    "greater_than_eq",
    "half_open_interval",
    "independent",
    "integer_interval",
    "interval",
    "is_dependent",
    "less_than",
    "lower_cholesky",
    "lower_triangular",
    "multinomial",
    "nonnegative",
    "nonnegative_integer",
    "one_hot",
    "positive",
    "positive_definite",
    "positive_integer",
    "positive_semidefinite",
    "real",
    "real_vector",
    "simplex",
    "square",
    "stack",
    "symmetric",
    "unit_interval",
]


def _fmt(bound) -> str:
    return repr(bound) if isinstance(bound, Tensor) else str(bound)


def _reduce_all(ok: Tensor, ndims: int) -> Tensor:
    for _ in range(ndims):
        ok = ok.all(-1)
    return ok


class Constraint:
    """A set of values: check(value) is True where the value (an event of event_dim dimensions) belongs to it."""

    is_discrete = False
    event_dim = 0

    def check(self, value) -> Tensor:
        raise NotImplementedError

    def _np(self):
        """A NumPy test of the same set (for checking a traced input at every call of compiled code), or None when
        the set depends on tensors."""
        return None

    def __repr__(self) -> str:
        return f"{type(self).__name__.lstrip('_')}()"


class _Dependent(Constraint):
    """A placeholder for a set that depends on other parameters (Uniform's low and high): check raises."""

    def __init__(self, *, is_discrete=NotImplemented, event_dim=NotImplemented):
        self._is_discrete, self._event_dim = is_discrete, event_dim

    @property
    def is_discrete(self):
        if self._is_discrete is NotImplemented:
            raise NotImplementedError(".is_discrete cannot be determined statically")
        return self._is_discrete

    @property
    def event_dim(self):
        if self._event_dim is NotImplemented:
            raise NotImplementedError(".event_dim cannot be determined statically")
        return self._event_dim

    def __call__(self, *, is_discrete=NotImplemented, event_dim=NotImplemented):
        return _Dependent(is_discrete=is_discrete, event_dim=event_dim)

    def check(self, value):
        raise ValueError("Cannot determine validity of dependent constraint")


def is_dependent(constraint) -> bool:
    return isinstance(constraint, _Dependent)


class _DependentProperty(property, _Dependent):
    """A property of a distribution that is also a dependent constraint (a support computed from parameters)."""

    def __init__(self, fn=None, *, is_discrete=NotImplemented, event_dim=NotImplemented):
        property.__init__(self, fn)
        _Dependent.__init__(self, is_discrete=is_discrete, event_dim=event_dim)

    def __call__(self, fn):
        return _DependentProperty(fn, is_discrete=self._is_discrete, event_dim=self._event_dim)


class _Real(Constraint):
    def check(self, value):
        value = as_tensor(value)
        return value == value  # (NaN is not real)

    def _np(self):
        return lambda a: a == a


class _Boolean(Constraint):
    is_discrete = True

    def check(self, value):
        value = as_tensor(value)
        return (value == 0) | (value == 1)

    def _np(self):
        return lambda a: (a == 0) | (a == 1)


class _OneHot(Constraint):
    is_discrete = True
    event_dim = 1

    def check(self, value):
        value = as_tensor(value)
        return ((value == 0) | (value == 1)).all(-1) & (value.sum(-1) == 1)


class _Bounded(Constraint):
    """A set given by bounds (numbers or tensors) compared with value; subclasses define `_test`."""

    names: tuple = ()

    def __init__(self, *bounds):
        for name, b in zip(self.names, bounds):
            setattr(self, name, b)

    def _bounds(self):
        return [getattr(self, n) for n in self.names]

    def _np(self):
        bounds = self._bounds()
        if any(isinstance(b, Tensor) for b in bounds):
            return None
        return lambda a: self._test(a, *bounds)

    def check(self, value):
        value = as_tensor(value)
        return self._test(value, *self._bounds())

    def __repr__(self) -> str:
        args = ", ".join(f"{n}={_fmt(getattr(self, n))}" for n in self.names)
        return f"{type(self).__name__.lstrip('_')}({args})"


def _is_integer(v):
    return v % 1 == 0


class _IntegerInterval(_Bounded):
    is_discrete = True
    names = ("lower_bound", "upper_bound")

    @staticmethod
    def _test(v, lo, hi):
        return _is_integer(v) & (v >= lo) & (v <= hi)


class _IntegerLessThan(_Bounded):
    is_discrete = True
    names = ("upper_bound",)

    @staticmethod
    def _test(v, hi):
        return _is_integer(v) & (v <= hi)


class _IntegerGreaterThan(_Bounded):
    is_discrete = True
    names = ("lower_bound",)

    @staticmethod
    def _test(v, lo):
        return _is_integer(v) & (v >= lo)


class _GreaterThan(_Bounded):
    names = ("lower_bound",)

    @staticmethod
    def _test(v, lo):
        return (v > lo) & (v == v)


class _GreaterThanEq(_Bounded):
    names = ("lower_bound",)

    @staticmethod
    def _test(v, lo):
        return v >= lo


class _LessThan(_Bounded):
    names = ("upper_bound",)

    @staticmethod
    def _test(v, hi):
        return v < hi


class _Interval(_Bounded):
    names = ("lower_bound", "upper_bound")

    @staticmethod
    def _test(v, lo, hi):
        return (v >= lo) & (v <= hi)


class _HalfOpenInterval(_Bounded):
    names = ("lower_bound", "upper_bound")

    @staticmethod
    def _test(v, lo, hi):
        return (v >= lo) & (v < hi)


class _Simplex(Constraint):
    """Nonnegative vectors summing to 1 (within 1e-6) over the last dimension."""

    event_dim = 1

    def check(self, value):
        value = as_tensor(value)
        return (value >= 0).all(-1) & ((value.sum(-1) - 1).abs() < 1e-6)

    def _np(self):
        return lambda a: np.all(a >= 0, -1) & (np.abs(a.sum(-1) - 1) < 1e-6)


class _Multinomial(Constraint):
    """Nonnegative integer count vectors whose total is at most upper_bound."""

    is_discrete = True
    event_dim = 1

    def __init__(self, upper_bound):
        self.upper_bound = upper_bound

    def check(self, value):
        value = as_tensor(value)
        return (value >= 0).all(-1) & (value.sum(-1) <= self.upper_bound)


class _LowerTriangular(Constraint):
    event_dim = 2

    def check(self, value):
        value = as_tensor(value)
        return (value.tril() == value).all(-1).all(-1)


class _LowerCholesky(Constraint):
    """Lower-triangular matrices with a positive diagonal."""

    event_dim = 2

    def check(self, value):
        value = as_tensor(value)
        tri = (value.tril() == value).all(-1).all(-1)
        return tri & (value.diagonal(dim1=-2, dim2=-1) > 0).all(-1)

    def _np(self):
        return lambda a: np.all(np.tril(a) == a, (-2, -1)) & np.all(np.diagonal(a, 0, -2, -1) > 0, -1)


class _CorrCholesky(Constraint):
    """Lower Cholesky factors of correlation matrices: rows of unit Euclidean norm."""

    event_dim = 2

    def check(self, value):
        value = as_tensor(value)
        eps = float(np.finfo(value.dtype_name).eps) * value.shape[-1] * 10
        unit = ((value.pow(2).sum(-1).sqrt() - 1).abs() <= eps).all(-1)
        return _LowerCholesky().check(value) & unit


class _Square(Constraint):
    event_dim = 2

    def check(self, value):
        value = as_tensor(value)
        n, m = value.shape[-2], value.shape[-1]
        return as_tensor(np.full(tuple(value.shape[:-2]), n == m))


class _Symmetric(_Square):
    def check(self, value):
        value = as_tensor(value)
        if value.shape[-2] != value.shape[-1]:
            return super().check(value)
        return ((value - value.transpose(-2, -1)).abs() <= 1e-6 * (1 + value.abs())).all(-1).all(-1)


def _eigs_np(a):
    return np.linalg.eigvalsh((a + np.swapaxes(a, -1, -2)) / 2)


class _PositiveSemidefinite(_Symmetric):
    def check(self, value):
        from graphnn import linalg

        value = as_tensor(value)
        return super().check(value) & (linalg.eigvalsh(value) >= 0).all(-1)

    def _np(self):
        return lambda a: np.isclose(a, np.swapaxes(a, -1, -2)).all((-2, -1)) & (_eigs_np(a)[..., 0] >= 0)


class _PositiveDefinite(_Symmetric):
    def check(self, value):
        from graphnn import linalg

        value = as_tensor(value)
        return super().check(value) & (linalg.eigvalsh(value) > 0).all(-1)

    def _np(self):
        return lambda a: np.isclose(a, np.swapaxes(a, -1, -2)).all((-2, -1)) & (_eigs_np(a)[..., 0] > 0)


class _IndependentConstraint(Constraint):
    """base_constraint with its rightmost reinterpreted_batch_ndims dimensions forming one event (all must hold)."""

    def __init__(self, base_constraint: Constraint, reinterpreted_batch_ndims: int):
        self.base_constraint, self.reinterpreted_batch_ndims = base_constraint, int(reinterpreted_batch_ndims)

    @property
    def is_discrete(self):
        return self.base_constraint.is_discrete

    @property
    def event_dim(self):
        return self.base_constraint.event_dim + self.reinterpreted_batch_ndims

    def check(self, value):
        return _reduce_all(self.base_constraint.check(value), self.reinterpreted_batch_ndims)

    def _np(self):
        base = self.base_constraint._np()
        if base is None:
            return None
        n = self.reinterpreted_batch_ndims
        return lambda a: np.all(base(a), axis=tuple(range(-n, 0))) if n else base(a)

    def __repr__(self) -> str:
        return f"IndependentConstraint({self.base_constraint!r}, {self.reinterpreted_batch_ndims})"


class _Cat(Constraint):
    """Constraints applied to consecutive pieces of `dim` (of the given lengths) and concatenated."""

    def __init__(self, cseq, dim=0, lengths=None):
        self.cseq, self.dim = list(cseq), dim
        self.lengths = list(lengths) if lengths is not None else [1] * len(self.cseq)

    @property
    def event_dim(self):
        return max(c.event_dim for c in self.cseq)

    def check(self, value):
        value = as_tensor(value)
        parts, start = [], 0
        for c, n in zip(self.cseq, self.lengths):
            parts.append(c.check(value.narrow(self.dim, start, n)))
            start += n
        from graphnn import cat as _cat

        return _cat(parts, self.dim)


class _Stack(Constraint):
    """Constraints applied to the slices of `dim` and stacked."""

    def __init__(self, cseq, dim=0):
        self.cseq, self.dim = list(cseq), dim

    @property
    def event_dim(self):
        return max(c.event_dim for c in self.cseq)

    def check(self, value):
        from graphnn import stack as _stack

        value = as_tensor(value)
        return _stack([c.check(value.select(self.dim, i)) for i, c in enumerate(self.cseq)], self.dim)


dependent = _Dependent()
dependent_property = _DependentProperty
independent = _IndependentConstraint
boolean = _Boolean()
one_hot = _OneHot()
nonnegative_integer = _IntegerGreaterThan(0)
positive_integer = _IntegerGreaterThan(1)
integer_interval = _IntegerInterval
real = _Real()
real_vector = independent(real, 1)
positive = _GreaterThan(0.0)
nonnegative = _GreaterThanEq(0.0)
greater_than = _GreaterThan
greater_than_eq = _GreaterThanEq
less_than = _LessThan
multinomial = _Multinomial
unit_interval = _Interval(0.0, 1.0)
interval = _Interval
half_open_interval = _HalfOpenInterval
simplex = _Simplex()
lower_triangular = _LowerTriangular()
lower_cholesky = _LowerCholesky()
corr_cholesky = _CorrCholesky()
square = _Square()
symmetric = _Symmetric()
positive_semidefinite = _PositiveSemidefinite()
positive_definite = _PositiveDefinite()
cat = _Cat
stack = _Stack
