"""Numerical functions of torch.* / Tensor.* composed of graphnn ops (so they run eagerly, differentiate and
compile): ravel, the identities of real tensors (conj, resolve_conj, resolve_neg, is_complex), logspace, fmax /
fmin, dist, trapezoid / trapz / cumulative_trapezoid, vander, put, index_reduce, gradient, histogram, and the
floating-point decompositions frexp / ldexp / nextafter (exponents found with log2 and corrected exactly, so their
results are bit-exact).

graphnn has no int32: frexp's exponents are int64 (PyTorch: int32)."""

from __future__ import annotations

import builtins
import math
import numbers

import numpy as np

from graphnn.compiler import tracer as _tracer
from graphnn.core.complex_tensor import ComplexTensor
from graphnn.core.dispatch import apply, located, relabel
from graphnn.core.dtypes import get_default_dtype, to_dtype
from graphnn.core.linalg_dense_api import _returns

FLOATS = ("float32", "float64")

frexp_result = _returns("frexp", ("mantissa", "exponent"))
histogram_result = _returns("histogram", ("hist", "bin_edges"))


def _t():
    from graphnn.core import tensor

    return tensor


def _as(x):
    return _t().as_tensor(x)


def _floating(x):
    """x as a tensor, integer and bool ones in the default float dtype (as PyTorch's float-valued functions)."""
    x = _as(x)
    return x if x.dtype_name in FLOATS else x.type_as_dtype(get_default_dtype())


def _where(c, a, b):
    return apply("select", [c, a, b])


def _dim(x, dim, what: str) -> int:
    return _t().check_dim(int(dim), x.ndim, what, x)


def _eager(x) -> bool:
    return x._data is not None and _tracer.current() is None


def _promoted(a, b):
    """a and b as tensors of the dtype PyTorch's arithmetic gives them."""
    from graphnn.core.extra_api import result_type

    dt = result_type(a, b).name
    a = _as(a) if isinstance(a, _t().Tensor) else _t().as_tensor(a, dtype=dt)
    b = _as(b) if isinstance(b, _t().Tensor) else _t().as_tensor(b, dtype=dt)
    return a.type_as_dtype(dt) if a.dtype_name != dt else a, b.type_as_dtype(dt) if b.dtype_name != dt else b


# -- views and identities of real tensors ------------------------------------------------------------------------
def ravel(input):
    """input flattened to one dimension (a view when reshape gives one)."""
    return input.reshape(-1)


def is_complex(input) -> bool:
    """Whether input is a complex tensor (core/complex_tensor.py)."""
    return isinstance(input, ComplexTensor)


def is_conj(input) -> bool:
    return False


def is_neg(input) -> bool:
    return False


def conj(input):
    """The complex conjugate; a real tensor itself (PyTorch returns the tensor itself too)."""
    return input.conj() if is_complex(input) else input


def resolve_conj(input):
    return input


def resolve_neg(input):
    return input


def conj_physical(input):
    return input


# -- creation ----------------------------------------------------------------------------------------------------
def logspace(start, end, steps, base=10.0, *, dtype=None, layout=None, device=None, requires_grad=False, out=None):
    """base ** e for `steps` exponents e evenly spaced from start to end (both included)."""
    from graphnn.core.device import check_device

    T = _t()
    check_device(device, "logspace")
    start, end = (float(v.item()) if isinstance(v, T.Tensor) else v for v in (start, end))
    steps = int(steps)
    if steps < 0:
        raise RuntimeError(located(f"number of steps must be non-negative, got {steps}"))
    dt = to_dtype(dtype) if dtype is not None else get_default_dtype()
    work = dt if dt in FLOATS else "float64"  # integer dtypes: computed in float64, then truncated as PyTorch
    exps = T.linspace_values(start, end, steps, work)
    vals = np.power(np.asarray(base, work), exps).astype(dt)
    t = T.Tensor._wrap(np.ascontiguousarray(vals))
    return t.requires_grad_(True) if requires_grad else t


# -- elementwise -------------------------------------------------------------------------------------------------
def fmax(input, other):
    """The larger of each pair, ignoring NaN (NaN only where both are); ties and NaN-free choices as PyTorch's
    gradient: input's element wins ties."""
    a, b = _promoted(input, other)
    keep = (a >= b) | (b != b)
    return relabel(_where(keep, a, b), "FmaxBackward0", [input, other])


def fmin(input, other):
    """The smaller of each pair, ignoring NaN (NaN only where both are)."""
    a, b = _promoted(input, other)
    keep = (a <= b) | (b != b)
    return relabel(_where(keep, a, b), "FminBackward0", [input, other])


def dist(input, other, p=2):
    """The p-norm of input - other (broadcast), over all elements."""
    from graphnn.linalg import vector_norm

    a, b = _promoted(input, other)
    if a.dtype_name not in FLOATS:
        raise RuntimeError(
            located(f"norm(): input dtype should be either floating point or complex. Got {a.dtype_name} instead.")
        )
    p = float(p.item()) if isinstance(p, _t().Tensor) else float(p)
    return relabel(vector_norm(a - b, p), "DistBackward0", [input, other])


def _exponent64(a):
    """For |x| = a > 0 finite (a float64 tensor, no gradient): e (float64, integral) with a = m * 2^e and m in
    [0.5, 1). log2 gives e up to one too many or too few where it rounds; the scaled mantissa tells which."""
    e = apply("floor", [apply("log2", [a])]) + 1.0
    m = _scaled(a, -e)
    e = _where(m >= 1.0, e + 1.0, _where(m < 0.5, e - 1.0, e))
    return e


def _scaled(x, k):
    """x * 2^k for an integral float tensor k, exact: two factors 2^(k/2), so neither overflows nor underflows
    where the result lies between x and a number in [0.5, 1)."""
    half = apply("floor", [k * 0.5])
    return x * apply("exp2", [half]) * apply("exp2", [k - half])


def frexp(input):
    """(mantissa, exponent) with input = mantissa * 2^exponent, |mantissa| in [0.5, 1) (0, inf and NaN: themselves
    with exponent 0). Exact; the mantissa's gradient is 2^-exponent, as PyTorch's."""
    x = _as(input)
    if x.dtype_name not in FLOATS:
        raise RuntimeError(located("torch.frexp() only supports floating-point dtypes"))
    a = x.detach().type_as_dtype("float64").abs()
    regular = (a > 0) & (a < math.inf)
    e = _where(regular, _exponent64(_where(regular, a, 1.0)), 0.0)
    mantissa = _scaled(x, (-e).type_as_dtype(x.dtype_name))
    return frexp_result(relabel(mantissa, "FrexpBackward0", [input]), e.type_as_dtype("int64"))


def ldexp(input, other):
    """input * 2^other (a float result: input's float dtype, or float64 when other is). An integer exponent scales
    exactly (as two powers of two, so 2^other may exceed the dtype's range where the result does not, as PyTorch's
    does); a float one multiplies by exp2(other)."""
    T = _t()
    x = _floating(input)
    e = _as(other) if isinstance(other, T.Tensor) else T.as_tensor(other)
    dt = "float64" if e.dtype_name == "float64" else x.dtype_name
    x = x.type_as_dtype(dt)
    if e.dtype_name not in FLOATS:
        return relabel(_scaled(x, e.type_as_dtype(dt)), "LdexpBackward0", [input, other])
    return relabel(x * apply("exp2", [e.type_as_dtype(dt)]), "LdexpBackward0", [input, other])


def nextafter(input, other):
    """The representable number next to input in other's direction (other where they are equal, NaN where either
    is). Exact: input plus or minus the spacing of the numbers around it, a power of two found from its exponent.
    Not differentiable (PyTorch defines no derivative)."""
    x, y = _promoted(input, other)
    dt = x.dtype_name
    if dt not in FLOATS:
        raise NotImplementedError(located(f'"nextafter" not implemented for {dt!r}'))
    x, y = x.detach(), y.detach()
    T = _t()
    fi = np.finfo(dt)
    bits = fi.nmant + 1
    # the constants as tensors of the dtype (a Python float operand would pass through float32: 5e-324 is 0 there)
    tiny, big = T.tensor(fi.smallest_subnormal, dtype=dt), T.tensor(fi.max, dtype=dt)
    a = x.type_as_dtype("float64").abs()
    regular = (a > 0) & (a < math.inf)
    e = _exponent64(_where(regular, a, 1.0))
    ulp = apply("exp2", [e - bits]).type_as_dtype(dt)  # the spacing above |x| (a power of two; 0 below the range)
    ulp = apply("maximum", [ulp, tiny])
    power_of_two = _scaled(a, -e) == 0.5
    up = y > x
    away = (up & (x > 0)) | (~up & (x < 0))  # moving away from zero: the spacing above |x|
    below = apply(
        "maximum", [_where(power_of_two, ulp * 0.5, ulp), tiny]
    )  # toward zero: below a power of two it halves
    step = _where(away, ulp, below)
    out = _where(up, x + step, x - step)
    out = _where(x == 0, _where(up, tiny, -tiny), out)
    out = _where(x == math.inf, big, _where(x == -math.inf, -big, out))
    out = _where(x == y, y, out)
    return _where((x != x) | (y != y), x + y, out)


# -- integration and differences ---------------------------------------------------------------------------------
def _spacings(x, y, dx, d: int, what: str):
    """The widths of the intervals along dim d, shaped to broadcast against y's n - 1 intervals (a number for even
    spacing)."""
    T = _t()
    if x is None or isinstance(x, numbers.Number):
        h = x if isinstance(x, numbers.Number) else dx
        return 1.0 if h is None else h
    x = _floating(x)
    n = y.shape[d]
    if x.ndim == 1:
        if x.shape[0] != n:
            raise RuntimeError(located(f"{what}: There must be one `x` value for each sample point"))
        shape = [1] * y.ndim
        shape[d] = n - 1
        return T.reshape(x[1:] - x[:-1], tuple(shape))
    xd = d - y.ndim + x.ndim  # x broadcasts against y (aligned at the last dimension)
    if xd < 0:
        raise RuntimeError(located(f"{what}: x {x._type} has too few dimensions for y {y._type} along dim {d}"))
    m = x.shape[xd]
    return x.narrow(xd, 1, m - 1) - x.narrow(xd, 0, m - 1)


def _trapezoid_args(y, what: str, dim):
    y = _floating(y)
    return y, _dim(y, dim, what)


def trapezoid(y, x=None, *, dx=None, dim: int = -1):
    """The integral of y along dim by the trapezoidal rule: sample points x (1-d along dim, or broadcasting with
    y), else a spacing dx (1 by default). An empty dim integrates to 0."""
    y, d = _trapezoid_args(y, "trapezoid", dim)
    n = y.shape[d]
    if n == 0:
        return y.sum(d)
    h = _spacings(x, y, dx, d, "trapezoid")
    mids = (y.narrow(d, 1, n - 1) + y.narrow(d, 0, n - 1)) * 0.5
    if isinstance(h, numbers.Number):
        return relabel(mids.sum(d) * h, "TrapezoidBackward0", [y])
    return relabel((mids * h).sum(d), "TrapezoidBackward0", [y, x])


def trapz(y, x=None, *, dx=None, dim: int = -1):
    return trapezoid(y, x, dx=dx, dim=dim)


def cumulative_trapezoid(y, x=None, *, dx=None, dim: int = -1):
    """The running trapezoidal integrals of y along dim (one fewer than y's samples)."""
    y, d = _trapezoid_args(y, "cumulative_trapezoid", dim)
    n = y.shape[d]
    if n <= 1:
        return y.narrow(d, 0, 0) * 1.0
    h = _spacings(x, y, dx, d, "cumulative_trapezoid")
    mids = (y.narrow(d, 1, n - 1) + y.narrow(d, 0, n - 1)) * 0.5
    return (mids * h).cumsum(d)


def _spacing_list(x, spacing, dims: tuple, given_dim: bool) -> list:
    """One spacing per dimension: a number (even spacing) or a 1-d tensor of coordinates."""
    T = _t()
    if isinstance(spacing, (list, tuple)):
        if len(spacing) != len(dims):
            if given_dim:
                raise RuntimeError(
                    "torch.gradient expected spacing to be unspecified, a scalar or it's spacing and dim arguments "
                    f"to have the same length, but got a spacing argument of length {len(spacing)} and a dim "
                    f"argument of length {len(dims)}."
                )
            raise RuntimeError(
                "torch.gradient expected spacing to be unspecified, a scalar, or a list of length equal to "
                f"'self.dim() = {x.ndim}', since dim argument was not given, but got a list of length {len(spacing)}"
            )
        out = []
        for s, d in zip(spacing, dims):
            if isinstance(s, T.Tensor) and s.ndim:
                if s.ndim != 1 or s.shape[0] != x.shape[d]:
                    raise RuntimeError(
                        located(
                            f"torch.gradient expected each tensor to be on the same device and to have "
                            f"{x.shape[d]} coordinates along dimension {d}, got {s._type}"
                        )
                    )
                out.append(s)
            else:
                out.append(float(s.item()) if isinstance(s, T.Tensor) else s)
        return out
    s = float(spacing.item()) if isinstance(spacing, T.Tensor) else spacing
    return [s] * len(dims)


def gradient(input, *, spacing=1, dim=None, edge_order: int = 1):
    """The derivative estimates of input along each dim (all when None): central differences inside, one-sided ones
    (of first or second order, edge_order) at the ends; spacing a number, one per dim, or 1-d coordinates per dim
    (unevenly spaced samples). A tuple with one tensor per dim."""
    x = _floating(input)
    if edge_order not in (1, 2):
        raise RuntimeError("torch.gradient only supports edge_order=1 and edge_order=2.")
    given = dim is not None
    if dim is None:
        dims = tuple(builtins.range(x.ndim))
    else:
        dims = tuple(dim) if isinstance(dim, (list, tuple)) else (dim,)
        dims = tuple(_dim(x, d, "gradient") for d in dims)
    hs = _spacing_list(x, spacing, dims, given)
    outs = []
    for d, h in zip(dims, hs):
        n = x.shape[d]
        if n < edge_order + 1:
            raise RuntimeError("torch.gradient expected each dimension size to be at least edge_order+1")
        outs.append(relabel(_gradient_along(x, d, n, h, edge_order), "GradientBackward0", [input]))
    return tuple(outs)


def _gradient_along(f, d: int, n: int, h, edge_order: int):
    T = _t()

    def at(i, length=1):
        return f.narrow(d, i % n, length)

    if not isinstance(h, T.Tensor):
        h = float(h)
        inner = (at(2, n - 2) - at(0, n - 2)) * (1.0 / (2.0 * h)) if n > 2 else None
        if edge_order == 1:
            left, right = (at(1) - at(0)) / h, (at(-1) - at(-2)) / h
        else:
            left = (at(0) * -1.5 + at(1) * 2.0 - at(2) * 0.5) / h
            right = (at(-3) * 0.5 - at(-2) * 2.0 + at(-1) * 1.5) / h
    else:
        c = _floating(h)
        dx = c[1:] - c[:-1]
        shape = [1] * f.ndim

        def along(v):
            shape[d] = v.shape[0]
            return T.reshape(v, tuple(shape))

        inner = None
        if n > 2:
            hl, hr = dx[:-1], dx[1:]
            a = along(-hr / (hl * (hl + hr)))
            b = along((hr - hl) / (hl * hr))
            cc = along(hl / (hr * (hl + hr)))
            inner = a * at(0, n - 2) + b * at(1, n - 2) + cc * at(2, n - 2)
        if edge_order == 1:
            left = (at(1) - at(0)) / along(dx[:1])
            right = (at(-1) - at(-2)) / along(dx[-1:])
        else:
            d1, d2 = along(dx[0:1]), along(dx[1:2])
            left = (
                at(0) * (-(2 * d1 + d2) / (d1 * (d1 + d2)))
                + at(1) * ((d1 + d2) / (d1 * d2))
                + at(2) * (-d1 / (d2 * (d1 + d2)))
            )
            d1, d2 = along(dx[-2:-1]), along(dx[-1:])
            right = (
                at(-3) * (d2 / (d1 * (d1 + d2)))
                + at(-2) * (-(d2 + d1) / (d1 * d2))
                + at(-1) * ((2 * d2 + d1) / (d2 * (d1 + d2)))
            )
    parts = [left] + ([inner] if inner is not None else []) + [right]
    return T.cat(parts, d)


def vander(x, N=None, increasing: bool = False):  # noqa: N803 (PyTorch's name)
    """The Vandermonde matrix of the 1-d x: columns x^(N-1), ..., x, 1 (increasing: 1, x, ..., x^(N-1))."""
    x = _as(x)
    if x.ndim != 1:
        raise RuntimeError(located("x must be a one-dimensional tensor."))
    n = x.shape[0] if N is None else int(N)
    if n < 0:
        raise RuntimeError(located("N must be non-negative."))
    out = powers(x, n)
    return relabel(out if increasing else out.flip(-1), "VanderBackward0", [x])


def powers(x, n: int):
    """x's elements to the powers 0 .. n-1 along a new last dimension (bool and integers as int64), by repeated
    products (so the gradient at 0 is exact)."""
    T = _t()
    if x.dtype_name not in FLOATS:
        x = x.type_as_dtype("int64")
    if n == 0:
        return T.zeros(tuple(x.shape) + (0,), dtype=x.dtype_name)
    cols = [T.ones_like(x)]
    for _ in builtins.range(n - 1):
        cols.append(x if len(cols) == 1 else cols[-1] * x)
    return T.stack(cols, -1)


# -- index functions ---------------------------------------------------------------------------------------------
def put(input, index, source, accumulate: bool = False):
    """input (as if flattened) with the elements at `index` set to source's (accumulate: source's added; a
    repeated index without it: the last one wins)."""
    from graphnn.compiler.tracer import check_values
    from graphnn.core.index_api import _int_index, index_add, index_copy

    T = _t()
    index = _int_index(index, "put_")
    source = _as(source)
    if index.numel() != source.numel():
        raise IndexError(
            located(
                "put_(): Expected source and index to have the same number of elements, but got source.numel() = "
                f"{source.numel()}, index.numel() = {index.numel()}"
            )
        )
    n = input.numel()

    def check(a):
        bad = a[(a < -n) | (a >= n)]
        if bad.size:
            raise IndexError(located(f"out of range: tried to access index {int(bad[0])} on a tensor of {n} elements."))

    check_values(index, check)  # now, or at every call of compiled code
    flat_index = index.reshape(-1)
    flat_index = _where(flat_index < 0, flat_index + n, flat_index)
    flat, src = input.reshape(-1), source.reshape(-1).type_as_dtype(input.dtype_name)
    if not index.numel():
        return input.clone()
    out = index_add(flat, 0, flat_index, src) if accumulate else index_copy(flat, 0, flat_index, src)
    return relabel(T.reshape(out, tuple(input.shape)), "PutBackward0", [input, source])


def index_reduce(input, dim: int, index, source, reduce: str, *, include_self: bool = True):
    """input with source's slices reduced (prod, mean, amax, amin) into the slices `index` selects along dim;
    include_self: input's own values take part."""
    from graphnn.core.extra_api import scatter_reduce
    from graphnn.core.index_api import _index_along, _source

    T = _t()
    if reduce not in ("prod", "mean", "amax", "amin"):
        raise RuntimeError(
            located(f"index_reduce(): Expected reduce to be one of prod, mean, amax or amin but got {reduce}.")
        )
    x = input if input.ndim else input.reshape(1)
    d, index = _index_along(x, dim, index, "index_reduce")
    src = _source(x, d, index, source, "index_reduce").type_as_dtype(x.dtype_name)
    shape = [1] * src.ndim
    shape[d] = index.shape[0]
    spread = T.reshape(index, tuple(shape)).expand(tuple(src.shape))
    out = scatter_reduce(x, d, spread, src, reduce, include_self=include_self)
    if not input.ndim:
        out = out.reshape(())
    return relabel(out, "IndexReduceBackward0", [input, source])


# -- histograms --------------------------------------------------------------------------------------------------
def histogram(input, bins=100, *, range=None, weight=None, density: bool = False, out=None):  # noqa: A002
    """(hist, bin_edges): the counts (weight: the weights' sums) of input's elements in bins; bins an int (equal
    bins over `range`, or the data's own range) or a 1-d tensor of increasing edges. An element on an inner edge
    counts in the bin to its right, on the last edge in the last bin; elements outside are ignored. density: the
    counts divided by their total and the bins' widths. Not differentiable (as PyTorch's)."""
    from graphnn.core.grad_mode import no_grad

    T = _t()
    x = _as(input)
    if x.dtype_name not in FLOATS:
        raise NotImplementedError(located(f'"histogramdd" not implemented for {x.dtype_name!r}'))
    with no_grad():
        flat = x.detach().reshape(-1)
        dt = x.dtype_name
        if isinstance(bins, T.Tensor):
            edges = bins.detach()
            if edges.ndim != 1 or edges.shape[0] < 1:
                raise RuntimeError(located(f"torch.histogram(): bins must be a 1-d tensor of edges, got {edges._type}"))
            if edges.dtype_name != dt:
                raise RuntimeError(
                    located("torch.histogramdd: input tensor and bins tensors should have the same dtype")
                )
        else:
            edges = _edges(flat, int(bins), range, dt)
        nb = edges.shape[0] - 1
        pos = (flat.unsqueeze(-1) >= edges).type_as_dtype("int64").sum(-1) - 1
        last = edges[-1]
        pos = _where(flat == last, nb - 1, pos)
        inside = (flat >= edges[0]) & (flat <= last)
        hit = (pos.unsqueeze(-1) == T.arange(builtins.max(nb, 0))) & inside.unsqueeze(-1)
        hit = hit.type_as_dtype(dt)
        if weight is not None:
            w = _as(weight).detach()
            if tuple(w.shape) != tuple(x.shape):
                raise RuntimeError(
                    located(f"torch.histogramdd: weight {w._type} should have the same shape as input {x._type}")
                )
            hit = hit * w.type_as_dtype(dt).reshape(-1).unsqueeze(-1)
        hist = hit.sum(0)
        if density:
            hist = hist / (hist.sum() * (edges[1:] - edges[:-1]))
        return histogram_result(hist, edges)


def _edges(flat, bins: int, rng, dt: str):
    """bins + 1 equally spaced edges over rng, or over the data's own range (widened by 1/2 on each side when it
    is a single value, [0, 1] for no data), as linspace spaces them."""
    T = _t()
    if bins <= 0:
        raise RuntimeError(located(f"torch.histogram(): bins must be > 0, but got {bins} for dimension 0"))
    if rng is not None:
        lo, hi = (float(v) for v in rng)
        if lo > hi:
            raise RuntimeError(
                located(f"torch.histogramdd: min should not exceed max, but got min {lo} max {hi} for dimension 0")
            )
    elif not flat.numel():
        lo, hi = 0.0, 1.0
    elif _eager(flat):
        lo, hi = float(flat._data.min()), float(flat._data.max())
    else:  # traced: the edges follow the data's range at every call
        lo, hi = flat.amin(), flat.amax()
        same = lo == hi
        lo, hi = _where(same, lo - 0.5, lo), _where(same, hi + 0.5, hi)
        i = T.arange(bins + 1).type_as_dtype(dt)
        step = (hi - lo) / bins
        half = (bins + 1) // 2
        return _where(i < half, lo + step * i, hi - step * (bins - i))
    if lo == hi:
        lo, hi = lo - 0.5, hi + 0.5
    return T.Tensor._wrap(T.linspace_values(lo, hi, bins + 1, dt))


# -- installation ------------------------------------------------------------------------------------------------
# graphnn.<name> and Tensor.<name>
BOTH = {
    "ravel": ravel,
    "is_complex": is_complex,
    "is_conj": is_conj,
    "is_neg": is_neg,
    "conj": conj,
    "resolve_conj": resolve_conj,
    "resolve_neg": resolve_neg,
    "conj_physical": conj_physical,
    "fmax": fmax,
    "fmin": fmin,
    "dist": dist,
    "frexp": frexp,
    "ldexp": ldexp,
    "nextafter": nextafter,
    "put": put,
    "index_reduce": index_reduce,
    "histogram": histogram,
}
# graphnn.<name> only
FUNCTIONS = {
    "logspace": logspace,
    "trapezoid": trapezoid,
    "trapz": trapz,
    "cumulative_trapezoid": cumulative_trapezoid,
    "vander": vander,
    "gradient": gradient,
}
# Tensor.<name>_ computing Tensor.<name> in place
INPLACE = ("put", "index_reduce", "ldexp", "nextafter")
