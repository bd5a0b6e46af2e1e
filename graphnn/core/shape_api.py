"""Shape functions with PyTorch's names, composed of primitives: flips (a gather at constant reversed positions),
roll (two slices joined), rot90, tile / repeat_interleave, moving and swapping dimensions, broadcasting, stacking
(hstack, vstack, dstack, column_stack), atleast_nd, meshgrid / cartesian_prod, tensor_split and its h/v/d forms,
unflatten."""

from __future__ import annotations

import numbers

import numpy as np

from graphnn.core.dispatch import apply, located, relabel


def _t():
    from graphnn.core import tensor

    return tensor


def _dim(x, dim: int, what: str) -> int:
    return _t().check_dim(int(dim), x.ndim, what, x)


def _dims(dims, kw: dict, what: str) -> tuple:
    """An int, a sequence, or varargs of ints (or the keyword `dims`) as a tuple of ints."""
    if "dims" in kw:
        dims = (kw.pop("dims"),)
    if kw:
        raise TypeError(f"{what}() got an unexpected keyword argument {next(iter(kw))!r}")
    if len(dims) == 1 and isinstance(dims[0], numbers.Integral):
        return (int(dims[0]),)
    if len(dims) == 1 and isinstance(dims[0], (tuple, list)):
        dims = dims[0]
    return tuple(int(d) for d in dims)


def _tensors(args) -> list:
    """Varargs of tensors or one sequence of them, as a list of tensors."""
    T = _t()
    if len(args) == 1 and isinstance(args[0], (tuple, list)):
        args = args[0]
    return [T.as_tensor(a) for a in args]


# -- flips, roll, rot90 ------------------------------------------------------------------------------------------
def flip(x, *dims, **kw):
    """x with the order of its elements reversed along each of dims (a copy, as PyTorch's)."""
    dims = _dims(dims, kw, "flip")
    axes = [_dim(x, d, "flip") for d in dims]
    if len(set(axes)) != len(axes):
        raise RuntimeError(located(f"flip({x._type}): dims {list(dims)} has duplicates"))
    out = x
    for a in axes:
        n = x.shape[a]
        if n > 1:
            rev = _t().Tensor._wrap(np.arange(n - 1, -1, -1, dtype=np.int64))
            out = apply("take", [out, rev], {"axis": a})
    return relabel(out if out is not x else x.clone(), "FlipBackward0", [x])


def fliplr(x):
    if x.ndim < 2:
        raise RuntimeError(located(f"fliplr({x._type}): input must be >= 2-d"))
    return flip(x, 1)


def flipud(x):
    if x.ndim < 1:
        raise RuntimeError(located(f"flipud({x._type}): input must be >= 1-d"))
    return flip(x, 0)


def roll(x, shifts, dims=None):
    """x with its elements shifted by `shifts` along dims (those leaving at one end enter at the other); without
    dims, along the flattened tensor."""
    shifts = (shifts,) if isinstance(shifts, numbers.Integral) else tuple(shifts)
    if dims is None:
        if len(shifts) != 1:
            raise RuntimeError(located(f"roll({x._type}): shifts {list(shifts)} need as many dims"))
        return relabel(roll(x.reshape(-1), shifts, 0).reshape(tuple(x.shape)), "RollBackward0", [x])
    dims = (dims,) if isinstance(dims, numbers.Integral) else tuple(dims)
    if len(shifts) != len(dims):
        raise RuntimeError(
            located(f"roll({x._type}): shifts and dimensions must align. shifts: {len(shifts)}, dims: {len(dims)}")
        )
    out = x
    for s, d in zip(shifts, dims):
        a = _dim(x, d, "roll")
        n = x.shape[a]
        k = int(s) % n if n else 0
        if k:
            T = _t()
            out = T.cat([T.narrow(out, a, n - k, k), T.narrow(out, a, 0, n - k)], a)
    return relabel(out if out is not x else x.clone(), "RollBackward0", [x])


def rot90(x, k: int = 1, dims=(0, 1)):
    """x rotated by k quarter turns in the plane of dims (from the first towards the second)."""
    dims = tuple(dims)
    if len(dims) != 2 or x.ndim < 2:
        raise RuntimeError(located(f"rot90({x._type}): expected total rotation dims == 2 and total dims >= 2"))
    a, b = _dim(x, dims[0], "rot90"), _dim(x, dims[1], "rot90")
    if a == b:
        raise RuntimeError(located(f"rot90({x._type}): expected rotation dims to be different, got {list(dims)}"))
    k = int(k) % 4
    if k == 1:
        out = flip(x, b).transpose(a, b)
    elif k == 2:
        out = flip(x, a, b)
    elif k == 3:
        out = flip(x, a).transpose(a, b)
    else:
        out = x.clone()
    return relabel(out, "RotBackward0", [x])


# -- repeating ---------------------------------------------------------------------------------------------------
def tile(x, *dims, **kw):
    """x repeated dims[i] times along each dimension (dims shorter than x.ndim are padded with ones in front)."""
    dims = _dims(dims, kw, "tile")
    if len(dims) < x.ndim:
        dims = (1,) * (x.ndim - len(dims)) + dims
    return x.repeat(*dims)


def _concrete_ints(t, what: str) -> np.ndarray:
    from graphnn.compiler import tracer as _tracer

    if t._data is None or _tracer.current() is not None:
        raise _t().TraceError(
            located(
                f"{what} with a tensor of repeats needs their values (the result's size depends on them), but "
                "they are symbolic inside graphnn.compile; pass them as Python ints, or call it outside"
            )
        )
    return np.asarray(t._data)


def repeat_interleave(x, repeats=None, dim=None, *, output_size=None):
    """Each element of x repeated `repeats` times (an int, or a tensor: one count per element along dim) along
    dim (None: x flattened). repeat_interleave(counts) alone gives each index i counts[i] times."""
    T = _t()
    if repeats is None:  # torch.repeat_interleave(repeats)
        counts = _concrete_ints(T.as_tensor(x), "repeat_interleave")
        return T.Tensor._wrap(np.repeat(np.arange(counts.size, dtype=np.int64), counts.reshape(-1)))
    if dim is None:
        x, dim = x.reshape(-1), 0
    d = _dim(x, dim, "repeat_interleave")
    if isinstance(repeats, T.Tensor):
        counts = _concrete_ints(repeats, "repeat_interleave").reshape(-1)
        repeats = int(counts[0]) if counts.size == 1 else None
    if repeats is None:
        if counts.size != x.shape[d] or (counts < 0).any():
            raise RuntimeError(
                located(f"repeat_interleave({x._type}): repeats must have the same size as input along dim {d}")
            )
        idx = T.Tensor._wrap(np.repeat(np.arange(counts.size, dtype=np.int64), counts))
        return apply("take", [x, idx], {"axis": d}, name="IndexSelectBackward0")
    r = int(repeats)
    if r < 0:
        raise RuntimeError(located(f"repeat_interleave: repeats can not be negative, got {r}"))
    shape = tuple(x.shape)
    y = T.broadcast_to(x.unsqueeze(d + 1), shape[: d + 1] + (r,) + shape[d + 1 :])
    return y.reshape(shape[:d] + (shape[d] * r,) + shape[d + 1 :]).clone()


# -- moving dimensions -------------------------------------------------------------------------------------------
def movedim(x, source, destination):
    """x with the dimensions `source` moved to positions `destination` (the others keep their order)."""
    src = (source,) if isinstance(source, numbers.Integral) else tuple(source)
    dst = (destination,) if isinstance(destination, numbers.Integral) else tuple(destination)
    if len(src) != len(dst):
        raise RuntimeError(
            located(
                f"movedim: Invalid source or destination dims: source ({list(src)} dims) should contain the same "
                f"number of dims as destination ({list(dst)} dims)"
            )
        )
    src = [_dim(x, d, "movedim") for d in src]
    dst = [_dim(x, d, "movedim") for d in dst]
    if len(set(src)) != len(src) or len(set(dst)) != len(dst):
        raise RuntimeError(located(f"movedim: repeated dim in source {src} or destination {dst}"))
    rest = iter(d for d in range(x.ndim) if d not in src)
    where = dict(zip(dst, src))
    perm = tuple(where[i] if i in where else next(rest) for i in range(x.ndim))
    return x.permute(*perm) if perm != tuple(range(x.ndim)) else x.view(tuple(x.shape))


def swapaxes(x, axis0: int, axis1: int):
    return x.transpose(axis0, axis1)


def swapdims(x, dim0: int, dim1: int):
    return x.transpose(dim0, dim1)


def unflatten(x, dim: int, sizes):
    """x with dimension dim split into `sizes` (one of them may be -1)."""
    d = _dim(x, dim, "unflatten")
    sizes = tuple(int(s) for s in sizes)
    if not sizes:
        raise RuntimeError(located("unflatten: sizes must be non-empty"))
    known = int(np.prod([s for s in sizes if s != -1], dtype=np.int64))
    n = x.shape[d]
    if sizes.count(-1) > 1 or (-1 not in sizes and known != n) or (-1 in sizes and (known == 0 or n % known)):
        raise RuntimeError(
            located(f"unflatten: Provided sizes {list(sizes)} don't multiply up to the size of dim {dim} ({n})")
        )
    sizes = tuple(n // known if s == -1 else s for s in sizes)
    return x.view(tuple(x.shape[:d]) + sizes + tuple(x.shape[d + 1 :]))


def reshape_as(x, other):
    return x.reshape(tuple(other.shape))


# -- broadcasting ------------------------------------------------------------------------------------------------
def broadcast_shapes(*shapes):
    """The shape that tensors of `shapes` broadcast to (ints are 1-d shapes)."""
    T = _t()
    shapes = [(s,) if isinstance(s, numbers.Integral) else tuple(s) for s in shapes]
    try:
        return T.Size(int(s) for s in np.broadcast_shapes(*shapes))
    except ValueError:
        raise RuntimeError(located(f"broadcast_shapes: shapes {shapes} cannot be broadcast together")) from None


def broadcast_to(x, *shape):
    """x expanded to `shape` (-1 keeps a dimension), a view."""
    return x.expand(*shape)


def broadcast_tensors(*tensors) -> tuple:
    ts = _tensors(tensors)
    shape = tuple(broadcast_shapes(*(tuple(t.shape) for t in ts)))
    return tuple(t if tuple(t.shape) == shape else t.expand(shape) for t in ts)


# -- stacking ----------------------------------------------------------------------------------------------------
def _atleast(args, nd: int):
    single = len(args) == 1 and not isinstance(args[0], (tuple, list))
    out = []
    for x in _tensors(args):
        if x.ndim < nd:
            s = tuple(x.shape)
            if nd == 1:
                x = x.reshape((1,))
            elif nd == 2:
                x = x.reshape((1,) * (2 - len(s)) + s)
            else:
                x = x.reshape({0: (1, 1, 1), 1: (1,) + s + (1,), 2: s + (1,)}[len(s)])
        out.append(x)
    return out[0] if single else tuple(out)


def atleast_1d(*tensors):
    return _atleast(tensors, 1)


def atleast_2d(*tensors):
    return _atleast(tensors, 2)


def atleast_3d(*tensors):
    return _atleast(tensors, 3)


def hstack(tensors):
    ts = [atleast_1d(t) for t in tensors]
    return _t().cat(ts, 0 if all(t.ndim == 1 for t in ts) else 1)


def vstack(tensors):
    return _t().cat([atleast_2d(t) for t in tensors], 0)


def dstack(tensors):
    return _t().cat([atleast_3d(t) for t in tensors], 2)


def column_stack(tensors):
    ts = [_t().as_tensor(t) for t in tensors]
    return _t().cat([t.reshape((t.numel(), 1)) if t.ndim <= 1 else t for t in ts], 1)


def meshgrid(*tensors, indexing: str = "ij") -> tuple:
    """Coordinate grids of 1-d (or 0-d) tensors: out[i] varies along dimension i ('ij') or, for the first two,
    swapped ('xy', Cartesian)."""
    ts = _tensors(tensors)
    if indexing not in ("ij", "xy"):
        raise RuntimeError(located(f"meshgrid: indexing must be one of 'xy' or 'ij', but received: {indexing}"))
    if any(t.ndim > 1 for t in ts):
        raise RuntimeError(located("meshgrid: Expected 0D or 1D tensor in the tensor list"))
    ts = [t.reshape((t.numel(),)) for t in ts]
    swap = indexing == "xy" and len(ts) >= 2
    if swap:
        ts[0], ts[1] = ts[1], ts[0]
    shape = tuple(t.shape[0] for t in ts)
    n = len(ts)
    out = [t.reshape(tuple(-1 if j == i else 1 for j in range(n))).expand(shape) for i, t in enumerate(ts)]
    if swap:
        out[0], out[1] = out[1], out[0]
    return tuple(out)


def cartesian_prod(*tensors):
    """Every combination of the elements of 1-d tensors, one per row (itertools.product's order)."""
    ts = _tensors(tensors)
    if len(ts) == 1:
        return ts[0]
    grids = meshgrid(*ts, indexing="ij")
    return _t().stack([g.reshape(-1) for g in grids], 1)


# -- splitting ---------------------------------------------------------------------------------------------------
def tensor_split(x, indices_or_sections, dim: int = 0) -> tuple:
    """Views of x along dim: `sections` (an int) nearly equal parts (the first size % sections one larger), or
    split at the given indices."""
    T = _t()
    d = _dim(x, dim, "tensor_split")
    n = x.shape[d]
    ios = indices_or_sections
    if isinstance(ios, T.Tensor):
        vals = _concrete_ints(ios, "tensor_split")
        ios = int(vals) if ios.ndim == 0 else [int(v) for v in vals]
    if isinstance(ios, numbers.Integral):
        s = int(ios)
        if s <= 0:
            raise RuntimeError(located(f"tensor_split: number of sections must be larger than 0, got {s}"))
        q, r = divmod(n, s)
        bounds = np.cumsum([0] + [q + 1] * r + [q] * (s - r)).tolist()
    else:
        bounds = [0] + [min(max(int(i) + n if int(i) < 0 else int(i), 0), n) for i in ios] + [n]
    out = []
    for lo, hi in zip(bounds, bounds[1:]):
        hi = max(lo, hi)
        out.append(T.narrow(x, d, lo, hi - lo))
    return tuple(out)


def _split_dir(x, ios, dim: int, what: str, need: int):
    if x.ndim < need:
        raise RuntimeError(
            located(f"torch.{what} requires a tensor with at least {need} dimension, but got a tensor with {x.ndim}")
        )
    if isinstance(ios, numbers.Integral) and (ios == 0 or x.shape[dim] % ios):
        raise RuntimeError(
            located(
                f"torch.{what} attempted to split along dimension {dim}, but the size of the dimension "
                f"{x.shape[dim]} is not divisible by the split_size {ios}!"
            )
        )
    return tensor_split(x, ios, dim)


def hsplit(x, indices_or_sections) -> tuple:
    return _split_dir(x, indices_or_sections, 0 if x.ndim == 1 else 1, "hsplit", 1)


def vsplit(x, indices_or_sections) -> tuple:
    return _split_dir(x, indices_or_sections, 0, "vsplit", 2)


def dsplit(x, indices_or_sections) -> tuple:
    return _split_dir(x, indices_or_sections, 2, "dsplit", 3)


def unfold_windows(self, dimension: int, size: int, step: int):
    """Tensor.unfold: every window of `size` elements `step` apart along `dimension`, as a new last dimension (the
    dimension itself becomes the number of windows); windows are copies here, not views."""
    from graphnn.core.dispatch import apply

    d = dimension % max(self.ndim, 1)
    n = self.shape[d] if self.ndim else 1
    if size < 0 or size > n:
        raise RuntimeError(f"maximum size for tensor at dimension {d} is {n} but size is {size}")
    if step <= 0:
        raise RuntimeError(f"step is {step} but must be > 0")
    count = (n - size) // step + 1
    idx = np.arange(count)[:, None] * step + np.arange(size)[None, :]
    x = self if self.ndim else self.reshape(1)
    picked = apply("take", [x, _t().tensor(idx.reshape(-1))], {"axis": d})
    windows = picked.reshape(tuple(x.shape[:d]) + (count, size) + tuple(x.shape[d + 1 :]))
    return windows.movedim(d + 1, -1)
