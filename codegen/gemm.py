"""Matrix products: a register-blocked GEMM with packed B panels, dot-product tiles for A @ W^T (both operands
contiguous along k, as in weight gradients), and a row schedule for small or integer products.

Each accumulates into registers or a scratch row, then applies the group's elementwise epilogue while storing.
"""
from __future__ import annotations

import llvmlite.ir as ir

from .kernel import LLTYPE, Index, Kernel, i64
from .schedule import store_epilogue
from .target import vector_width_bits


def transposed_view(k: Kernel, v) -> bool:
    """Is v (as read by the kernel) the last-two-axes transpose of a materialized buffer?"""
    n = v.producer
    if v.id not in k.inlined or n is None or n.op != "transpose":
        return False
    perm = tuple(n.attrs["perm"])
    nd = len(perm)
    return perm == tuple(range(nd - 2)) + (nd - 1, nd - 2) and n.inputs[0].id not in k.inlined


def batch_dims(out, v, lead_dims: list) -> list:
    """Indices of operand v's batch dimensions for output batch indices lead_dims (size-1 dims broadcast)."""
    lead = len(out.shape) - v.type.ndim
    return [i64(0) if s == 1 else lead_dims[lead + j] for j, s in enumerate(v.shape[:-2])]


def emit_matmul(k: Kernel, group, node, via_flat: bool = False) -> None:
    out = node.outputs[0]
    a, c = node.inputs
    if out.dtype not in ("float32", "float64"):
        return emit_matmul_rows(k, group, node, via_flat)
    vw = vector_width_bits() // (32 if out.dtype == "float32" else 64)
    m, n, K = out.shape[-2], out.shape[-1], a.shape[-1]
    # A @ W^T with both read along k: dot-product tiles, unless enough rows of A amortize packing W^T panels.
    if (transposed_view(k, c) and direct_pointer(k, a) is not None and K >= vw
            and (m < 16 or K * 2 * vw > MAX_PANEL)):
        return emit_matmul_dots(k, group, node, via_flat, vw)
    # Packing B panels pays off only when several rows of A reuse them; a few rows run as dot products.
    if n >= vw and m >= 4 and K * 2 * vw <= MAX_PANEL:
        return emit_matmul_blocked(k, group, node, via_flat, vw)
    return emit_matmul_rows(k, group, node, via_flat)


def direct_pointer(k: Kernel, v):
    """Pointer to v's row-major data when the kernel can read it directly (a buffer or a reshape of one)."""
    if v.id in k.ptr:
        return k.ptr[v.id]
    n = v.producer
    if v.id in k.inlined and n is not None and n.op == "reshape" and n.inputs[0].id in k.ptr:
        return k.ptr[n.inputs[0].id]
    return None


def _vector_fns(k: Kernel, dt: str, vw: int):
    """(fma, horizontal sum) intrinsics for <vw x dt> vectors."""
    T = LLTYPE[dt]
    V = ir.VectorType(T, vw)
    suffix = f"v{vw}{'f32' if dt == 'float32' else 'f64'}"
    fma = k.module.globals.get(f"llvm.fma.{suffix}") or ir.Function(
        k.module, ir.FunctionType(V, [V, V, V]), f"llvm.fma.{suffix}")
    hsum = k.module.globals.get(f"llvm.vector.reduce.fadd.{suffix}") or ir.Function(
        k.module, ir.FunctionType(T, [T, V]), f"llvm.vector.reduce.fadd.{suffix}")
    return V, fma, hsum


DOT_MR, DOT_NR = 4, 4  # output tile of the dot-product schedule: 16 vector accumulators


def emit_matmul_dots(k: Kernel, group, node, via_flat: bool, vw: int) -> None:
    """C = A @ W^T with A (m, K) and W (n, K) both contiguous along K: each MR x NR output tile keeps one
    vector accumulator per element while k runs over whole vectors of both rows (MR + NR loads feed MR*NR
    FMAs), then sums each accumulator's lanes and the K % vw tail."""
    root = group.root
    a, c = node.inputs
    w = c.producer.inputs[0]
    out = node.outputs[0]
    dt = out.dtype
    T = LLTYPE[dt]
    m, n, K = out.shape[-2], out.shape[-1], a.shape[-1]
    V, fma, hsum = _vector_fns(k, dt, vw)
    esize = 4 if dt == "float32" else 8
    b = k.b
    pa, pw = direct_pointer(k, a), k.ptr[w.id]
    kv, ktail = K // vw, K % vw
    zero_v = ir.Constant(V, [ir.Constant(T, 0.0)] * vw)
    accs = [k.alloca(V) for _ in range(DOT_MR * DOT_NR)]
    tails = [k.alloca(T) for _ in range(DOT_MR * DOT_NR)]

    def per_batch(lead_dims):
        a_off = Index(k, a.shape[:-2], batch_dims(out, a, lead_dims)).flat if a.type.ndim > 2 else i64(0)
        w_off = Index(k, w.shape[:-2], batch_dims(out, c, lead_dims)).flat if w.type.ndim > 2 else i64(0)

        def tile(i0, j0, mr: int, nr: int):
            rows = [b.gep(pa, [b.add(b.mul(a_off, i64(m * K)), b.mul(b.add(i0, i64(r)), i64(K)))],
                          source_etype=T, inbounds=True) for r in range(mr)]
            cols = [b.gep(pw, [b.add(b.mul(w_off, i64(n * K)), b.mul(b.add(j0, i64(s)), i64(K)))],
                          source_etype=T, inbounds=True) for s in range(nr)]
            for acc in accs[:mr * nr]:
                b.store(zero_v, acc)

            def kstep(kk):
                off = b.mul(kk, i64(vw))
                av = [b.load(b.gep(p, [off], source_etype=T, inbounds=True), typ=V, align=esize) for p in rows]
                wv = [b.load(b.gep(p, [off], source_etype=T, inbounds=True), typ=V, align=esize) for p in cols]
                for r in range(mr):
                    for s in range(nr):
                        slot = accs[r * nr + s]
                        b.store(b.call(fma, [av[r], wv[s], b.load(slot)]), slot)
            k.loop(kv, kstep)
            for t in tails[:mr * nr]:
                b.store(k.const(0, dt), t)
            if ktail:
                def tail_step(t):
                    off = b.add(i64(kv * vw), t)
                    ax = [b.load(b.gep(p, [off], source_etype=T, inbounds=True), typ=T) for p in rows]
                    wx = [b.load(b.gep(p, [off], source_etype=T, inbounds=True), typ=T) for p in cols]
                    for r in range(mr):
                        for s in range(nr):
                            slot = tails[r * nr + s]
                            b.store(k.flags(b.fadd(b.load(slot), k.flags(b.fmul(ax[r], wx[s])))), slot)
                k.loop(ktail, tail_step)
            for r in range(mr):
                for s in range(nr):
                    x = b.call(hsum, [b.load(tails[r * nr + s]), b.load(accs[r * nr + s])], fastmath=("reassoc",))
                    store_epilogue(k, root, out, lead_dims + [b.add(i0, i64(r)), b.add(j0, i64(s))], x, via_flat)

        def column_block(j0, nr: int):
            m_full = m - m % DOT_MR
            if m_full:
                k.loop(m_full // DOT_MR, lambda it: tile(b.mul(it, i64(DOT_MR)), j0, DOT_MR, nr))
            if m % DOT_MR:
                tile(i64(m_full), j0, m % DOT_MR, nr)

        n_full = n - n % DOT_NR
        if n % DOT_NR:  # one outer loop (so threads can split it) over full column blocks plus the ragged one
            jt_count = n_full // DOT_NR
            k.loop(jt_count + 1, lambda jt: k.if_else(
                b.icmp_signed("<", jt, i64(jt_count)),
                lambda: column_block(b.mul(jt, i64(DOT_NR)), DOT_NR),
                lambda: column_block(i64(n_full), n % DOT_NR)))
        else:
            k.loop(n_full // DOT_NR, lambda jt: column_block(b.mul(jt, i64(DOT_NR)), DOT_NR))
    k.loops(out.shape[:-2], per_batch)


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
    esize = 4 if dt == "float32" else 8

    def vec_at(base, offset):
        return b.gep(base, [i64(0), offset], inbounds=True)

    def as_vec(p):
        return b.bitcast(p, V.as_pointer())


    def per_batch(lead_dims):
        ba, bc = batch_dims(out, a, lead_dims), batch_dims(out, c, lead_dims)

        def panel_loop(jp):
            j0 = b.mul(jp, i64(NR))

            def pack(kk):
                def put(jj):
                    j = b.add(j0, jj)
                    if n % NR:  # the last panel is padded with zeros past column n
                        inside = b.icmp_signed("<", j, i64(n))
                        y = k.elem(c, Index(k, c.shape, bc + [kk, b.select(inside, j, i64(n - 1))]))
                        y = b.select(inside, y, k.const(0, dt))
                    else:
                        y = k.elem(c, Index(k, c.shape, bc + [kk, j]))
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
                left = b.sub(i64(n), j0)
                cols = b.select(b.icmp_signed("<", left, i64(NR)), left, i64(NR))

                def epi_row(r):
                    def epi(jj):
                        x = b.load(vec_at(tile, b.add(b.mul(r, i64(NR)), jj)))
                        store_epilogue(k, root, out, lead_dims + [b.add(i0, r), b.add(j0, jj)], x, via_flat)
                    k.loop(cols, epi)
                k.loop(count, epi_row)
            k.loop((m + MR - 1) // MR, row_block)
        k.loop((n + NR - 1) // NR, panel_loop)
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
    dot_order = transposed_view(k, c)

    def cell(j):
        return b.gep(acc, [i64(0), j], inbounds=True)


    def row(dims):
        lead_dims, i = dims[:-1], dims[-1]
        ba, bc = batch_dims(out, a, lead_dims), batch_dims(out, c, lead_dims)
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
        k.loop(n, lambda j: store_epilogue(k, root, out, lead_dims + [i, j], b.load(cell(j)), via_flat))
    k.loops(out.shape[:-1], row)
