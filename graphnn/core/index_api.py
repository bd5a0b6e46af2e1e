"""Index functions with PyTorch's names, composed of primitives: take / take_along_dim (gathers), index_add /
index_copy / index_fill (the scatter-add `take_grad` and a select), searchsorted / bucketize / histc (comparisons
and sums). Functions whose result size depends on values (nonzero, argwhere, masked_select, unique,
unique_consecutive, bincount) run eagerly; inside graphnn.compile they raise a TraceError saying why."""

from __future__ import annotations

import builtins

import numpy as np

from graphnn.compiler import tracer as _tracer
from graphnn.core.dispatch import apply, located, relabel

FLOATS = ("float32", "float64")


def _t():
    from graphnn.core import tensor

    return tensor


def _dim(x, dim: int, what: str) -> int:
    return _t().check_dim(int(dim), x.ndim, what, x)


def data_dependent(x, what: str, why: str) -> np.ndarray:
    """x's values for an op whose result size depends on them: refused inside graphnn.compile (TraceError)."""
    T = _t()
    if x._data is None or _tracer.current() is not None:
        raise T.TraceError(
            located(
                f"{what}({x._type}): {why}, so it needs the tensor's values, which graphnn.compile does not have "
                "while it traces; call it outside the compiled function (or use a fixed-size form such as "
                "torch.where or masked_fill)"
            )
        )
    return x._data


def _int_index(index, what: str):
    index = _t().as_tensor(index)
    if index.dtype_name != "int64":
        raise RuntimeError(located(f"{what}(): Expected dtype int64 for index, got {index.dtype_name}"))
    return index


# -- gathers -----------------------------------------------------------------------------------------------------
def take(x, index):
    """The elements of x (as if flattened) at `index` (any shape; negative entries count from the end)."""
    from graphnn.core.indexing import _checked

    index = _int_index(index, "take")
    idx = _checked(index, x.numel(), 0)
    return apply("take", [x.reshape(-1), idx], {"axis": 0}, name="TakeBackward0")


def take_along_dim(x, indices, dim=None):
    """x gathered at `indices` along dim (the other dimensions broadcast); dim None: along x flattened."""
    indices = _int_index(indices, "take_along_dim")
    if dim is None:
        return x.reshape(-1).gather(0, indices.reshape(-1))
    d = _dim(x, dim, "take_along_dim")
    if indices.ndim != x.ndim:
        raise RuntimeError(
            located(
                f"take_along_dim({x._type}, {indices._type}): input and indices should have the same number "
                "of dimensions"
            )
        )
    xs, ins = list(x.shape), list(indices.shape)
    xs[d] = ins[d] = 1
    shape = tuple(np.broadcast_shapes(tuple(xs), tuple(ins)))
    xb = x.expand(shape[:d] + (x.shape[d],) + shape[d + 1 :])
    ib = indices.expand(shape[:d] + (indices.shape[d],) + shape[d + 1 :])
    return relabel(xb.gather(d, ib), "GatherBackward0", [x])


# -- index_add / index_copy / index_fill -------------------------------------------------------------------------
def _index_along(x, dim, index, what: str):
    """(dim normalized, 1-d index) for x.index_*(dim, index, ...), entries checked to lie in [0, size)."""
    from graphnn.core.tensor_ops import check_index_range

    d = _dim(x, dim, what) if x.ndim else 0
    index = _int_index(index, what)
    if index.ndim > 1:
        raise RuntimeError(located(f"{what}(): Index is supposed to be a vector, got {index._type}"))
    index = index.reshape((index.numel(),))
    check_index_range(index, x.shape[d] if x.ndim else 1, d, f"{what}()", IndexError)
    return d, index


def _source(x, d: int, index, source, what: str):
    T = _t()
    source = T.as_tensor(source)
    want = tuple(x.shape[:d]) + (index.shape[0],) + tuple(x.shape[d + 1 :])
    if tuple(source.shape) != want and not (x.ndim == 0 and source.numel() == index.shape[0]):
        raise RuntimeError(
            located(
                f"{what}(): source {source._type} must have shape {list(want)} for input {x._type} and "
                f"index {index._type} along dim {d}"
            )
        )
    return source.reshape(want) if x.ndim else source.reshape((index.shape[0],))


def scatter_rows(src, index, d: int, size: int):
    """src's slices along d added into `size` slots at `index` (a scatter-add; int64 adds exactly)."""
    dt = src.dtype_name
    sf = src.type_as_dtype("int64") if dt == "bool" else src
    return apply("take_grad", [sf, index], {"axis": d, "size": size}).type_as_dtype(dt)


def _count(x, d: int, index):
    """How often each position along d is indexed, shaped to broadcast against x."""
    ones = apply("full", [], {"value": 1.0, "shape": (index.shape[0],), "dtype": "float32"})
    n = x.shape[d] if x.ndim else 1
    c = apply("take_grad", [ones, index], {"axis": 0, "size": n})
    return c.reshape((n,) + (1,) * (x.ndim - d - 1)) if x.ndim else c.reshape(())


def index_add(x, dim, index, source, *, alpha=1):
    """x with alpha * source's slices added at the positions `index` selects along dim (repeats add up)."""
    d, index = _index_along(x, dim, index, "index_add")
    src = _source(x, d, index, source, "index_add").type_as_dtype(x.dtype_name)
    if alpha != 1:
        src = src * alpha
    placed = scatter_rows(src, index, d, x.shape[d] if x.ndim else 1)
    return relabel(x + (placed if x.ndim else placed.reshape(())), "IndexAddBackward0", [x, source])


def index_copy(x, dim, index, source):
    """x with its slices at `index` along dim replaced by source's (a repeated index: the last one wins, as in
    PyTorch's CPU loops)."""
    from graphnn.core.tensor_ops import last_writes, zero_of

    d, index = _index_along(x, dim, index, "index_copy")
    src = _source(x, d, index, source, "index_copy").type_as_dtype(x.dtype_name)
    n = x.shape[d] if x.ndim else 1
    count = _count(x, d, index)
    last = last_writes(index.reshape((-1,)), 0, (n,))
    if src.ndim:
        last = last.reshape(tuple(-1 if i == d else 1 for i in range(src.ndim)))
    placed = scatter_rows(apply("select", [last, src, zero_of(src.dtype_name)]), index, d, n)
    if not x.ndim:
        placed = placed.reshape(())
    return apply("select", [count > 0, placed, x], name="IndexCopyBackward0")


def index_fill(x, dim, index, value):
    """x with its slices at `index` along dim set to value (a number or a 0-d tensor)."""
    d, index = _index_along(x, dim, index, "index_fill")
    T = _t()
    if isinstance(value, T.Tensor):
        if value.ndim:
            raise RuntimeError(located(f"index_fill_ only supports a 0-dimensional value tensor, got {value._type}"))
        value = value.type_as_dtype(x.dtype_name)
    return apply("select", [_count(x, d, index) > 0, value, x], name="IndexFillBackward0")


# -- searching and counting --------------------------------------------------------------------------------------
def searchsorted(sorted_sequence, values, *, out_int32=False, right=False, side=None, sorter=None):
    """For each value, the position in the sorted last dimension of sorted_sequence where it would be inserted
    to keep it sorted (the first such, or with right=True / side='right' the last): a count of the elements
    below it, computed at every call (no data-dependent size)."""
    T = _t()
    seq = T.as_tensor(sorted_sequence)
    scalar = not isinstance(values, T.Tensor)
    v = T.as_tensor(values, dtype=seq.dtype_name) if scalar else values
    if side is not None:
        if side not in ("left", "right") or (right and side == "left"):
            raise RuntimeError(located(f"searchsorted: side can only be 'left' or 'right', got {side!r}"))
        right = side == "right"
    if sorter is not None:
        seq = seq.gather(seq.ndim - 1, T.as_tensor(sorter))
    if seq.ndim > 1 and (v.ndim != seq.ndim or tuple(v.shape[:-1]) != tuple(seq.shape[:-1])):
        raise RuntimeError(
            located(f"searchsorted({seq._type}, {v._type}): boundaries and input must have the same leading dimensions")
        )
    from graphnn.core.tensor_ops import count_below

    below = count_below(seq, v, inclusive=right)
    if v.is_floating_point():  # a NaN sorts after every number (PyTorch's position: the length)
        below = apply("select", [v != v, seq.shape[-1], below])
    return below


def bucketize(input, boundaries, *, out_int32=False, right=False):
    """The bucket of each element among 1-d sorted boundaries: boundaries[i-1] < x <= boundaries[i]
    (right=True: boundaries[i-1] <= x < boundaries[i])."""
    T = _t()
    b = T.as_tensor(boundaries)
    if b.ndim != 1:
        raise RuntimeError(located(f"bucketize: boundaries tensor must be 1 dimension, but got {b._type}"))
    return searchsorted(
        b, input if isinstance(input, T.Tensor) else T.as_tensor(input, dtype=b.dtype_name), right=right
    )


def histc(x, bins: int = 100, min=0, max=0):  # noqa: A002 (PyTorch's names)
    """A histogram of x's elements in `bins` equal bins over [min, max] (min == max: x's own range); elements
    outside are ignored. Float result, no gradient."""
    if x.dtype_name not in FLOATS:
        raise RuntimeError(located(f"histc: input must be a floating-point tensor, got {x.dtype_name}"))
    bins = int(bins)
    if bins <= 0:
        raise RuntimeError(located(f"histc: bins must be > 0, but got {bins}"))
    from graphnn.core.grad_mode import no_grad

    with no_grad():
        flat = x.detach().reshape(-1)
        lo, hi = float(min), float(max)
        if lo > hi:
            raise RuntimeError(located(f"histc: max must be larger than min, got min {lo} and max {hi}"))
        if lo == hi and flat.numel():
            if x._data is not None and _tracer.current() is None:
                lo, hi = float(flat._data.min()), float(flat._data.max())
            else:
                lo_t, hi_t = -(-flat).amax(), flat.amax()
                return _histc_bins(flat, bins, lo_t, hi_t)
        if lo == hi:
            lo, hi = lo - 1, hi + 1
        return _histc_bins(flat, bins, lo, hi)


def _histc_bins(flat, bins: int, lo, hi):
    T = _t()
    dt = flat.dtype_name
    if isinstance(lo, T.Tensor):  # the data's own range (traced): widen an empty range as PyTorch
        same = lo == hi
        lo, hi = apply("select", [same, lo - 1, lo]), apply("select", [same, hi + 1, hi])
    inside = (flat >= lo) & (flat <= hi)
    pos = ((flat - lo) * bins / (hi - lo)).type_as_dtype("int64")
    pos = apply("minimum", [apply("maximum", [pos, 0]), bins - 1])
    edges = T.Tensor._wrap(np.arange(bins, dtype=np.int64))
    hit = (pos.unsqueeze(-1) == edges) & inside.unsqueeze(-1)
    return hit.type_as_dtype(dt).sum(0)


def bincount(x, weights=None, minlength: int = 0):
    """How often each non-negative integer occurs in the 1-d int64 x (weights: their sums). Eager only: the
    result's size is max(x) + 1 (the weights' sums are a scatter-add: differentiable, where PyTorch is not)."""
    T = _t()
    a = data_dependent(x, "bincount", "the result's size is the largest value + 1")
    if x.ndim != 1 or x.dtype_name not in ("int64", "bool"):
        raise RuntimeError(located(f"bincount({x._type}): bincount only supports 1-d non-negative integral inputs."))
    if (a < 0).any():
        raise RuntimeError(located(f"bincount({x._type}): bincount only supports non-negative inputs"))
    if weights is None:
        return T.Tensor._wrap(np.bincount(a, minlength=int(minlength)).astype(np.int64))
    w = T.as_tensor(weights)
    if tuple(w.shape) != tuple(x.shape):
        raise RuntimeError(located(f"bincount({x._type}, weights {w._type}): weights should have the same shape"))
    size = builtins.max(int(a.max(initial=-1)) + 1, int(minlength))
    w = w if w.dtype_name in FLOATS else w.type_as_dtype("float64")
    return apply("take_grad", [w, x], {"axis": 0, "size": size}, name="NotImplemented")


# -- data-dependent sizes ----------------------------------------------------------------------------------------
def nonzero(x, *, as_tuple: bool = False):
    """The coordinates of x's non-zero elements: (count, ndim) int64, or one 1-d tensor per dimension."""
    T = _t()
    a = data_dependent(x, "nonzero", "the number of non-zero elements decides the result's size")
    pos = np.nonzero(a.reshape(a.shape or (1,)))
    if as_tuple:
        return tuple(T.Tensor._wrap(np.asarray(p, np.int64)) for p in pos)
    out = np.stack(pos, 1).astype(np.int64) if a.ndim else np.zeros((len(pos[0]), 0), np.int64)
    return T.Tensor._wrap(np.ascontiguousarray(out))


def argwhere(x):
    return nonzero(x)


def masked_select(x, mask):
    """The elements of x where the bool mask (broadcast with x) is True, as a 1-d tensor (eager only)."""
    T = _t()
    mask = T.as_tensor(mask)
    if mask.dtype_name != "bool":
        raise RuntimeError(located(f"masked_select: expected BoolTensor for mask, got {mask.dtype_name}"))
    m = data_dependent(mask, "masked_select", "the number of True elements decides the result's size")
    shape = tuple(np.broadcast_shapes(tuple(x.shape), tuple(mask.shape)))
    xb = x if tuple(x.shape) == shape else x.expand(shape)
    pos = np.flatnonzero(np.broadcast_to(m, shape)).astype(np.int64)
    out = apply("take", [xb.reshape(-1), T.Tensor._wrap(pos)], {"axis": 0})
    return relabel(out, "MaskedSelectBackward0", [x])


def _unique_result(values, inverse, counts, return_inverse: bool, return_counts: bool):
    T = _t()
    out = [T.Tensor._wrap(np.ascontiguousarray(values))]
    if return_inverse:
        out.append(T.Tensor._wrap(np.asarray(inverse, np.int64)))
    if return_counts:
        out.append(T.Tensor._wrap(np.asarray(counts, np.int64)))
    return out[0] if len(out) == 1 else tuple(out)


def unique(x, sorted: bool = True, return_inverse: bool = False, return_counts: bool = False, dim=None):  # noqa: A002
    """The distinct elements of x (dim: distinct slices along dim), sorted; with the position of each element's
    value among them (inverse, x's shape) and how often each occurs (counts). Eager only, no gradient."""
    a = data_dependent(x, "unique", "the number of distinct values decides the result's size")
    if dim is None:
        vals, inv, cnt = np.unique(a, return_inverse=True, return_counts=True)
        return _unique_result(vals, inv.reshape(a.shape), cnt, return_inverse, return_counts)
    d = _dim(x, dim, "unique")
    vals, inv, cnt = np.unique(a, return_inverse=True, return_counts=True, axis=d)
    return _unique_result(vals, inv.reshape(-1), cnt, return_inverse, return_counts)


def unique_consecutive(x, return_inverse: bool = False, return_counts: bool = False, dim=None):
    """x with each run of equal consecutive elements (dim: slices along dim) reduced to one. Eager only."""
    a = data_dependent(x, "unique_consecutive", "the number of runs decides the result's size")
    if dim is None:
        flat = a.reshape(-1)
        moved = flat.reshape(-1, 1)
    else:
        d = _dim(x, dim, "unique_consecutive")
        flat = np.moveaxis(a, d, 0)
        moved = flat.reshape(flat.shape[0], -1)
    n = moved.shape[0]
    starts = np.ones(n, bool)
    if n > 1:
        starts[1:] = (moved[1:] != moved[:-1]).any(1)
    first = np.flatnonzero(starts)
    counts = np.diff(np.append(first, n))
    inverse = np.cumsum(starts) - 1
    if dim is None:
        return _unique_result(flat[first], inverse.reshape(a.shape), counts, return_inverse, return_counts)
    vals = np.moveaxis(flat[first], 0, d)
    return _unique_result(vals, inverse, counts, return_inverse, return_counts)


def fill_diagonal_(self, fill_value, wrap: bool = False):
    """Fill the main diagonal (positions i, i, ..., i) in place; a 2-D matrix taller than wide with wrap restarts the
    diagonal every columns + 1 rows, as PyTorch's."""
    if self.ndim < 2:
        raise RuntimeError("dimensions must larger than 1")
    if self.ndim > 2 and len(set(self.shape)) != 1:
        raise RuntimeError("all dimensions of input must be of equal length")
    mask = np.zeros(tuple(self.shape), bool)
    n = min(self.shape)
    rows = np.arange(n)
    if self.ndim == 2 and wrap and self.shape[0] > self.shape[1]:
        rows = np.arange(0, self.shape[0] * self.shape[1], self.shape[1] + 1)
        mask.reshape(-1)[rows] = True
    else:
        mask[(rows,) * self.ndim] = True
    keep = _t().tensor(mask)
    return self._inplace_op("fill_diagonal_", lambda: apply("select", [keep, fill_value, self]).to(self.dtype))


def index_put_(self, indices, values, accumulate: bool = False):
    """self[indices] = values in place (indices: a tuple of index tensors); with accumulate, repeated positions add
    up (one index tensor)."""
    indices = tuple(indices)
    if accumulate:
        T = _t()
        idx = []
        for i in indices:  # (a boolean mask stands for the positions it selects)
            i = T.as_tensor(i)
            idx.extend(i.nonzero(as_tuple=True) if i.dtype_name == "bool" else (i,))
        if not 0 < len(idx) <= self.ndim:
            raise IndexError(f"index_put_: {len(idx)} index tensors for a tensor of {self.ndim} dimensions")
        if len(idx) == 1:
            index = idx[0]
            rows = T.as_tensor(values).to(self.dtype).expand((index.shape[0],) + tuple(self.shape[1:]))
            return self.index_add_(0, index, rows)
        # several index tensors: one position along the flattened leading dimensions, then one index_add
        lead, rest = tuple(self.shape[: len(idx)]), tuple(self.shape[len(idx) :])
        shape = tuple(np.broadcast_shapes(*[tuple(i.shape) for i in idx]))
        flat = None
        for i, n in zip(idx, lead):
            data = i._data if i._trace is None else None  # (compiled code checks its gathers)
            if data is not None and ((data < -n) | (data >= n)).any():
                raise IndexError(f"index_put_: index out of range for a dimension of size {n}")
            i = i % n  # negative positions count from the end
            flat = i if flat is None else flat * n + i
        flat = flat.expand(shape).reshape(-1)
        rows = T.as_tensor(values).to(self.dtype).expand(shape + rest).reshape((-1,) + rest)
        summed = index_add(self.reshape((-1,) + rest), 0, flat, rows)
        return self.copy_(summed.reshape(tuple(self.shape)))
    self[indices] = values
    return self


def index_put(self, indices, values, accumulate: bool = False):
    return index_put_(self.clone(), indices, values, accumulate)


def masked_scatter(self, mask, source):
    """self with the positions where mask (broadcast to self) is True filled, in row-major order, by source's first
    elements: a gather at the running count of True positions (fixed size, so it also compiles)."""
    T = _t()
    mask, source = T.as_tensor(mask), T.as_tensor(source)
    if mask.dtype_name != "bool":
        raise RuntimeError(located(f"masked_scatter_: expected BoolTensor for mask, got {mask.dtype_name}"))
    if source.dtype_name != self.dtype_name:
        raise RuntimeError(
            located(
                f"masked_scatter: expected self and source to have same dtypes but got {self.dtype_name} and "
                f"{source.dtype_name}"
            )
        )
    mask = mask.expand(tuple(self.shape))
    flat = mask.reshape(-1)
    n = source.numel()

    def check(m: np.ndarray) -> None:
        if int(np.count_nonzero(m)) > n:
            raise RuntimeError(
                f"masked_scatter: the mask selects {int(np.count_nonzero(m))} elements but source "
                f"{tuple(source.shape)} has only {n}"
            )

    if mask._data is not None:
        check(mask._data)
    if n == 0:
        return apply("select", [mask, T.zeros((), dtype=self.dtype_name), self])
    pos = (flat.long().cumsum(0) - 1).clamp(0, n - 1)
    picked = apply("take", [source.reshape(-1), pos], {"axis": 0}).reshape(tuple(self.shape))
    return apply("select", [mask, picked, self], name="MaskedScatterBackward0")


def masked_scatter_(self, mask, source):
    return self._inplace_op("masked_scatter_", lambda: masked_scatter(self, mask, source))
