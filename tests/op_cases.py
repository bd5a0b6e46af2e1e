"""The op test table shared by test_ops_reference.py and test_ops_compiled.py.

Every primitive in graphnn.ir.OPS (but EXEMPT_OPS) has exactly one entry here:
`entry(op, cases, numpy=...)`, where each case is `C(name, *inputs, **attrs)` and `numpy(arrays, attrs)` is an
independent NumPy formulation of the op (naive loops where the reference kernel is clever; a case may bring
its own with `numpy=`). Adding an op to graphnn means adding one `entry(...)` call; test_every_op_has_cases
(and the compiled suite's per-op test) fail until that is done.

Inputs are described by `In(shape, dtype, gen)` (shorthands F, I, B). The dtype "float" (also allowed as an
attribute value, e.g. cast's `dtype`, and implied by PerDtype attributes such as scan bodies) is a
placeholder: a case containing it is expanded into one variant per float dtype in `case.dtypes`. Generators
produce deterministic data (the seed is derived from the case id) shaped so that differentiable cases stay
away from kinks and ties (see GENERATORS); `fd=None` marks cases where they deliberately do not.
"""

from __future__ import annotations

import itertools
import math
import zlib
from dataclasses import dataclass, replace

import numpy as np
import pytest

from graphnn.ir import OPS, Graph, TensorType

try:
    from .tolerance import assert_close
except ImportError:
    from tolerance import assert_close

FLOATS = ("float32", "float64")
# "call" needs a separately compiled function object and "constant" only arises from constant folding
# (it is exercised by the pass tests); neither gets standalone cases. The dense factorizations (host calls of
# their reference kernels) need well-conditioned operands and have no rounding-error rule yet: tests/test_linalg_dense.py
# checks them against PyTorch and finite differences, eagerly and compiled.
LINALG_DENSE = ("inv", "solve", "solve_triangular", "cholesky", "det", "slogdet", "eigh", "svd", "qr", "factor_info")
EXEMPT_OPS = frozenset({"call", "constant", *LINALG_DENSE})


# -- inputs ----------------------------------------------------------------------------------------------
def _distinct(rng, shape):
    """Values that differ pairwise by at least 0.15 (no ties anywhere, so max/argmax are smooth)."""
    n = int(np.prod(shape, dtype=np.int64))
    v = (rng.permutation(n) - n / 2) * 0.25 + rng.uniform(-0.05, 0.05, n)
    return v.reshape(shape)


def _nan(rng, shape):
    v = rng.standard_normal(shape)
    if v.size:
        flat = v.reshape(-1)
        flat[rng.random(flat.size) < 0.3] = np.nan
        flat[0] = np.nan
        if flat.size > 3:
            flat[-1] = np.inf
            flat[-2] = -np.inf
    return v


def _attention_mask(rng, shape):
    m = np.where(rng.random(shape) < 0.3, -np.inf, rng.standard_normal(shape))
    m[..., 0] = 0.0
    return m


GENERATORS = {
    "normal": lambda rng, s: rng.standard_normal(s),
    "pos": lambda rng, s: rng.uniform(0.5, 2.0, s),  # log, sqrt, pow base
    "away": lambda rng, s: rng.choice([-1.0, 1.0], s) * rng.uniform(0.2, 2.0, s),  # |x| >= 0.2: relu, abs, div
    "distinct": _distinct,  # max, max_pool, argmax
    "even": lambda rng, s: rng.integers(-4, 5, s) * 0.5,  # even/odd never tie:
    "odd": lambda rng, s: rng.integers(-4, 5, s) * 0.5 + 0.25,  # maximum, minimum
    "grid": lambda rng, s: rng.integers(-2, 3, s) * 0.5,  # many exact ties
    "wide": lambda rng, s: rng.uniform(-120.0, 120.0, s),  # exp over/underflow
    "attention_mask": _attention_mask,  # additive, -inf entries, key 0 always seen
    "lse": lambda rng, s: rng.uniform(1.0, 3.0, s),  # a plausible log-sum-exp (any finite value is valid)
    "tiny": lambda rng, s: rng.choice([-1.0, 1.0], s) * 10.0 ** rng.uniform(-12, -3, s),  # log1p, expm1 near 0
    "nan": _nan,  # NaN and +-inf
    "int": lambda rng, s: rng.integers(-5, 6, s),
    "even_nz": lambda rng, s: rng.choice([-1.0, 1.0], s) * rng.integers(1, 5, s) * 0.5,  # fmod divisors
    "int_nz": lambda rng, s: rng.choice([-4, -3, -2, -1, 1, 2, 3, 4, 5], s),  # divisors
    "small_nonneg": lambda rng, s: rng.integers(0, 4, s),  # integer exponents
    "onehot_idx": lambda rng, s: rng.integers(-1, 5, s),  # includes out-of-range
    "index3": lambda rng, s: rng.integers(0, 3, s),  # valid indices (gathers)
    "index4": lambda rng, s: rng.integers(0, 4, s),
    "bool": lambda rng, s: rng.random(s) < 0.5,
    "unit": lambda rng, s: rng.uniform(-0.9, 0.9, s),  # asin, acos, atanh
    "above1": lambda rng, s: rng.uniform(1.1, 4.0, s),  # acosh
}


@dataclass(frozen=True)
class In:
    shape: tuple
    dtype: str = "float"
    gen: str = "normal"


def F(*shape, gen="normal"):
    return In(tuple(shape), "float", gen)


def I(*shape, gen="int"):  # noqa: E743
    return In(tuple(shape), "int64", gen)


def B(*shape):
    return In(tuple(shape), "bool", "bool")


# -- cases ----------------------------------------------------------------------------------------------
class PerDtype:
    """An attribute built per variant (e.g. a scan body, whose types follow the case's float dtype)."""

    def __init__(self, build):
        self.build = build

    def __repr__(self):
        return "PerDtype(...)"


@dataclass
class Case:
    name: str
    inputs: tuple
    attrs: dict
    fd: str | None = "auto"  # gradient check: "auto" (finite differences if smooth), "zero" (must be 0), None
    fd_tol: dict | None = None  # override of the finite-difference check's step {"eps": h}
    dtypes: tuple = FLOATS  # float dtypes substituted for "float"
    numpy: object = None  # independent formulation for this case (else the entry's)
    op: str = ""

    @property
    def id(self) -> str:
        return f"{self.op}-{self.name}"

    @property
    def float_param(self) -> bool:
        return (
            any(i.dtype == "float" for i in self.inputs)
            or "float" in self.attrs.values()
            or any(isinstance(v, PerDtype) for v in self.attrs.values())
        )

    def variant_dtypes(self) -> tuple:
        return self.dtypes if self.float_param else (None,)

    def resolve(self, dtype):
        return lambda d: dtype if d == "float" else d

    def input_types(self, dtype) -> list:
        r = self.resolve(dtype)
        return [TensorType(i.shape, r(i.dtype)) for i in self.inputs]

    def attrs_for(self, dtype) -> dict:
        r = self.resolve(dtype)
        return {
            k: r(v) if isinstance(v, str) else v.build(r("float")) if isinstance(v, PerDtype) else v
            for k, v in self.attrs.items()
        }

    def arrays(self, dtype) -> list:
        rng = np.random.default_rng(zlib.crc32(self.id.encode()))
        out = []
        for i, t in zip(self.inputs, self.input_types(dtype)):
            out.append(np.array(GENERATORS[i.gen](rng, t.shape), dtype=t.dtype, order="C"))
        return out

    def graph(self, dtype) -> Graph:
        g = Graph(self.id)
        ins = [g.add_input(t, f"x{j}") for j, t in enumerate(self.input_types(dtype))]
        g.outputs = list(g.add_node(self.op, ins, self.attrs_for(dtype)).outputs)
        return g

    def has_gradient(self, dtype) -> bool:
        """Does the variant have a joint forward+backward graph (a float output, a float input, and a gradient
        rule: attention_backward, which only gradients use, has none)?"""
        return (
            OPS[self.op].grad is not None
            and any(o.type.is_float for o in self.graph(dtype).outputs)
            and any(t.is_float for t in self.input_types(dtype))
        )

    def fd_mode(self, dtype) -> str | None:
        """'fd' (finite differences), 'zero' (the gradient must be exactly 0) or None (no gradient check:
        the op is not smooth at this case's inputs, or they contain NaN)."""
        if not self.has_gradient(dtype) or any(i.gen == "nan" for i in self.inputs):
            return None
        return "fd" if self.fd == "auto" else self.fd


def C(name, *inputs, fd="auto", fd_tol=None, dtypes=FLOATS, numpy=None, **attrs) -> Case:
    return Case(name, tuple(inputs), attrs, fd, fd_tol, dtypes, numpy)


@dataclass
class OpEntry:
    op: str
    cases: list
    numpy: object = None  # independent formulation: numpy(arrays, attrs) -> ndarray (or a list, one per output)


TABLE: dict = {}


def entry(op: str, cases: list, numpy=None) -> None:
    assert op not in TABLE, f"duplicate table entry for {op}"
    names = [c.name for c in cases]
    assert len(set(names)) == len(names), f"duplicate case names for {op}: {names}"
    TABLE[op] = OpEntry(op, [replace(c, op=op) for c in cases], numpy)


def all_cases() -> list:
    return [c for e in TABLE.values() for c in e.cases]


def params(select=lambda case, dtype: True) -> list:
    """pytest params (case, dtype) over every case variant accepted by `select`."""
    out = []
    for c in all_cases():
        for d in c.variant_dtypes():
            if select(c, d):
                out.append(pytest.param(c, d, id=c.id + (f"-{d}" if d else "")))
    return out


# -- independent NumPy formulations ------------------------------------------------------------------------
def _elementwise(fn):
    """Apply a Python scalar function element by element (computed in float64 / Python ints)."""

    def run(a, at):
        arrs = np.broadcast_arrays(*a)
        shape = arrs[0].shape if arrs else ()
        out = np.empty(shape, dtype=object)
        for idx in np.ndindex(*shape):
            out[idx] = fn(*[x[idx].item() for x in arrs])
        return out

    return run


def _nan_aware(fn):
    return lambda x: x if isinstance(x, float) and math.isnan(x) else fn(x)


def _sign(x):
    return (x > 0) - (x < 0) if not isinstance(x, bool) else x


def _maximum(x, y, pick_first):
    if isinstance(x, float) and math.isnan(x):
        return x
    if isinstance(y, float) and math.isnan(y):
        return y
    return x if pick_first(x, y) else y


def _sigmoid(x):
    """Without cancellation: (1 + tanh(x/2)) / 2 loses all digits of tiny results."""
    e = math.exp(-abs(x))
    return 1.0 / (1.0 + e) if x >= 0 else e / (1.0 + e)


def _int_div(x, y):
    q = abs(x) // abs(y)
    return q if (x >= 0) == (y > 0) else -q


def _div(x, y):
    if isinstance(x, (int, bool)) and isinstance(y, (int, bool)):
        return _int_div(int(x), int(y))
    return x / y


def _pow(x, y):
    if isinstance(x, int) and isinstance(y, int):
        if y < 0 and not isinstance(x, bool):  # integer power with a negative exponent: truncated 1 / x ** -y
            return 1 if x == 1 else (1 if y % 2 == 0 else -1) if x == -1 else 0
        return x**y
    try:
        r = float(x) ** y
    except (OverflowError, ZeroDivisionError):  # NumPy: inf
        return math.inf
    return math.nan if isinstance(r, complex) else r  # negative base, fractional exponent


def _reduce_moved(x, axes, keepdims):
    """x with the reduced axes moved last and flattened: (..kept.., R), plus the output shape."""
    axes = tuple(range(x.ndim)) if axes is None else ((axes,) if isinstance(axes, int) else tuple(axes))
    axes = tuple(sorted(a % x.ndim for a in axes)) if x.ndim else ()
    kept = [i for i in range(x.ndim) if i not in axes]
    moved = np.transpose(x, kept + list(axes))
    flat = moved.reshape(tuple(x.shape[i] for i in kept) + (-1,))
    out_shape = (
        tuple(1 if i in axes else s for i, s in enumerate(x.shape)) if keepdims else tuple(x.shape[i] for i in kept)
    )
    return flat, out_shape


def _np_sum(a, at):
    x = a[0].astype(np.int64) if a[0].dtype == bool else a[0]
    flat, shape = _reduce_moved(x, at["axes"], at.get("keepdims"))
    acc = np.zeros(flat.shape[:-1], np.float64 if x.dtype.kind == "f" else np.int64)
    for r in range(flat.shape[-1]):
        acc = acc + flat[..., r]
    return acc.reshape(shape)


def _first_max(values):
    """(index, value) of the first maximum; NaN counts as largest."""
    best_i, best = None, None
    for i, v in enumerate(values):
        if best_i is None:
            best_i, best = i, v
        elif isinstance(best, float) and math.isnan(best):
            break
        elif (isinstance(v, float) and math.isnan(v)) or v > best:
            best_i, best = i, v
    return best_i, best


def _np_max(a, at):
    flat, shape = _reduce_moved(a[0], at["axes"], at.get("keepdims"))
    out = np.empty(flat.shape[:-1], a[0].dtype)
    for idx in np.ndindex(*flat.shape[:-1]):
        out[idx] = _first_max([v.item() for v in flat[idx]])[1]
    return out.reshape(shape)


def _np_argmax(a, at):
    flat, shape = _reduce_moved(a[0], at["axis"], at.get("keepdims"))
    out = np.empty(flat.shape[:-1], np.int64)
    for idx in np.ndindex(*flat.shape[:-1]):
        out[idx] = _first_max([v.item() for v in flat[idx]])[0]
    return out.reshape(shape)


def _np_select(a, at):
    c, x, y = np.broadcast_arrays(*a)
    out = np.array(y, dtype=np.result_type(a[1].dtype, a[2].dtype))
    out[c] = x[c]
    return out


def _np_one_hot(a, at):
    idx = a[0]
    out = np.zeros(idx.shape + (at["num_classes"],), at.get("dtype", "float32"))
    for pos in np.ndindex(*idx.shape):
        c = int(idx[pos])
        if 0 <= c < at["num_classes"]:
            out[pos + (c,)] = 1
    return out


def _np_transpose(a, at):
    x, perm = a[0], at["perm"]
    out = np.empty(tuple(x.shape[p] for p in perm), x.dtype)
    for idx in np.ndindex(*out.shape):
        src = [0] * x.ndim
        for i, p in enumerate(perm):
            src[p] = idx[i]
        out[idx] = x[tuple(src)]
    return out


def _np_broadcast_to(a, at):
    x, shape = a[0], tuple(at["shape"])
    out = np.empty(shape, x.dtype)
    lead = len(shape) - x.ndim
    for idx in np.ndindex(*shape):
        out[idx] = x[tuple(0 if s == 1 else idx[lead + i] for i, s in enumerate(x.shape))]
    return out


def _np_slice(a, at):
    x = a[0]
    shape = tuple(max(0, -(-(e - s) // p)) for s, e, p in zip(at["starts"], at["stops"], at["steps"]))
    out = np.empty(shape, x.dtype)
    for idx in np.ndindex(*shape):
        out[idx] = x[tuple(s + i * p for i, s, p in zip(idx, at["starts"], at["steps"]))]
    return out


def _np_slice_grad(a, at):
    g = a[0]
    out = np.zeros(at["shape"], g.dtype)
    for idx in np.ndindex(*g.shape):
        out[tuple(s + i * p for i, s, p in zip(idx, at["starts"], at["steps"]))] = g[idx]
    return out


def _np_matmul(a, at):
    x, y = a
    batch = np.broadcast_shapes(x.shape[:-2], y.shape[:-2])
    xb = np.broadcast_to(x, batch + x.shape[-2:])
    yb = np.broadcast_to(y, batch + y.shape[-2:])
    out = np.zeros(batch + (x.shape[-2], y.shape[-1]), x.dtype)
    for bi in np.ndindex(*batch):
        yk = yb[bi].astype(np.float64)  # [K, N]
        for i in range(x.shape[-2]):  # row i: sum over k of x[i, k] * y[k, :], accumulated in float64
            out[bi + (i,)] = (xb[bi + (i,)].astype(np.float64)[:, None] * yk).sum(axis=0)
    return out


# Convolution: y[n, o, q] = sum_{c, k} x[n, group(o)*Cg + c, q*stride + k*dil - pad_lo] * w[o, c, k]
def conv_out_shape(xs, ws, stride, padding, dilation):
    sp = tuple(
        (xs[2 + i] + padding[i][0] + padding[i][1] - dilation[i] * (ws[2 + i] - 1) - 1) // stride[i] + 1
        for i in range(len(xs) - 2)
    )
    return (xs[0], ws[0]) + sp


def _conv_terms(xs, ws, at):
    """Yield (x index, w index, y index) for every in-bounds product of the convolution."""
    st, pd, dl, groups = at["stride"], at["padding"], at["dilation"], at["groups"]
    ys = conv_out_shape(xs, ws, st, pd, dl)
    cg, og = ws[1], ws[0] // groups
    for n, o in itertools.product(range(xs[0]), range(ws[0])):
        for q in np.ndindex(*ys[2:]):
            for c in range(cg):
                for k in np.ndindex(*ws[2:]):
                    p = tuple(q[i] * st[i] + k[i] * dl[i] - pd[i][0] for i in range(len(q)))
                    if all(0 <= p[i] < xs[2 + i] for i in range(len(p))):
                        yield (n, (o // og) * cg + c) + p, (o, c) + k, (n, o) + q


def _np_conv(a, at):
    x, w = a
    y = np.zeros(conv_out_shape(x.shape, w.shape, at["stride"], at["padding"], at["dilation"]), np.float64)
    for xi, wi, yi in _conv_terms(x.shape, w.shape, at):
        y[yi] += x[xi] * w[wi]
    return y


def _np_conv_grad_input(a, at):
    g, w = a
    gx = np.zeros(at["input_shape"], np.float64)
    for xi, wi, yi in _conv_terms(tuple(at["input_shape"]), w.shape, at):
        gx[xi] += g[yi] * w[wi]
    return gx


def _np_conv_grad_weight(a, at):
    x, g = a
    gw = np.zeros(at["weight_shape"], np.float64)
    for xi, wi, yi in _conv_terms(x.shape, tuple(at["weight_shape"]), at):
        gw[wi] += x[xi] * g[yi]
    return gw


# Max pooling (PyTorch semantics): windows start at q*stride - pad; out-of-range positions count as -inf;
# with ceil_mode a last partial window is kept if it starts inside the input or left padding.
def pool_out_shape(xs, kernel, stride, padding, dilation, ceil_mode=False):
    nsp = len(kernel)
    out = list(xs[: len(xs) - nsp])
    for i in range(nsp):
        n = xs[len(xs) - nsp + i]
        num = n + 2 * padding[i] - dilation[i] * (kernel[i] - 1) - 1
        o = (math.ceil(num / stride[i]) if ceil_mode else num // stride[i]) + 1
        if ceil_mode and (o - 1) * stride[i] >= n + padding[i]:
            o -= 1
        out.append(o)
    return tuple(out)


def _pool_argmax(x, at):
    """Yield (output index, input index of the window's first maximum) for every pooling output."""
    k, st, pd, dl = at["kernel"], at["stride"], at["padding"], at["dilation"]
    nsp = len(k)
    lead = x.ndim - nsp
    ys = pool_out_shape(x.shape, k, st, pd, dl, at.get("ceil_mode", False))
    for yi in np.ndindex(*ys):
        cands, vals = [], []
        for kk in np.ndindex(*k):
            p = tuple(yi[lead + i] * st[i] + kk[i] * dl[i] - pd[i] for i in range(nsp))
            inside = all(0 <= p[i] < x.shape[lead + i] for i in range(nsp))
            cands.append(yi[:lead] + p if inside else None)
            vals.append(x[yi[:lead] + p].item() if inside else -math.inf)
        j, _ = _first_max(vals)
        yield yi, cands[j]


def _np_max_pool(a, at):
    x = a[0]
    y = np.full(
        pool_out_shape(x.shape, at["kernel"], at["stride"], at["padding"], at["dilation"], at.get("ceil_mode", False)),
        -np.inf,
        x.dtype,
    )
    for yi, xi in _pool_argmax(x, at):
        if xi is not None:
            y[yi] = x[xi]
    return y


def _np_max_pool_grad(a, at):
    x, g = a
    gx = np.zeros(x.shape, np.float64)
    for yi, xi in _pool_argmax(x, at):
        if xi is not None:
            gx[xi] += g[yi]
    return gx


def _np_max_pool_select(a, at):
    x, src = a
    y = np.zeros(
        pool_out_shape(x.shape, at["kernel"], at["stride"], at["padding"], at["dilation"], at.get("ceil_mode", False)),
        src.dtype,
    )
    for yi, xi in _pool_argmax(x, at):
        if xi is not None:
            y[yi] = src[xi]
    return y


# -- the table -----------------------------------------------------------------------------------------------
def _unary_cases(gen="normal", ints=False, bools=False, nan=False):
    cases = [C("2x3", F(2, 3, gen=gen)), C("scalar", F(gen=gen)), C("2x1x4", F(2, 1, 4, gen=gen))]
    if ints:
        cases.append(C("int64", I(3, 4)))
    if bools:
        cases.append(C("bool", B(2, 3)))
    if nan:
        cases.append(C("nan", F(3, 4, gen="nan")))
    return cases


entry("neg", _unary_cases(ints=True, nan=True), _elementwise(lambda x: -x))
entry(
    "abs",
    _unary_cases("away", ints=True, bools=True, nan=True),
    _elementwise(lambda x: x if isinstance(x, bool) else abs(x)),
)
entry("sign", _unary_cases("away", ints=True, nan=True), _elementwise(_nan_aware(_sign)))
# exp "wide": the loss is dominated by terms near exp(120), so finite differences of the others drown in rounding.
entry("exp", _unary_cases(nan=True) + [C("wide", F(12, gen="wide"), fd=None)], _elementwise(_nan_aware(math.exp)))
entry(
    "log",
    _unary_cases("pos", nan=True),
    _elementwise(_nan_aware(lambda x: -math.inf if x == 0 else math.nan if x < 0 else math.log(x))),
)
entry("sqrt", _unary_cases("pos", nan=True), _elementwise(_nan_aware(lambda x: math.nan if x < 0 else math.sqrt(x))))
entry("tanh", _unary_cases(nan=True) + [C("wide", F(12, gen="wide"))], _elementwise(_nan_aware(math.tanh)))
entry("sigmoid", _unary_cases() + [C("wide", F(12, gen="wide"))], _elementwise(_nan_aware(_sigmoid)))
entry(
    "relu",
    _unary_cases("away", ints=True, bools=True, nan=True) + [C("medium", F(5, 41, gen="away"))],
    _elementwise(_nan_aware(lambda x: x if x > 0 else type(x)(0))),
)
entry(
    "sin",
    _unary_cases(nan=True) + [C("wide", F(12, gen="wide"), fd=None)],
    _elementwise(_nan_aware(lambda x: math.nan if math.isinf(x) else math.sin(x))),
)
entry(
    "cos",
    _unary_cases(nan=True) + [C("wide", F(12, gen="wide"), fd=None)],
    _elementwise(_nan_aware(lambda x: math.nan if math.isinf(x) else math.cos(x))),
)
entry("erf", _unary_cases(nan=True) + [C("wide", F(12, gen="wide"))], _elementwise(_nan_aware(math.erf)))
entry(
    "rsqrt",
    _unary_cases("pos", nan=True),
    _elementwise(_nan_aware(lambda x: math.inf if x == 0 else math.nan if x < 0 else 1 / math.sqrt(x))),
)
entry(
    "log1p",
    _unary_cases("pos", nan=True) + [C("tiny", F(6, gen="tiny"))],
    _elementwise(_nan_aware(lambda x: -math.inf if x == -1 else math.nan if x < -1 else math.log1p(x))),
)
entry(
    "expm1",
    _unary_cases(nan=True) + [C("tiny", F(6, gen="tiny")), C("wide", F(12, gen="wide"), fd=None)],
    _elementwise(_nan_aware(lambda x: math.inf if x > 709 else math.expm1(x))),
)


def _rounded(fn):
    return _elementwise(lambda x: x if not isinstance(x, float) or not math.isfinite(x) else float(fn(x)))


def _round_half_even(x):
    r = math.floor(x + 0.5)
    return r - 1 if r - x == 0.5 and r % 2 else r


# rounding: "odd" values are k/2 + 1/4 (never an integer or a tie); "grid" values k/2 are the integers and ties
for _op, _fn in (("floor", math.floor), ("ceil", math.ceil), ("trunc", math.trunc), ("round", _round_half_even)):
    entry(
        _op,
        [C("2x3", F(2, 3, gen="odd"), fd="zero"), C("ties", F(3, 4, gen="grid"), fd=None), C("int64", I(3, 4))]
        + [C("nan", F(3, 4, gen="nan"))],
        _rounded(_fn),
    )


def _unit_cases():
    return [C("2x3", F(2, 3, gen="unit")), C("scalar", F(gen="unit")), C("nan", F(3, 4, gen="nan"))]


def _nan_outside(fn, lo, hi):
    def f(x):
        if math.isnan(x) or x < lo or x > hi:
            return math.nan
        if x in (lo, hi):
            return fn(x) if math.isfinite(fn(x)) else fn(x)
        return fn(x)

    return _elementwise(f)


def _safe(fn, at_edges):
    def f(x):
        try:
            return fn(x)
        except (ValueError, OverflowError):
            return at_edges(x)

    return _elementwise(_nan_aware(f))


entry("atan", _unary_cases(nan=True) + [C("wide", F(12, gen="wide"))], _elementwise(_nan_aware(math.atan)))
entry("asin", _unit_cases(), _safe(math.asin, lambda x: math.nan))
entry("acos", _unit_cases(), _safe(math.acos, lambda x: math.nan))
entry("atanh", _unit_cases(), _safe(math.atanh, lambda x: math.nan if abs(x) > 1 else math.copysign(math.inf, x)))
entry("tan", _unary_cases(nan=True), _safe(math.tan, lambda x: math.nan))
entry("sinh", _unary_cases(nan=True), _safe(math.sinh, lambda x: math.copysign(math.inf, x)))
entry("cosh", _unary_cases(nan=True), _safe(math.cosh, lambda x: math.inf))
entry("asinh", _unary_cases(nan=True) + [C("wide", F(12, gen="wide"))], _elementwise(_nan_aware(math.asinh)))
entry(
    "acosh",
    [C("2x3", F(2, 3, gen="above1")), C("scalar", F(gen="above1")), C("nan", F(3, 4, gen="nan"))],
    _safe(math.acosh, lambda x: math.nan),
)
entry(
    "log2",
    _unary_cases("pos", nan=True),
    _safe(math.log2, lambda x: -math.inf if x == 0 else math.nan if x < 0 else math.inf),
)
entry(
    "log10",
    _unary_cases("pos", nan=True),
    _safe(math.log10, lambda x: -math.inf if x == 0 else math.nan if x < 0 else math.inf),
)
entry("exp2", _unary_cases(nan=True), _safe(lambda x: 2.0**x, lambda x: math.inf))

entry("stop_gradient", [C("2x3", F(2, 3), fd="zero"), C("int64", I(4)), C("bool", B(2, 2))], lambda a, at: a[0].copy())

BCAST = [((2, 3), (2, 3)), ((2, 3), (3,)), ((2, 1, 4), (3, 1)), ((), (2, 3)), ((3, 1), (1, 4))]


def _shape_name(s):
    return "x".join(map(str, s)) if s else "s"


def _binary_cases(gx="normal", gy="normal", ints=None, bools=False, nan=False, mixed=True):
    cases = [C(f"{_shape_name(s)}_{_shape_name(t)}", In(s, "float", gx), In(t, "float", gy)) for s, t in BCAST]
    if ints:
        cases.append(C("int64", In((2, 3), "int64", ints[0]), In((3,), "int64", ints[1])))
    if bools:
        cases.append(C("bool", B(2, 3), B(2, 1)))
    if mixed:  # int64 (x) float -> float
        cases.append(C("int_float", In((2, 3), "int64", ints[0] if ints else "int"), In((3,), "float", gy)))
    if nan:
        cases.append(C("nan", F(3, 4, gen="nan"), F(3, 4, gen="nan")))
        cases.append(C("nan_bcast", F(2, 3, gen="nan"), F(3)))
    return cases


entry(
    "add",
    _binary_cases(ints=("int", "int"), bools=True) + [C("medium", F(37, 19), F(19))],
    _elementwise(lambda x, y: x or y if isinstance(x, bool) else x + y),
)
entry("sub", _binary_cases(ints=("int", "int")), _elementwise(lambda x, y: x - y))
entry(
    "mul",
    _binary_cases(ints=("int", "int"), bools=True),
    _elementwise(lambda x, y: x and y if isinstance(x, bool) else x * y),
)
entry("div", _binary_cases(gy="away", ints=("int", "int_nz")), _elementwise(_div))
entry(
    "fmod",
    _binary_cases(gx="odd", gy="even_nz", ints=("int", "int_nz"), mixed=False) + [C("nan", F(3, 4, gen="nan"), F(4))],
    _elementwise(
        lambda x, y: (
            math.fmod(x, y)
            if isinstance(x, float) and math.isfinite(x) and y != 0
            else (math.nan if isinstance(x, float) else int(math.fmod(x, y)))
        )
    ),
)
entry(
    "copysign",
    _binary_cases(gx="away", ints=("int", "int"), mixed=False) + [C("nan", F(3, 4, gen="nan"), F(3, 4, gen="nan"))],
    _elementwise(lambda x, y: math.copysign(float(x), float(y))),
)
entry(
    "atan2",
    _binary_cases(gx="away", gy="away", ints=("int", "int"), mixed=True)
    + [C("nan", F(3, 4, gen="nan"), F(3, 4, gen="nan"))],
    _elementwise(lambda y, x: math.atan2(float(y), float(x)) if not (math.isnan(y) or math.isnan(x)) else math.nan),
)
entry(
    "pow",
    _binary_cases(gx="pos", ints=("int", "small_nonneg"), mixed=False)
    + [
        C("neg_base_int_exp", F(3, 4), F(3, 4, gen="grid"), fd=None),  # (-x) ** integer is finite; no derivative in y
        C("int_negative_exp", I(3, 4, gen="int"), I(4, gen="int")),  # 0 except for the bases 1 and -1
        C("nan", F(3, 4, gen="nan"), F(3, 4, gen="nan")),
    ],
    _elementwise(_pow),
)
entry(
    "maximum",
    _binary_cases("even", "odd", ints=("int", "int"), bools=True, nan=True),
    _elementwise(lambda x, y: _maximum(x, y, lambda p, q: p > q)),
)
entry(
    "minimum",
    _binary_cases("even", "odd", ints=("int", "int"), bools=True, nan=True),
    _elementwise(lambda x, y: _maximum(x, y, lambda p, q: p < q)),
)


def _compare_cases():
    return [
        C("grid", F(3, 4, gen="grid"), F(3, 4, gen="grid")),
        C("bcast", F(2, 1, 4, gen="grid"), F(3, 1, gen="grid")),
        C("scalar", F(2, 3, gen="grid"), F(gen="grid")),
        C("int64", I(2, 3), I(3)),
        C("bool", B(2, 3), B(2, 3)),
        C("int_float", I(2, 3), F(2, 3, gen="grid")),
        C("nan", F(3, 4, gen="nan"), F(3, 4, gen="nan")),
    ]


_CMP = {
    "gt": lambda x, y: x > y,
    "ge": lambda x, y: x >= y,
    "lt": lambda x, y: x < y,
    "le": lambda x, y: x <= y,
    "eq": lambda x, y: x == y,
    "ne": lambda x, y: x != y,
    "logical_and": lambda x, y: bool(x) and bool(y),
    "logical_or": lambda x, y: bool(x) or bool(y),
}
for _op, _fn in _CMP.items():
    entry(_op, _compare_cases(), _elementwise(_fn))


def _bit(fn):
    """A bitwise op on Python ints (two's complement: Python's & | ^ ~ on negative ints agree) and bools."""

    def on(*xs):
        r = fn(*xs)
        return bool(r) if all(isinstance(x, bool) for x in xs) else r

    return on


_BITWISE_CASES = [
    C("int64", I(2, 3, gen="int"), I(3, gen="int_nz")),
    C("bool", B(2, 3), B(2, 1)),
    C("bcast", I(4, 1), I(3)),
    C("mixed", B(2, 3), I(3)),
]
entry("bitwise_and", _BITWISE_CASES, _elementwise(_bit(lambda x, y: x & y)))
entry("bitwise_or", _BITWISE_CASES, _elementwise(_bit(lambda x, y: x | y)))
entry("bitwise_xor", _BITWISE_CASES, _elementwise(_bit(lambda x, y: x ^ y)))
entry(
    "bitwise_not",
    [C("int64", I(3, 4)), C("bool", B(5)), C("scalar", I())],
    _elementwise(lambda x: (not x) if isinstance(x, bool) else ~x),
)

entry(
    "select",
    [
        C("same_shape", B(2, 3), F(2, 3), F(2, 3)),
        C(
            "bcast",
            B(
                3,
            ),
            F(2, 3),
            F(),
        ),
        C("bcast_cond", B(2, 1), F(1, 4), F(2, 4)),
        C(
            "int64",
            B(
                4,
            ),
            I(4),
            I(4),
        ),
        C("int_float", B(2, 3), I(2, 3), F(3)),
        C("bool_branches", B(3, 2), B(3, 2), B(2)),
        C("nan", B(3, 4), F(3, 4, gen="nan"), F(3, 4, gen="nan")),
    ],
    _np_select,
)

entry(
    "cast",
    [
        C("to_f32", F(2, 3), dtype="float32", fd_tol=dict(eps=1e-3)),  # rounds to float32: a longer step
        C("to_f64", F(2, 3), dtype="float64"),
        C("to_int64", F(3, 4), dtype="int64"),
        C("to_bool", F(2, 3, gen="grid"), dtype="bool"),
        C("nan_to_bool", F(3, 4, gen="nan"), dtype="bool"),
        C("int_to_float", I(2, 3), dtype="float"),
        C("bool_to_float", B(2, 3), dtype="float"),
        C("int_to_bool", I(2, 4), dtype="bool"),
        C("bool_to_int", B(2, 4), dtype="int64"),
        C("int_to_int", I(3), dtype="int64"),
    ],
    lambda a, at: a[0].astype(at["dtype"]),
)

entry(
    "full",
    [
        C("float", value=1.5, shape=(2, 3), dtype="float"),
        C("scalar", value=-2.25, shape=(), dtype="float"),
        C("int64", value=7, shape=(3,), dtype="int64"),
        C("bool", value=True, shape=(2, 2), dtype="bool"),
    ],
    lambda a, at: np.full(at["shape"], at["value"], at["dtype"]),
)

entry(
    "reshape",
    [
        C("2x3_3x2", F(2, 3), shape=(3, 2)),
        C("flatten", F(2, 3, 4), shape=(24,)),
        C("unsqueeze", F(6), shape=(1, 2, 3, 1)),
        C("to_scalar", F(1, 1), shape=()),
        C("int64", I(2, 6), shape=(3, 4)),
        C("bool", B(4, 2), shape=(2, 2, 2)),
    ],
    lambda a, at: np.array(a[0].ravel().tolist(), a[0].dtype).reshape(at["shape"]),
)

entry(
    "transpose",
    [
        C("2d", F(2, 3), perm=(1, 0)),
        C("3d", F(2, 3, 4), perm=(2, 0, 1)),
        C("4d", F(2, 3, 1, 2), perm=(3, 1, 0, 2)),
        C("identity", F(2, 3), perm=(0, 1)),
        C("int64", I(2, 3, 2), perm=(1, 2, 0)),
        C("bool", B(3, 2), perm=(1, 0)),
        C("medium", F(17, 23), perm=(1, 0)),
    ],
    _np_transpose,
)

entry(
    "broadcast_to",
    [
        C("row", F(3), shape=(2, 3)),
        C("middle", F(2, 1, 4), shape=(3, 2, 5, 4)),
        C("scalar", F(), shape=(2, 2)),
        C("same", F(2, 3), shape=(2, 3)),
        C("int64", I(3, 1), shape=(3, 4)),
        C("bool", B(1, 2), shape=(3, 2)),
    ],
    _np_broadcast_to,
)

_SLICES = [  # name, input shape, starts, stops, steps
    ("steps", (5, 6), (1, 0), (5, 6), (2, 3)),
    ("3d", (4, 5, 6), (0, 1, 2), (4, 5, 6), (1, 2, 3)),
    ("1d_offset", (7,), (2,), (6,), (1,)),
    ("partial_step", (6, 5), (5, 0), (6, 5), (3, 2)),
    ("uneven_stop", (8, 3), (1, 1), (7, 3), (4, 1)),
    ("empty", (3, 4), (1, 4), (3, 4), (1, 1)),
]


def _slice_shape(starts, stops, steps):
    return tuple(max(0, -(-(e - s) // p)) for s, e, p in zip(starts, stops, steps))


entry(
    "slice",
    [C(n, F(*s), starts=a, stops=b, steps=p) for n, s, a, b, p in _SLICES]
    + [
        C("int64", I(5, 6), starts=(1, 0), stops=(5, 6), steps=(2, 3)),
        C("bool", B(5, 4), starts=(0, 1), stops=(5, 4), steps=(2, 2)),
    ],
    _np_slice,
)

entry(
    "slice_grad",
    [C(n, F(*_slice_shape(a, b, p)), shape=s, starts=a, steps=p) for n, s, a, b, p in _SLICES]
    + [
        C("int64", I(2, 2), shape=(5, 6), starts=(1, 0), steps=(2, 3)),
        C("bool", B(3, 2), shape=(5, 4), starts=(0, 1), steps=(2, 2)),
    ],
    _np_slice_grad,
)


def _np_concat(a, at):
    axis = at["axis"]
    shape = list(a[0].shape)
    shape[axis] = sum(x.shape[axis] for x in a)
    out = np.empty(shape, a[0].dtype)
    offset = 0
    for x in a:  # each operand's elements, placed one by one at their offset along the axis
        for idx in np.ndindex(*x.shape):
            out[idx[:axis] + (idx[axis] + offset,) + idx[axis + 1 :]] = x[idx]
        offset += x.shape[axis]
    return out


entry(
    "concat",
    [
        C("two_last", F(3, 4), F(3, 2), axis=1),
        C("three_first", F(2, 3), F(1, 3), F(4, 3), axis=0),
        C("middle_3d", F(2, 1, 3), F(2, 4, 3), axis=1),
        C("with_empty", F(2, 3), F(2, 0), F(2, 2), axis=1),
        C("single", F(5), axis=0),
        C("int64", I(2, 3), I(2, 1), axis=1),
        C("bool", B(1, 4), B(2, 4), axis=0),
    ],
    _np_concat,
)

_REDUCE_AXES = [
    ("all", (2, 3, 4), None, False),
    ("all_keep", (2, 3, 4), None, True),
    ("ax0", (2, 3, 4), 0, False),
    ("ax1_keep", (2, 3, 4), (1,), True),
    ("ax02", (2, 3, 4), (0, 2), False),
    ("neg_keep", (2, 3, 4), (-1,), True),
    ("none", (2, 3), (), False),
    ("scalar_in", (), None, False),
]

entry(
    "sum",
    [C(n, F(*s), axes=ax, keepdims=kd) for n, s, ax, kd in _REDUCE_AXES]
    + [
        C("int64", I(3, 4), axes=(1,), keepdims=False),
        C("bool", B(3, 5), axes=(0,), keepdims=True),  # bool sums to int64
        C("bool_all", B(4, 3), axes=None, keepdims=False),
        C("medium_ax1", F(9, 70), axes=(1,), keepdims=False),
        C("medium_all", F(300), axes=None, keepdims=False),
    ],
    _np_sum,
)


def _np_prod(a, at):
    """One factor at a time along the reduced axes (Python ints for integers: exact, then wrapped to int64)."""
    x = a[0]
    ax = at["axes"]
    ax = (ax,) if isinstance(ax, int) else ax
    axes = tuple(range(x.ndim)) if ax is None else tuple(i % max(x.ndim, 1) for i in ax)
    moved = np.moveaxis(np.asarray(x, np.float64 if x.dtype.kind == "f" else object), axes, range(len(axes)))
    flat = moved.reshape((-1,) + moved.shape[len(axes) :])
    out = np.ones(flat.shape[1:], flat.dtype)
    for row in flat:
        out = out * (row.astype(int) if x.dtype == bool else row)
    if x.dtype.kind != "f":
        out = np.asarray([(int(v) + 2**63) % 2**64 - 2**63 for v in np.ravel(out)], np.int64).reshape(np.shape(out))
    if at.get("keepdims"):
        out = np.reshape(out, tuple(1 if i in axes else n for i, n in enumerate(x.shape)))
    return out


entry(
    "prod",
    [C(n, F(*s, gen="pos"), axes=ax, keepdims=kd) for n, s, ax, kd in _REDUCE_AXES]
    + [
        C("signs", F(3, 4), axes=(1,), keepdims=False),
        C("zeros", F(4, 3, gen="grid"), axes=(0,), keepdims=False, fd=None),  # one and several zeros per column
        C("int64", I(3, 4), axes=(1,), keepdims=False),
        C("bool", B(3, 5), axes=(0,), keepdims=True),
        C("nan", F(3, 4, gen="nan"), axes=(1,), keepdims=False),
        C("medium_ax1", F(9, 40, gen="pos"), axes=(1,), keepdims=False),
    ],
    _np_prod,
)

entry(
    "max",
    [C(n, F(*s, gen="distinct"), axes=ax, keepdims=kd) for n, s, ax, kd in _REDUCE_AXES]
    + [
        C("ties", F(3, 4, gen="grid"), axes=(1,), keepdims=False, fd=None),  # not smooth at ties
        C("int64", I(3, 4), axes=(0,), keepdims=False),
        C("bool", B(3, 4), axes=(1,), keepdims=True),
        C("nan", F(3, 4, gen="nan"), axes=(1,), keepdims=False),
        C("nan_all", F(4, 3, gen="nan"), axes=None, keepdims=False),
        C("medium", F(6, 50, gen="distinct"), axes=(1,), keepdims=False),
    ],
    _np_max,
)

entry(
    "argmax",
    [
        C("ax0", F(3, 4, gen="distinct"), axis=0),
        C("ax1_keep", F(3, 4, gen="distinct"), axis=1, keepdims=True),
        C("neg", F(2, 3, 4, gen="distinct"), axis=-1),
        C("ties", F(4, 5, gen="grid"), axis=1),
        C("int64", I(3, 5), axis=1),
        C("bool", B(4, 3), axis=0),
        C("nan", F(3, 4, gen="nan"), axis=1),
    ],
    _np_argmax,
)

entry(
    "matmul",
    [
        C("2d", F(2, 3), F(3, 4)),
        C("batched", F(2, 2, 3), F(2, 3, 4)),
        C("bcast_rhs", F(2, 2, 3), F(3, 4)),
        C("bcast_batch", F(2, 1, 2, 3), F(3, 3, 2)),
        C("bcast_lhs", F(1, 3), F(2, 3, 2)),
        C("vec", F(1, 3), F(3, 1)),
        C("medium", F(9, 17), F(17, 13)),
        C("rows16_ragged_cols", F(16, 37), F(37, 45)),  # 8-row tiles (512-bit vectors), a ragged last panel
        C("rows40_ragged_cols", F(40, 9), F(9, 70)),
        C("rows24_narrow", F(24, 5), F(5, 33)),
        # k in slices (with a ragged row block and a ragged panel); too big for finite differences
        C("long_k", F(260, 600), F(600, 40), fd=None, dtypes=("float32",)),
        C("long_k_grad", F(520, 260), F(260, 40), fd=None, dtypes=("float64",)),  # A^T @ dC: A read transposed
    ],
    _np_matmul,
)

_CONVS = [  # name, x shape, w shape, stride, padding, dilation, groups
    ("1d", (2, 3, 7), (4, 3, 3), (1,), ((0, 0),), (1,), 1),
    ("1d_stride2_pad12", (2, 3, 7), (4, 3, 3), (2,), ((1, 2),), (1,), 1),
    ("1d_stride3_tail", (1, 2, 9), (2, 2, 2), (3,), ((0, 0),), (1,), 1),
    ("1d_pad_hi_only", (1, 2, 6), (3, 2, 3), (1,), ((0, 2),), (1,), 1),
    ("1d_groups2_dil2", (1, 4, 9), (6, 2, 3), (1,), ((2, 0),), (2,), 2),
    ("2d", (1, 2, 5, 4), (3, 2, 3, 2), (1, 1), ((0, 0), (0, 0)), (1, 1), 1),
    ("2d_pad_hi_only", (1, 2, 4, 5), (2, 2, 2, 3), (2, 1), ((0, 1), (0, 2)), (1, 1), 1),
    ("2d_stride_pad_dil", (2, 2, 6, 7), (3, 2, 3, 2), (2, 1), ((1, 0), (0, 2)), (1, 2), 1),
    ("2d_depthwise", (1, 3, 5, 5), (3, 1, 3, 3), (1, 1), ((1, 1), (1, 1)), (1, 1), 3),
    ("2d_groups2_stride", (1, 4, 7, 6), (4, 2, 2, 2), (3, 2), ((0, 1), (1, 0)), (1, 1), 2),
    ("2d_medium", (1, 3, 12, 12), (4, 3, 3, 3), (1, 1), ((1, 1), (1, 1)), (1, 1), 1),
    ("3d", (1, 2, 4, 4, 3), (2, 2, 2, 2, 2), (1, 1, 1), ((0, 0),) * 3, (1, 1, 1), 1),
    ("3d_all", (1, 4, 5, 4, 4), (4, 2, 2, 3, 2), (2, 1, 2), ((1, 0), (1, 1), (0, 1)), (1, 1, 2), 2),
]


def _conv_attrs(st, pd, dl, gr):
    return dict(stride=st, padding=pd, dilation=dl, groups=gr)


entry("conv", [C(n, F(*xs), F(*ws), **_conv_attrs(st, pd, dl, gr)) for n, xs, ws, st, pd, dl, gr in _CONVS], _np_conv)
entry(
    "conv_grad_input",
    [
        C(n, F(*conv_out_shape(xs, ws, st, pd, dl)), F(*ws), input_shape=xs, **_conv_attrs(st, pd, dl, gr))
        for n, xs, ws, st, pd, dl, gr in _CONVS
    ],
    _np_conv_grad_input,
)
entry(
    "conv_grad_weight",
    [
        C(n, F(*xs), F(*conv_out_shape(xs, ws, st, pd, dl)), weight_shape=ws, **_conv_attrs(st, pd, dl, gr))
        for n, xs, ws, st, pd, dl, gr in _CONVS
    ],
    _np_conv_grad_weight,
)


def _np_im2col(a, at):
    """Naive loops: column (n, q...) of row (c, k...) is x at q*stride + k*dilation - pad_lo (0 outside)."""
    x = a[0]
    nsp = len(at["kernel"])
    outs = conv_out_shape(x.shape, (1, x.shape[1]) + tuple(at["kernel"]), at["stride"], at["padding"], at["dilation"])[
        2:
    ]
    rows = []
    for c in range(x.shape[1]):
        for kk in np.ndindex(*at["kernel"]):
            row = []
            for n in range(x.shape[0]):
                for q in np.ndindex(*outs):
                    pos = [q[d] * at["stride"][d] + kk[d] * at["dilation"][d] - at["padding"][d][0] for d in range(nsp)]
                    inside = all(0 <= p < x.shape[2 + d] for d, p in enumerate(pos))
                    row.append(x[(n, c) + tuple(pos)] if inside else 0)
            rows.append(row)
    cols = np.array(rows, dtype=x.dtype)
    if at.get("per_image"):  # (C*K, N*Q) -> (N, C*K, Q)
        return np.ascontiguousarray(cols.reshape(cols.shape[0], x.shape[0], -1).transpose(1, 0, 2))
    return cols


def _np_col2im(a, at):
    """Naive loops: every column entry is added onto the input position im2col read it from."""
    col = a[0]
    shape = tuple(at["input_shape"])
    nsp = len(at["kernel"])
    outs = conv_out_shape(shape, (1, shape[1]) + tuple(at["kernel"]), at["stride"], at["padding"], at["dilation"])[2:]
    out = np.zeros(shape, col.dtype)
    j = 0
    for c in range(shape[1]):
        for kk in np.ndindex(*at["kernel"]):
            r = 0
            for n in range(shape[0]):
                for q in np.ndindex(*outs):
                    pos = [q[d] * at["stride"][d] + kk[d] * at["dilation"][d] - at["padding"][d][0] for d in range(nsp)]
                    if all(0 <= p < shape[2 + d] for d, p in enumerate(pos)):
                        out[(n, c) + tuple(pos)] += col[j, r]
                    r += 1
            j += 1
    return out


def _im2col_attrs(ws, st, pd, dl):
    return dict(kernel=tuple(ws[2:]), stride=st, padding=pd, dilation=dl)


def _col_shape(xs, ws, st, pd, dl):
    o = conv_out_shape(xs, ws, st, pd, dl)
    kp = int(np.prod(ws[2:]))
    return (xs[1] * kp, xs[0] * int(np.prod(o[2:])))


entry(
    "im2col",
    [C(n, F(*xs), **_im2col_attrs(ws, st, pd, dl)) for n, xs, ws, st, pd, dl, _gr in _CONVS]
    + [  # one column matrix per image (a convolution with a small weight, conv_gemm._per_image)
        C(n + "_per_image", F(*xs), per_image=True, **_im2col_attrs(ws, st, pd, dl))
        for n, xs, ws, st, pd, dl, _gr in _CONVS
        if xs[0] > 1 or n == "2d"
    ],
    _np_im2col,
)
entry(
    "col2im",
    [
        C(n, F(*_col_shape(xs, ws, st, pd, dl)), input_shape=xs, **_im2col_attrs(ws, st, pd, dl))
        for n, xs, ws, st, pd, dl, _gr in _CONVS
    ],
    _np_col2im,
)


_POOLS = [  # name, x shape, kernel, stride, padding, dilation, ceil_mode
    ("1d", (2, 3, 7), (3,), (2,), (1,), (1,), False),
    ("1d_ceil", (1, 2, 8), (3,), (2,), (0,), (1,), True),
    ("1d_dil2_pad", (1, 2, 9), (3,), (1,), (1,), (2,), False),
    ("2d", (1, 2, 5, 6), (2, 3), (2, 2), (1, 1), (1, 1), False),
    ("2d_ceil_dil_lead1", (2, 6, 7), (3, 2), (2, 2), (1, 0), (2, 1), True),
    ("2d_overlap", (1, 1, 5, 5), (3, 3), (1, 1), (0, 0), (1, 1), False),
    ("2d_stride_gt_kernel", (1, 1, 7, 7), (2, 2), (3, 3), (0, 0), (1, 1), False),
    ("2d_medium", (1, 3, 12, 12), (3, 3), (2, 2), (1, 1), (1, 1), False),
    ("3d_ceil", (1, 2, 4, 5, 4), (2, 2, 2), (2, 2, 2), (1, 0, 1), (1, 1, 1), True),
    ("2d_tiled_pad_ceil", (2, 2, 7, 6), (2, 2), (2, 2), (1, 0), (1, 1), True),
    ("2d_tiled", (1, 3, 8, 8), (2, 2), (2, 2), (0, 0), (1, 1), False),
    ("2d_tiled_ragged", (2, 2, 7, 5), (2, 2), (2, 2), (0, 0), (1, 1), False),
    ("3d_tiled_ragged_pad", (1, 2, 5, 4, 7), (2, 2, 3), (2, 2, 3), (1, 0, 1), (1, 1, 1), False),
]


def _pool_attrs(k, st, pd, dl, cm):
    return dict(kernel=k, stride=st, padding=pd, dilation=dl, ceil_mode=cm)


entry(
    "max_pool",
    [C(n, F(*xs, gen="distinct"), **_pool_attrs(*a)) for n, xs, *a in _POOLS]
    + [
        C(
            "ties",
            F(1, 2, 5, 5, gen="grid"),
            fd=None,  # ties: first maximum wins, not smooth
            **_pool_attrs((2, 2), (1, 1), (1, 1), (1, 1), False),
        ),
        C("nan", F(1, 2, 5, 5, gen="nan"), **_pool_attrs((3, 3), (2, 2), (1, 1), (1, 1), True)),
    ],
    _np_max_pool,
)
entry(
    "max_pool_grad",
    [C(n, F(*xs, gen="distinct"), F(*pool_out_shape(xs, *a)), **_pool_attrs(*a)) for n, xs, *a in _POOLS]
    + [
        C(
            "ties",
            F(1, 2, 5, 5, gen="grid"),
            F(1, 2, 6, 6),
            fd=None,  # ties: first maximum wins, not smooth
            **_pool_attrs((2, 2), (1, 1), (1, 1), (1, 1), False),
        ),
        C(
            "tiled_ties",
            F(1, 2, 6, 5, gen="grid"),
            F(1, 2, 3, 2),
            fd=None,
            **_pool_attrs((2, 2), (2, 2), (0, 0), (1, 1), False),
        ),
        C(
            "tiled_nan",
            F(1, 2, 6, 6, gen="nan"),
            F(1, 2, 3, 3),
            fd=None,
            **_pool_attrs((2, 2), (2, 2), (0, 0), (1, 1), False),
        ),
    ],
    _np_max_pool_grad,
)
entry(
    "max_pool_select",
    [C(n, F(*xs, gen="distinct"), F(*xs), **_pool_attrs(*a)) for n, xs, *a in _POOLS]
    + [
        C(
            "ties",
            F(1, 2, 5, 5, gen="grid"),
            F(1, 2, 5, 5),
            fd=None,
            **_pool_attrs((2, 2), (1, 1), (1, 1), (1, 1), False),
        ),
    ],
    _np_max_pool_select,
)

entry(
    "one_hot",
    [
        C("float", I(2, 3, gen="onehot_idx"), num_classes=4, dtype="float"),
        C("default_dtype", I(5, gen="onehot_idx"), num_classes=5),
        C("int64", I(3, 2, gen="onehot_idx"), num_classes=3, dtype="int64"),
        C("bool", I(4, gen="onehot_idx"), num_classes=4, dtype="bool"),
        C("scalar", I(gen="onehot_idx"), num_classes=6, dtype="float"),
    ],
    _np_one_hot,
)


def _np_take(a, at):
    x, idx = a
    ax = at["axis"] % x.ndim
    out = np.empty(x.shape[:ax] + idx.shape + x.shape[ax + 1 :], x.dtype)
    for pos in np.ndindex(*out.shape):
        i = pos[ax : ax + idx.ndim]
        out[pos] = x[pos[:ax] + (int(idx[i]),) + pos[ax + idx.ndim :]]
    return out


def _np_take_grad(a, at):
    g, idx = a
    ax, k = at["axis"], idx.ndim
    out = np.zeros(g.shape[:ax] + (at["size"],) + g.shape[ax + k :], g.dtype)
    for pos in np.ndindex(*g.shape):
        out[pos[:ax] + (int(idx[pos[ax : ax + k]]),) + pos[ax + k :]] += g[pos]
    return out


def _np_take_along(a, at):
    x, idx = a
    ax = at["axis"] % x.ndim
    out = np.empty(idx.shape, x.dtype)
    for pos in np.ndindex(*idx.shape):
        out[pos] = x[pos[:ax] + (int(idx[pos]),) + pos[ax + 1 :]]
    return out


def _np_take_along_grad(a, at):
    g, idx = a
    shape = tuple(at["shape"])
    ax = at["axis"] % len(shape)
    out = np.zeros(shape, g.dtype)
    for pos in np.ndindex(*idx.shape):
        out[pos[:ax] + (int(idx[pos]),) + pos[ax + 1 :]] += g[pos]
    return out


entry(
    "take",
    [
        C("rows", F(3, 2, gen="nan"), I(4, gen="index3"), axis=0),
        C("rows_grad", F(3, 5), I(4, gen="index3"), axis=0),
        C("middle_2d_index", F(2, 4, 3), I(2, 3, gen="index4"), axis=1),
        C("last_axis_scalar_index", F(2, 4), I(gen="index4"), axis=-1),
        C("int64", I(4, 3), I(5, gen="index4"), axis=0),
        C("bool", B(3, 4), I(2, gen="index3"), axis=0),
        C("empty_index", F(3, 2), I(0, gen="index3"), axis=0),
    ],
    _np_take,
)

entry(
    "take_grad",
    [
        C("rows_repeated", F(6, 2), I(6, gen="index3"), axis=0, size=3),
        C("middle", F(2, 3, 2, 5), I(3, 2, gen="index4"), axis=1, size=4),
        C("scalar_index", F(2, 3), I(gen="index4"), axis=1, size=4),
    ],
    _np_take_grad,
)

entry(
    "take_along",
    [
        C("last", F(3, 4, gen="nan"), I(3, 2, gen="index4"), axis=1),
        C("first_smaller", F(3, 4), I(5, 2, gen="index3"), axis=0),
        C("middle", F(2, 4, 3), I(2, 6, 3, gen="index4"), axis=1),
        C("int64", I(3, 4), I(3, 4, gen="index4"), axis=-1),
    ],
    _np_take_along,
)

entry(
    "take_along_grad",
    [
        C("last", F(3, 5), I(3, 5, gen="index4"), axis=1, shape=(3, 4)),
        C("first_smaller", F(5, 2), I(5, 2, gen="index3"), axis=0, shape=(3, 4)),
        C("middle", F(2, 3, 2), I(2, 3, 2, gen="index4"), axis=1, shape=(2, 4, 3)),
    ],
    _np_take_along_grad,
)


def _np_scatter_extreme(a, at):
    """(no gradient: fd=None; scatter_reduce builds amax / amin gradients from ties around it)"""
    src, idx, base = a
    out = base.copy()
    ax = at["axis"] % base.ndim
    for pos in np.ndindex(*idx.shape):
        dst = pos[:ax] + (int(idx[pos]),) + pos[ax + 1 :]
        x, cur = src[pos], out[dst]
        if np.isnan(x) or (at["mode"] == "max" and x > cur) or (at["mode"] == "min" and x < cur):
            out[dst] = x
    return out


entry(
    "scatter_extreme_along",
    [
        C("max_last", F(3, 5), I(3, 5, gen="index4"), F(3, 4), axis=1, mode="max", fd=None),
        C("min_first", F(5, 2), I(5, 2, gen="index3"), F(3, 4), axis=0, mode="min", fd=None),
        C("max_middle", F(2, 3, 2), I(2, 3, 2, gen="index4"), F(2, 4, 3), axis=1, mode="max", fd=None),
        C("min_square", F(4, 3), I(4, 3, gen="index3"), F(3, 3), axis=0, mode="min", fd=None),
    ],
    _np_scatter_extreme,
)


def _np_attention_parts(a, at):
    q, k, v = (x.astype(np.float64) for x in a[:3])
    mask = a[3] if at.get("masked") else None
    return q, k, v, mask, a[3 + (1 if mask is not None else 0) :]


def _np_attention_probs(q, k, mask, at):
    """Per row, in loops: the softmax over the keys the row sees (a row that sees none is all zeros)."""
    batch = np.broadcast_shapes(q.shape[:-2], k.shape[:-2])
    lq, lk = q.shape[-2], k.shape[-2]
    p, lse = np.zeros(batch + (lq, lk)), np.full(batch + (lq,), -np.inf)
    qb_all, kb_all = np.broadcast_to(q, batch + q.shape[-2:]), np.broadcast_to(k, batch + k.shape[-2:])
    full_mask = None if mask is None else np.broadcast_to(mask, batch + (lq, lk))
    for b in np.ndindex(*batch):
        for i in range(lq):
            s = np.array([at["scale"] * float(qb_all[b][i] @ kb_all[b][j]) for j in range(lk)])
            if full_mask is not None:
                s = s + full_mask[b + (i,)]
            if at.get("causal"):
                s[i + 1 :] = -np.inf
            seen = ~np.isneginf(s)
            if seen.any():
                top = s[seen].max()
                w = np.where(seen, np.exp(s - top), 0.0)
                p[b + (i,)] = w / w.sum()
                lse[b + (i,)] = math.log(w.sum()) + top
    return p, lse


def _np_attention(a, at):
    q, k, v, mask, _ = _np_attention_parts(a, at)
    p, lse = _np_attention_probs(q, k, mask, at)
    return [np.matmul(p, v), lse]


def _np_attention_backward(a, at):
    q, k, v, mask, (lse, d, g) = _np_attention_parts(a, at)
    s = np.matmul(q, np.swapaxes(k, -1, -2)) * at["scale"]
    if mask is not None:
        s = s + mask
    if at.get("causal"):
        s = np.where(np.tril(np.ones(s.shape[-2:], bool)), s, -np.inf)
    p = np.exp(s - lse[..., None])  # (with the given lse, as the op recomputes its probabilities)
    g = g.astype(np.float64)
    ds = p * (np.matmul(g, np.swapaxes(v, -1, -2)) - d[..., None])
    dq, dk = np.matmul(ds, k) * at["scale"], np.matmul(np.swapaxes(ds, -1, -2), q) * at["scale"]
    return [dq, dk, np.matmul(np.swapaxes(p, -1, -2), g)] + ([ds] if mask is not None else [])


def _masked_rows(*shape):
    """An additive mask with -inf entries that leave key 0 to every row."""
    return In(tuple(shape), "float", "attention_mask")


entry(
    "attention",
    [
        C("plain", F(2, 3, 4), F(2, 5, 4), F(2, 5, 3), scale=0.5),
        C("causal", F(2, 1, 4, 4), F(2, 1, 4, 4), F(2, 1, 4, 2), scale=0.5, causal=True),
        C(
            "masked_bcast",
            F(2, 2, 3, 4),
            F(1, 2, 5, 4),
            F(2, 2, 5, 3),
            _masked_rows(2, 1, 1, 5),
            scale=0.25,
            masked=True,
        ),
        C("causal_masked", F(3, 3, 2), F(3, 4, 2), F(3, 4, 2), _masked_rows(3, 4), scale=1.0, causal=True, masked=True),
        C("nan", F(2, 3, 4, gen="nan"), F(2, 3, 4), F(2, 3, 2), scale=0.5),
        C("vector_rows", F(2, 2, 3, 8), F(1, 2, 4, 8), F(2, 1, 4, 4), scale=0.5),
        C(
            "vector_rows_causal_masked",
            F(2, 3, 8),
            F(2, 4, 8),
            F(2, 4, 12),
            _masked_rows(2, 1, 4),
            scale=0.5,
            causal=True,
            masked=True,
        ),
    ],
    _np_attention,
)


def _attention_backward_cases():
    """The gradient for q, k, v (and the mask, when masked) at once: plain, causal with a mask, broadcast batch dims
    with feature sizes vector widths divide (the vector-row kernel), and causal with more keys than queries (keys no
    query sees get zero dk, dv)."""
    lse, d = (lambda *s: F(*s, gen="lse")), F
    return [
        C("plain", F(2, 3, 4), F(2, 5, 4), F(2, 5, 3), lse(2, 3), d(2, 3), F(2, 3, 3), scale=0.5, fd=None),
        C(
            "causal_masked",
            F(3, 3, 2),
            F(3, 4, 2),
            F(3, 4, 2),
            _masked_rows(3, 4),
            lse(3, 3),
            d(3, 3),
            F(3, 3, 2),
            scale=1.0,
            causal=True,
            masked=True,
            fd=None,
        ),
        C(
            "masked",
            F(2, 3, 4),
            F(2, 5, 4),
            F(2, 5, 3),
            _masked_rows(2, 3, 5),
            lse(2, 3),
            d(2, 3),
            F(2, 3, 3),
            scale=0.5,
            masked=True,
            fd=None,
        ),
        C(
            "vector_rows",
            F(2, 2, 3, 8),
            F(1, 2, 4, 8),
            F(2, 1, 4, 4),
            _masked_rows(2, 1, 1, 4),
            lse(2, 2, 3),
            d(2, 2, 3),
            F(2, 2, 3, 4),
            scale=0.5,
            causal=True,
            masked=True,
            fd=None,
        ),
        C(
            "causal_more_keys_vector_rows",
            F(2, 3, 8),
            F(2, 6, 8),
            F(2, 6, 4),
            lse(2, 3),
            d(2, 3),
            F(2, 3, 4),
            scale=0.5,
            causal=True,
            fd=None,
        ),
    ]


entry("attention_backward", _attention_backward_cases(), _np_attention_backward)


def _rows_along(x, axis):
    """(row positions, positions along the axis): every 1-D row of x along `axis`, as index tuples."""
    ax = axis % x.ndim
    rest = [range(n) for i, n in enumerate(x.shape) if i != ax]
    for pos in itertools.product(*rest):
        yield [pos[:ax] + (j,) + pos[ax:] for j in range(x.shape[ax])]


def _sort_key(v, descending):
    """Python sort key: NaN above every number, reversed when descending (sorted() is stable)."""
    v = v.item()
    nan = isinstance(v, float) and math.isnan(v)
    rank = (1, 0.0) if nan else (0, v)
    return (-rank[0], -rank[1]) if descending else rank


def _np_argsort(a, at):
    x = a[0]
    out = np.empty(x.shape, np.int64)
    for row in _rows_along(x, at["axis"]):
        order = sorted(range(len(row)), key=lambda j: _sort_key(x[row[j]], at.get("descending")))
        for pos, j in zip(row, order):
            out[pos] = j
    k = at.get("k")
    if k is not None:
        out = np.take(out, np.arange(k), axis=at["axis"])
    return out


def _np_cumsum(a, at):
    x = a[0].astype(np.int64) if a[0].dtype == bool else a[0]
    out = np.zeros(x.shape, np.float64 if x.dtype.kind == "f" else np.int64)
    for row in _rows_along(x, at["axis"]):
        acc = 0
        for pos in reversed(row) if at.get("reverse") else row:
            acc = acc + x[pos].item()
            out[pos] = acc
    return out


entry(
    "argsort",
    [
        C("last", F(3, 5, gen="distinct"), axis=-1),
        C("first_desc", F(4, 3, gen="distinct"), axis=0, descending=True),
        C("middle", F(2, 6, 3, gen="distinct"), axis=1),
        C("ties_stable", F(3, 7, gen="grid"), axis=1),
        C("ties_stable_desc", F(3, 7, gen="grid"), axis=1, descending=True),
        C("nan", F(3, 6, gen="nan"), axis=1),
        C("nan_desc", F(3, 6, gen="nan"), axis=1, descending=True),
        C("int64", I(4, 9), axis=1, descending=True),
        C("bool", B(2, 8), axis=1),
        C("one", F(3, 1), axis=1),
        C("medium", F(4, 300, gen="distinct"), axis=1, descending=True),
        C("top3", F(3, 8, gen="distinct"), axis=1, descending=True, k=3),
        C("bottom2_first", F(6, 4, gen="distinct"), axis=0, k=2),
        C("top_ties_nan", F(3, 9, gen="nan"), axis=-1, descending=True, k=4),
        C("top_grid_ties", F(2, 9, gen="grid"), axis=1, descending=True, k=5),
        C("top0", F(2, 5), axis=1, k=0),
        C("top_all", F(2, 5, gen="distinct"), axis=1, k=5),
        C("medium_top", I(3, 400), axis=1, descending=True, k=7),
    ],
    _np_argsort,
)

entry(
    "cumsum",
    [
        C("last", F(3, 5), axis=-1),
        C("first_reverse", F(4, 3), axis=0, reverse=True),
        C("middle", F(2, 6, 3), axis=1),
        C("int64", I(4, 5), axis=1),
        C("bool", B(3, 6), axis=0, reverse=True),
        C("nan", F(3, 6, gen="nan"), axis=1),
        C("medium", F(3, 400), axis=1),
    ],
    _np_cumsum,
)


def _np_allreduce(a, at):
    """A world of one process (the suite's): every operand's elements in row-major order, one after the other."""
    values = [x for arr in a for x in np.asarray(arr).reshape(-1).tolist()]
    return np.array(values, dtype=a[0].dtype)


entry(
    "allreduce",
    [
        C("one", F(3, 4), reduce="sum"),
        C("bucket", F(5), F(2, 3), F(), reduce="avg"),
        C("bucket_sum", F(2, 2, 2), F(3, 1), reduce="sum"),
        C("max", F(4, 3), F(2), reduce="max"),
        C("min", F(6), reduce="min"),
        C("int64", I(3, 2), I(4), reduce="sum"),
        C("int64_max", I(5), reduce="max"),
        C("empty", F(0, 3), F(2), reduce="sum"),
        C("nan", F(3, 4, gen="nan"), reduce="avg"),
        C("medium", F(40, 30), F(300), reduce="avg"),
    ],
    _np_allreduce,
)


# -- helpers shared by the test files ------------------------------------------------------------------------------
def assert_same(got, want, dtype: str, what: str = "", tol=None) -> None:
    """Same shape and dtype; floats within `tol` (the allowed |difference|, elementwise or scalar, from
    tolerance.graph_tolerance; None: exactly equal), NaN where NaN; others exactly equal."""
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape, f"{what}: shape {got.shape} != {want.shape}"
    assert got.dtype.name == dtype, f"{what}: dtype {got.dtype.name}, expected {dtype}"
    assert_close(got, want.astype(dtype), tol, what)


def loss_graph(case: Case, dtype, weight_dtype=None):
    """(graph, wrt, weights): the case's op followed by the scalar sum over its float outputs of
    sum(out * weights_out); wrt = the op's float inputs, weights = one array per float output."""
    g = case.graph(dtype)
    n_in = len(g.inputs)
    rng = np.random.default_rng(zlib.crc32((case.id + "/weights").encode()))
    loss, weights = None, []
    for j, out in enumerate(o for o in g.outputs if o.type.is_float):
        wt = TensorType(out.shape, weight_dtype or out.dtype)
        w = g.add_input(wt, f"weights{j}")
        weights.append(np.array(rng.uniform(0.5, 1.5, wt.shape) * rng.choice([-1.0, 1.0], wt.shape), dtype=wt.dtype))
        term = g.emit("sum", g.emit("mul", out, w), axes=None, keepdims=False)
        loss = term if loss is None else g.emit("add", loss, term)
    g.outputs = [loss]
    wrt = [v for v in g.inputs[:n_in] if v.type.is_float]
    return g, wrt, weights


# -- dtype matrix of the elementwise ops -----------------------------------------------------------------------------
# Every elementwise / broadcast op is applied to every combination of input dtypes its type rule accepts.
# MATRIX_ATTRS gives the attribute sets of ops that need attributes.
MATRIX_ATTRS = {
    "cast": [{"dtype": d} for d in ("float32", "float64", "int64", "bool")],
    "broadcast_to": [{"shape": (2, 3)}],
}
MATRIX_OPS = sorted(n for n, d in OPS.items() if d.pattern in ("elementwise", "broadcast") and d.num_inputs)
_MATRIX_VALUES = {
    "float32": [[1.5, -0.5, 2.0], [0.25, -1.75, 3.0]],
    "float64": [[1.5, -0.5, 2.0], [0.25, -1.75, 3.0]],
    "int64": [[2, -1, 3], [0, 1, -2]],
    "bool": [[True, False, True], [False, True, False]],
}
# Right-hand operands that keep the reference defined: no integer division by zero, no negative integer powers.
_MATRIX_RHS = {
    "div": {"int64": [[2, -1, 3], [1, 1, -2]], "bool": [[True, True, True], [True, True, True]]},
    "pow": {"int64": [[2, 0, 3], [1, 1, 2]]},
}


def dtype_matrix(op: str):
    """(graph, arrays, labels): one graph whose outputs are `op` applied to each accepted dtype combination."""
    from graphnn.ir import IRError

    dtypes = ("float32", "float64", "int64", "bool")
    n = OPS[op].num_inputs
    g = Graph(f"{op}-dtypes")
    ins, arrays = {}, []
    for pos in range(n):
        for d in dtypes:
            ins[pos, d] = g.add_input(TensorType((2, 3), d), f"x{pos}_{d}")
            vals = _MATRIX_RHS.get(op, {}).get(d) if pos else None
            arrays.append(np.array(vals or _MATRIX_VALUES[d], dtype=d))
    labels = []
    for combo in itertools.product(dtypes, repeat=n):
        for attrs in MATRIX_ATTRS.get(op, [{}]):
            try:
                out = g.emit(op, *[ins[p, d] for p, d in enumerate(combo)], **attrs)
            except IRError:
                continue
            g.outputs.append(out)
            labels.append(f"{op}({', '.join(combo)})" + (f" {attrs}" if attrs else ""))
    return g, arrays, labels


# -- scan: a loop with a body subgraph (cases built per float dtype; independent formulations per case) -----------
def _body(fn, in_types):
    """PerDtype scan body: a Graph over inputs of `in_types` ((shape, dtype) with "float" allowed) -> fn(g, *ins)."""

    def build(dtype):
        from graphnn.ir.ops.scan import Body

        g = Graph("body")
        ins = [g.add_input(TensorType(s, dtype if d == "float" else d), f"b{i}") for i, (s, d) in enumerate(in_types)]
        g.outputs = list(fn(g, *ins))
        return Body(g)

    return PerDtype(build)


def _rnn_body(g, h, x, w):
    z = g.emit("reshape", g.emit("matmul", g.emit("reshape", h, shape=(1, 3)), w), shape=(3,))
    h2 = g.emit("tanh", g.emit("add", z, x))
    return h2, g.emit("mul", h2, x)


def _np_rnn(reverse):
    def run(a, at):
        h, xs, w = a
        h = h.astype(np.float64)
        ys = np.zeros(xs.shape)
        for t in reversed(range(len(xs))) if reverse else range(len(xs)):
            h = np.tanh(h @ w + xs[t])
            ys[t] = h * xs[t]
        return [h, ys]

    return run


def _two_carry_body(g, c1, c2, a, b):
    n1 = g.emit("add", g.emit("mul", c1, a), b)
    n2 = g.emit("maximum", c2, a)
    return n1, n2, g.emit("sub", n1, n2)


def _np_two_carry(a, at):
    c1, c2, xa, xb = a
    ys = np.zeros(xa.shape)
    for t in range(len(xa)):
        c1, c2 = c1 * xa[t] + xb[t], np.maximum(c2, xa[t])
        ys[t] = c1 - c2
    return [c1, c2, ys]


def _counter_body(g, cnt, s, x):
    cnt2 = g.emit(
        "add", cnt, g.emit("cast", g.emit("gt", x, g.emit("full", value=0.0, shape=(), dtype=x.dtype)), dtype="int64")
    )
    s2 = g.emit("add", s, g.emit("mul", x, x))
    return cnt2, s2, g.emit("mul", x, s2)


def _np_counter(a, at):
    cnt, s, xs = a
    cnt, s = int(cnt), float(s)
    ys = np.zeros(xs.shape)
    for t in range(len(xs)):
        cnt += int(xs[t] > 0)
        s += float(xs[t]) ** 2
        ys[t] = xs[t] * s
    return [np.int64(cnt), s, ys]


def _homes_body(g, h, s, p, q, x):
    """Carries the loop keeps in place (codegen/scan_loop.py): h is also a stacked output and has its history
    stacked, s has its history stacked, p and q swap places (the body passes inputs through)."""
    h2 = g.emit("tanh", g.emit("add", g.emit("mul", h, x), s))
    return h2, g.emit("add", s, x), q, p, h2, s, h, x


def _np_homes(reverse):
    def run(a, at):
        h, s, p, q, xs = (v.astype(np.float64) for v in a)
        ys = [np.zeros(xs.shape) for _ in range(4)]
        for t in reversed(range(len(xs))) if reverse else range(len(xs)):
            ys[1][t], ys[2][t], ys[3][t] = s, h, xs[t]
            h, s, p, q = np.tanh(h * xs[t] + s), s + xs[t], q, p
            ys[0][t] = h
        return [h, s, p, q] + ys

    return run


def _homes_case(name, length, reverse=False):
    return C(
        name,
        F(3),
        F(3),
        F(3),
        F(3),
        F(length, 3),
        n_carry=4,
        n_xs=1,
        length=length,
        reverse=reverse,
        numpy=_np_homes(reverse),
        body=_body(_homes_body, [((3,), "float")] * 5),
    )


entry(
    "scan",
    [
        C(
            "rnn",
            F(3),
            F(4, 3),
            F(3, 3),
            body=_body(_rnn_body, [((3,), "float"), ((3,), "float"), ((3, 3), "float")]),
            n_carry=1,
            n_xs=1,
            length=4,
            numpy=_np_rnn(False),
        ),
        C(
            "rnn_reverse",
            F(3),
            F(4, 3),
            F(3, 3),
            body=_body(_rnn_body, [((3,), "float"), ((3,), "float"), ((3, 3), "float")]),
            n_carry=1,
            n_xs=1,
            length=4,
            reverse=True,
            numpy=_np_rnn(True),
        ),
        C(
            "two_carries",
            F(2),
            F(2),
            F(5, 2),
            F(5, 2),
            n_carry=2,
            n_xs=2,
            length=5,
            numpy=_np_two_carry,
            body=_body(_two_carry_body, [((2,), "float")] * 4),
        ),
        C(
            "int_carry",
            I(),
            F(),
            F(6),
            n_carry=2,
            n_xs=1,
            length=6,
            numpy=_np_counter,
            body=_body(_counter_body, [((), "int64"), ((), "float"), ((), "float")]),
        ),
        _homes_case("carry_homes", 5),
        _homes_case("carry_homes_reverse", 4, reverse=True),
        _homes_case("carry_homes_one_step", 1),
        _homes_case("carry_homes_no_step", 0),
    ],
)

# special functions (accuracy against mpmath and PyTorch: tests/test_special_fns.py)
entry("erfc", _unary_cases(nan=True) + [C("wide", F(12, gen="wide"))], _elementwise(_nan_aware(math.erfc)))
entry("erfcx", _unary_cases(nan=True))
entry("erfinv", _unit_cases())
entry("lgamma", _unary_cases("pos", nan=True) + [C("signed", F(3, 4))])
entry("digamma", _unary_cases("pos", nan=True) + [C("signed", F(3, 4))])
entry("trigamma", [C("2x3", F(2, 3, gen="pos"), fd=None), C("nan", F(3, 4, gen="nan"), fd=None)])
