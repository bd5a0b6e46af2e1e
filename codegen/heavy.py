"""Schedules for groups built around an op with a loop nest of its own (TVM's out_elementwise_fusable pattern):
matmul (gemm.py), convolution and im2col (here), col2im and max-pool gradients (scatter.py).

The heavy op is accumulated into registers or a scratch row/plane with the innermost loop running over
contiguous positions, so LLVM vectorizes it; then the group's elementwise epilogue (bias, activation, ...)
is applied per element while storing.
"""

from __future__ import annotations

import llvmlite.ir as ir

from graphnn.ir.fusion import epilogue_sources
from graphnn.ir.ops.im2col import geometry
from graphnn.ir.registry import get_op
from graphnn.ir.symbolic import Sym

from . import attention
from .gemm import emit_matmul
from .kernel import LLTYPE, Index, Kernel, i64, scratch_count
from .order import emit_prefix_sum, emit_sort, sorts_in_place
from .windows import im2col_runs
from .scatter import (
    emit_col2im,
    emit_max_pool,
    emit_max_pool_grad,
    emit_scatter_add,
    emit_scatter_extreme,
    pool_grad_planes,
    tiled_pool,
    vector_pool,
)
from .target import vector_width_bits
from .schedule import MAX_SCRATCH, prod, store_epilogue, tap_range, window_position, within


def _max_pool_accepts(n, via_flat: bool, group) -> bool:
    src = n.inputs[0].producer  # the schedule reads the input rows from memory
    in_memory = src is None or all(m is not src for m in group.nodes)
    return in_memory and vector_pool(n, vector_width_bits() // (32 if n.outputs[0].dtype == "float32" else 64))


def _always(n, via_flat: bool, group) -> bool:
    return True


def _is_root(n, via_flat: bool, group) -> bool:
    return n.outputs[0] is group.root


def schedule_of(n):
    """(accepts, emit) of node n's schedule family, or None when it has none."""
    return SCHEDULES.get(get_op(n.op).schedule)


def heavy_node(group):
    """(node, via_flat) for the op with a schedule of its own whose output the group's epilogue reads element for
    element (ir.fusion.epilogue_sources), when that schedule accepts the group; else (None, False)."""
    for n, via_flat in epilogue_sources(group):
        sched = schedule_of(n)
        if sched is not None and sched[0](n, via_flat, group):
            return n, via_flat
    return None, False


def emit_conv(k: Kernel, group, node, via_flat: bool = False) -> None:
    root = group.root
    x, w = node.inputs
    out = node.outputs[0]
    dt = out.dtype
    T = LLTYPE[dt]
    at = node.attrs
    stride, dil, groups = at["stride"], at["dilation"], at["groups"]
    pad = [p[0] for p in at["padding"]]
    sp = out.shape[2:]
    nsp = len(sp)
    cg, ksp = w.shape[1], w.shape[2:]
    og = w.shape[0] // groups
    plane = prod(sp)
    b = k.b
    acc = k.alloca(ir.ArrayType(T, scratch_count(plane, MAX_SCRATCH)))  # (a plane symbolic in N: bounded)
    sp_strides = [prod(sp[d + 1 :]) for d in range(nsp)]

    def cell(flat):
        return b.gep(acc, [i64(0), flat], inbounds=True)

    def per_image_channel(dims):
        nn_, o = dims
        k.loop(plane, lambda p: b.store(k.const(0, dt), cell(p)))
        c0 = b.mul(b.sdiv(o, i64(og)), i64(cg)) if groups > 1 else i64(0)

        def over_taps(red):
            c, *kk = red
            wv = k.elem(w, Index(k, w.shape, [o, c] + list(kk)))
            ci = b.add(c0, c)

            def outer(qs):
                valid = ir.Constant(ir.IntType(1), 1)
                pos, base = [], i64(0)
                for d, q in enumerate(qs):
                    p = window_position(b, q, kk[d], stride[d], dil[d], pad[d])
                    valid = b.and_(valid, within(b, p, x.shape[2 + d]))
                    pos.append(b.select(valid, p, i64(0)))
                    base = b.add(base, b.mul(q, i64(sp_strides[d])))
                wv_eff = b.select(valid, wv, k.const(0, dt))
                # innermost spatial dim: only output positions whose input position is inside the image
                d = nsp - 1
                lo, count = tap_range(b, kk[d], stride[d], dil[d], pad[d], x.shape[2 + d], sp[d])

                def inner(t):
                    q = b.add(lo, t)
                    p = window_position(b, q, kk[d], stride[d], dil[d], pad[d])
                    xv = k.elem(x, Index(k, x.shape, [nn_, ci] + pos + [p]))
                    slot = cell(b.add(base, q))
                    b.store(k.flags(b.fadd(b.load(slot), k.flags(b.fmul(wv_eff, xv)))), slot)

                k.loop(count, inner)

            k.loops(sp[:-1], outer)

        k.loops((cg,) + tuple(ksp), over_taps)

        def epi(qs):
            flat = i64(0)
            for q, st in zip(qs, sp_strides):
                flat = b.add(flat, b.mul(q, i64(st)))
            store_epilogue(k, root, out, [nn_, o] + list(qs), b.load(cell(flat)))

        k.loops(sp, epi)

    k.loops(out.shape[:2], per_image_channel, parallel=True)


def emit_im2col(k: Kernel, group) -> None:
    """im2col as a loop nest over (n, c, k..., q...) (see im2col_runs): the outer loop over images splits evenly
    over threads."""
    root = group.root
    node = root.producer
    x = node.inputs[0]
    at = node.attrs
    outs = geometry(x.shape, at)[0]
    per_image = at.get("per_image", False)  # (out[n, (c, k), q] rather than out[(c, k), (n, q)])
    if per_image:
        space = (x.shape[0], x.shape[1]) + tuple(at["kernel"]) + outs
    else:
        space = (x.shape[1],) + tuple(at["kernel"]) + (x.shape[0],) + outs

    def start(n, c, kk, qs):  # (flat index of a run's first element)
        first = [n, c] + list(kk) + list(qs) if per_image else [c] + list(kk) + [n] + list(qs)
        return Index(k, space, first + [i64(0)]).flat

    def store(flat, value):
        k.store(root, flat, value)

    k.loops((x.shape[0],), lambda dims: im2col_runs(k, x, at, dims[0], start, store), parallel=True)


def column_sum(n) -> bool:
    """A float sum over leading axes only (a bias gradient): rows are added as vectors into a chunk of sums."""
    from graphnn.ir.ops._util import norm_axes

    x = n.inputs[0]
    axes = tuple(sorted(norm_axes(n.attrs["axes"], x.type.ndim)))
    return (
        x.dtype in ("float32", "float64")
        and n.outputs[0].dtype == x.dtype
        and 0 < len(axes) < x.type.ndim
        and axes == tuple(range(len(axes)))
        and prod(x.shape[len(axes) :]) >= 16
    )


COLUMN_CHUNK = 256  # sums kept in scratch per chunk of columns


def emit_column_sum(k: Kernel, group, node, via_flat: bool = False) -> None:
    """sum over leading axes as column sums: per chunk of the kept (trailing) elements, every row is added into
    a scratch chunk with a contiguous (vectorized) inner loop; the chunks are the outer loop, so threads split
    them without sharing partial sums."""
    from graphnn.ir.ops._util import norm_axes

    root = group.root
    x = node.inputs[0]
    out = node.outputs[0]
    dt = out.dtype
    nred = len(norm_axes(node.attrs["axes"], x.type.ndim))
    rows, cols = prod(x.shape[:nred]), prod(x.shape[nred:])
    # (columns symbolic in N: whole chunks of scratch, the last one ragged at run time, rather than a scratch of the
    # representative's width, which would hold at that N only)
    chunk = COLUMN_CHUNK if isinstance(cols, Sym) else min(cols, COLUMN_CHUNK)
    b = k.b
    acc = k.alloca(ir.ArrayType(LLTYPE[dt], chunk))
    keep = bool(node.attrs.get("keepdims"))

    def cell(j):
        return b.gep(acc, [i64(0), j], inbounds=True)

    def per_chunk(c):
        c0 = b.mul(c, i64(chunk))
        left = b.sub(i64(cols), c0)
        width = b.select(b.icmp_signed("<", left, i64(chunk)), left, i64(chunk))
        k.loop(width, lambda j: b.store(k.const(0, dt), cell(j)))

        def row(r):
            def add(j):
                v = k.elem(x, Index(k, x.shape, flat=b.add(b.mul(r, i64(cols)), b.add(c0, j))))
                b.store(k.flags(b.fadd(b.load(cell(j)), v), ("reassoc",)), cell(j))

            k.loop(width, add)

        k.loop(rows, row)

        def epi(j):
            flat = b.add(c0, j)
            dims = ([i64(0)] * nred if keep else []) + Index(k, x.shape[nred:], flat=flat).dims
            store_epilogue(k, root, out, dims, b.load(cell(j)), via_flat)

        k.loop(width, epi)

    k.loop((cols + chunk - 1) // chunk, per_chunk, parallel=True)


# Schedule families (OpDef.schedule): (accepts(node, via_flat, group), emit(kernel, group, node, via_flat)).
# accepts says whether the schedule can run this group: its scratch fits and the epilogue positions are known.
SCHEDULES = {
    "gemm": (_always, emit_matmul),
    "direct_conv": (lambda n, via_flat, group: not via_flat and prod(n.outputs[0].shape[2:]) <= MAX_SCRATCH, emit_conv),
    "col2im": (lambda n, via_flat, group: prod(n.outputs[0].shape[2:]) <= MAX_SCRATCH, emit_col2im),
    "max_pool_grad": (lambda n, via_flat, group: tiled_pool(n.attrs) or pool_grad_planes(n), emit_max_pool_grad),
    "max_pool": (_max_pool_accepts, emit_max_pool),
    "column_sum": (lambda n, via_flat, group: column_sum(n), emit_column_sum),
    "scatter_add": (_always, emit_scatter_add),
    "scatter_add_along": (_always, lambda k, group, node, via_flat: emit_scatter_add(k, group, node, via_flat, True)),
    "scatter_extreme_along": (_always, emit_scatter_extreme),
    "im2col": (_is_root, lambda k, group, node, via_flat: emit_im2col(k, group)),
    "attention": (attention.accepts, attention.emit_attention),
    "attention_backward": (attention.accepts, attention.emit_attention_backward),
    "sort": (sorts_in_place, emit_sort),
    "prefix_sum": (sorts_in_place, emit_prefix_sum),
}
