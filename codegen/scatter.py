"""Schedules that produce each output from its sources' side: col2im and tiled max-pool gradients (plus the
vectorized forward max pool over 2-wide windows, which reads rows contiguously instead of gathering).

As element rules these ops gather (each output element searches the windows that may contain it, with
divisions and bounds checks per element); here they loop over the source instead: col2im accumulates
every column row into a scratch plane of one (image, channel) with contiguous inner loops, and the
max-pool gradient finds each window's maximum once and writes the whole window. The group's elementwise
epilogue (e.g. the ReLU gradient after a pooling gradient) is applied while storing.
"""

from __future__ import annotations

import itertools

import llvmlite.ir as ir

from graphnn.ir.ops.im2col import geometry

from .gemm import direct_pointer
from .kernel import I64, LLTYPE, Index, Kernel, i64, scratch_count
from .target import vector_width_bits
from .lowerings import argmax_over, gather_position, lowest, masked_load, window_loader
from .schedule import MAX_SCRATCH, VectorOps, prod, store_epilogue, tap_range, window_position


def emit_col2im(k: Kernel, group, node, via_flat: bool = False) -> None:
    at = node.attrs
    vw = vector_width_bits() // (32 if node.outputs[0].dtype == "float32" else 64)
    if (
        len(at["kernel"]) == 2
        and at["stride"][1] == 1
        and node.outputs[0].shape[3] <= ROW_VECTORS * vw
        and node.outputs[0].dtype in ("float32", "float64")
        and node.inputs[0].id in k.ptr
    ):
        return emit_col2im_rows(k, group, node, via_flat, vw)
    return emit_col2im_taps(k, group, node, via_flat)


ROW_VECTORS = 4  # output rows up to this many vectors wide are gathered in registers


def emit_col2im_rows(k: Kernel, group, node, via_flat: bool, vw: int) -> None:
    """2-D col2im with unit horizontal stride, one output row at a time in vector registers: for every tap,
    the column row's segment that lands on this output row is one masked vector load per vector of the row
    (lanes whose source falls outside the segment are masked off), so each output element is stored once."""
    root = group.root
    col = node.inputs[0]
    out = node.outputs[0]
    dt = out.dtype
    T = LLTYPE[dt]
    at = node.attrs
    (kh_n, kw_n), (sh, _sw), (dh, dw) = at["kernel"], at["stride"], at["dilation"]
    ph, pw = at["padding"][0][0], at["padding"][1][0]
    H, W = out.shape[2:]
    (qh_n, qw_n), n_taps, n_q = geometry(out.shape, at)
    nvec = (W + vw - 1) // vw
    b = k.b
    vo = VectorOps(k.module, dt, vw)
    V, M, mload, zero = vo.V, vo.M, vo.masked_load, vo.zero
    VI = ir.VectorType(I64, vw)
    I32 = ir.IntType(32)
    accs = [k.alloca(V) for _ in range(nvec)]
    row = k.alloca(ir.ArrayType(T, nvec * vw))
    pcol = k.ptr.get(col.id)

    def splat(x):
        v = b.insert_element(ir.Constant(VI, ir.Undefined), x, ir.Constant(I32, 0))
        return b.shuffle_vector(v, ir.Constant(VI, ir.Undefined), ir.Constant(ir.VectorType(I32, vw), [0] * vw))

    def per_row(dims):
        n, c, y = dims
        for acc in accs:
            b.store(zero, acc)

        def over_kh(kh):
            rel = b.sub(b.add(y, i64(ph)), b.mul(kh, i64(dh)))  # = qh * sh
            qh = b.sdiv(rel, i64(sh))
            ok = b.and_(b.icmp_signed(">=", rel, i64(0)), b.icmp_signed("<", qh, i64(qh_n)))
            if sh != 1:
                ok = b.and_(ok, b.icmp_signed("==", b.srem(rel, i64(sh)), i64(0)))

            def taps():
                def over_kw(kw):
                    r = b.add(b.mul(c, i64(n_taps)), b.add(b.mul(kh, i64(kw_n)), kw))
                    base = b.add(b.mul(r, i64(col.shape[1])), b.add(b.mul(n, i64(n_q)), b.mul(qh, i64(qw_n))))
                    shift = b.sub(i64(pw), b.mul(kw, i64(dw)))  # q = x + shift
                    for v in range(nvec):
                        q0 = b.add(i64(v * vw), shift)
                        q = b.add(splat(q0), ir.Constant(VI, list(range(vw))))
                        mask = b.and_(
                            b.icmp_signed(">=", q, ir.Constant(VI, [0] * vw)),
                            b.icmp_signed("<", q, ir.Constant(VI, [qw_n] * vw)),
                        )
                        if (v + 1) * vw > W:  # lanes past the row's end
                            mask = b.and_(mask, ir.Constant(M, [int(v * vw + i < W) for i in range(vw)]))
                        src = b.gep(pcol, [b.add(base, q0)], source_etype=T)
                        x = b.call(mload, [src, ir.Constant(I32, 4 if dt == "float32" else 8), mask, zero])
                        b.store(k.flags(b.fadd(b.load(accs[v]), x)), accs[v])

                k.loop(kw_n, over_kw)

            k.if_else(ok, taps, lambda: None)

        k.loop(kh_n, over_kh)
        for v in range(nvec):
            dst = b.bitcast(b.gep(row, [i64(0), i64(v * vw)], inbounds=True), ir.PointerType(V))
            b.store(b.load(accs[v]), dst, align=4 if dt == "float32" else 8)
        k.loop(
            W,
            lambda x: store_epilogue(
                k, root, out, [n, c, y, x], b.load(b.gep(row, [i64(0), x], inbounds=True)), via_flat
            ),
        )

    k.loops(out.shape[:3], per_row, parallel=True)


def emit_col2im_taps(k: Kernel, group, node, via_flat: bool = False) -> None:
    """col2im by accumulating each tap's column rows into a scratch plane per (image, channel)."""
    root = group.root
    col = node.inputs[0]
    out = node.outputs[0]
    dt = out.dtype
    at = node.attrs
    kernel, stride, dil = at["kernel"], at["stride"], at["dilation"]
    pad = [p[0] for p in at["padding"]]
    sp = out.shape[2:]
    nsp = len(sp)
    qs_shape = geometry(out.shape, at)[0]
    plane, n_taps, n_q = prod(sp), prod(kernel), prod(qs_shape)
    sp_strides = [prod(sp[d + 1 :]) for d in range(nsp)]
    q_strides = [prod(qs_shape[d + 1 :]) for d in range(nsp)]
    b = k.b
    acc = k.alloca(ir.ArrayType(LLTYPE[dt], scratch_count(plane, MAX_SCRATCH)))  # (a plane symbolic in N: bounded)

    def cell(flat):
        return b.gep(acc, [i64(0), flat], inbounds=True)

    def per_image_channel(dims):
        n, c = dims
        k.loop(plane, lambda p: b.store(k.const(0, dt), cell(p)))

        def over_taps(kk):
            row = b.add(b.mul(c, i64(n_taps)), Index(k, tuple(kernel), list(kk)).flat)
            if any(lo or hi for lo, hi in at["padding"]):
                ranges = [tap_range(b, kk[d], stride[d], dil[d], pad[d], sp[d], qs_shape[d]) for d in range(nsp)]
            else:  # every column position reads inside the input: constant trip counts LLVM can vectorize
                ranges = [(i64(0), qs_shape[d]) for d in range(nsp)]

            def rec(d, qcol, pflat):
                lo, count = ranges[d]

                def body(t):
                    q = b.add(lo, t)
                    p = window_position(b, q, kk[d], stride[d], dil[d], pad[d])
                    qc = b.add(qcol, b.mul(q, i64(q_strides[d])))
                    pf = b.add(pflat, b.mul(p, i64(sp_strides[d])))
                    if d + 1 < nsp:
                        rec(d + 1, qc, pf)
                        return
                    v = k.elem(col, Index(k, col.shape, [row, qc]))
                    slot = cell(pf)
                    b.store(k.flags(b.fadd(b.load(slot), v)), slot)

                k.loop(count, body)

            rec(0, b.mul(n, i64(n_q)), i64(0))

        # Taps in column-major order: consecutive taps then update the same plane positions one row apart
        # instead of one element apart, so vector loads get their values forwarded from the previous stores.
        k.loops(tuple(kernel)[::-1], lambda rk: over_taps(list(rk)[::-1]))

        def epi(ps):
            flat = i64(0)
            for p, st in zip(ps, sp_strides):
                flat = b.add(flat, b.mul(p, i64(st)))
            store_epilogue(k, root, out, [n, c] + list(ps), b.load(cell(flat)), via_flat)

        k.loops(sp, epi)

    k.loops(out.shape[:2], per_image_channel, parallel=True)


def tiled_pool(attrs) -> bool:
    """Do the pooling windows tile the input (stride == kernel, no dilation), so each element is in at most one?"""
    return all(s == kk and d == 1 for s, kk, d in zip(attrs["stride"], attrs["kernel"], attrs["dilation"]))


def _padded_plane(node) -> tuple:
    """Per spatial dimension, the extent of the input plane padded with -inf so that every window of the pool lies
    inside it (the padding before it, and what ceil_mode's last window reaches past its end)."""
    at = node.attrs
    nsp = len(at["kernel"])
    sp, qs = node.outputs[0].shape[-nsp:], node.inputs[1].shape[-nsp:]
    return tuple(
        max(sp[d] + at["padding"][d], (qs[d] - 1) * at["stride"][d] + (at["kernel"][d] - 1) * at["dilation"][d] + 1)
        for d in range(nsp)
    )


def pool_grad_planes(node) -> bool:
    """Can the gradient of a max pool whose windows overlap (ResNet's 3x3 stride-2 pool) run plane by plane: the
    padded input plane fits a scratch plane (two of them: the input's and the gradient's)?"""
    return 2 * prod(_padded_plane(node)) <= MAX_SCRATCH


def emit_max_pool_grad(k: Kernel, group, node, via_flat: bool = False) -> None:
    """Gradient of a tiling max pool: per window, one argmax, then the incoming gradient at the maximum and
    zeros elsewhere; positions that no window covers (a ragged edge) get zeros. Windows that overlap: see
    _max_pool_grad_planes."""
    if not tiled_pool(node.attrs):
        return _max_pool_grad_planes(k, group, node, via_flat)
    root = group.root
    x, g = node.inputs
    out = node.outputs[0]
    dt = out.dtype
    kernel, pad = node.attrs["kernel"], node.attrs["padding"]
    nsp = len(kernel)
    lead, sp, qs_shape = out.shape[:-nsp], out.shape[-nsp:], g.shape[-nsp:]
    b = k.b
    zero = k.const(0, dt)
    # windows can reach outside the input with padding or ceil_mode: such positions are skipped
    ragged = any(pad) or any(q * kk > s for q, kk, s in zip(qs_shape, kernel, sp))

    def per_window(dims):
        lead_dims, qs = dims[: len(lead)], dims[len(lead) :]
        at = window_loader(k, node, x, lead_dims, qs)
        pos, _ = argmax_over(k, tuple(kernel), lambda kk: masked_load(k, *at(kk), x), x.dtype)
        gv = k.elem(g, Index(k, g.shape, list(dims)))
        for t, kk in enumerate(itertools.product(*[range(s) for s in kernel])):
            ok, p = at([i64(v) for v in kk])
            val = b.select(b.icmp_signed("==", pos, i64(t)), gv, zero)
            if ragged:
                k.if_else(ok, lambda p=p, val=val: store_epilogue(k, root, out, p, val, via_flat), lambda: None)
            else:
                store_epilogue(k, root, out, p, val, via_flat)

    px, pg = direct_pointer(k, x), direct_pointer(k, g)
    if (
        px is not None
        and pg is not None
        and len(kernel) == 2
        and kernel[1] == 2
        and not ragged
        and dt in ("float32", "float64")
        and qs_shape[1] <= 1024
    ):
        _max_pool_grad_rows(k, root, node, px, pg, via_flat)
    else:
        k.loops(tuple(lead) + tuple(qs_shape), per_window, parallel=True)
    _zero_edges(k, root, out, lead, sp, qs_shape, kernel, pad, zero, via_flat)


def _max_pool_grad_planes(k: Kernel, group, node, via_flat: bool) -> None:
    """Gradient of a max pool with overlapping windows, per plane of the leading dimensions: the input plane is
    copied into a scratch plane padded with -inf (every window inside it: no bounds checks), a second one gets, at
    each window's argmax (argmax_over: first maximum, NaN largest), the window's incoming gradient added (an input that several
    windows pick sums theirs, as PyTorch's), and its interior is stored through the epilogue. (The element rule
    searched, for each input element, every window that may contain it: kernel^2 argmaxes per element.)"""
    root = group.root
    x, g = node.inputs
    out = node.outputs[0]
    dt = out.dtype
    T = LLTYPE[dt]
    at = node.attrs
    kernel, stride, pad, dil = at["kernel"], at["stride"], at["padding"], at["dilation"]
    nsp = len(kernel)
    lead, sp, qs = out.shape[:-nsp], out.shape[-nsp:], g.shape[-nsp:]
    ext = _padded_plane(node)
    steps = [prod(ext[d + 1 :]) for d in range(nsp)]
    size = prod(ext)
    b = k.b
    xs, ds = k.alloca(ir.ArrayType(T, size)), k.alloca(ir.ArrayType(T, size))

    def cell(plane, i):
        return b.gep(plane, [i64(0), i], inbounds=True)

    def padded(dims):  # (an input position's place in the padded planes)
        flat = i64(0)
        for d in range(nsp):
            flat = b.add(flat, b.mul(b.add(dims[d], i64(pad[d])), i64(steps[d])))
        return flat

    def per_plane(lead_dims):
        low = lowest(k, dt)
        k.loop(size, lambda i: (b.store(low, cell(xs, i)), b.store(k.const(0, dt), cell(ds, i))))
        k.loops(
            tuple(sp),
            lambda dims: b.store(k.elem(x, Index(k, x.shape, list(lead_dims) + list(dims))), cell(xs, padded(dims))),
        )

        def per_window(qdims):
            base = i64(0)
            for d in range(nsp):
                base = b.add(base, b.mul(qdims[d], i64(stride[d] * steps[d])))

            def tap(kk):  # (a tap's place in the padded plane)
                t = base
                for d in range(nsp):
                    t = b.add(t, b.mul(kk[d], i64(dil[d] * steps[d])))
                return t

            where, _ = argmax_over(k, tuple(kernel), lambda kk: b.load(cell(xs, tap(kk))), dt, payload=tap)
            gv = k.elem(g, Index(k, g.shape, list(lead_dims) + list(qdims)))
            c = cell(ds, where)
            b.store(k.flags(b.fadd(b.load(c), gv)), c)

        k.loops(tuple(qs), per_window)
        k.loops(
            tuple(sp),
            lambda dims: store_epilogue(
                k, root, out, list(lead_dims) + list(dims), b.load(cell(ds, padded(dims))), via_flat
            ),
        )

    k.loops(tuple(lead), per_plane, parallel=True)


def _max_pool_grad_rows(k: Kernel, root, node, px, pg, via_flat: bool) -> None:
    """kh x 2 windows: per row of windows, the kh input rows are loaded as vectors and split into even and odd
    lanes (the window's candidates), the argmax is found lane-parallel (first maximum, NaN largest), the
    gradient is routed to the winning candidate and the lanes are interleaved back into kh output rows, which
    the epilogue then stores."""
    x, g = node.inputs
    out = node.outputs[0]
    dt = out.dtype
    T = LLTYPE[dt]
    vw = vector_width_bits() // (32 if dt == "float32" else 64)
    kh = node.attrs["kernel"][0]
    H, W = x.shape[-2:]
    QH, QW = g.shape[-2:]
    b = k.b
    vo = VectorOps(k.module, dt, vw)
    V, mload, zero, esize = vo.V, vo.masked_load, vo.zero, vo.esize
    I32 = ir.IntType(32)
    VI = ir.VectorType(I32, vw)
    width = ((2 * QW + 2 * vw - 1) // (2 * vw)) * 2 * vw
    rows = k.alloca(ir.ArrayType(T, kh * width))
    lead = out.shape[:-2]

    mask = vo.mask

    def lanes(values):
        return ir.Constant(VI, list(values))

    def per_row(dims):
        lead_dims, qh = list(dims[:-1]), dims[-1]
        img = Index(k, lead, lead_dims).flat if lead else i64(0)
        x_row0 = b.add(b.mul(img, i64(H * W)), b.mul(b.mul(qh, i64(kh)), i64(W)))
        g_row = b.mul(b.add(b.mul(img, i64(QH)), qh), i64(QW))
        for v0 in range(0, QW, vw):
            n_out = min(vw, QW - v0)
            cands = []
            for r in range(kh):
                start = b.add(x_row0, i64(r * W + 2 * v0))
                halves = []
                for h in range(2):
                    live = min(vw, max(0, 2 * n_out - h * vw))
                    src = b.gep(px, [b.add(start, i64(h * vw))], source_etype=T)
                    halves.append(b.call(mload, [src, ir.Constant(I32, esize), mask(live), zero]) if live else zero)
                cands.append(b.shuffle_vector(halves[0], halves[1], lanes(range(0, 2 * vw, 2))))
                cands.append(b.shuffle_vector(halves[0], halves[1], lanes(range(1, 2 * vw, 2))))
            best, pos = cands[0], lanes([0] * vw)
            for idx, c in enumerate(cands[1:], 1):
                better = b.or_(
                    b.fcmp_ordered(">", c, best),
                    b.and_(b.fcmp_unordered("uno", c, c), b.fcmp_ordered("ord", best, best)),
                )
                best = b.select(better, c, best)
                pos = b.select(better, lanes([idx] * vw), pos)
            gv = b.call(
                mload, [b.gep(pg, [b.add(g_row, i64(v0))], source_etype=T), ir.Constant(I32, esize), mask(n_out), zero]
            )
            for r in range(kh):
                even = b.select(b.icmp_signed("==", pos, lanes([2 * r] * vw)), gv, zero)
                odd = b.select(b.icmp_signed("==", pos, lanes([2 * r + 1] * vw)), gv, zero)
                for h in range(2):
                    half = [j for i in range(h * vw // 2, (h + 1) * vw // 2) for j in (i, vw + i)]
                    inter = b.shuffle_vector(even, odd, lanes(half))
                    dst = b.gep(rows, [i64(0), i64(r * width + 2 * v0 + h * vw)], inbounds=True)
                    b.store(inter, b.bitcast(dst, ir.PointerType(V)), align=esize)
        for r in range(kh):
            y = b.add(b.mul(qh, i64(kh)), i64(r))
            k.loop(
                2 * QW,
                lambda p, r=r, y=y: store_epilogue(
                    k,
                    root,
                    out,
                    lead_dims + [y, p],
                    b.load(b.gep(rows, [i64(0), b.add(i64(r * width), p)], inbounds=True)),
                    via_flat,
                ),
            )

    k.loops(tuple(lead) + (QH,), per_row, parallel=True)


def _zero_edges(k: Kernel, root, out, lead, sp, qs_shape, kernel, pad, zero, via_flat: bool) -> None:
    """Positions that no pooling window covers get a zero gradient (through the epilogue)."""
    b = k.b
    nsp = len(kernel)
    covered = [min(sp[d], qs_shape[d] * kernel[d] - pad[d]) for d in range(nsp)]
    for d in range(nsp):
        if covered[d] >= sp[d]:
            continue
        ranges = [covered[e] if e < d else sp[e] for e in range(nsp)]
        first = [0] * d + [covered[d]] + [0] * (nsp - d - 1)
        ranges[d] = sp[d] - covered[d]

        def edge(dims, first=first):
            ps = [b.add(v, i64(f)) if f else v for v, f in zip(dims[len(lead) :], first)]
            store_epilogue(k, root, out, list(dims[: len(lead)]) + ps, zero, via_flat)

        k.once(lambda ranges=ranges, edge=edge: k.loops(tuple(lead) + tuple(ranges), edge))


def vector_pool(node, vw: int) -> bool:
    """Can the forward max pool run as contiguous vector loads: 2-D, stride == kernel, 2 columns wide, no
    padding, windows inside the input?"""
    at = node.attrs
    x = node.inputs[0]
    if len(at["kernel"]) != 2 or x.dtype not in ("float32", "float64") or not tiled_pool(at):
        return False
    (kh, kw), q = at["kernel"], node.outputs[0].shape[-2:]
    return (
        kw == 2 and not any(at["padding"]) and q[0] * kh <= x.shape[-2] and q[1] * kw <= x.shape[-1] and q[1] <= 8 * vw
    )


def emit_max_pool(k: Kernel, group, node, via_flat: bool = False) -> None:
    """Max pool with windows kh x 2, stride (kh, 2): per output row, load the kh input rows as contiguous
    vectors, take their elementwise maximum, then the maximum of even and odd lanes (two shuffles). NaN wins,
    as in the element rule."""
    root = group.root
    x = node.inputs[0]
    out = node.outputs[0]
    dt = out.dtype
    T = LLTYPE[dt]
    vw = vector_width_bits() // (32 if dt == "float32" else 64)
    kh = node.attrs["kernel"][0]
    W, QW = x.shape[-1], out.shape[-1]
    b = k.b
    vo = VectorOps(k.module, dt, vw)
    V, mload, mstore, esize = vo.V, vo.masked_load, vo.masked_store, vo.esize
    I32 = ir.IntType(32)
    undef = ir.Constant(V, ir.Undefined)
    px = k.ptr.get(x.id)
    row = k.alloca(ir.ArrayType(T, ((QW + vw - 1) // vw) * vw))
    direct = root is out and out.id in k.ptr

    def nanmax(a, c):
        pick = b.or_(b.fcmp_unordered("uno", a, a), b.fcmp_ordered(">", a, c))
        return b.select(pick, a, c)

    def per_row(dims):
        lead, qh = list(dims[:-1]), dims[-1]
        base_in = b.mul(Index(k, x.shape[:-2], lead).flat if lead else i64(0), i64(x.shape[-2] * W))
        for v0 in range(0, QW, vw):  # vw outputs from 2*vw input columns
            n_out = min(vw, QW - v0)
            best = None
            for r in range(kh):
                start = b.add(base_in, b.add(b.mul(b.add(b.mul(qh, i64(kh)), i64(r)), i64(W)), i64(2 * v0)))
                halves = []
                for h in range(2):
                    lanes = min(vw, max(0, 2 * n_out - h * vw))
                    mask = vo.mask(lanes)
                    src = b.gep(px, [b.add(start, i64(h * vw))], source_etype=T)
                    halves.append(b.call(mload, [src, ir.Constant(I32, esize), mask, undef]) if lanes else undef)
                even = b.shuffle_vector(
                    halves[0], halves[1], ir.Constant(ir.VectorType(I32, vw), list(range(0, 2 * vw, 2)))
                )
                odd = b.shuffle_vector(
                    halves[0], halves[1], ir.Constant(ir.VectorType(I32, vw), list(range(1, 2 * vw, 2)))
                )
                m = nanmax(even, odd)
                best = m if best is None else nanmax(best, m)
            mask = vo.mask(n_out)
            if direct:
                o = b.add(b.mul(Index(k, out.shape[:-1], list(dims)).flat, i64(QW)), i64(v0))
                b.call(mstore, [best, b.gep(k.ptr[out.id], [o], source_etype=T), ir.Constant(I32, esize), mask])
            else:
                b.call(mstore, [best, b.gep(row, [i64(0), i64(v0)]), ir.Constant(I32, esize), mask])
        if not direct:
            k.loop(
                QW,
                lambda q: store_epilogue(
                    k, root, out, list(dims) + [q], b.load(b.gep(row, [i64(0), q], inbounds=True)), via_flat
                ),
            )

    k.loops(out.shape[:-1], per_row, parallel=True)


def emit_scatter_extreme(k: Kernel, group, node, via_flat: bool = False) -> None:
    """scatter_extreme_along: copy the base, then combine every source element into its indexed slot, the larger
    (max) or smaller (min) one kept, a NaN kept once there. Positions may repeat, so the loops stay serial."""
    out = node.outputs[0]
    src, _idx, base = node.inputs
    b = k.b
    k.loop(out.type.size, lambda i: k.store(out, i, k.elem(base, Index(k, base.shape, flat=i))))
    wins = ">" if node.attrs["mode"] == "max" else "<"

    def put(dims):
        _a, j, before, after = gather_position(k, node, list(dims), True, scatter=True)
        dst = Index(k, out.shape, before + [j] + after)
        cur, x = k.load(out, dst), k.elem(src, Index(k, src.shape, list(dims)))
        take = b.or_(b.fcmp_ordered(wins, x, cur), b.fcmp_unordered("uno", x, x))
        k.store(out, dst.flat, b.select(take, x, cur))

    k.loops(src.shape, put)


def emit_scatter_add(k: Kernel, group, node, via_flat: bool = False, along: bool = False) -> None:
    """Scatter-add (gradient of a gather): zero the output, then add every gradient element at its indexed
    position (along: the index has the gradient's shape). Positions may repeat, so the loops stay serial."""
    out = node.outputs[0]
    g = node.inputs[0]
    b = k.b
    zero = k.const(0, out.dtype)
    k.loop(out.type.size, lambda i: k.store(out, i, zero))

    def add(dims):
        _a, j, before, after = gather_position(k, node, list(dims), along, scatter=True)
        dst = Index(k, out.shape, before + [j] + after)
        add = b.fadd if out.type.is_float else b.add  # (int64 values add exactly)
        k.store(out, dst.flat, k.flags(add(k.load(out, dst), k.elem(g, Index(k, g.shape, list(dims))))))

    k.loops(g.shape, add)
