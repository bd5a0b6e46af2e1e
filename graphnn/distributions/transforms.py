"""torch.distributions.transforms and TransformedDistribution: a base distribution pushed through invertible maps
(a squashed Gaussian policy: Normal then TanhTransform, as soft actor-critic samples its actions).

A transform maps x to y = transform(x), inverts it (transform.inv(y)) and gives log |dy/dx| elementwise
(log_abs_det_jacobian(x, y)); TransformedDistribution samples the base and applies the transforms in order, and
scores a value by inverting them: log p(y) = base.log_prob(x) - sum of the log |dy/dx| along the way.
"""

from __future__ import annotations

import copy
import math

from graphnn.core.tensor import Tensor, as_tensor
from graphnn.distributions import constraints
from graphnn.distributions.distribution import Distribution


class Transform:
    """An invertible map with the log of its Jacobian's absolute determinant. `cache_size=1` remembers the last
    (x, y) pair: inverting the y a call returned gives back its x exactly (tanh's inverse at +-1 would be
    infinite), and a call with the same x returns the same y."""

    _pytree_object = True  # (returned by compiled code inside a TransformedDistribution: see pytree.flatten)

    bijective = True
    event_dim = 0  # the dimensions log_abs_det_jacobian has already summed over
    sign = 1
    domain = constraints.real
    codomain = constraints.real

    def __init__(self, cache_size: int = 0):
        if cache_size not in (0, 1):
            raise ValueError("cache_size must be 0 or 1")
        self._cache_size = cache_size
        self._cached = None  # (x, y)

    def __getattr__(self, name):  # (subclasses that do not call __init__: no cache)
        if name == "_cache_size":
            return 0
        if name == "_cached":
            return None
        raise AttributeError(name)

    def with_cache(self, cache_size: int = 1) -> "Transform":
        if self._cache_size == cache_size:
            return self
        new = copy.copy(self)
        new._cache_size, new._cached = cache_size, None
        return new

    def __call__(self, x: Tensor) -> Tensor:
        if self._cache_size and self._cached is not None and self._cached[0] is x:
            return self._cached[1]
        y = self._call(x)
        if self._cache_size:
            self._cached = (x, y)
        return y

    def _inv_call(self, y: Tensor) -> Tensor:
        if self._cache_size and self._cached is not None and self._cached[1] is y:
            return self._cached[0]
        x = self._inverse(y)
        if self._cache_size:
            self._cached = (x, y)
        return x

    def _call(self, x: Tensor) -> Tensor:
        raise NotImplementedError

    def _inverse(self, y: Tensor) -> Tensor:
        raise NotImplementedError

    @property
    def inv(self) -> "Transform":
        return _Inverse(self)

    def log_abs_det_jacobian(self, x: Tensor, y: Tensor) -> Tensor:
        raise NotImplementedError

    def forward_shape(self, shape):
        return shape

    def inverse_shape(self, shape):
        return shape

    def __eq__(self, other) -> bool:
        return type(self) is type(other)

    def __hash__(self) -> int:
        return id(self)

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class _Inverse(Transform):
    def __init__(self, t: Transform):
        super().__init__()
        self._t = t

    @property
    def event_dim(self):
        return self._t.event_dim

    @property
    def sign(self):
        return self._t.sign

    @property
    def domain(self):
        return self._t.codomain

    @property
    def codomain(self):
        return self._t.domain

    def __call__(self, x):
        return self._t._inv_call(x)

    def _call(self, x):
        return self._t._inverse(x)

    def _inverse(self, y):
        return self._t(y)

    @property
    def inv(self) -> Transform:
        return self._t

    def log_abs_det_jacobian(self, x, y):
        return -self._t.log_abs_det_jacobian(y, x)

    def forward_shape(self, shape):
        return self._t.inverse_shape(shape)

    def inverse_shape(self, shape):
        return self._t.forward_shape(shape)

    def __eq__(self, other) -> bool:
        return isinstance(other, _Inverse) and self._t == other._t

    __hash__ = Transform.__hash__

    def __repr__(self) -> str:
        return f"{self._t!r}.inv"


class ExpTransform(Transform):
    codomain = constraints.positive

    def _call(self, x):
        return x.exp()

    def _inverse(self, y):
        return y.log()

    def log_abs_det_jacobian(self, x, y):
        return x


class SigmoidTransform(Transform):
    codomain = constraints.unit_interval

    def _call(self, x):
        import numpy as np

        fi = np.finfo(x.dtype_name)
        return x.sigmoid().clamp(min=float(fi.tiny), max=1 - float(fi.eps))  # (kept inside (0, 1))

    def _inverse(self, y):
        import numpy as np

        fi = np.finfo(y.dtype_name)
        y = y.clamp(min=float(fi.tiny), max=1 - float(fi.eps))
        return y.log() - (-y).log1p()

    def log_abs_det_jacobian(self, x, y):
        from graphnn.nn.functional import softplus

        return -softplus(-x) - softplus(x)


class TanhTransform(Transform):
    codomain = constraints.interval(-1.0, 1.0)

    def _call(self, x):
        return x.tanh()

    def _inverse(self, y):
        return y.atanh()

    def log_abs_det_jacobian(self, x, y):
        from graphnn.nn.functional import softplus

        return 2.0 * (math.log(2.0) - x - softplus(-2.0 * x))  # log(1 - tanh(x)^2), without cancellation


class AbsTransform(Transform):
    """y = |x| (not injective: its inverse gives the nonnegative preimage)."""

    bijective = False
    codomain = constraints.nonnegative

    def _call(self, x):
        return x.abs()

    def _inverse(self, y):
        return y


class PowerTransform(Transform):
    """y = x ** exponent on the positive reals."""

    domain = constraints.positive
    codomain = constraints.positive

    def __init__(self, exponent, cache_size: int = 0):
        super().__init__(cache_size)
        self.exponent = exponent

    @property
    def sign(self):
        return self.exponent.sign() if isinstance(self.exponent, Tensor) else (1 if self.exponent >= 0 else -1)

    def _call(self, x):
        return x.pow(self.exponent)

    def _inverse(self, y):
        return y.pow(1 / self.exponent)

    def log_abs_det_jacobian(self, x, y):
        # log |e x^(e - 1)| = log |e y / x|
        return (self.exponent * y / x).abs().log()

    def __eq__(self, other) -> bool:
        return isinstance(other, PowerTransform) and _same(self.exponent, other.exponent)

    __hash__ = Transform.__hash__


class AffineTransform(Transform):
    def __init__(self, loc, scale, event_dim: int = 0, cache_size: int = 0):
        super().__init__(cache_size)
        self.loc, self.scale, self.event_dim = loc, scale, event_dim

    @property
    def sign(self):
        return self.scale.sign() if isinstance(self.scale, Tensor) else (1 if self.scale >= 0 else -1)

    def _call(self, x):
        return self.loc + self.scale * x

    def _inverse(self, y):
        return (y - self.loc) / self.scale

    def log_abs_det_jacobian(self, x, y):
        out = (x * 0 + self.scale).abs().log()  # (log |scale| at every element of x)
        return _event_sum(out, self.event_dim)

    def __eq__(self, other) -> bool:
        return (
            isinstance(other, AffineTransform)
            and _same(self.loc, other.loc)
            and _same(self.scale, other.scale)
            and self.event_dim == other.event_dim
        )

    __hash__ = Transform.__hash__


class SoftmaxTransform(Transform):
    """y = softmax(x) over the last dimension (not bijective: its inverse is one log of y)."""

    bijective = False
    event_dim = 1
    codomain = constraints.simplex

    def _call(self, x):
        return (x - x.amax(-1, keepdim=True)).exp() / (x - x.amax(-1, keepdim=True)).exp().sum(-1, keepdim=True)

    def _inverse(self, y):
        return y.log()


class StickBreakingTransform(Transform):
    """R^(K-1) to the K-simplex by breaking a stick: z_i = sigmoid(x_i - log(K - i)) (i = 1 .. K-1; the offset
    makes x = 0 the simplex's centre) is the fraction of what is left that piece i takes; the last piece is the
    rest. log |det| of x -> y[:K-1] (a triangular Jacobian): sum of log(y_i) + log(1 - z_i)."""

    event_dim = 1
    domain = constraints.real_vector
    codomain = constraints.simplex

    @staticmethod
    def _log_offsets(n: int, like: Tensor) -> Tensor:
        from graphnn.core.tensor import arange

        return (n - arange(n, dtype=like.dtype)).log()  # log(K - 1), ..., log(1)

    def _call(self, x):
        from graphnn.nn.functional import pad

        z = (x - self._log_offsets(x.shape[-1], x)).sigmoid()
        left = (1 - z).cumprod(-1)  # what remains after each piece
        return pad(z, (0, 1), value=1.0) * pad(left, (1, 0), value=1.0)

    def _inverse(self, y):
        import numpy as np

        head = y[..., :-1]
        tiny = float(np.finfo(y.dtype_name).tiny)
        left = (1 - head.cumsum(-1)).clamp(min=tiny)  # what remains after each piece
        return head.log() - left.log() + self._log_offsets(head.shape[-1], y)

    def log_abs_det_jacobian(self, x, y):
        from graphnn.nn.functional import logsigmoid

        shifted = x - self._log_offsets(x.shape[-1], x)
        return (y[..., :-1].clamp(min=1e-300).log() + logsigmoid(-shifted)).sum(-1)

    def forward_shape(self, shape):
        return tuple(shape[:-1]) + (shape[-1] + 1,)

    def inverse_shape(self, shape):
        return tuple(shape[:-1]) + (shape[-1] - 1,)


class SoftplusTransform(Transform):
    """y = log(1 + exp(x)) onto the positive reals."""

    codomain = constraints.positive

    def _call(self, x):
        from graphnn.nn.functional import softplus

        return softplus(x)

    def _inverse(self, y):
        return y + (-(-y).expm1()).log()  # log(exp(y) - 1) without overflow

    def log_abs_det_jacobian(self, x, y):
        from graphnn.nn.functional import softplus

        return -softplus(-x)


class LowerCholeskyTransform(Transform):
    """A square matrix onto lower-triangular ones with a positive diagonal: its strict lower part, exp of its
    diagonal."""

    event_dim = 2
    domain = constraints.independent(constraints.real, 2)
    codomain = constraints.lower_cholesky

    def _call(self, x):
        return x.tril(-1) + x.diagonal(dim1=-2, dim2=-1).exp().diag_embed()

    def _inverse(self, y):
        return y.tril(-1) + y.diagonal(dim1=-2, dim2=-1).log().diag_embed()


class ReshapeTransform(Transform):
    """The rightmost dimensions of shape in_shape reshaped to out_shape (the same number of elements)."""

    def __init__(self, in_shape, out_shape, cache_size: int = 0):
        super().__init__(cache_size)
        self.in_shape, self.out_shape = tuple(in_shape), tuple(out_shape)
        if math.prod(self.in_shape) != math.prod(self.out_shape):
            raise ValueError("in_shape, out_shape have different numbers of elements")

    @property
    def event_dim(self):
        return len(self.in_shape)

    @property
    def domain(self):
        return constraints.independent(constraints.real, len(self.in_shape))

    @property
    def codomain(self):
        return constraints.independent(constraints.real, len(self.out_shape))

    def _call(self, x):
        return x.reshape(tuple(x.shape[: x.ndim - len(self.in_shape)]) + self.out_shape)

    def _inverse(self, y):
        return y.reshape(tuple(y.shape[: y.ndim - len(self.out_shape)]) + self.in_shape)

    def log_abs_det_jacobian(self, x, y):
        return x.new_zeros(tuple(x.shape[: x.ndim - len(self.in_shape)]))

    def forward_shape(self, shape):
        return tuple(shape)[: len(shape) - len(self.in_shape)] + self.out_shape

    def inverse_shape(self, shape):
        return tuple(shape)[: len(shape) - len(self.out_shape)] + self.in_shape


class IndependentTransform(Transform):
    """base_transform with its rightmost reinterpreted_batch_ndims batch dimensions taken as one event: the log
    determinant summed over them."""

    def __init__(self, base_transform: Transform, reinterpreted_batch_ndims: int, cache_size: int = 0):
        super().__init__(cache_size)
        self.base_transform, self.reinterpreted_batch_ndims = base_transform, int(reinterpreted_batch_ndims)

    @property
    def event_dim(self):
        return self.base_transform.event_dim + self.reinterpreted_batch_ndims

    @property
    def domain(self):
        return constraints.independent(self.base_transform.domain, self.reinterpreted_batch_ndims)

    @property
    def codomain(self):
        return constraints.independent(self.base_transform.codomain, self.reinterpreted_batch_ndims)

    @property
    def sign(self):
        return self.base_transform.sign

    def _call(self, x):
        return self.base_transform(x)

    def _inverse(self, y):
        return self.base_transform.inv(y)

    def log_abs_det_jacobian(self, x, y):
        return _event_sum(self.base_transform.log_abs_det_jacobian(x, y), self.reinterpreted_batch_ndims)


class ComposeTransform(Transform):
    def __init__(self, parts: list, cache_size: int = 0):
        super().__init__(cache_size)
        self.parts = list(parts)

    @property
    def event_dim(self):
        return max((t.event_dim for t in self.parts), default=0)

    @property
    def sign(self):
        s = 1
        for t in self.parts:
            s = s * t.sign
        return s

    @property
    def domain(self):
        return self.parts[0].domain if self.parts else constraints.real

    @property
    def codomain(self):
        return self.parts[-1].codomain if self.parts else constraints.real

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
        top = self.event_dim
        for t in self.parts:
            nxt = t(x)
            total = total + _event_sum(t.log_abs_det_jacobian(x, nxt), top - t.event_dim)
            x = nxt
        return total

    def __eq__(self, other) -> bool:
        return isinstance(other, ComposeTransform) and self.parts == other.parts

    __hash__ = Transform.__hash__


def _same(a, b) -> bool:
    """Equal parameters: the same tensor object or equal numbers."""
    if isinstance(a, Tensor) or isinstance(b, Tensor):
        return a is b
    return a == b


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
            total = total - _event_sum(t.log_abs_det_jacobian(x, y), len(self.event_shape) - t.event_dim)
            y = x
        return self.base_dist.log_prob(y) + total

    @constraints.dependent_property(is_discrete=False)
    def support(self):
        return self.transforms[-1].codomain if self.transforms else self.base_dist.support

    def _expand_children(self, new, batch_shape: tuple) -> None:
        extra = tuple(self.base_dist.batch_shape)[len(self.batch_shape) :]
        new.base_dist = self.base_dist.expand(batch_shape + extra)

    def _monotone_sign(self):
        s = 1
        for t in self.transforms:
            s = s * t.sign
        return s

    def cdf(self, value) -> Tensor:
        """The base's cdf at the value mapped back (the transforms must be monotone; a decreasing one flips it)."""
        y = as_tensor(value)
        for t in reversed(self.transforms):
            y = t.inv(y)
        c = self.base_dist.cdf(y)
        s = self._monotone_sign()
        return c if isinstance(s, int) and s == 1 else (s * (c - 0.5) + 0.5)

    def icdf(self, value) -> Tensor:
        p = as_tensor(value)
        s = self._monotone_sign()
        if not (isinstance(s, int) and s == 1):
            p = s * (p - 0.5) + 0.5
        x = self.base_dist.icdf(p)
        for t in self.transforms:
            x = t(x)
        return x


def _event_sum(t: Tensor, event_dims: int) -> Tensor:
    for _ in range(event_dims):
        t = t.sum(-1)
    return t
