"""biject_to(constraint) and transform_to(constraint): a transform from the real numbers onto a constraint's set
(bijective, for unconstrained parameterization and change of variables; or only onto, for optimization), as
torch.distributions.constraint_registry gives them."""

from __future__ import annotations

from graphnn.core.tensor import Tensor
from graphnn.distributions import constraints as C
from graphnn.distributions.transforms import (
    AffineTransform,
    ComposeTransform,
    ExpTransform,
    IndependentTransform,
    LowerCholeskyTransform,
    SigmoidTransform,
    SoftmaxTransform,
    StickBreakingTransform,
)


def _onto(constraint, bijective: bool):
    t = type(constraint)
    if t is C._Real:
        return ComposeTransform([])  # (the identity)
    if t is C._IndependentConstraint:
        base = _onto(constraint.base_constraint, bijective)
        return IndependentTransform(base, constraint.reinterpreted_batch_ndims)
    if t in (C._GreaterThan, C._GreaterThanEq):
        lo = constraint.lower_bound
        return (
            ExpTransform()
            if not isinstance(lo, Tensor) and lo == 0
            else ComposeTransform([ExpTransform(), AffineTransform(lo, 1)])
        )
    if t is C._LessThan:
        return ComposeTransform([ExpTransform(), AffineTransform(constraint.upper_bound, -1)])
    if t in (C._Interval, C._HalfOpenInterval):
        lo, hi = constraint.lower_bound, constraint.upper_bound
        if not isinstance(lo, Tensor) and not isinstance(hi, Tensor) and (lo, hi) == (0, 1):
            return SigmoidTransform()
        return ComposeTransform([SigmoidTransform(), AffineTransform(lo, hi - lo)])
    if t is C._Simplex:
        return StickBreakingTransform() if bijective else SoftmaxTransform()
    if t is C._LowerCholesky:
        return LowerCholeskyTransform()
    raise NotImplementedError(f"Cannot transform {type(constraint).__name__.lstrip('_')} constraints")


def biject_to(constraint):
    """A bijection from the reals (of the constraint's event shape) onto the constraint's set."""
    return _onto(constraint, True)


def transform_to(constraint):
    """A transform from the reals onto the constraint's set (not necessarily one to one: a softmax for a simplex)."""
    return _onto(constraint, False)
