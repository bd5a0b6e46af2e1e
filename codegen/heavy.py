"""Schedules for groups built around a matmul or a convolution (TVM's out_elementwise_fusable pattern).

The heavy op is accumulated into a scratch row (matmul) or output plane (conv) with the innermost loop
running over contiguous output positions, so LLVM vectorizes it; then the group's elementwise epilogue
(bias, activation, ...) is applied per element while storing, reading the accumulated values from scratch.
"""
from __future__ import annotations

import llvmlite.ir as ir

from graphnn.ir.ops.im2col import geometry
from graphnn.ir.registry import get_op

from .kernel import LLTYPE, Index, Kernel, i64
from .target import vector_width_bits

MAX_SCRATCH = 1 << 16  # elements; larger rows/planes use the generic element-by-element schedule


def heavy_node(group):
    """(node, via_flat) for the matmul/conv whose output the group's epilogue reads element-for-element:
    the path from it to the root is same-shape elementwise ops and (via_flat) row-major reshapes."""
    root = group.root
    consumer = {}
    for n in group.nodes:
        for v in n.inputs:
            consumer[v.id] = n
    for n in group.nodes:
        if n.op not in ("matmul", "conv"):
            continue
        v, via_flat = n.outputs[0], False
        while v is not root:
            c = consumer.get(v.id)
            if c is None:
                break
            same = c.outputs[0].shape == v.shape and get_op(c.op).pattern in ("elementwise", "broadcast")
            if c.op == "reshape":
                via_flat = True
            elif not same:
                break
            v = c.outputs[0]
        if v is not root or (n.op == "conv" and via_flat):
            continue
        out = n.outputs[0].shape
        if n.op == "matmul" and out[-1] <= MAX_SCRATCH or n.op == "conv" and _prod(out[2:]) <= MAX_SCRATCH:
            return n, via_flat
    return None, False


def _prod(shape) -> int:
    p = 1
    for s in shape:
        p *= s
    return p


def _transposed_view(k: Kernel, v) -> bool:
    """Is v (as read by the kernel) the last-two-axes transpose of a materialized buffer?"""
    n = v.producer
    if v.id not in k.inlined or n is None or n.op != "transpose":
        return False
    perm = tuple(n.attrs["perm"])
    nd = len(perm)
    return perm == tuple(range(nd - 2)) + (nd - 1, nd - 2) and n.inputs[0].id not in k.inlined


def _epilogue(k: Kernel, root, heavy_value, dims: list, x, via_flat: bool = False) -> None:
    """Store root at the position of heavy element `dims` (value x), computing the fused epilogue."""
    if via_flat:  # reshapes between heavy op and root: positions correspond through the row-major flat index
        flat = Index(k, heavy_value.shape, dims).flat
        idx = Index(k, root.shape, flat=flat)
        k.provide(heavy_value, Index(k, heavy_value.shape, flat=flat), x)
        y = k.compute(root, idx)
    else:
        idx = Index(k, root.shape, dims)
        if heavy_value is root:
            y = x
        else:
            k.provide(heavy_value, idx, x)
            y = k.compute(root, idx)
    k.store(root, idx.flat, y)


def _batch_dims(out, v, lead_dims: list) -> list:
    """Indices of operand v's batch dimensions for output batch indices lead_dims (size-1 dims broadcast)."""
    lead = len(out.shape) - v.type.ndim
    return [i64(0) if s == 1 else lead_dims[lead + j] for j, s in enumerate(v.shape[:-2])]


def emit_matmul(k: Kernel, group, node, via_flat: bool = False) -> None:
    out = node.outputs[0]
    vw = vector_width_bits() // (32 if out.dtype == "float32" else 64)
    # Packing B panels pays off only when several rows of A reuse them; a few rows run as dot products.
    if (out.dtype in ("float32", "float64") and out.shape[-1] >= 2 * vw and out.shape[-2] >= 4
            and node.inputs[0].shape[-1] * 2 * vw <= MAX_PANEL):
        return emit_matmul_blocked(k, group, node, via_flat, vw)
    return emit_matmul_rows(k, group, node, via_flat)


MAX_PANEL = 1 << 16  # elements of a packed B panel (K x NR) kept on the stack


def emit_matmul_blocked(k: Kernel, group, node, via_flat: bool, vw: int) -> None:
    """Register-blocked GEMM: B is packed into K x NR panels; an MR x NR tile of C lives in vector
    registers (MR*2 accumulators of vw lanes) while k runs; one broadcast of A and two vector FMAs per row."""
    root = group.root
    a, c = node.inputs
    out = node.outputs[0]
    dt = out.dtype
    T = LLTYPE[dt]
    m, n = out.shape[-2], out.shape[-1]
    K = a.shape[-1]
    NR, MR = 2 * vw, (6 if vw * (32 if dt == "float32" else 64) >= 512 else 4)
    V = ir.VectorType(T, vw)
    b = k.b
    panel = k.alloca(ir.ArrayType(T, K * NR))
    tile = k.alloca(ir.ArrayType(T, MR * NR))
    accs = [k.alloca(V) for _ in range(MR * 2)]
    fma_name = f"llvm.fma.v{vw}{'f32' if dt == 'float32' else 'f64'}"
    fma = k.module.globals.get(fma_name) or ir.Function(k.module, ir.FunctionType(V, [V, V, V]), fma_name)
    zero = ir.Constant(V, [ir.Constant(T, 0.0)] * vw)
    undef = ir.Constant(V, ir.Undefined)
    splat_mask = ir.Constant(ir.VectorType(ir.IntType(32), vw), [0] * vw)
    n_full = n - n % NR
    esize = 4 if dt == "float32" else 8

    def vec_at(base, offset):
        return b.gep(base, [i64(0), offset], inbounds=True)

    def as_vec(p):
        return b.bitcast(p, V.as_pointer())


    def per_batch(lead_dims):
        ba, bc = _batch_dims(out, a, lead_dims), _batch_dims(out, c, lead_dims)

        def panel_loop(jp):
            j0 = b.mul(jp, i64(NR))

            def pack(kk):
                def put(jj):
                    y = k.elem(c, Index(k, c.shape, bc + [kk, b.add(j0, jj)]))
                    b.store(y, vec_at(panel, b.add(b.mul(kk, i64(NR)), jj)))
                k.loop(NR, put)
            k.loop(K, pack)

            def row_block(ib):
                i0 = b.mul(ib, i64(MR))
                for acc in accs:
                    b.store(zero, acc, align=esize)
                rows = [b.select(b.icmp_signed("<", b.add(i0, i64(r)), i64(m)), b.add(i0, i64(r)), i64(m - 1))
                        for r in range(MR)]

                def kstep(kk):
                    base = b.mul(kk, i64(NR))
                    b0 = b.load(as_vec(vec_at(panel, base)), align=esize)
                    b1 = b.load(as_vec(vec_at(panel, b.add(base, i64(vw)))), align=esize)
                    for r in range(MR):
                        av = k.elem(a, Index(k, a.shape, ba + [rows[r], kk]))
                        sv = b.shuffle_vector(b.insert_element(undef, av, ir.Constant(ir.IntType(32), 0)), undef, splat_mask)
                        for h, bv in enumerate((b0, b1)):
                            slot = accs[2 * r + h]
                            b.store(b.call(fma, [sv, bv, b.load(slot, align=esize)]), slot, align=esize)
                k.loop(K, kstep)
                for r in range(MR):
                    for h in range(2):
                        b.store(b.load(accs[2 * r + h], align=esize), as_vec(vec_at(tile, i64(r * NR + h * vw))), align=esize)
                valid = b.sub(i64(m), i0)
                count = b.select(b.icmp_signed("<", valid, i64(MR)), valid, i64(MR))

                def epi_row(r):
                    def epi(jj):
                        x = b.load(vec_at(tile, b.add(b.mul(r, i64(NR)), jj)))
                        _epilogue(k, root, out, lead_dims + [b.add(i0, r), b.add(j0, jj)], x, via_flat)
                    k.loop(NR, epi)
                k.loop(count, epi_row)
            k.loop((m + MR - 1) // MR, row_block)
        def tail_columns():  # the last n % NR columns: one dot product per element
            def tail_row(i):
                def tail(t):
                    j = b.add(i64(n_full), t)

                    def step(s, red):
                        x = k.elem(a, Index(k, a.shape, ba + [i, red[0]]))
                        y = k.elem(c, Index(k, c.shape, bc + [red[0], j]))
                        return k.flags(b.fadd(s, k.flags(b.fmul(x, y))), ("reassoc",))
                    _epilogue(k, root, out, lead_dims + [i, j], k.reduce((K,), k.const(0, dt), dt, step), via_flat)
                k.loop(n % NR, tail)
            k.loop(m, tail_row)

        n_panels = n_full // NR
        if n % NR:  # one loop over panels plus the tail (a single outer loop, so it can be split over threads)
            k.loop(n_panels + 1, lambda jp: k.if_else(b.icmp_signed("<", jp, i64(n_panels)),
                                                      lambda: panel_loop(jp), tail_columns))
        else:
            k.loop(n_panels, panel_loop)
    k.loops(out.shape[:-2], per_batch)


def emit_matmul_rows(k: Kernel, group, node, via_flat: bool = False) -> None:
    """Row schedule for small or integer products: accumulate one output row in scratch, then the epilogue."""
    root = group.root
    a, c = node.inputs
    out = node.outputs[0]
    dt = out.dtype
    T = LLTYPE[dt]
    m, n = out.shape[-2], out.shape[-1]
    K = a.shape[-1]
    b = k.b
    acc = k.alloca(ir.ArrayType(T, n))
    dot_order = _transposed_view(k, c)

    def cell(j):
        return b.gep(acc, [i64(0), j], inbounds=True)


    def row(dims):
        lead_dims, i = dims[:-1], dims[-1]
        ba, bc = _batch_dims(out, a, lead_dims), _batch_dims(out, c, lead_dims)
        if dot_order:  # B = W^T with W contiguous along k: one dot product per output element
            def dot(j):
                def step(s, red):
                    x = k.elem(a, Index(k, a.shape, ba + [i, red[0]]))
                    y = k.elem(c, Index(k, c.shape, bc + [red[0], j]))
                    return k.flags(b.fadd(s, k.flags(b.fmul(x, y))), ("reassoc",))
                b.store(k.reduce((K,), k.const(0, dt), dt, step), cell(j))
            k.loop(n, dot)
        else:  # B contiguous along j: acc[j] += A[i, kk] * B[kk, j], vectorized over j
            k.loop(n, lambda j: b.store(k.const(0, dt), cell(j)))

            def over_k(kk):
                x = k.elem(a, Index(k, a.shape, ba + [i, kk]))

                def upd(j):
                    y = k.elem(c, Index(k, c.shape, bc + [kk, j]))
                    b.store(k.flags(b.fadd(b.load(cell(j)), k.flags(b.fmul(x, y)))), cell(j))
                k.loop(n, upd)
            k.loop(K, over_k)
        k.loop(n, lambda j: _epilogue(k, root, out, lead_dims + [i, j], b.load(cell(j)), via_flat))
    k.loops(out.shape[:-1], row)


def _ceil_div_nonneg(b, num, s: int):
    """max(0, ceil(num / s)) for a signed i64 num."""
    pos = b.sdiv(b.add(num, i64(s - 1)), i64(s))
    return b.select(b.icmp_signed(">", num, i64(0)), pos, i64(0))


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
    plane = _prod(sp)
    b = k.b
    acc = k.alloca(ir.ArrayType(T, plane))
    sp_strides = [_prod(sp[d + 1:]) for d in range(nsp)]

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
                    p = b.sub(b.add(b.mul(q, i64(stride[d])), b.mul(kk[d], i64(dil[d]))), i64(pad[d]))
                    valid = b.and_(valid, b.and_(b.icmp_signed(">=", p, i64(0)), b.icmp_signed("<", p, i64(x.shape[2 + d]))))
                    pos.append(b.select(valid, p, i64(0)))
                    base = b.add(base, b.mul(q, i64(sp_strides[d])))
                wv_eff = b.select(valid, wv, k.const(0, dt))
                # innermost spatial dim: only output positions whose input position is inside the image
                d = nsp - 1
                off = b.sub(i64(pad[d]), b.mul(kk[d], i64(dil[d])))      # q*s >= off
                lo = _ceil_div_nonneg(b, off, stride[d])
                top = b.add(i64(x.shape[2 + d] - 1), off)                 # q*s <= top
                hi = b.select(b.icmp_signed("<", top, i64(0)), i64(0), b.add(b.sdiv(top, i64(stride[d])), i64(1)))
                hi = b.select(b.icmp_signed("<", hi, i64(sp[d])), hi, i64(sp[d]))
                count = b.select(b.icmp_signed(">", hi, lo), b.sub(hi, lo), i64(0))

                def inner(t):
                    q = b.add(lo, t)
                    p = b.sub(b.add(b.mul(q, i64(stride[d])), b.mul(kk[d], i64(dil[d]))), i64(pad[d]))
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
            _epilogue(k, root, out, [nn_, o] + list(qs), b.load(cell(flat)))
        k.loops(sp, epi)
    k.loops(out.shape[:2], per_image_channel)


def emit_im2col(k: Kernel, group) -> None:
    """im2col as a loop nest over (c, k..., n, q...), the row-major order of its (c*K, n*Q) output, so no
    index is divided; the innermost loop reads a contiguous input row when the stride is 1."""
    root = group.root
    node = root.producer
    x = node.inputs[0]
    at = node.attrs
    kernel, stride, dil = at["kernel"], at["stride"], at["dilation"]
    pad = [p[0] for p in at["padding"]]
    nsp = len(kernel)
    outs = geometry(x.shape, at)[0]
    padded = any(lo or hi for lo, hi in at["padding"])
    b = k.b
    space = (x.shape[1],) + tuple(kernel) + (x.shape[0],) + outs

    def body(dims):
        c, kk, n, qs = dims[0], dims[1:1 + nsp], dims[1 + nsp], dims[2 + nsp:]
        valid = ir.Constant(ir.IntType(1), 1)
        pos = []
        for d in range(nsp):
            p = b.sub(b.add(b.mul(qs[d], i64(stride[d])), b.mul(kk[d], i64(dil[d]))), i64(pad[d]))
            if padded:
                valid = b.and_(valid, b.and_(b.icmp_signed(">=", p, i64(0)), b.icmp_signed("<", p, i64(x.shape[2 + d]))))
                p = b.select(valid, p, i64(0))
            pos.append(p)
        v = k.elem(x, Index(k, x.shape, [n, c] + pos))
        if padded:
            v = b.select(valid, v, k.const(0, x.dtype))
        k.store(root, Index(k, space, dims).flat, v)
    k.loops(space, body)


EMITTERS = {"matmul": emit_matmul, "conv": emit_conv}

