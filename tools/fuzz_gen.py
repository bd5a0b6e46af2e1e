"""Random well-typed IR graphs for differential fuzzing (tests/test_fuzz.py and `python -m graphnn.tools.fuzz`).

`build_case(source)` grows a DAG from random inputs (float32/float64/int64/bool, small random shapes) by
applying randomly chosen registered ops (attributes drawn per op: views, reductions, broadcasting binaries,
matmul, convolutions and pooling with valid geometry, one_hot, scan with a random body, ...) to operands picked
among the values built so far, so subexpressions are shared; see fuzz_builder for how candidates are kept
well typed and well conditioned. Decisions come from a `Source`: `RngSource` (a NumPy Generator: seeds for
the tools entry point) or `DrawSource` (hypothesis draws, which hypothesis shrinks).
"""

from __future__ import annotations

import numpy as np

from graphnn.ir.graph import Graph
from graphnn.ir.ops.scan import Body
from graphnn.ir.registry import OPS, IRError, family, infer_node
from graphnn.ir.types import TensorType, broadcast_shapes

from .fuzz_builder import MAX_ELEMS, Builder, DrawSource, FuzzCase, RngSource, Source, numel


def _ops(trait) -> tuple:
    """Names of the drawable ops with a fuzz trait, in registry order (their definitions say which)."""
    return tuple(op for op, d in OPS.items() if not d.fuzz.skip and trait(d.fuzz))


def skipped_ops() -> frozenset:
    """Ops the fuzzer does not draw (they need context it does not have: a compiled function, constant folding)."""
    return frozenset(op for op, d in OPS.items() if d.fuzz.skip)


__all__ = [
    "build_case",
    "case_from_seed",
    "covered_ops",
    "DrawSource",
    "RngSource",
    "Source",
    "FuzzCase",
    "skipped_ops",
]


# -- shapes ---------------------------------------------------------------------------------------------------
def _broadcast_partner(src: Source, shape: tuple) -> tuple:
    """A shape that broadcasts with `shape`: a suffix of it with some dimensions set to 1, maybe extra leading dims."""
    keep = src.int(0, len(shape))
    out = [1 if src.chance(0.3) else d for d in shape[len(shape) - keep :]]
    if src.chance(0.15) and len(out) < 4:
        out = [src.pick((2, 3))] + out if numel(shape) * 3 <= MAX_ELEMS else [1] + out
    return tuple(out)


def _reshape_target(src: Source, shape: tuple) -> tuple:
    n = numel(shape)
    factors, m, p = [], n, 2
    while m > 1:
        while m % p == 0:
            factors.append(p)
            m //= p
        p += 1
    how = src.int(0, 3)
    if how == 0:
        return (n,)
    if how == 1 and len(shape) >= 2:  # merge two adjacent dims
        i = src.int(0, len(shape) - 2)
        return shape[:i] + (shape[i] * shape[i + 1],) + shape[i + 2 :]
    if how == 2:  # insert a 1
        i = src.int(0, len(shape))
        return shape[:i] + (1,) + shape[i:]
    dims = []
    for f in factors:  # random grouping of the prime factors
        if dims and src.chance(0.5):
            dims[-1] *= f
        else:
            dims.append(f)
    return tuple(dims[:4]) if len(dims) <= 4 else tuple(dims[:3]) + (numel(dims[3:]),)


def _perm(src: Source, n: int) -> tuple:
    rest, out = list(range(n)), []
    while rest:
        out.append(rest.pop(src.int(0, len(rest) - 1)))
    return tuple(out)


def _axes(src: Source, ndim: int):
    how = src.int(0, 3)
    if how == 0 or ndim == 0:
        return None if src.chance(0.8) else ()
    if how == 1:
        return src.int(-ndim, ndim - 1)
    return tuple(sorted({src.int(0, ndim - 1) for _ in range(src.int(1, ndim))}))


# -- op generators: (builder) -> (inputs, attrs) or None ----------------------------------------------------
def _domain(op: str, i: int) -> str:
    """The value domain an op's definition asks for its operand i ('any', 'pos', 'away' from 0)."""
    dom = OPS[op].fuzz.domain
    return dom if isinstance(dom, str) else dom[i]


def _float_only(op: str) -> bool:
    try:
        infer_node(op, [TensorType((), "int64")] * (OPS[op].num_inputs or 1), {})
    except IRError:
        return True
    return False


def _unary(op):
    float_only = _float_only(op)

    def gen(b: Builder):
        if b.profile == "smooth" and _domain(op, 0) == "pos":
            x = b.operand(
                lambda v: b.is_float(v) and v.type.size and b.arr(v).min() >= 0.1,
                lambda: b.new_input(b.shape(), "float64", "pos"),
            )
        else:
            x = b.operand((lambda v: b.is_float(v)) if float_only else (lambda v: True))
        return ([x], {}) if x is not None else None

    return gen


def _binary(op):
    def gen(b: Builder):
        if b.profile == "smooth" and _domain(op, 0) == "pos":
            x = b.operand(
                lambda v: b.is_float(v) and v.type.size and b.arr(v).min() >= 0.1,
                lambda: b.new_input(b.shape(), "float64", "pos"),
            )
        else:
            x = b.operand()
        if x is None:
            return None
        away = _domain(op, 1) == "away"
        kind = "away" if away else "normal"

        def fits(v):
            try:
                broadcast_shapes(v.shape, x.shape)
            except ValueError:
                return False
            return not (b.profile == "smooth" and away and (not v.type.size or np.abs(b.arr(v)).min() < 0.1))

        def make():
            shape = _broadcast_partner(b.src, x.shape)
            return b.new_input(shape, b.float_dtype() if away else b.any_dtype(), kind)

        y = b.operand(fits, make)
        if y is None:
            return None
        return ([y, x] if b.src.chance(0.3) else [x, y]), {}

    return gen


def _select(b: Builder):
    x = b.operand()
    if x is None:
        return None
    c = b.operand(
        lambda v: v.dtype == "bool" and _fits(v, x), lambda: b.new_input(_broadcast_partner(b.src, x.shape), "bool")
    )
    y = b.operand(lambda v: _fits(v, x), lambda: b.new_input(_broadcast_partner(b.src, x.shape), x.dtype))
    return ([c, x, y], {}) if c is not None and y is not None else None


def _fits(v, x) -> bool:
    try:
        broadcast_shapes(v.shape, x.shape)
        return True
    except ValueError:
        return False


def _cast(b: Builder):
    x = b.operand()
    return ([x], {"dtype": b.any_dtype()}) if x is not None else None


def _full(b: Builder):
    dt = b.any_dtype()
    val = {"bool": b.src.chance(0.5), "int64": b.src.int(-2, 3)}.get(dt, b.src.int(-8, 8) / 4)
    return [], {"value": val, "shape": b.shape(2), "dtype": dt}


def _reshape(b: Builder):
    x = b.operand()
    return ([x], {"shape": _reshape_target(b.src, x.shape)}) if x is not None else None


def _transpose(b: Builder):
    x = b.operand(lambda v: v.type.ndim >= 2)
    return ([x], {"perm": _perm(b.src, x.type.ndim)}) if x is not None else None


def _broadcast_to(b: Builder):
    x = b.operand()
    if x is None:
        return None
    shape = tuple(b.src.pick((2, 3)) if d == 1 and b.src.chance(0.6) else d for d in x.shape)
    while len(shape) < 4 and b.src.chance(0.3):
        shape = (b.src.int(1, 3),) + shape
    return [x], {"shape": shape}


def _slice(b: Builder):
    x = b.operand(lambda v: v.type.ndim >= 1)
    if x is None:
        return None
    starts, stops, steps = [], [], []
    for d in x.shape:
        s = b.src.int(0, max(0, d - 1))
        e = b.src.int(s + 1, d) if d > s and b.src.chance(0.97) else s
        starts.append(s)
        stops.append(e)
        steps.append(b.src.pick((1, 1, 2, 3)))
    return [x], {"starts": tuple(starts), "stops": tuple(stops), "steps": tuple(steps)}


def _slice_grad(b: Builder):
    x = b.operand(lambda v: v.type.ndim >= 1)
    if x is None:
        return None
    starts = tuple(b.src.int(0, 2) for _ in x.shape)
    steps = tuple(b.src.pick((1, 2)) for _ in x.shape)
    shape = tuple(s + p * (n - 1) + 1 + b.src.int(0, 1) if n else s for s, p, n in zip(starts, steps, x.shape))
    return [x], {"shape": shape, "starts": starts, "steps": steps}


def _concat(b: Builder):
    x = b.operand(lambda v: v.type.ndim >= 1)
    if x is None:
        return None
    axis = b.src.int(0, x.type.ndim - 1)
    parts = [x]
    for _ in range(b.src.int(0, 2)):
        size = b.src.int(0, 3)
        shape = tuple(size if i == axis else s for i, s in enumerate(x.shape))
        fits = lambda v, shape=shape: v.dtype == x.dtype and v.shape == shape
        y = b.operand(fits, lambda shape=shape: b.new_input(shape, x.dtype))
        if y is not None:
            parts.insert(b.src.int(0, len(parts)), y)
    return parts, {"axis": axis}


def _reduce(op):
    def gen(b: Builder):
        x = b.operand((lambda v: v.type.ndim >= 1) if op == "argmax" else (lambda v: True))
        if x is None:
            return None
        if op == "argmax":
            return [x], {"axis": b.src.int(-x.type.ndim, x.type.ndim - 1), "keepdims": b.src.chance(0.3)}
        return [x], {"axes": _axes(b.src, x.type.ndim), "keepdims": b.src.chance(0.3)}

    return gen


def _matmul(b: Builder):
    x = b.operand(lambda v: b.is_float(v) and v.type.ndim >= 2)
    if x is None:
        return None
    k = x.shape[-1]

    def fits(v):
        if v.dtype != x.dtype or v.type.ndim < 2 or v.shape[-2] != k:
            return False
        try:
            broadcast_shapes(v.shape[:-2], x.shape[:-2])
            return True
        except ValueError:
            return False

    batch = _broadcast_partner(b.src, x.shape[:-2]) if x.type.ndim > 2 and b.src.chance(0.5) else ()
    y = b.operand(fits, lambda: b.new_input(batch + (k, b.src.int(1, 5)), x.dtype))
    return ([x, y], {}) if y is not None else None


def _geometry(b: Builder, nsp: int) -> dict:
    return {
        "stride": tuple(b.src.pick((1, 1, 2)) for _ in range(nsp)),
        "padding": tuple((b.src.int(0, 1), b.src.int(0, 1)) for _ in range(nsp)),
        "dilation": tuple(b.src.pick((1, 1, 2)) for _ in range(nsp)),
    }


def _image(b: Builder):
    """An operand shaped (N, C, *spatial) with 1 or 2 spatial dims, or a new one."""

    def make():
        nsp = b.src.int(1, 2)
        return b.new_input(
            (b.src.int(1, 2), b.src.int(1, 3)) + tuple(b.src.int(3, 6) for _ in range(nsp)), b.float_dtype()
        )

    return b.operand(lambda v: b.is_float(v) and 3 <= v.type.ndim <= 4, make)


def _conv_shapes(b: Builder, x_shape: tuple):
    nsp = len(x_shape) - 2
    c = x_shape[1]
    groups = b.src.pick([g for g in (1, 2, 3) if c % g == 0])
    o = groups * b.src.int(1, 2)
    w_shape = (o, c // groups) + tuple(b.src.int(1, 3) for _ in range(nsp))
    return w_shape, {**_geometry(b, nsp), "groups": groups}


def _conv(b: Builder):
    x = _image(b)
    if x is None:
        return None
    w_shape, attrs = _conv_shapes(b, x.shape)
    w = b.operand(lambda v: v.type == TensorType(w_shape, x.dtype), lambda: b.new_input(w_shape, x.dtype))
    return ([x, w], attrs) if w is not None else None


def _conv_out(x_shape, w_shape, attrs, dtype):
    try:
        return infer_node("conv", [TensorType(x_shape, dtype), TensorType(w_shape, dtype)], attrs)[0]
    except IRError:
        return None


def _conv_grad(op):
    def gen(b: Builder):
        x = _image(b)
        if x is None:
            return None
        w_shape, attrs = _conv_shapes(b, x.shape)
        out = _conv_out(x.shape, w_shape, attrs, x.dtype)
        if out is None:
            return None
        g = b.operand(lambda v: v.type == out, lambda: b.new_input(out.shape, out.dtype))
        if g is None:
            return None
        if op == "conv_grad_weight":
            return [x, g], {**attrs, "weight_shape": w_shape}
        w = b.operand(lambda v: v.type == TensorType(w_shape, x.dtype), lambda: b.new_input(w_shape, x.dtype))
        return ([g, w], {**attrs, "input_shape": x.shape}) if w is not None else None

    return gen


def _im2col(b: Builder):
    x = _image(b)
    if x is None:
        return None
    nsp = x.type.ndim - 2
    return [x], {"kernel": tuple(b.src.int(1, 3) for _ in range(nsp)), **_geometry(b, nsp)}


def _col2im(b: Builder):
    x = _image(b)  # only its shape is used: the columns come from elsewhere
    if x is None:
        return None
    nsp = x.type.ndim - 2
    attrs = {"kernel": tuple(b.src.int(1, 3) for _ in range(nsp)), **_geometry(b, nsp)}
    try:
        col = infer_node("im2col", [x.type], attrs)[0]
    except IRError:
        return None
    c = b.operand(lambda v: v.type == col, lambda: b.new_input(col.shape, col.dtype))
    return ([c], {**attrs, "input_shape": x.shape}) if c is not None else None


def _pool_attrs(b: Builder, x_shape: tuple) -> dict:
    nsp = b.src.int(1, min(2, len(x_shape) - 1))
    k = tuple(b.src.int(1, 3) for _ in range(nsp))
    return {
        "kernel": k,
        "stride": tuple(b.src.int(1, 3) for _ in range(nsp)),
        "padding": tuple(b.src.int(0, kk // 2) for kk in k),
        "dilation": tuple(b.src.pick((1, 1, 2)) for _ in range(nsp)),
        "ceil_mode": b.src.chance(0.3),
    }


def _max_pool(op):
    def gen(b: Builder):
        x = b.operand(lambda v: b.is_float(v) and v.type.ndim >= 2)
        if x is None:
            return None
        attrs = _pool_attrs(b, x.shape)
        if op == "max_pool":
            return [x], attrs
        try:
            out = infer_node("max_pool", [x.type], attrs)[0]
        except IRError:
            return None
        want = out if op == "max_pool_grad" else x.type
        g = b.operand(lambda v: v.type == want, lambda: b.new_input(want.shape, want.dtype))
        return ([x, g], attrs) if g is not None else None

    return gen


def _one_hot(b: Builder):
    x = b.operand(lambda v: v.dtype == "int64", lambda: b.new_input(b.shape(3), "int64"))
    if x is None:
        return None
    dtypes = b.floats() + (("int64", "bool") if b.profile != "smooth" else ())
    return [x], {"num_classes": b.src.int(1, 5), "dtype": b.src.pick(dtypes)}


def _index(b: Builder, shape: tuple, n: int):
    """A new int64 input of valid indices into a dimension of size n, or None when no input may be added."""
    return b.new_input(shape, "int64", ("index", n)) if b.can_add_input() else None


def _take(b: Builder):
    x = b.operand(lambda v: v.type.ndim >= 1 and v.type.size >= 1)
    if x is None:
        return None
    axis = b.src.int(0, x.type.ndim - 1)
    rest = x.type.size // x.shape[axis]
    ishape = tuple(d for d in b.shape(2) if rest * d <= MAX_ELEMS)
    if rest * numel(ishape) > MAX_ELEMS:
        ishape = ()
    idx = _index(b, ishape, x.shape[axis])
    return ([x, idx], {"axis": axis - x.type.ndim if b.src.chance(0.3) else axis}) if idx is not None else None


def _take_grad(b: Builder):
    g = b.operand(lambda v: b.is_float(v) and v.type.ndim >= 1)
    if g is None:
        return None
    axis = b.src.int(0, g.type.ndim - 1)
    span = b.src.int(0, min(2, g.type.ndim - axis))
    size = b.src.int(1, 5)
    if numel(g.shape[:axis]) * size * numel(g.shape[axis + span :]) > MAX_ELEMS:
        return None
    idx = _index(b, g.shape[axis : axis + span], size)
    return ([g, idx], {"axis": axis, "size": size}) if idx is not None else None


def _take_along(b: Builder):
    x = b.operand(lambda v: v.type.ndim >= 1 and v.type.size >= 1)
    if x is None:
        return None
    axis = b.src.int(0, x.type.ndim - 1)
    ishape = tuple(b.src.int(1, 5) if d == axis else b.src.int(1, s) for d, s in enumerate(x.shape))
    if numel(ishape) > MAX_ELEMS:
        return None
    idx = _index(b, ishape, x.shape[axis])
    return ([x, idx], {"axis": axis}) if idx is not None else None


def _take_along_grad(b: Builder):
    g = b.operand(lambda v: b.is_float(v) and v.type.ndim >= 1)
    if g is None:
        return None
    axis = b.src.int(0, g.type.ndim - 1)
    shape = tuple(b.src.int(1, 5) if d == axis else s + b.src.int(0, 1) for d, s in enumerate(g.shape))
    if numel(shape) > MAX_ELEMS:
        return None
    idx = _index(b, g.shape, shape[axis])
    return ([g, idx], {"axis": axis, "shape": shape}) if idx is not None else None


def _scatter_extreme(b: Builder):
    src = b.operand(lambda v: b.is_float(v) and v.type.ndim >= 1)
    if src is None or not b.can_add_input():
        return None
    axis = b.src.int(0, src.type.ndim - 1)
    shape = tuple(b.src.int(1, 5) if d == axis else s + b.src.int(0, 1) for d, s in enumerate(src.shape))
    if numel(shape) > MAX_ELEMS:
        return None
    base = b.new_input(shape, src.dtype)
    idx = _index(b, src.shape, shape[axis])
    mode = "max" if b.src.chance(0.5) else "min"
    return ([src, idx, base], {"axis": axis, "mode": mode}) if idx is not None else None


def _attention(op):
    """attention / attention_backward on new float inputs of a random small geometry (a causal flag, an additive mask
    with some -inf entries that never remove a whole row, the scale)."""

    def gen(b: Builder):
        dt = b.float_dtype()
        batch = tuple(b.src.int(1, 3) for _ in range(b.src.int(0, 2)))
        lq, lk, e, ev = b.src.int(1, 4), b.src.int(1, 5), b.src.int(1, 4), b.src.int(1, 3)
        causal, masked = b.src.chance(0.4), b.src.chance(0.4)
        needed = 3 + masked + (op != "attention")
        if len(b.g.inputs) + needed > b.max_inputs:
            return None
        q = b.new_input(batch + (lq, e), dt)
        k = b.new_input(batch + (lk, e), dt)
        ins = [q, k, b.new_input(batch + (lk, ev), dt)]
        if masked:
            m = b.new_input(batch[:1] + (1, lk), dt)
            arr = b.arr(m)
            arr[...] = np.where(b.rng.random(arr.shape) < 0.3, -np.inf, arr)
            arr[..., 0] = 0.0  # (key 0 is always seen: no row loses every key)
            ins.append(m)
        attrs = {"scale": b.src.pick((0.5, 1.0, 0.3)), "causal": causal, "masked": masked}
        if op == "attention":
            return ins, attrs
        g = b.new_input(batch + (lq, ev), dt)
        out = b.add("attention", ins, attrs)
        if out is None:
            return None
        lse = out.producer.outputs[1]
        prod = b.add("mul", [g, out], {})
        d = b.add("sum", [prod], {"axes": (-1,), "keepdims": False}) if prod is not None else None
        if d is None:
            return None
        return ins + [lse, d, g], attrs

    return gen


def _along_axis(extra):
    """An operand with at least one dimension, an axis of it and the attributes `extra(b)` adds."""

    def gen(b: Builder):
        x = b.operand(lambda v: v.type.ndim >= 1)
        if x is None:
            return None
        return [x], {"axis": b.src.int(-x.type.ndim, x.type.ndim - 1), **extra(b)}

    return gen


def _argsort(b: Builder):
    made = _along_axis(lambda b: {"descending": b.src.chance(0.5)})(b)
    if made is not None and b.src.chance(0.4):  # topk's selection: the first k positions
        x, attrs = made[0][0], made[1]
        attrs["k"] = b.src.int(0, x.shape[attrs["axis"]])
    return made


_cumsum = _along_axis(lambda b: {"reverse": b.src.chance(0.3)})


def _scan(b: Builder):
    """A scan with one float carry, one scanned input and maybe a constant; its body is a small random graph."""
    carry = b.operand(lambda v: b.is_float(v) and v.type.size <= 24 and np.isfinite(b.arr(v)).all())
    if carry is None:
        return None
    xs = b.operand(lambda v: v.type.ndim >= 1 and 1 <= v.shape[0] <= 5 and v.type.size // v.shape[0] <= 24)
    if xs is None:
        return None
    consts = [c for c in [b.operand(lambda v: v.type.size <= 24)] if c is not None and b.src.chance(0.5)]
    body = Graph("body")
    sub = Builder(b.src, "body", int(b.rng.integers(0, 2**31)), body, max_inputs=0)
    for v, a in [(carry, b.arr(carry)), (xs, b.arr(xs)[0])] + [(c, b.arr(c)) for c in consts]:
        bv = body.add_input(TensorType(a.shape, v.dtype), f"b{len(body.inputs)}")
        sub.env[bv.id], sub.exact[bv.id] = a, False
        sub.pool.append(bv)
    grow(sub, sub.src.int(1, 4), ops_drawn()["body"])
    c0 = body.inputs[0]
    delta = sub.operand(lambda v: v.id in sub.env and _fits(v, c0) and broadcast_shapes(v.shape, c0.shape) == c0.shape)
    new = sub.add("add", [c0, delta], {}) if delta is not None else None
    if new is None or new.dtype != c0.dtype:
        new = c0
    new = sub.add("tanh", [new], {}) or c0  # keeps the carry bounded over the steps
    ys = [v for v in sub.pool if v.id in sub.env and v.type.size <= MAX_ELEMS // 5]
    y = ys[-1] if ys else c0
    body.outputs = [new, y]
    if sub.broken is not None or any(family(n) == "scan" for n in body.nodes):
        return None
    return [carry, xs] + consts, {
        "body": Body(body),
        "n_carry": 1,
        "n_xs": 1,
        "length": xs.shape[0],
        "reverse": b.src.chance(0.3),
    }


def _allreduce(b: Builder):
    """One to three operands of one dtype (not bool) as one bucket, reduced by sum, avg (floats only), max or min.
    The fuzzer runs in a world of one process."""
    x = b.operand(lambda v: v.dtype != "bool")
    if x is None:
        return None
    ops = [x]
    for _ in range(b.src.int(0, 2)):
        more = b.operand(lambda v: v.dtype == x.dtype and sum(o.type.size for o in ops) + v.type.size <= MAX_ELEMS)
        if more is not None:
            ops.append(more)
    reduce = b.src.pick([r for r in ("sum", "avg", "max", "min") if not (r == "avg" and x.dtype == "int64")])
    return ops, {"reduce": reduce}


# Generator families, named by the op definitions (OpDef.fuzz.generator); an elementwise or broadcast op without
# one gets the generic generator of its arity.
FAMILIES = {
    "select": lambda op: _select,
    "cast": lambda op: _cast,
    "full": lambda op: _full,
    "reshape": lambda op: _reshape,
    "transpose": lambda op: _transpose,
    "broadcast_to": lambda op: _broadcast_to,
    "slice": lambda op: _slice,
    "slice_grad": lambda op: _slice_grad,
    "concat": lambda op: _concat,
    "reduce": _reduce,
    "argmax": _reduce,
    "matmul": lambda op: _matmul,
    "conv": lambda op: _conv,
    "conv_grad": _conv_grad,
    "im2col": lambda op: _im2col,
    "col2im": lambda op: _col2im,
    "pool": _max_pool,
    "one_hot": lambda op: _one_hot,
    "scan": lambda op: _scan,
    "take": lambda op: _take,
    "take_grad": lambda op: _take_grad,
    "take_along": lambda op: _take_along,
    "take_along_grad": lambda op: _take_along_grad,
    "scatter_extreme_along": lambda op: _scatter_extreme,
    "attention": _attention,
    "argsort": lambda op: _argsort,
    "cumsum": lambda op: _cumsum,
    "allreduce": lambda op: _allreduce,
    "unary": _unary,
    "binary": _binary,
}


def _generator(op: str):
    d = OPS[op]
    family = d.fuzz.generator
    if family is None and d.pattern in ("elementwise", "broadcast") and d.num_inputs in (1, 2):
        family = ("unary", "binary")[d.num_inputs - 1]
    if family not in FAMILIES:
        raise LookupError(f"op {op}: no fuzz generator (its definition names {family!r}; known: {sorted(FAMILIES)})")
    return FAMILIES[family](op)


_DRAWN: dict = {}


def ops_drawn() -> dict:
    """The generator of every drawable op and the op lists per profile, rebuilt when ops were registered since
    (user-defined ops are drawn too): 'general' (simplest first: hypothesis shrinks choices towards the front),
    'smooth' (differentiable on the smooth profile's operands: finite differences apply), 'body' (scan bodies)."""
    if _DRAWN.get("count") != len(OPS):
        gens = {op: _generator(op) for op, d in OPS.items() if not d.fuzz.skip}
        _DRAWN.update(
            count=len(OPS),
            generators=gens,
            general=tuple(sorted(gens, key=lambda op: (OPS[op].pattern != "elementwise", op))),
            smooth=_ops(lambda f: f.smooth),
            body=_ops(lambda f: f.body),
        )
    return _DRAWN


def _pick_op(b: Builder, ops: tuple) -> str:
    op = b.src.pick(ops)
    if OPS[op].fuzz.heavy and b.src.chance(0.5):  # half as likely
        op = b.src.pick(ops)
    return op


def grow(b: Builder, n_ops: int, ops: tuple, attempts: int = 12) -> None:
    """Add up to n_ops nodes; each step draws ops until one gives a well-typed, well-conditioned node."""
    for _ in range(n_ops):
        if b.broken is not None:
            return
        if b.pool and b.src.chance(0.05):  # an exact duplicate of an earlier node (work for CSE)
            nodes = [n for n in b.g.nodes if family(n) != "scan"]
            if nodes:
                n = b.src.pick(nodes)
                b.add(n.op, list(n.inputs), dict(n.attrs))
                continue
        for _ in range(attempts):
            op = _pick_op(b, ops)
            n_in = len(b.g.inputs)
            n_pool = len(b.pool)
            made = ops_drawn()["generators"][op](b)
            if made is not None and b.add(op, *made) is not None:
                break
            if b.broken is not None:
                return
            for v in b.g.inputs[n_in:]:  # drop inputs made for a rejected candidate
                b.env.pop(v.id, None)
            del b.g.inputs[n_in:]
            del b.pool[n_pool:]


def build_case(src: Source, max_ops: int = 12, profile: str | None = None, seed: int | None = None) -> FuzzCase:
    """A random graph with its input arrays. profile: 'general' (every op, all dtypes) or 'smooth'."""
    profile = profile or ("smooth" if src.chance(0.3) else "general")
    b = Builder(src, profile, src.int(0, 2**31 - 1))
    for _ in range(src.int(1, 3)):
        dt = b.float_dtype() if not b.g.inputs or src.chance(0.7) else b.any_dtype()
        b.new_input(b.shape(), dt)
    grow(b, src.int(1, max_ops), ops_drawn()["smooth" if profile == "smooth" else "general"])
    g = b.g
    if b.broken is not None:
        g.outputs = [b.broken]
    else:
        produced = [o for n in g.nodes for o in n.outputs]
        last = produced[-1:] or g.inputs[:1]
        extra = [v for v in b.pool if src.chance(0.15) and v not in last]
        outs = list(dict.fromkeys(last + extra[:2]))
        if not any(v.type.is_float for v in outs):
            floats = [v for v in b.pool if v.type.is_float]
            outs.append(floats[-1])
        g.outputs = outs
    arrays = [b.env[v.id] for v in g.inputs]
    return FuzzCase(g, arrays, profile, seed)


def case_from_seed(seed: int, max_ops: int = 12) -> FuzzCase:
    return build_case(RngSource(seed), max_ops, seed=seed)


def covered_ops() -> set:
    return set(ops_drawn()["generators"])
