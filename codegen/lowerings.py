"""Per-op lowering rules: how each primitive computes one output element inside a kernel loop.

Each rule is `rule(k, node, idx) -> llvm value`, where `idx` is an Index over the node's output and
`k.elem(v, index)` yields an input's element (a load, or that producer's own inline computation).
"""

from __future__ import annotations

import itertools
import math

import llvmlite.ir as ir

from graphnn.ir.ops._util import norm_axes
from graphnn.ir.ops.im2col import geometry
from graphnn.ir.ops.shape import concat_offsets
from graphnn.ir.registry import get_op

from .scalars import LLVMScalars
from .kernel import FLOAT, I1, I64, LLTYPE, Index, i64, regroup
from .schedule import window_position, within

ELEMENT_RULES: dict = {}  # element rule family (OpDef.lowering) -> rule(k, node, idx)


def rule(*families):
    def deco(fn):
        for f in families:
            ELEMENT_RULES[f] = fn
        return fn

    return deco


def lower(k, node, idx):
    """One element of node's output: its scalar expression, or the element rule its definition names."""
    d = get_op(node.op)
    if d.scalar is not None:
        return lower_scalar(k, node, idx)
    return ELEMENT_RULES[d.lowering](k, node, idx)


def has_element_rule(d) -> bool:
    return d.scalar is not None or d.lowering in ELEMENT_RULES


def _in(k, node, i, idx):
    """Element of input i, broadcast to the node's output index."""
    v = node.inputs[i]
    return k.elem(v, k.input_index(v, idx))


def _is_nan(k, x):
    return k.b.fcmp_unordered("uno", x, x)


def icmp(k, dtype, op, a, b):
    """Integer comparison: bools (i1) compare unsigned (False < True), int64 signed."""
    return (k.b.icmp_unsigned if dtype == "bool" else k.b.icmp_signed)(op, a, b)


def lowest(k, dtype):
    """The identity of max: -inf, the smallest int64, or False."""
    return k.const(-math.inf if dtype in FLOAT else 0 if dtype == "bool" else -(2**63), dtype)


# -- elementwise: the op's scalar expression -------------------------------------------------------------
def lower_scalar(k, node, idx):
    """An elementwise op's element: its inputs converted as the definition says, then its scalar expression."""
    d = get_op(node.op)
    out = node.outputs[0].dtype
    dts = d.operand_dtypes([v.dtype for v in node.inputs], out)
    xs = [k.convert(_in(k, node, i, idx), v.dtype, t) for i, (v, t) in enumerate(zip(node.inputs, dts))]
    compute = d.compute_dtype([v.dtype for v in node.inputs], out)
    return d.scalar(LLVMScalars(k, compute, node.attrs), *xs)


# -- index remaps ---------------------------------------------------------------------------------
@rule("reshape")
def _reshape(k, node, idx):
    v = node.inputs[0]
    if idx._dims is not None:  # known dims map to the input's dims without dividing the flat index
        return k.elem(v, Index(k, v.shape, regroup(k, idx.shape, idx._dims, v.shape), idx.flat))
    return k.elem(v, Index(k, v.shape, flat=idx.flat))


@rule("transpose")
def _transpose(k, node, idx):
    v = node.inputs[0]
    perm = node.attrs["perm"]
    dims = [None] * len(perm)
    for i, p in enumerate(perm):
        dims[p] = idx.dims[i]
    return k.elem(v, Index(k, v.shape, dims))


@rule("broadcast_to")
def _broadcast(k, node, idx):
    return _in(k, node, 0, idx)


@rule("slice")
def _slice(k, node, idx):
    v = node.inputs[0]
    b = k.b
    dims = [b.add(i64(s), b.mul(d, i64(p))) for d, s, p in zip(idx.dims, node.attrs["starts"], node.attrs["steps"])]
    return k.elem(v, Index(k, v.shape, dims))


def guarded(k, valid, dims, v, fill=0):
    """v[dims] where `valid`, else `fill`. The element is computed either way (selects vectorize, branches would
    not), at a clamped address that never leaves the buffer; index checks inside it count only where valid."""
    b = k.b
    if isinstance(valid, ir.Constant) and valid.constant == 1:
        return k.elem(v, Index(k, v.shape, dims))
    if v.type.size == 0:  # nothing to read: no position is valid
        return k.const(fill, v.dtype)
    safe = [b.select(valid, d, i64(0)) for d in dims]
    with k.speculating(valid):
        x = k.elem(v, Index(k, v.shape, safe))
    return b.select(valid, x, k.const(fill, v.dtype))


def _window_source(k, out_pos, kpos, stride, dil, pad, limit):
    """For transposed access: position q with out_pos = q*stride + kpos*dil - pad. Returns (valid, q)."""
    b = k.b
    rel = b.sub(b.add(out_pos, i64(pad)), i64(kpos * dil) if isinstance(kpos, int) else b.mul(kpos, i64(dil)))
    valid = b.icmp_signed(">=", rel, i64(0))
    if stride != 1:
        valid = b.and_(valid, b.icmp_signed("==", b.srem(rel, i64(stride)), i64(0)))
        q = b.sdiv(rel, i64(stride))
    else:
        q = rel
    valid = b.and_(valid, b.icmp_signed("<", q, i64(limit)))
    return valid, q


@rule("slice_grad")
def _slice_grad(k, node, idx):
    g = node.inputs[0]
    b = k.b
    valid = ir.Constant(I1, 1)
    dims = []
    for d, s, p, n in zip(idx.dims, node.attrs["starts"], node.attrs["steps"], g.shape):
        ok, q = _window_source(k, d, 0, p, 1, -s, n)
        valid = b.and_(valid, ok)
        dims.append(q)
    return guarded(k, valid, dims, g)


@rule("concat")
def _concat(k, node, idx):
    """The operand whose range along the axis holds the position, read at the position less its offset."""
    b = k.b
    axis = node.attrs["axis"]
    d = idx.dims[axis]
    offsets = concat_offsets(node)
    pieces = [(v, lo, hi) for v, lo, hi in zip(node.inputs, offsets, offsets[1:]) if hi > lo]
    if not pieces:  # an empty result: no element is ever asked for
        return k.const(0, node.outputs[0].dtype)
    if len(pieces) == 1:
        v, lo, _ = pieces[0]
        return k.elem(v, Index(k, v.shape, [b.sub(x, i64(lo)) if i == axis else x for i, x in enumerate(idx.dims)]))
    out = None
    for v, lo, hi in reversed(pieces):
        valid = b.and_(b.icmp_signed(">=", d, i64(lo)), b.icmp_signed("<", d, i64(hi)))
        x = guarded(k, valid, [b.sub(x, i64(lo)) if i == axis else x for i, x in enumerate(idx.dims)], v)
        out = x if out is None else b.select(valid, x, out)
    return out


@rule("one_hot")
def _one_hot(k, node, idx):
    v = node.inputs[0]
    dims = idx.dims
    cls = k.elem(v, Index(k, v.shape, dims[:-1]))
    return k.convert(k.b.icmp_signed("==", cls, dims[-1]), "bool", node.outputs[0].dtype)


# -- reductions ------------------------------------------------------------------------------------
def _reduce_dims(node, out_dims, red):
    """Input dims from the output's dims plus loop indices `red` over the reduced axes. (The caller takes
    `out_dims = idx.dims` before its loop: derived lazily inside the loop body, they would be cached on an Index
    that later loops share, where that body's instructions do not dominate.)"""
    x = node.inputs[0]
    axes = norm_axes(node.attrs.get("axes", node.attrs.get("axis")), x.type.ndim)
    keep = bool(node.attrs.get("keepdims"))
    out_dims = list(out_dims)
    dims, r = [], iter(red)
    for i in range(x.type.ndim):
        if i in axes:
            dims.append(next(r))
            if keep:
                out_dims.pop(0)
        else:
            dims.append(out_dims.pop(0))
    return dims, axes


@rule("reduce")
def _reduce(k, node, idx):
    x = node.inputs[0]
    dt = node.outputs[0].dtype
    axes = norm_axes(node.attrs["axes"], x.type.ndim)
    shape = tuple(x.shape[a] for a in axes)
    out_dims = idx.dims

    identity, combine = get_op(node.op).monoid
    s = LLVMScalars(k, dt, node.attrs, reassoc=True)  # a reduction may be summed in any order (vectorized)

    def step(acc, red):
        dims, _ = _reduce_dims(node, out_dims, red)
        return combine(s, acc, k.convert(k.elem(x, Index(k, x.shape, dims)), x.dtype, dt))

    if identity == "lowest":  # (max and min are exact in any order)
        return k.reduce(shape, lowest(k, dt), dt, step)
    return k.reduce(shape, k.const(identity, dt), dt, step, lambda acc, part: combine(s, acc, part))


UNROLL_WINDOW = 16


def argmax_over(k, shape, load, dtype, payload=None):
    """(flat position of the first maximum, maximum) over an index space; NaN counts as largest (the first NaN kept).
    With payload(dims), what it gives at the maximum instead of the position (a window's tap as an address)."""
    b = k.b

    def later(v, cur):  # does v, met after cur, take its place?
        if dtype in FLOAT:
            return b.or_(b.fcmp_ordered(">", v, cur), b.and_(_is_nan(k, v), b.not_(_is_nan(k, cur))))
        return icmp(k, dtype, ">", v, cur)

    # small windows unrolled here (LLVM may not unroll big modules), as a tournament: pairs of candidates in order,
    # the earlier one winning ties, so the comparisons form a tree instead of a chain; a size symbolic in N (or a
    # big window) is looped over
    if all(type(d) is int for d in shape) and math.prod(shape) <= UNROLL_WINDOW:
        cands = []
        for n, dims in enumerate(itertools.product(*[range(s) for s in shape])):
            at = [i64(d) for d in dims]
            cands.append((load(at), payload(at) if payload is not None else i64(n)))
        while len(cands) > 1:
            paired = []
            for (v0, p0), (v1, p1) in zip(cands[::2], cands[1::2]):
                take = later(v1, v0)
                paired.append((b.select(take, v1, v0), b.select(take, p1, p0)))
            cands = paired + ([cands[-1]] if len(cands) % 2 else [])
        return cands[0][1], cands[0][0]
    best = k.alloca(LLTYPE[dtype])
    pos = k.alloca(I64)
    b.store(lowest(k, dtype), best)
    b.store(i64(0), pos)
    counter = k.alloca(I64)
    b.store(i64(0), counter)

    def body(dims):
        v = load(dims)
        cur = b.load(best)
        take = later(v, cur)
        n = b.load(counter)
        b.store(b.add(n, i64(1)), counter)
        b.store(b.select(take, v, cur), best)
        b.store(b.select(take, payload(dims) if payload is not None else n, b.load(pos)), pos)

    k.loops(shape, body)
    return b.load(pos), b.load(best)


@rule("argmax")
def _argmax(k, node, idx):
    x = node.inputs[0]
    axis = norm_axes(node.attrs["axis"], x.type.ndim)[0]
    out_dims = idx.dims

    def load(red):
        dims, _ = _reduce_dims(node, out_dims, red)
        return k.elem(x, Index(k, x.shape, dims))

    pos, _ = argmax_over(k, (x.shape[axis],), load, x.dtype)
    return pos


# -- matmul ------------------------------------------------------------------------------------------
@rule("matmul")
def _matmul(k, node, idx):
    a, c = node.inputs
    dt = node.outputs[0].dtype
    out = node.outputs[0].shape
    dims = idx.dims
    b = k.b

    def batch(v):
        lead = len(out) - v.type.ndim
        return [i64(0) if s == 1 else dims[lead + j] for j, s in enumerate(v.shape[:-2])]

    ba, bc = batch(a), batch(c)

    def step(acc, red):
        kk = red[0]
        x = k.elem(a, Index(k, a.shape, ba + [dims[-2], kk]))
        y = k.elem(c, Index(k, c.shape, bc + [kk, dims[-1]]))
        return k.flags(b.fadd(acc, k.flags(b.fmul(x, y))), ("reassoc",))

    return k.reduce((a.shape[-1],), k.const(0, dt), dt, step)


# -- convolution -------------------------------------------------------------------------------------
def _conv_geometry(node):
    at = node.attrs
    return at["stride"], at["dilation"], [p[0] for p in at["padding"]], at["groups"]


@rule("conv")
def _conv(k, node, idx):
    x, w = node.inputs
    dt = node.outputs[0].dtype
    groups = node.attrs["groups"]
    n, o, *sp = idx.dims
    cg, ksp = w.shape[1], w.shape[2:]
    og = w.shape[0] // groups
    b = k.b
    c0 = b.mul(b.sdiv(o, i64(og)), i64(cg)) if groups > 1 else i64(0)

    def step(acc, red):
        c, *kk = red
        xv = im2col_source(k, x, node.attrs, n, b.add(c0, c), kk, sp)
        wv = k.elem(w, Index(k, w.shape, [o, c] + list(kk)))
        return k.flags(b.fadd(acc, k.flags(b.fmul(xv, wv))), ("reassoc",))

    return k.reduce((cg,) + tuple(ksp), k.const(0, dt), dt, step)


@rule("conv_grad_input")
def _conv_grad_input(k, node, idx):
    g, w = node.inputs
    dt = node.outputs[0].dtype
    stride, dil, pad, groups = _conv_geometry(node)
    n, ci, *sp = idx.dims
    cg, ksp = w.shape[1], w.shape[2:]
    og = w.shape[0] // groups
    b = k.b
    grp = b.sdiv(ci, i64(cg)) if groups > 1 else i64(0)
    c = b.srem(ci, i64(cg)) if groups > 1 else ci

    def step(acc, red):
        oo, *kk = red
        o = b.add(b.mul(grp, i64(og)), oo)
        valid = ir.Constant(I1, 1)
        qs = []
        for d, (i, kd) in enumerate(zip(sp, kk)):
            ok, q = _window_source(k, i, kd, stride[d], dil[d], pad[d], g.shape[2 + d])
            valid = b.and_(valid, ok)
            qs.append(q)
        gv = guarded(k, valid, [n, o] + qs, g)
        wv = k.elem(w, Index(k, w.shape, [o, c] + list(kk)))
        return k.flags(b.fadd(acc, k.flags(b.fmul(gv, wv))), ("reassoc",))

    return k.reduce((og,) + tuple(ksp), k.const(0, dt), dt, step)


@rule("conv_grad_weight")
def _conv_grad_weight(k, node, idx):
    x, g = node.inputs
    dt = node.outputs[0].dtype
    groups = node.attrs["groups"]
    o, c, *kk = idx.dims
    wshape = node.outputs[0].shape
    cg = wshape[1]
    og = wshape[0] // groups
    b = k.b
    ci = b.add(b.mul(b.sdiv(o, i64(og)), i64(cg)), c) if groups > 1 else c

    def step(acc, red):
        n, *qs = red
        xv = im2col_source(k, x, node.attrs, n, ci, kk, qs)
        gv = k.elem(g, Index(k, g.shape, [n, o] + list(qs)))
        return k.flags(b.fadd(acc, k.flags(b.fmul(xv, gv))), ("reassoc",))

    return k.reduce((g.shape[0],) + tuple(g.shape[2:]), k.const(0, dt), dt, step)


# -- pooling ----------------------------------------------------------------------------------------------
def _pool_attrs(node):
    at = node.attrs
    return at["kernel"], at["stride"], at["padding"], at["dilation"]


def window_loader(k, node, x, lead, q):
    """(valid, dims) loader over a pooling window of output position q, for argmax_over."""
    kernel, stride, pad, dil = _pool_attrs(node)
    b = k.b
    pooled = get_op("max_pool").infer([x.type], node.attrs).shape[len(lead) :]
    sizes = x.shape[len(lead) :]
    # windows that never leave the input (no padding, no ceil-mode overhang) need no bounds checks
    inside = [pad[d] == 0 and (pooled[d] - 1) * stride[d] + (kernel[d] - 1) * dil[d] < sizes[d] for d in range(len(q))]

    def at(kk):
        valid = ir.Constant(I1, 1)
        pos = []
        for d, (qd, kd) in enumerate(zip(q, kk)):
            p = window_position(b, qd, kd, stride[d], dil[d], pad[d])
            if not inside[d]:
                valid = b.and_(valid, within(b, p, sizes[d]))
            pos.append(p)
        return valid, list(lead) + pos

    return at


def masked_load(k, valid, dims, v):
    """v[dims] where `valid`, else -inf (a pooling window's padding)."""
    return guarded(k, valid, dims, v, -math.inf)


@rule("max_pool")
def _max_pool(k, node, idx):
    x = node.inputs[0]
    nsp = len(node.attrs["kernel"])
    lead, q = idx.dims[:-nsp], idx.dims[-nsp:]
    at = window_loader(k, node, x, lead, q)

    def load(kk):
        valid, dims = at(kk)
        return masked_load(k, valid, dims, x)

    _, best = argmax_over(k, tuple(node.attrs["kernel"]), load, x.dtype)
    return best


@rule("max_pool_select")
def _max_pool_select(k, node, idx):
    x, src = node.inputs
    nsp = len(node.attrs["kernel"])
    lead, q = idx.dims[:-nsp], idx.dims[-nsp:]
    at = window_loader(k, node, x, lead, q)
    kernel = node.attrs["kernel"]

    def load(kk):
        valid, dims = at(kk)
        return masked_load(k, valid, dims, x)

    pos, _ = argmax_over(k, tuple(kernel), load, x.dtype)
    kk = Index(k, tuple(kernel), flat=pos).dims
    valid, dims = at(kk)
    return guarded(k, valid, dims, src)


@rule("max_pool_grad")
def _max_pool_grad(k, node, idx):
    x, g = node.inputs
    dt = node.outputs[0].dtype
    kernel, stride, pad, dil = _pool_attrs(node)
    nsp = len(kernel)
    lead, sp = idx.dims[:-nsp], idx.dims[-nsp:]
    b = k.b
    if all(s == kk and d == 1 for s, kk, d in zip(stride, kernel, dil)):
        return _max_pool_grad_tiled(k, node, lead, sp)

    def step(acc, kk):
        valid = ir.Constant(I1, 1)
        qs = []
        for d, (i, kd) in enumerate(zip(sp, kk)):
            ok, q = _window_source(k, i, kd, stride[d], dil[d], pad[d], g.shape[len(lead) + d])
            valid = b.and_(valid, ok)
            qs.append(b.select(ok, q, i64(0)))
        at = window_loader(k, node, x, lead, qs)

        def load(kw):
            ok, dims = at(kw)
            return masked_load(k, ok, dims, x)

        pos, _ = argmax_over(k, tuple(kernel), load, x.dtype)
        here = Index(k, tuple(kernel), dims=list(kk)).flat
        take = b.and_(valid, b.icmp_signed("==", pos, here))
        gv = guarded(k, take, list(lead) + qs, g)
        return k.flags(b.fadd(acc, gv), ("reassoc",))

    return k.reduce(tuple(kernel), k.const(0, dt), dt, step)


def _max_pool_grad_tiled(k, node, lead, sp):
    """Windows that tile the input (stride == kernel, no dilation): each input position lies in at most
    one window, found by division, so one argmax per element instead of one per kernel offset."""
    x, g = node.inputs
    kernel, stride, pad, _dil = _pool_attrs(node)
    b = k.b
    valid = ir.Constant(I1, 1)
    qs, ks = [], []
    for d, i in enumerate(sp):
        rel = b.add(i, i64(pad[d]))
        q = b.sdiv(rel, i64(stride[d]))
        valid = b.and_(valid, b.icmp_signed("<", q, i64(g.shape[len(lead) + d])))
        qs.append(b.select(valid, q, i64(0)))
        ks.append(b.srem(rel, i64(stride[d])))
    at = window_loader(k, node, x, lead, qs)

    def load(kw):
        ok, dims = at(kw)
        return masked_load(k, ok, dims, x)

    pos, _ = argmax_over(k, tuple(kernel), load, x.dtype)
    here = Index(k, tuple(kernel), dims=ks).flat
    take = b.and_(valid, b.icmp_signed("==", pos, here))
    return guarded(k, take, list(lead) + qs, g)


# -- im2col / col2im -------------------------------------------------------------------------------------------
def _unravel(k, flat, shape):
    """Per-dimension indices of a row-major flat index over `shape`."""
    return Index(k, tuple(shape), flat=flat).dims


@rule("im2col")
def _im2col(k, node, idx):
    x = node.inputs[0]
    at = node.attrs
    outs = geometry(x.shape, at)[0]
    if at.get("per_image"):
        n, j, r = idx.dims
        qs = _unravel(k, r, outs)
    else:
        j, r = idx.dims
        n, *qs = _unravel(k, r, (x.shape[0],) + outs)
    c, *kk = _unravel(k, j, (x.shape[1],) + tuple(at["kernel"]))
    return im2col_source(k, x, at, n, c, kk, qs)


def im2col_source(k, x, at, n, c, kk, qs):
    """The input element that im2col puts at (channel c, kernel offset kk) for image n, output position qs
    (zero in the padding); also what a convolution multiplies with weight (c, kk) for output qs."""
    b = k.b
    stride, dil = at["stride"], at["dilation"]
    pad = [p[0] for p in at["padding"]]
    valid = ir.Constant(I1, 1)
    pos = []
    for d in range(len(qs)):
        p = window_position(b, qs[d], kk[d], stride[d], dil[d], pad[d])
        valid = b.and_(valid, within(b, p, x.shape[2 + d]))
        pos.append(p)
    if any(lo or hi for lo, hi in at["padding"]):
        return guarded(k, valid, [n, c] + pos, x)
    return k.elem(x, Index(k, x.shape, [n, c] + pos))


@rule("col2im")
def _col2im(k, node, idx):
    col = node.inputs[0]
    at = node.attrs
    shape = tuple(at["input_shape"])
    kernel, stride, dil = at["kernel"], at["stride"], at["dilation"]
    pad = [p[0] for p in at["padding"]]
    nsp = len(kernel)
    outs = geometry(shape, at)[0]
    dt = node.outputs[0].dtype
    b = k.b
    n, c, *sp = idx.dims
    kstr = [1] * nsp
    for d in range(nsp - 2, -1, -1):
        kstr[d] = kstr[d + 1] * kernel[d + 1]
    ostr = [1] * nsp
    for d in range(nsp - 2, -1, -1):
        ostr[d] = ostr[d + 1] * outs[d + 1]
    kp = kstr[0] * kernel[0]
    rp = ostr[0] * outs[0]

    def step(acc, kk):
        valid = ir.Constant(I1, 1)
        j = b.mul(c, i64(kp))
        r = b.mul(n, i64(rp))
        for d in range(nsp):
            ok, q = _window_source(k, sp[d], kk[d], stride[d], dil[d], pad[d], outs[d])
            valid = b.and_(valid, ok)
            j = b.add(j, b.mul(kk[d], i64(kstr[d])))
            r = b.add(r, b.mul(b.select(ok, q, i64(0)), i64(ostr[d])))
        v = guarded(k, valid, [j, r], col)
        return k.flags(b.fadd(acc, v), ("reassoc",))

    return k.reduce(tuple(kernel), k.const(0, dt), dt, step)


# -- gathers ---------------------------------------------------------------------------------------------------
def index_message(node, axis: int, size: int) -> str:
    """The error a failed index check of `node` reports (`{value}` is replaced by the offending index)."""
    from graphnn.ir.registry import describe

    msg = (
        f"{node.op}: index {{value}} is out of range for dimension {axis} of size {size} in "
        f"{describe(node.op, [v.type for v in node.inputs], node.attrs)}"
    )
    if node.meta.get("scope"):
        msg += f" [in module {node.meta['scope']}]"
    if node.meta.get("source"):
        msg += f"\n  at {node.meta['source']}"
    return msg


def gather_position(k, node, dims: list, along: bool, scatter: bool) -> tuple:
    """(axis, checked index along it, dims before, dims after) for position `dims` of a gather's output (take;
    take_along: the index has the input's rank) or of a scatter-add's gradient input (scatter=True: the indexed
    axis is the output's). The index tensor is read at the dims it spans."""
    x_or_g, ind = node.inputs[:2]
    size_shape = node.outputs[0].shape if scatter else x_or_g.shape
    a = node.attrs["axis"] % len(size_shape)
    span = 1 if along else ind.type.ndim
    ind_dims = dims if along else dims[a : a + span]
    raw = k.elem(ind, Index(k, ind.shape, ind_dims))
    j = k.checked_index(raw, size_shape[a], index_message(node, a, size_shape[a]))
    return a, j, dims[:a], dims[a + span :]


def _gather(along: bool):
    def rule_(k, node, idx):
        x = node.inputs[0]
        _a, j, before, after = gather_position(k, node, idx.dims, along, scatter=False)
        return k.elem(x, Index(k, x.shape, before + [j] + after))

    return rule_


ELEMENT_RULES.update(take=_gather(False), take_along=_gather(True))
