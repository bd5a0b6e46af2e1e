"""Reductions and order statistics of PyTorch's API composed of primitives: prod (the prod primitive), all / any /
count_nonzero, logsumexp, var_mean / std_mean, nansum / nanmean, amin / aminmax, cumulative products, maxima and
log-sum-exps (log2(n) doubling steps of shifted slices: each combines a running result with the one k places
earlier), and median / kthvalue / mode / quantile / nanquantile from the sorted order (argsort + gathers), whose
gradients reach the selected elements as PyTorch's do."""

from __future__ import annotations

import builtins
import math

import numpy as np

from graphnn.core.dispatch import apply, located, relabel
from graphnn.core.dtypes import to_dtype
from graphnn.core.tensor_ops import return_type


def _t():
    from graphnn.core import tensor

    return tensor


def _axes(dim):
    if dim is None:
        return None
    return tuple(dim) if isinstance(dim, (tuple, list)) else (int(dim),)


def _dim(x, dim, what: str) -> int:
    return _t().check_dim(dim, max(x.ndim, 1), what, x) if x.ndim else 0


def _where(c, a, b):
    return apply("select", [c, a, b])


# -- reductions --------------------------------------------------------------------------------------------------
def prod(input, dim=None, keepdim: bool = False, *, dtype=None):
    """The product over dim (all elements when None); bool and int64 multiply as int64."""
    x = input.type_as_dtype(to_dtype(dtype)) if dtype is not None else input
    if x.dtype_name == "bool":
        x = x.long()
    if dim is None:
        return apply("prod", [x], {"axes": None, "keepdims": False}, name="ProdBackward0")
    return apply("prod", [x], {"axes": (_dim(x, dim, "prod"),), "keepdims": keepdim}, name="ProdBackward1")


def all(input, dim=None, keepdim: bool = False, *, axis=None, out=None):  # noqa: A001
    """True where every element (along dim) is nonzero (axis: NumPy's name for dim, as np.all(tensor) passes it)."""
    dim = axis if dim is None else dim
    return (input == 0).sum(dim, keepdim) == 0


def any(input, dim=None, keepdim: bool = False, *, axis=None, out=None):  # noqa: A001
    """True where some element (along dim) is nonzero (NaN counts; axis: as in all)."""
    dim = axis if dim is None else dim
    return (input != 0).sum(dim, keepdim) > 0


def count_nonzero(input, dim=None):
    return (input != 0).sum(dim)


def var_mean(input, dim=None, unbiased=None, keepdim: bool = False, *, correction=None):
    if isinstance(unbiased, bool) or unbiased is None:
        v = input.var(dim, True if unbiased is None else unbiased, keepdim, correction=correction)
    else:  # var_mean(x, dim, correction) positionally
        v = input.var(dim, keepdim=keepdim, correction=unbiased)
    return v, input.mean(dim, keepdim)


def std_mean(input, dim=None, unbiased=None, keepdim: bool = False, *, correction=None):
    from graphnn.core.tensor import std_of_var

    v, m = var_mean(input, dim, unbiased, keepdim, correction=correction)
    return std_of_var(v), m


def nansum(input, dim=None, keepdim: bool = False, *, dtype=None):
    x = input.type_as_dtype(to_dtype(dtype)) if dtype is not None else input
    if not x.is_floating_point():
        return x.sum(dim, keepdim)
    return relabel(_where(x != x, 0.0, x).sum(dim, keepdim), "NansumBackward0", [input])


def nanmean(input, dim=None, keepdim: bool = False, *, dtype=None):
    x = input.type_as_dtype(to_dtype(dtype)) if dtype is not None else input
    if not x.is_floating_point():
        raise RuntimeError(located(f"nanmean(): expected input to have floating point dtype but got {x.dtype_name}"))
    n = (x == x).sum(dim, keepdim)
    return nansum(x, dim, keepdim) / n


def amin(input, dim=(), keepdim: bool = False):
    dim = None if dim == () else dim
    if input.dtype_name == "bool":
        return all(input, dim, keepdim)
    return relabel(-(-input).amax(dim, keepdim), "AminBackward0", [input])


class aminmax_result(tuple):
    """(min, max) as returned by aminmax (a namedtuple for graphnn.compile's results)."""

    _fields = ("min", "max")

    def __new__(cls, lo, hi):
        return super().__new__(cls, (lo, hi))

    min = property(lambda self: self[0])  # noqa: A003
    max = property(lambda self: self[1])  # noqa: A003

    def __repr__(self) -> str:
        return f"graphnn.return_types.aminmax(\nmin={self[0]!r},\nmax={self[1]!r})"


def aminmax(input, *, dim=None, keepdim: bool = False):
    return aminmax_result(amin(input, dim, keepdim), input.amax(dim, keepdim))


# -- cumulative operations ---------------------------------------------------------------------------------------
def _earlier(x, d: int, k: int, fill):
    """x shifted k places forward along d: position j holds x[j - k], the first k positions `fill`."""
    n = x.shape[d]
    pad_shape = tuple(k if i == d else s for i, s in enumerate(x.shape))
    pad = _t().full(pad_shape, fill, dtype=x.dtype_name)
    return _t().cat([pad, _t().narrow(x, d, 0, n - k)], d)


def _doubling(x, d: int, fill, combine):
    """Inclusive scan along d by doubling: after the step with offset k, position j combines positions j - 2k + 1
    .. j. `combine(later, earlier)` must be associative; `fill` is its identity."""
    k = 1
    while k < x.shape[d]:
        x = combine(x, _earlier(x, d, k, fill))
        k *= 2
    return x


def cumprod(input, dim, *, dtype=None):
    x = input.type_as_dtype(to_dtype(dtype)) if dtype is not None else input
    if x.dtype_name == "bool":
        x = x.long()
    if x.ndim == 0:
        return relabel(x.clone(), "CumprodBackward0", [input])
    d = _dim(x, dim, "cumprod")
    return relabel(_doubling(x, d, 1, lambda a, b: a * b), "CumprodBackward0", [input])


def logcumsumexp(input, dim):
    from graphnn.core.math_ops import logaddexp

    if input.ndim == 0:
        return relabel(input.clone(), "LogcumsumexpBackward0", [input])
    d = _dim(input, dim, "logcumsumexp")
    return relabel(_doubling(input, d, -math.inf, logaddexp), "LogcumsumexpBackward0", [input])


cummax_result = return_type("cummax")
cummin_result = return_type("cummin")


def _cumulative_pick(input, dim, larger: bool, result, name: str):
    """(values, indices) of the running maximum (minimum): the later position wins ties, NaN wins over numbers
    (the last NaN once one was seen), as PyTorch. The values are gathered at the indices (their gradient)."""
    T = _t()
    if input.ndim == 0:
        return result(relabel(input.clone(), name, [input]), T.zeros_like(input, dtype="int64"))
    d = _dim(input, dim, name)
    v = input.detach()
    shape = [1] * input.ndim
    shape[d] = input.shape[d]
    pos = T.Tensor._wrap(np.arange(input.shape[d], dtype=np.int64).reshape(shape))
    idx = T.broadcast_to(pos, tuple(input.shape))
    n = input.shape[d]
    k = 1
    while k < n:
        ev, ei = _earlier(v, d, k, 0), _earlier(idx, d, k, 0)  # (the first k positions are not taken)
        valid = T.broadcast_to(pos >= k, tuple(input.shape))
        better = (ev > v) if larger else (ev < v)
        take = valid & (better | ((ev != ev) & (v == v)))
        v, idx = _where(take, ev, v), _where(take, ei, idx)
        k *= 2
    values = apply("take_along", [input, idx], {"axis": d}, name=name)
    return result(values, idx)


def cummax(input, dim):
    return _cumulative_pick(input, dim, True, cummax_result, "CummaxBackward0")


def cummin(input, dim):
    return _cumulative_pick(input, dim, False, cummin_result, "CumminBackward0")


# -- order statistics --------------------------------------------------------------------------------------------
median_result = return_type("median")
kthvalue_result = return_type("kthvalue")
mode_result = return_type("mode")


def _select_sorted(x, d: int, pos, keepdim: bool, result, name: str):
    """(values, indices) of the elements at sorted position `pos` (a tensor of kept-dim shape, or an int) along d."""
    T = _t()
    order = apply("argsort", [x], {"axis": d, "descending": False})
    if isinstance(pos, int):
        idx = T.narrow(order, d, pos, 1)
    else:
        idx = apply("take_along", [order, pos], {"axis": d})
    values = apply("take_along", [x, idx], {"axis": d}, name=name)
    if not keepdim:
        values, idx = relabel(values.squeeze(d), name, [x]), idx.squeeze(d)
    return result(values, idx)


def median(input, dim=None, keepdim: bool = False):
    """The lower median (sorted position (n - 1) // 2); a row with NaN gives its first NaN, as PyTorch."""
    if dim is None:
        if input.numel() == 0:
            return _t().full((), math.nan, dtype=input.dtype_name)
        x = input.reshape(-1)
        return _tied(x, median(x, 0).values.reshape(()), input, "MedianBackward0")
    if input.ndim == 0:
        return median_result(relabel(input.clone(), "MedianBackward1", [input]), _t().zeros_like(input, dtype="int64"))
    d = _dim(input, dim, "median")
    n = input.shape[d]
    pos = (n - 1) // 2
    if input.is_floating_point():
        nans = (input != input).sum(d, keepdim=True)
        pos = _where(nans > 0, n - nans, pos)
    return _select_sorted(input, d, pos, keepdim, median_result, "MedianBackward1")


def _tied(x, m, input, name: str):
    """The median m of all of x (input flattened), its gradient split evenly among the elements equal to it (ties),
    as PyTorch's full-reduction medians."""
    if not x.requires_grad:
        return relabel(m, name, [input])
    m = m.detach()
    ties = (x == m).type_as_dtype(x.dtype_name)
    count = ties.sum().clamp(min=1.0)
    return relabel(m + ((x - x.detach()) * ties).sum() / count, name, [input])


def nanmedian(input, dim=None, keepdim: bool = False):
    """The lower median of the non-NaN elements (NaN where a row has only NaN)."""
    if dim is None:
        if not input.ndim:
            return input.clone()
        x = input.reshape(-1)
        return _tied(x, nanmedian(x, 0).values.reshape(()), input, "NanmedianBackward0")
    d = _dim(input, dim, "nanmedian")
    if not input.is_floating_point():
        return median(input, d, keepdim)
    valid = (input == input).sum(d, keepdim=True)
    pos = _where(valid > 0, (valid - 1) // 2, 0)
    return _select_sorted(input, d, pos, keepdim, median_result, "NanmedianBackward1")


def kthvalue(input, k: int, dim: int = -1, keepdim: bool = False):
    """The k-th smallest element along dim (1-based; NaN sorts last) and its index."""
    if input.ndim == 0:
        if k != 1:
            raise RuntimeError(located(f"kthvalue(): selected number k out of range for dimension 0: {k}"))
        return kthvalue_result(relabel(input.clone(), "KthvalueBackward0", [input]), _t().zeros_like(input, "int64"))
    d = _dim(input, dim, "kthvalue")
    if not 1 <= int(k) <= input.shape[d]:
        raise RuntimeError(located(f"kthvalue(): selected number k out of range for dimension {d}"))
    return _select_sorted(input, d, int(k) - 1, keepdim, kthvalue_result, "KthvalueBackward0")


def mode(input, dim: int = -1, keepdim: bool = False):
    """The most frequent value along dim (the smallest among equally frequent ones) and the last index holding it."""
    T = _t()
    if input.ndim == 0:
        return mode_result(relabel(input.clone(), "ModeBackward0", [input]), T.zeros_like(input, dtype="int64"))
    d = _dim(input, dim, "mode")
    x = input.detach()
    order = apply("argsort", [x], {"axis": d, "descending": False})
    s = apply("take_along", [x, order], {"axis": d})
    counts = (s.unsqueeze(d) == s.unsqueeze(d + 1)).sum(d + 1)  # counts[j] = how many equal sorted element j
    best = counts.argmax(d, keepdim=True)  # first: the smallest of the most frequent values
    value = apply("take_along", [s, best], {"axis": d})
    n = input.shape[d]
    shape = [1] * input.ndim
    shape[d] = n
    pos = T.Tensor._wrap(np.arange(n, dtype=np.int64).reshape(shape))
    idx = _where(x == value, pos, -1).amax(d, keepdim=True)
    values = apply("take_along", [input, idx], {"axis": d}, name="ModeBackward0")
    if not keepdim:
        values, idx = relabel(values.squeeze(d), "ModeBackward0", [input]), idx.squeeze(d)
    return mode_result(values, idx)


_INTERPOLATIONS = ("linear", "lower", "higher", "midpoint", "nearest")


def _quantile(input, q, dim, keepdim: bool, interpolation: str, ignore_nan: bool, what: str):
    T = _t()
    if interpolation not in _INTERPOLATIONS:
        raise ValueError(located(f"{what}() interpolation must be one of {', '.join(_INTERPOLATIONS)}"))
    if not input.is_floating_point():
        raise RuntimeError(located(f"{what}() input tensor must be either float or double dtype"))
    scalar_q = not isinstance(q, T.Tensor) or q.ndim == 0
    if isinstance(q, T.Tensor):
        if q._data is not None and np.any((q._data < 0) | (q._data > 1)):
            raise RuntimeError(located(f"{what}() q values must be in the range [0, 1]"))
        q = q.type_as_dtype(input.dtype_name)
        qs = [q] if q.ndim == 0 else [q[j] for j in range(q.shape[0])]
    else:
        qs = [float(v) for v in np.atleast_1d(q)]
        if builtins.any(not 0 <= v <= 1 for v in qs):
            raise RuntimeError(located(f"{what}() q values must be in the range [0, 1]"))
    x = input.reshape(-1) if dim is None else input
    if x.ndim == 0:
        x = x.reshape(1)
    d = 0 if dim is None else _dim(x, dim, what)
    x = x.permute(*_last(x.ndim, d))
    n = x.shape[-1]
    s = x.sort(-1).values  # NaN last
    nan = (x != x).sum(-1, keepdim=True)
    valid = n - nan if ignore_nan else T.full(tuple(x.shape[:-1]) + (1,), n, dtype="int64")
    outs = []
    for qv in qs:
        rank = (valid - 1).type_as_dtype(x.dtype_name) * qv
        rank = _where(rank < 0, 0.0, rank)
        lo = rank.floor()
        hi = rank.ceil()
        if interpolation == "lower":
            hi = lo
        elif interpolation == "higher":
            lo = hi
        elif interpolation == "nearest":
            lo = hi = rank.round()
        lo_v = apply("take_along", [s, lo.long()], {"axis": -1})
        hi_v = apply("take_along", [s, hi.long()], {"axis": -1})
        if interpolation == "midpoint":
            v = lo_v + (hi_v - lo_v) * 0.5
        elif interpolation == "linear":
            w = rank - lo
            v = _where(w < 0.5, lo_v + (hi_v - lo_v) * w, hi_v - (hi_v - lo_v) * (1 - w))
        else:
            v = lo_v
        bad = (valid == 0) if ignore_nan else (nan > 0)
        v = _where(bad, math.nan, v)
        outs.append(v.squeeze(-1))
    out = T.stack(outs, 0)  # (len(q), rest...)
    if keepdim:
        if dim is None:
            out = out.reshape((len(qs),) + (1,) * input.ndim)
        else:
            out = out.unsqueeze(d + 1)
    if scalar_q:
        out = out.squeeze(0)
    return relabel(out, "QuantileBackward0" if not ignore_nan else "NanquantileBackward0", [input])


def _last(ndim: int, d: int) -> tuple:
    return tuple(i for i in range(ndim) if i != d) + (d,)


def quantile(input, q, dim=None, keepdim: bool = False, *, interpolation: str = "linear"):
    """The q-th quantiles along dim (all elements when None); a row with NaN gives NaN."""
    return _quantile(input, q, dim, keepdim, interpolation, False, "quantile")


def nanquantile(input, q, dim=None, keepdim: bool = False, *, interpolation: str = "linear"):
    """quantile of the non-NaN elements (NaN where a row has none)."""
    return _quantile(input, q, dim, keepdim, interpolation, True, "nanquantile")


FUNCTIONS = {
    "prod": prod,
    "all": all,
    "any": any,
    "count_nonzero": count_nonzero,
    "var_mean": var_mean,
    "std_mean": std_mean,
    "nansum": nansum,
    "nanmean": nanmean,
    "amin": amin,
    "aminmax": aminmax,
    "cumprod": cumprod,
    "logcumsumexp": logcumsumexp,
    "cummax": cummax,
    "cummin": cummin,
    "median": median,
    "nanmedian": nanmedian,
    "kthvalue": kthvalue,
    "mode": mode,
    "quantile": quantile,
    "nanquantile": nanquantile,
}
INPLACE = ("cumprod",)
