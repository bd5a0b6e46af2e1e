"""Matrix products: a register-blocked GEMM with packed B panels, dot-product tiles for A @ W^T (both operands
contiguous along k, as in weight gradients), and a row schedule for small or integer products.

The register tiles are computed by micro-kernels emitted once per module and shared by every product in it
(`graphnn_gemm_tile_*`, `graphnn_dots_tile_*`), so a graph with many matrix products costs LLVM one copy of
the unrolled FMA code; each product's kernel packs B, calls the micro-kernel per tile and applies the group's
elementwise epilogue while storing the tile.
"""

from __future__ import annotations

import math

import llvmlite.ir as ir

from graphnn.ir.fusion import FUSED_COLUMNS
from graphnn.ir.ops.im2col import geometry
from graphnn.ir.registry import family, get_op
from graphnn.ir.symbolic import Sym, heuristic
from graphnn.ir.views import swaps_last_two

from .kernel import I64, LLTYPE, PTR, Index, Kernel, as_i64, emit_loop, i64, scratch_count
from .schedule import VectorOps, store_epilogue, store_siblings
from .windows import im2col_runs
from .target import l1_data_bytes, l2_bytes, vector_registers, vector_width_bits

DOT_MR, DOT_NR = 4, 4  # output tile of the dot-product schedule: 16 vector accumulators
MAX_PANEL = 1 << 16  # elements of a packed B panel (K x NR) kept on the stack
# products with at most this many rows read a row-major B in place instead of packing panels (with more rows,
# strided reads of a wide B cost up to half the speed: 192x1024 @ 1024x4096 ran at 36% of peak in place, 73% packed)
DIRECT_B_MAX_ROWS = 64
# products with fewer column panels than this (and more bands of rows) split their rows among threads, not their
# panels: twice the most parts a kernel runs in (codegen/module.py's MAX_THREADS), so that parts stay balanced
ROW_SPLIT_PANELS = 16
K_SLICE = 256  # rows of k per slice of a long-k product's packed panel (K_SLICE x NR: 32 KiB in float32, AVX-512)
# stack bytes of the blocked schedules' block of B's packed panels (BLIS's nc; over a slice of k or all of k);
# 0: from the host's L2 (the panels stream from there past a band of A's rows kept in L1; see block_bytes)
B_BLOCK_BYTES = 0
# bytes of a band of A's rows over a slice of k in the sliced blocked schedule; 0: a third of the host's L1
SLICE_BYTES = 0
ROW_MAJOR_A_COPIED = True  # the blocked schedules copy a row-major A's bands MR wide (see emit_matmul_blocked)


def block_bytes(copied_a: bool = False) -> int:
    """Bytes of B's packed block in the blocked schedules; with A's bands copied (a transposed A, whose copies are
    made once per block and then kept in L1), all of L2 (fewer blocks, fewer copies: 1.03-1.2x on weight-gradient
    shapes, Zen 3), at most 1 MiB."""
    return B_BLOCK_BYTES or min(l2_bytes() // (1 if copied_a else 2), 1 << 20)


def band_slice(MR: int, esize: int, K: int) -> int:
    """k per slice of the blocked schedules: as few slices as keep MR rows of A over a slice within a third of L1
    (a band of A stays there while B's packed panels stream past from L2, through the rest; every further slice
    reads and writes the result again), of equal length (a multiple of 16, the last one shorter). (A third of L1
    rather than half: 1024^3 to 2048^3 products ran 1.03-1.08x faster on an Intel Xeon with 14-row tiles.)"""
    most = max(16, (SLICE_BYTES or l1_data_bytes() // 3) // (MR * esize) // 16 * 16)
    if not isinstance(K, int):  # (a k symbolic in N: slices of the longest length, counted at run time)
        return most
    slices = -(-K // most)
    return min(K, -(-K // slices + 15) // 16 * 16)


def transposed_view(k: Kernel, v) -> bool:
    """Is v (as read by the kernel) the last-two-axes transpose of a materialized buffer?"""
    n = v.producer
    return v.id in k.inlined and n is not None and swaps_last_two(n) and n.inputs[0].id not in k.inlined


def batch_dims(out, v, lead_dims: list) -> list:
    """Indices of operand v's batch dimensions for output batch indices lead_dims (size-1 dims broadcast)."""
    lead = len(out.shape) - v.type.ndim
    return [i64(0) if s == 1 else lead_dims[lead + j] for j, s in enumerate(v.shape[:-2])]


def direct_pointer(k: Kernel, v):
    """Pointer to v's row-major data when the kernel can read it directly (a buffer or a reshape of one)."""
    if v.id in k.ptr:
        return k.ptr[v.id]
    n = v.producer
    if v.id in k.inlined and n is not None and family(n) == "reshape" and n.inputs[0].id in k.ptr:
        return k.ptr[n.inputs[0].id]
    return None


def strided_operand(k: Kernel, v):
    """(pointer, row stride, k stride) of a matrix operand read in place: row-major, or the transpose of a
    buffer (or of a reshape of one, as a weight gradient's batch-merged activations)."""
    p = direct_pointer(k, v)
    if p is not None:
        return p, v.shape[-1], 1
    n = v.producer
    if (
        v.id in k.inlined
        and n is not None
        and family(n) == "transpose"
        and v.type.ndim == 2
        and tuple(n.attrs["perm"]) == (1, 0)
    ):
        p = direct_pointer(k, n.inputs[0])
        if p is not None:
            return p, 1, v.shape[-2]
    return None


def _batch_offset(k: Kernel, out, v, lead_dims: list):
    """Element offset of operand v's matrix for output batch indices lead_dims."""
    if v.type.ndim <= 2:
        return i64(0)
    flat = Index(k, v.shape[:-2], batch_dims(out, v, lead_dims)).flat
    return k.b.mul(flat, i64(v.shape[-2] * v.shape[-1]))


def _opaque(b, p):
    """Pointer p as an opaque `ptr` value (llvmlite's bitcast returns a typed pointer unchanged, all pointer types
    comparing equal, and then refuses to store a vector through it)."""
    cast = ir.CastInstr(b.block, "bitcast", p, PTR)
    b._insert(cast)
    return cast


def _advance(b, p, offset, T):
    return b.gep(p, [offset], source_etype=T, inbounds=True)


def emit_matmul(k: Kernel, group, node, via_flat: bool = False) -> None:
    out = node.outputs[0]
    a, c = node.inputs
    if out.dtype not in ("float32", "float64"):
        return emit_matmul_rows(k, group, node, via_flat)
    vw = vector_width_bits() // (32 if out.dtype == "float32" else 64)
    m, n, K = out.shape[-2], out.shape[-1], a.shape[-1]
    with heuristic():  # every schedule computes any shape (the blocked one guards its panel's size itself)
        # a k too long for a whole packed panel: the blocked schedule packs one slice of k at a time, for a plain
        # product stored in place (a tied language-model head's input gradient: k = the vocabulary)
        long_k = not isinstance(K, Sym) and K * 2 * vw > MAX_PANEL
        sliceable = long_k and _long_k_sliceable(k, group, node, via_flat)
        # A @ W^T with both read along k: dot-product tiles, unless enough rows of A amortize packing W^T panels.
        dots = transposed_view(k, c) and direct_pointer(k, a) is not None and K >= vw
        dots = dots and (m < 16 or (long_k and not sliceable) or _dots_by_slices(m, n, K, out.dtype))
        # Packing B panels pays off only when several rows of A reuse them; a few rows run as dot products.
        blocked = n >= vw and m >= 4 and (not long_k or sliceable) and strided_operand(k, a) is not None
    if dots:
        return emit_matmul_dots(k, group, node, via_flat, vw)
    if blocked:
        return emit_matmul_blocked(k, group, node, via_flat, vw)
    return emit_matmul_rows(k, group, node, via_flat)


def same_rounding_at_fewer_rows(graph) -> bool:
    """Does every float product of `graph` round each element the same whatever its number of rows? The blocked
    and row schedules sum each element's k in order, at any row count; dot-product tiles (A @ W^T with W^T a
    transposed view, picked for fewer than 16 rows) sum lanes of k, then the lanes. So: no product of a transpose."""
    for n in graph.nodes:
        if family(n) == "matmul" and n.outputs[0].dtype in ("float32", "float64"):
            b = n.inputs[1]
            if b.producer is not None and family(b.producer) == "transpose":
                return False
    return True


def _long_k_sliceable(k: Kernel, group, node, via_flat: bool) -> bool:
    """May the blocked schedule run a product whose k is too long for a whole packed panel, one slice of k at a
    time: a product stored in place (its epilogue siblings computed from each finished panel), with enough rows for
    a whole row block."""
    out, K = node.outputs[0], node.inputs[0].shape[-1]
    m = out.shape[-2]
    direct_out = group.root is out and not via_flat and out.id in k.ptr
    return direct_out and K >= 2 * K_SLICE and m >= 6


def store_tile(k: Kernel, root, out, tile, width: int, nrows, ncols, lead_dims: list, i0, j0, via_flat: bool) -> None:
    """Store the valid nrows x ncols corner of a scratch tile (rows `width` apart) at output (i0, j0) through the
    group's epilogue."""
    b = k.b

    def row(r):
        def col(jj):
            x = b.load(b.gep(tile, [i64(0), b.add(b.mul(r, i64(width)), jj)], inbounds=True))
            store_epilogue(k, root, out, lead_dims + [b.add(i0, r), b.add(j0, jj)], x, via_flat)

        k.loop(ncols, col)

    k.loop(nrows, row)


def siblings_at(k: Kernel, out, lead_dims: list, i0, j0, r, jj) -> None:
    """The epilogue siblings (ir/epilogue.py) at output (i0 + r, j0 + jj) of a product stored in place."""
    b = k.b
    idx = Index(k, out.shape, lead_dims + [b.add(i0, r), b.add(j0, jj)])
    store_siblings(k, out, idx, k.load(out, idx))


def _shared_function(module: ir.Module, name: str, args: list):
    """(function, builder, is_new): a module-level helper that is emitted once, never inlined."""
    fn = module.globals.get(name)
    if fn is not None:
        return fn, None, False
    fn = ir.Function(module, ir.FunctionType(ir.VoidType(), args), name)
    fn.linkage = "internal"
    fn.attributes.add("noinline")
    for a in fn.args:
        if isinstance(a.type, ir.PointerType):
            a.add_attribute("noalias")
    return fn, ir.IRBuilder(fn.append_basic_block("entry")), True


def _clamped(b, r: int, count):
    """min(r, count - 1): rows past the end of a matrix repeat its last row (their results are discarded)."""
    last = b.sub(count, i64(1))
    return b.select(b.icmp_signed("<", i64(r), last), i64(r), last)


def gemm_tile_function(module: ir.Module, dt: str, vw: int, MR: int, H: int = 2, accumulate: bool = False):
    """`tile(a, row_stride, k_stride, rows, b, ldb, K, out, ldc)`: out[MR x NR] = A[MR rows x K] @ B[K x NR]
    with NR = H vectors, where B is a packed panel (ldb = NR) or NR columns of a row-major matrix read in place
    (ldb = its width); output rows are ldc apart (a scratch tile, or the result matrix itself). With
    `accumulate`, out[MR x NR] += the product (a product summed over slices of k)."""
    T = LLTYPE[dt]
    NR = H * vw
    fn, b, new = _shared_function(
        module,
        f"graphnn_gemm_tile{'_acc' if accumulate else ''}_{dt}_{MR}x{NR}",
        [PTR, I64, I64, I64, PTR, I64, I64, PTR, I64],
    )
    if not new:
        return fn
    a, rs, ks, rows, panel, ldb, K, out, ldc = fn.args
    vo = VectorOps(module, dt, vw)
    V, fma, esize = vo.V, vo.fma, vo.esize
    zero = ir.Constant(V, [ir.Constant(T, 0.0)] * vw)
    row_ptr = [_advance(b, a, b.mul(_clamped(b, r, rows), rs), T) for r in range(MR)]
    accs = [b.alloca(V) for _ in range(H * MR)]
    for acc in accs:
        b.store(zero, acc)
    if accumulate:  # the tile of C (rows far apart, likely out of cache) is asked for now and added after the k loop
        for r in range(MR):
            for line in range(0, NR * esize, 64):
                _prefetch(module, b, _advance(b, out, b.add(b.mul(i64(r), ldc), i64(line // esize)), T))

    def kstep(kk):
        base = b.mul(kk, ldb)
        vecs = [b.load(_advance(b, panel, b.add(base, i64(h * vw)), T), typ=V, align=esize) for h in range(H)]
        koff = b.mul(kk, ks)
        for r in range(MR):
            av = b.load(_advance(b, row_ptr[r], koff, T), typ=T)
            sv = vo.splat(b, av)
            for h in range(H):
                b.store(b.call(fma, [sv, vecs[h], b.load(accs[H * r + h])]), accs[H * r + h])

    emit_loop(fn, b, K, kstep)
    for r in range(MR):
        for h in range(H):
            at = _advance(b, out, b.add(b.mul(i64(r), ldc), i64(h * vw)), T)
            x = b.load(accs[H * r + h])
            b.store(b.fadd(b.load(at, typ=V, align=esize), x) if accumulate else x, at, align=esize)
    b.ret_void()
    return fn


TILE_HEIGHTS = (6, 8, 12, 14)  # MR the blocked GEMM chooses from (those the target's registers hold)
B_LOADS_AS_ROWS = 2  # the cost of a k step's loads of B's NR-wide row, in rows of the tile's FMAs (tile model)


def gemm_rows_per_tile(m: int) -> int:
    """MR of the blocked GEMM. For a few rows (a recurrent step's batch): 8 when 8 divides them and the target has
    32 vector registers, 4 when 4 does and 6 does not (rows computed twice for nothing would cost more than the
    smaller tile), else 6. For more rows, the tile height that the target's vector registers hold (2 MR
    accumulators, two vectors of B and a broadcast of A: 6 rows with 16 registers, up to 14 with 32) with the best
    modelled throughput: each k step costs MR rows of FMAs plus B's loads (B_LOADS_AS_ROWS), and a ragged last band
    computes rows past m for nothing. Taller tiles read B's panels (streamed from L2) fewer times per FMA: on an
    Intel Xeon with AVX-512, 12 rows instead of 6 ran a 1008^3 product at 167 instead of 133 GFLOP/s."""
    if m <= 48:
        if m % 8 == 0 and vector_registers() >= 32:
            return 8
        return 4 if (m % 6 and m % 4 == 0) else 6
    most = (vector_registers() - 3) // 2

    def cost(mr: int) -> int:  # time of all the bands per k step, in the model's units
        return -(-m // mr) * (mr + B_LOADS_AS_ROWS)

    # (a few heights, each one more shared micro-kernel to compile; ties go to the one computing fewer rows)
    return min((mr for mr in TILE_HEIGHTS if mr <= most), key=lambda mr: (cost(mr), -(-m // mr) * mr))


def built_columns(k: Kernel, v):
    """(the per-image im2col node, transposed) when v is its result or the transpose of its last two axes, computed
    inline in this kernel (see ir.fusion's _columns_of_product), else (None, False)."""
    n = v.producer
    if v.id not in k.inlined or n is None:
        return None, False
    transposed = swaps_last_two(n)
    if transposed:
        v = n.inputs[0]
        n = v.producer
        if v.id not in k.inlined or n is None:
            return None, False
    if get_op(n.op).schedule != "im2col" or not n.attrs.get("per_image"):
        return None, False
    size = n.outputs[0].shape[1] * n.outputs[0].shape[2]
    if not isinstance(size, int) or size > FUSED_COLUMNS:  # (the planner keeps bigger ones in memory: never here)
        return None, False
    return n, transposed


def build_columns(k: Kernel, node, image, buf) -> None:
    """Image `image`'s column matrix of im2col `node` (C * prod(kernel) rows of prod(out) positions) into buf."""
    x = node.inputs[0]
    outs = geometry(x.shape, node.attrs)[0]
    space = (x.shape[1],) + tuple(node.attrs["kernel"]) + tuple(outs)
    b = k.b

    def start(n, c, kk, qs):
        return Index(k, space, [c] + list(kk) + list(qs) + [i64(0)]).flat

    im2col_runs(
        k, x, node.attrs, image, start, lambda flat, value: b.store(value, b.gep(buf, [i64(0), flat], inbounds=True))
    )


def transposed_pack_function(module: ir.Module, dt: str, vw: int, width: int):
    """`pack(src, ld, count, dst, valid)`: dst[kk * width + j] = src[min(j, valid - 1) * ld + kk] for kk < count,
    j < width (a panel of B packed from B^T's rows; columns past the valid ones, in a ragged last panel, repeat the
    last one: their results are discarded). Per vw rows of k, vw columns at a time are loaded as vw vectors along k and transposed
    in registers (an element-wise copy with strided stores became scatter instructions: 40% of a 128x784 @ 784x512
    product's time on an Intel Xeon); the rows of k past the last whole block are copied element by element.
    Emitted once per module."""
    T = LLTYPE[dt]
    fn, b, new = _shared_function(module, f"graphnn_pack_transposed_{dt}_{width}", [PTR, I64, I64, PTR, I64])
    if not new:
        return fn
    src, ld, count, dst, valid = fn.args
    esize = 4 if dt == "float32" else 8
    V = ir.VectorType(T, vw)
    blocks = b.sdiv(count, i64(vw))

    def block(kb):
        kk0 = b.mul(kb, i64(vw))
        for h in range(width // vw):
            rows = [
                b.load(_advance(b, src, b.add(kk0, b.mul(_clamped(b, h * vw + r, valid), ld)), T), typ=V, align=esize)
                for r in range(vw)
            ]
            for t, x in enumerate(transpose_vectors(b, rows)):
                at = b.add(b.mul(b.add(kk0, i64(t)), i64(width)), i64(h * vw))
                b.store(x, _advance(b, dst, at, T), align=esize)

    emit_loop(fn, b, blocks, block)
    done = b.mul(blocks, i64(vw))

    def rest(t):
        kk = b.add(done, t)

        def put(j):
            j = b.select(b.icmp_signed("<", j, valid), j, b.sub(valid, i64(1)))
            x = b.load(_advance(b, src, b.add(kk, b.mul(j, ld)), T), typ=T)
            b.store(x, _advance(b, dst, b.add(b.mul(kk, i64(width)), j), T))

        emit_loop(fn, b, i64(width), put)

    emit_loop(fn, b, b.sub(count, done), rest)
    b.ret_void()
    return fn


def transpose_vectors(b, rows: list) -> list:
    """The transpose of a square matrix held as len(rows) vectors of as many lanes (a power of two): log2(n) rounds
    of perfect shuffles, each pairing vector i with vector i + n/2 and interleaving their lower and upper halves."""
    n = len(rows)
    half = n // 2
    i32 = ir.IntType(32)
    lo = ir.Constant(ir.VectorType(i32, n), [x for i in range(half) for x in (i, n + i)])
    hi = ir.Constant(ir.VectorType(i32, n), [x for i in range(half) for x in (half + i, n + half + i)])
    v = list(rows)
    for _ in range(n.bit_length() - 1):
        v = [
            w
            for i in range(half)
            for w in (b.shuffle_vector(v[i], v[i + half], lo), b.shuffle_vector(v[i], v[i + half], hi))
        ]
    return v


def _conflicting_rows(n, m) -> bool:
    """Would B's rows, read in place, fall into a few cache sets: a row length of a multiple of 1024 elements (rows
    4 KiB apart or a power of two of that: a convolution's column matrix over N*H*W) read by more than one row block,
    where packing each panel once costs less than the misses of every row block's reads."""
    return isinstance(n, int) and n % 1024 == 0 and m > 8


PREFETCH_PANELS = 2  # panels ahead that packing a B with rows far apart asks the memory system for
PREFETCH_BYTES = 8 << 20  # size of B from which its packing prefetches


def _far_rows(K, n, esize: int) -> bool:
    """Is B big (beyond any L2: a convolution's column matrix) with rows far enough apart (a page) that the hardware
    prefetchers will not follow the packing's reads down the rows of a panel?"""
    return isinstance(n, int) and isinstance(K, int) and n * esize >= 4096 and K * n * esize >= PREFETCH_BYTES


def prefetch(k: Kernel, ptr) -> None:
    """A read prefetch of ptr's cache line into all cache levels (llvm.prefetch: a hint, never faults)."""
    _prefetch(k.module, k.b, ptr)


def _prefetch(module: ir.Module, b, ptr) -> None:
    fn = module.globals.get("llvm.prefetch.p0") or ir.Function(
        module,
        ir.FunctionType(ir.VoidType(), [PTR, ir.IntType(32), ir.IntType(32), ir.IntType(32)]),
        "llvm.prefetch.p0",
    )
    i32 = ir.IntType(32)
    b.call(fn, [b.bitcast(ptr, PTR), ir.Constant(i32, 0), ir.Constant(i32, 3), ir.Constant(i32, 1)])


def emit_matmul_blocked(k: Kernel, group, node, via_flat: bool, vw: int) -> None:
    """Register-blocked GEMM: B is packed into K x NR panels (or read in place); the shared micro-kernel keeps
    an MR x NR tile of C in vector registers while k runs (one broadcast of A and two vector FMAs per row
    and k), then the epilogue stores the tile. A ragged last panel is packed with zero padding and, when
    it is at most one vector wide, computed by a one-vector micro-kernel. A plain product over a long k is
    computed one slice of k at a time (see sliced_panel)."""
    root = group.root
    a, c = node.inputs
    out = node.outputs[0]
    dt = out.dtype
    T = LLTYPE[dt]
    m, n = out.shape[-2], out.shape[-1]
    K = a.shape[-1]
    with heuristic():
        NR, MR = 2 * vw, gemm_rows_per_tile(m)
        # (a k too long for a whole panel on the stack: B is packed one slice of k at a time, as for a k symbolic
        # in N; see emit_matmul)
        long_k = not isinstance(K, Sym) and K * NR > MAX_PANEL
        pb_direct = m <= DIRECT_B_MAX_ROWS and not long_k and not _conflicting_rows(n, m)
        direct_out = root is out and not via_flat and out.id in k.ptr
    # (B: one image's column matrix, built in a scratch per image, then read there; or its transpose, packed)
    columns, columns_t = built_columns(k, c)
    pb_direct = (pb_direct or columns is not None) and not columns_t
    if isinstance(n, Sym):  # columns symbolic in N (a convolution's N*H*W): a ragged last panel is decided at run time
        n_full, tail, tail_h = n // NR, None, 2
    else:
        n_full, tail = divmod(n, NR)
        tail_h = 1 if 0 < tail <= vw else 2  # vectors in the last panel's tile
    micro = gemm_tile_function(k.module, dt, vw, MR)
    micro_tail = gemm_tile_function(k.module, dt, vw, MR, tail_h) if tail != 0 else None
    pa, rs, ks = strided_operand(k, a)
    transposed_b = transposed_view(k, c)
    # (B^T's buffer: the pointer to the matrix (of each batch) that B transposes, and its row length)
    tsrc = direct_pointer(k, c.producer.inputs[0]) if transposed_b else None
    tpack = (tsrc, c.shape[-2]) if tsrc is not None else None
    # Packing B into contiguous panels pays off when many row blocks reuse each panel (big GEMMs); with few
    # rows a row-major B is read in place.
    if columns is not None:
        col_buf = k.alloca(ir.ArrayType(T, K * n))
        col_ptr = _opaque(k.b, k.b.gep(col_buf, [i64(0), i64(0)], inbounds=True))
        pb = None if columns_t else col_ptr
        if columns_t:  # (B = the columns' transpose: B[kk, j] at col_buf[j * K + kk], packed in registers)
            transposed_b, tpack = True, (col_ptr, K)
    else:
        pb = direct_pointer(k, c) if pb_direct else None
    dynamic_k = isinstance(K, Sym) or long_k  # (slice by slice throughout: no panel of all of k)
    esize = 4 if dt == "float32" else 8
    # A plain product over a long k that packs B (a weight gradient: k runs over the batch) runs one slice of k at
    # a time, summed into the result. With static sizes (and rows for two bands), the slices are band_slice() long:
    # per slice, a block of B's panels is packed (half of L2), then every band of MR rows of A, read in place, meets
    # each panel of the block while the band stays in L1 and the panels stream past from L2; the first slice stores
    # the tiles, the others add to them (BLIS's loops with the roles of A and B in the caches swapped: packing A
    # MR rows wide cost more than it saved, and fewer, longer slices read and write the result fewer times); a k of
    # one such slice is banded (below). Otherwise the slices are K_SLICE long, each packed panel's slice kept in L1
    # while every row block meets it (with k symbolic in N, slices are counted at run time and any k takes this
    # schedule: the choice is only about speed).
    with heuristic():
        static = isinstance(m, int) and isinstance(n, int) and m >= 2 * MR  # (k may be symbolic in N)
        # (a k symbolic in N, a weight gradient's batch, is sliced at any length when the rest is static: otherwise
        # no schedule blocks it, and a transposed A would be read in place, a line per element: an MLP step's
        # first weight gradient took 450 instead of 316 us at batch 100)
        long_enough = K >= 2 * K_SLICE or (isinstance(K, Sym) and static)
        sliced = direct_out and (not k.epilogue or long_k) and pb is None and long_enough and m >= MR
        slice_k = band_slice(MR, esize, K) if static else K_SLICE
        sliced = sliced and not (static and slice_k == K and not long_k)
        banded_slices = sliced and static
    micro_acc = gemm_tile_function(k.module, dt, vw, MR, accumulate=True) if sliced else None
    b = k.b
    # Packed B panels over all of k, computed panel by panel down all the rows, would store the result (and read
    # an epilogue's operands) in columns NR wide, lines a row apart, that the hardware prefetchers do not follow: a
    # block of panels is packed first and computed band of rows by band (BLIS's jc and ic loops)
    with heuristic():
        banded = not sliced and pb is None and isinstance(n, int) and isinstance(K, int) and n_full >= 2
    if banded or banded_slices:  # (B's block: panels over all of k, or over one slice of k)
        block_k = K if banded else slice_k if isinstance(K, Sym) else min(slice_k, K)
        b_panels = max(1, block_bytes(ks != 1) // (block_k * NR * esize))
        bblock = k.alloca(ir.ArrayType(T, b_panels * block_k * NR))
    # A transposed in memory (a weight gradient's X^T): a band of MR rows over k touches a cache line per k for MR
    # elements of it, more lines than L1 holds, so each band is first copied MR wide (element (r, kk) at kk * MR + r),
    # once for all the panels of the block it then meets; `chunk` bands at a time, a whole number of cache lines per
    # k (8 bands of 6 float32 rows: 3 lines), so that each line of A is read once per block
    # A row-major A's bands are copied too (ROW_MAJOR_A_COPIED), one band at a time: the MR rows read in place are a
    # cache line each per 16 k, lines a row apart that fall into one L1 set when rows are 4 KiB apart (a 1024-wide A)
    copy_rows = ks == 1 and ROW_MAJOR_A_COPIED
    chunk = 1 if copy_rows else 64 // math.gcd(64, MR * esize)
    copied_a = (banded or banded_slices) and (ks != 1 or copy_rows)
    a_band = k.alloca(ir.ArrayType(T, chunk * MR * block_k)) if copied_a else None
    if long_k and not sliced:
        raise RuntimeError(f"internal: kernel {k.fn.name}: a product over k = {K} needs the sliced schedule")
    panel = k.alloca(ir.ArrayType(T, K_SLICE * NR if sliced and dynamic_k else scratch_count(K * NR, MAX_PANEL)))
    tile = k.alloca(ir.ArrayType(T, MR * NR))
    # Threads split the column panels, or with fewer panels than rows to spare (a narrow product: an input gradient
    # or a weight gradient with 32 columns is one panel), the bands of MR rows: each part then packs every panel
    # itself and computes its own bands, `part` = (first band, band past its last).
    n_panels = n_full + (1 if tail else 0) if isinstance(n, int) else None
    all_bands = (m + MR - 1) // MR if isinstance(m, int) else None
    split_rows = (
        static and not dynamic_k and n_panels is not None and n_panels < ROW_SPLIT_PANELS and all_bands > n_panels
    )
    part = [None]

    def bands_of(total):
        """[lo, hi) of bands 0 .. total that this part computes (all of them unless threads split the rows)."""
        if part[0] is None:
            return i64(0), as_i64(total)
        lo, hi = part[0]
        top = as_i64(total)
        return (b.select(b.icmp_signed("<", lo, top), lo, top), b.select(b.icmp_signed("<", hi, top), hi, top))

    def band_loop(total, body):
        """body(ib) for this part's bands of 0 .. total."""
        lo, hi = bands_of(total)
        k.loop(b.sub(hi, lo), lambda t: body(b.add(lo, t)))

    def holds_band(ib: int, emit):
        """emit() in the part that computes band ib (every part when threads split the columns)."""
        if part[0] is None:
            return emit()
        lo, hi = part[0]
        inside = b.and_(b.icmp_signed("<=", lo, i64(ib)), b.icmp_signed(">", hi, i64(ib)))
        k.if_else(inside, emit, lambda: None)

    def cell(offset):
        return b.gep(panel, [i64(0), offset], inbounds=True)

    def per_batch(lead_dims):
        bc = batch_dims(out, c, lead_dims)
        if columns is not None:
            build_columns(k, columns, bc[0], col_buf)
        # (B's matrix of this batch: in memory, or the image's columns in col_buf, which holds one image)
        b_off = i64(0) if columns is not None else _batch_offset(k, out, c, lead_dims)
        a_off = _batch_offset(k, out, a, lead_dims)
        c_off = b.mul(Index(k, out.shape[:-2], lead_dims).flat, i64(m * n)) if out.type.ndim > 2 else i64(0)
        # a B packed from memory with rows far apart (a convolution's column matrix): prefetched ahead
        pf = direct_pointer(k, c) if not transposed_b and pb is None and _far_rows(K, n, esize) else None
        pf_off = _batch_offset(k, out, c, lead_dims) if pf is not None else None

        def pack(j0, width: int, padded: bool, k0=None, count: int = K, into=None, at=None):
            """Rows k0 .. k0 + count of B's columns j0 .. j0 + width into the panel (or into buffer `into` from
            element `at` on)."""
            buf = panel if into is None else into

            def cell(offset):
                return b.gep(buf, [i64(0), offset if at is None else b.add(at, offset)], inbounds=True)

            def row(kk):
                src = kk if k0 is None else b.add(k0, kk)

                def put(jj):
                    j = b.add(j0, jj)
                    if padded:  # zeros past column n
                        inside = b.icmp_signed("<", j, i64(n))
                        y = k.elem(c, Index(k, c.shape, bc + [src, b.select(inside, j, i64(n - 1))]))
                        y = b.select(inside, y, k.const(0, dt))
                    else:
                        y = k.elem(c, Index(k, c.shape, bc + [src, j]))
                    b.store(y, cell(b.add(b.mul(kk, i64(width)), jj)))

                return put

            if transposed_b and tpack is not None and (not padded or isinstance(n, int)):  # (in registers)
                pack_transposed(j0, width, k0, count, buf, at, padded)
            elif transposed_b:  # (B's columns are rows in memory: each read along k, contiguously)
                k.loop(width, lambda jj: k.loop(count, lambda kk: row(kk)(jj)))
            elif pf is None:
                k.loop(count, lambda kk: k.loop(width, row(kk)))
            else:  # rows far apart: ask for a later panel's part of each row while packing this one

                def row_ahead(kk):
                    k.loop(width, row(kk))
                    at = b.add(pf_off, b.add(b.mul(kk if k0 is None else b.add(k0, kk), i64(n)), j0))
                    for line in range(0, NR, 64 // esize):
                        prefetch(k, _advance(b, pf, b.add(at, i64(PREFETCH_PANELS * NR + line)), T))

                k.loop(count, row_ahead)

        def pack_transposed(j0, width: int, k0, count, buf, at, padded: bool):
            """pack() of a transposed B (column j of B is row j of a row-major matrix), by the shared
            transposed_pack_function."""
            pw, ldw = tpack
            first = i64(0) if k0 is None else k0
            src = _advance(b, pw, b.add(b_off, b.add(first, b.mul(j0, i64(ldw)))), T)
            dst = _advance(b, _opaque(b, buf), i64(0) if at is None else at, T)
            valid = b.sub(i64(n), j0) if padded else i64(width)
            b.call(transposed_pack_function(k.module, dt, vw, width), [src, i64(ldw), as_i64(count), dst, valid])

        def run_panel(j0, cols, fn, width: int, bsrc, bld, full: bool):
            band_loop((m + MR - 1) // MR, lambda ib: row_tile(ib, j0, cols, fn, width, bsrc, bld, full))

        def row_tile(ib, j0, cols, fn, width: int, bsrc, bld, full: bool, band=None):
            """The tile of row block ib at column j0 (B's panel at bsrc, rows bld apart; A's rows read in place, or
            from `band`: (pointer, row stride, k stride)), stored in place or through the scratch tile and the
            epilogue."""
            i0 = b.mul(ib, i64(MR))
            rows = b.sub(i64(m), i0)
            start, a_rs, a_ks = band or (_advance(b, pa, b.add(a_off, b.mul(i0, i64(rs))), T), rs, ks)
            args = [start, i64(a_rs), i64(a_ks), rows, bsrc, bld, i64(K)]

            def via_tile():
                b.call(fn, args + [b.bitcast(tile, PTR), i64(width)])
                count = b.select(b.icmp_signed("<", rows, i64(MR)), rows, i64(MR))
                store_tile(k, root, out, tile, width, count, cols, lead_dims, i0, j0, via_flat)

            if direct_out and full:  # a whole tile of a plain product: stored in place, no epilogue
                pc = _advance(b, k.ptr[out.id], b.add(c_off, b.add(b.mul(i0, i64(n)), j0)), T)

                def in_place():
                    b.call(fn, args + [pc, i64(n)])
                    if k.epilogue:  # siblings read the tile just stored (from L1)
                        k.loop(MR, lambda r: k.loop(NR, lambda jj: siblings_at(k, out, lead_dims, i0, j0, r, jj)))

                k.if_else(b.icmp_signed(">=", rows, i64(MR)), in_place, via_tile)
            else:
                via_tile()

        def column_blocks(lo, hi, block):
            """This part's panels lo .. hi in blocks of b_panels whole panels, block(p0, panels) for each (its first
            panel, how many), then the ragged last panel when it is this part's."""
            full_hi = b.select(b.icmp_signed("<", hi, i64(n_full)), hi, i64(n_full))
            left = b.sub(full_hi, lo)
            left = b.select(b.icmp_signed(">", left, i64(0)), left, i64(0))

            def column_block(jb):
                p0 = b.add(lo, b.mul(jb, i64(b_panels)))
                rest = b.sub(full_hi, p0)
                block(p0, b.select(b.icmp_signed("<", rest, i64(b_panels)), rest, i64(b_panels)))

            k.loop(b.sdiv(b.add(left, i64(b_panels - 1)), i64(b_panels)), column_block)
            if tail != 0:
                k.if_else(b.icmp_signed(">", hi, i64(n_full)), tail_panel, lambda: None)

        def banded_block(p0, panels):
            """Panels p0 .. p0 + panels of a product over a whole packed k (see banded), each packed whole, then
            computed row block by row block, so that the tiles of a band of MR rows are stored (and the epilogue
            reads its other operands) left to right along the rows."""
            k.loop(
                panels,
                lambda jr: pack(b.mul(b.add(p0, jr), i64(NR)), NR, False, into=bblock, at=b.mul(jr, i64(K * NR))),
            )

            def band(ib, src):
                def tile_at(jr):
                    bsrc = b.bitcast(b.gep(bblock, [i64(0), b.mul(jr, i64(K * NR))], inbounds=True), PTR)
                    row_tile(ib, b.mul(b.add(p0, jr), i64(NR)), i64(NR), micro, NR, bsrc, i64(NR), True, src)

                k.loop(panels, tile_at)

            each_band(i64(0), K, (m + MR - 1) // MR, m // MR, band)

        def each_band(k0, count: int, bands, whole, body):
            """body(ib, A's band source) for this part's bands of 0 .. bands of A over k0 .. k0 + count (`whole` of
            them have MR rows); a transposed A's whole bands are copied `chunk` at a time."""
            if a_band is None or chunk == 1 or copy_rows:
                return band_loop(bands, lambda ib: body(ib, band_of_a(b.mul(ib, i64(MR)), k0, count, rows_at(ib))))
            V = ir.VectorType(T, MR)
            buf = _opaque(b, a_band)

            lo, hi = bands_of(bands)
            whole_hi = bands_of(whole)[1]
            n_whole = b.sub(whole_hi, lo)
            n_whole = b.select(b.icmp_signed(">", n_whole, i64(0)), n_whole, i64(0))

            def copied(c):
                ib0 = b.add(lo, b.mul(c, i64(chunk)))
                start = _advance(b, pa, b.add(a_off, b.add(b.mul(b.mul(ib0, i64(MR)), i64(rs)), b.mul(k0, i64(ks)))), T)

                def copy(kk):
                    src = _advance(b, start, b.mul(kk, i64(ks)), T)
                    for t in range(chunk):
                        x = b.load(_advance(b, src, i64(t * MR), T), typ=V, align=esize)
                        at = b.add(b.mul(as_i64(count), i64(t * MR)), b.mul(kk, i64(MR)))
                        b.store(x, _advance(b, buf, at, T), align=esize)

                k.loop(count, copy)
                k.loop(
                    chunk,
                    lambda t: body(
                        b.add(ib0, t), (_advance(b, buf, b.mul(t, b.mul(as_i64(count), i64(MR))), T), 1, MR)
                    ),
                )

            chunks = b.sdiv(n_whole, i64(chunk))
            k.loop(chunks, copied)
            done = b.add(lo, b.mul(chunks, i64(chunk)))
            k.loop(
                b.sub(hi, done),
                lambda j: (lambda ib: body(ib, band_of_a(b.mul(ib, i64(MR)), k0, count, rows_at(ib))))(b.add(done, j)),
            )

        def rows_at(ib):
            return b.sub(i64(m), b.mul(ib, i64(MR)))

        def band_of_a(i0, k0, count: int, rows):
            """(pointer, row stride, k stride) of rows i0 .. i0 + MR of A over k0 .. k0 + count: in place, or
            copied MR wide into a_band (rows past the end repeat the last one, as the micro-kernel's)."""
            start = _advance(b, pa, b.add(a_off, b.add(b.mul(i0, i64(rs)), b.mul(k0, i64(ks)))), T)
            if a_band is None:
                return start, rs, ks
            V = ir.VectorType(T, MR)
            band = _opaque(b, a_band)

            def at(kk):
                return _advance(b, band, b.mul(kk, i64(MR)), T)

            def whole():  # (each k's MR elements adjacent in memory: one short vector copy; else MR loads)
                if rs != 1:
                    return gathered(lambda r: i64(r))
                k.loop(
                    count,
                    lambda kk: b.store(
                        b.load(_advance(b, start, b.mul(kk, i64(ks)), T), typ=V, align=esize), at(kk), align=esize
                    ),
                )

            def gathered(row):
                def put(kk):
                    x = ir.Constant(V, None)
                    for r in range(MR):
                        y = b.load(_advance(b, start, b.add(b.mul(kk, i64(ks)), b.mul(row(r), i64(rs))), T), typ=T)
                        x = b.insert_element(x, y, ir.Constant(ir.IntType(32), r))
                    b.store(x, at(kk), align=esize)

                k.loop(count, put)

            def ragged():
                gathered(lambda r: _clamped(b, r, rows))

            k.if_else(b.icmp_signed(">=", rows, i64(MR)), whole, ragged)
            return band, 1, MR

        def full_panel(jp):
            j0 = b.mul(jp, i64(NR))
            if sliced:
                return sliced_panel(j0)
            if pb is not None:
                bsrc, bld = _advance(b, pb, b.add(b_off, j0), T), i64(n)
            else:
                pack(j0, NR, False)
                bsrc, bld = b.bitcast(panel, PTR), i64(NR)
            run_panel(j0, i64(NR), micro, NR, bsrc, bld, True)

        def sliced_panel(j0):
            """A long-k panel of a plain product, one slice of k at a time: the slice of the packed panel stays
            in L1 while every whole row block adds its part into the result; a ragged last row block then runs
            over all of k through the scratch tile."""
            whole = m // MR

            def k_slice(k0, count: int, fn):
                pack(j0, NR, False, k0, count)

                def row_block(ib):
                    i0 = b.mul(ib, i64(MR))
                    start = _advance(b, pa, b.add(a_off, b.add(b.mul(i0, i64(rs)), b.mul(k0, i64(ks)))), T)
                    pc = _advance(b, k.ptr[out.id], b.add(c_off, b.add(b.mul(i0, i64(n)), j0)), T)
                    args = [start, i64(rs), i64(ks), i64(MR), b.bitcast(panel, PTR), i64(NR), as_i64(count)]
                    b.call(fn, args + [pc, i64(n)])

                band_loop(whole, row_block)

            if dynamic_k:
                return sliced_dynamic(j0, whole, k_slice)
            static_slices(k_slice)
            panel_siblings(j0, whole)
            ragged_rows(whole, lambda i0, rows: whole_k_rows(j0, i0, rows))

        def static_slices(k_slice, size: int = K_SLICE):
            """k_slice(k0, count, fn) for each slice of a static k (`size` long, the last one ragged): the first with
            the micro-kernel that stores, the others with the one that adds."""
            size = min(size, K)
            k_slice(i64(0), size, micro)
            k.loop(K // size - 1, lambda s: k_slice(b.mul(b.add(s, i64(1)), i64(size)), size, micro_acc))
            if K % size:
                k_slice(i64(K - K % size), K % size, micro_acc)

        def whole_k_rows(j0, i0, rows):
            """Rows i0 .. i0 + rows (fewer than MR) of the panel at column j0 over all of k, through the scratch
            tile and the epilogue."""
            pack(j0, NR, False)
            start = _advance(b, pa, b.add(a_off, b.mul(i0, i64(rs))), T)
            args = [start, i64(rs), i64(ks), rows, b.bitcast(panel, PTR), i64(NR), i64(K)]
            b.call(micro, args + [b.bitcast(tile, PTR), i64(NR)])
            store_tile(k, root, out, tile, NR, rows, i64(NR), lead_dims, i0, j0, via_flat)

        def sliced_block(p0, panels):
            """Panels p0 .. p0 + panels of a big static plain product (see banded_slices): per slice of k, the block's
            panels are packed, then each band of MR rows of A meets every panel, the first slice storing the tiles,
            the others adding to them (a ragged last band through the scratch tile); then the epilogue siblings."""
            whole, ragged = divmod(m, MR)
            out_ptr = k.ptr[out.id]

            def k_slice(k0, count, fn):
                panel_size = b.mul(as_i64(count), i64(NR))  # (count: an int, or a value for a k symbolic in N)
                k.loop(
                    panels,
                    lambda jr: pack(b.mul(b.add(p0, jr), i64(NR)), NR, False, k0, count, bblock, b.mul(jr, panel_size)),
                )

                def band(i0, rows: int, src):
                    start, a_rs, a_ks = src
                    row = _advance(b, out_ptr, b.add(c_off, b.mul(i0, i64(n))), T)

                    def tile_at(jr):
                        bsrc = b.bitcast(b.gep(bblock, [i64(0), b.mul(jr, panel_size)], inbounds=True), PTR)
                        pc = _advance(b, row, b.mul(b.add(p0, jr), i64(NR)), T)
                        args = [start, i64(a_rs), i64(a_ks), i64(rows), bsrc, i64(NR), as_i64(count)]
                        if rows == MR:
                            return b.call(fn, args + [pc, i64(n)])
                        b.call(micro, args + [b.bitcast(tile, PTR), i64(NR)])  # (then its rows added into C)

                        def put(r, jj):
                            at = _advance(b, pc, b.add(b.mul(r, i64(n)), jj), T)
                            x = b.load(b.gep(tile, [i64(0), b.add(b.mul(r, i64(NR)), jj)], inbounds=True))
                            b.store(x if fn is micro else b.fadd(b.load(at, typ=T), x), at)

                        k.loop(rows, lambda r: k.loop(NR, lambda jj: put(r, jj)))

                    k.loop(panels, tile_at)

                each_band(k0, count, whole, whole, lambda ib, src: band(b.mul(ib, i64(MR)), MR, src))
                if ragged:
                    i0 = i64(whole * MR)
                    holds_band(whole, lambda: band(i0, ragged, band_of_a(i0, k0, count, i64(ragged))))

            if isinstance(K, Sym):
                each_slice(lambda k0, count, acc: k_slice(k0, count, micro_acc if acc else micro), slice_k)
            else:
                static_slices(k_slice, slice_k)
            if k.epilogue:  # (siblings of a long-k product, read back from the block's finished panels)
                r_lo, r_hi = (b.mul(x, i64(MR)) for x in bands_of(all_bands))
                r_hi = b.select(b.icmp_signed("<", r_hi, i64(m)), r_hi, i64(m))
                k.loop(
                    panels,
                    lambda jr: k.loop(
                        b.sub(r_hi, r_lo),
                        lambda t: k.loop(
                            NR,
                            lambda jj: siblings_at(k, out, lead_dims, r_lo, b.mul(b.add(p0, jr), i64(NR)), t, jj),
                        ),
                    ),
                )

        def panel_siblings(j0, whole) -> None:
            """The epilogue siblings of a sliced panel's whole row blocks, read back from the finished product (the
            ragged rows store theirs through the scratch tile)."""
            if k.epilogue:
                band_loop(
                    whole,
                    lambda ib: k.loop(
                        MR,
                        lambda r: k.loop(NR, lambda jj: siblings_at(k, out, lead_dims, b.mul(ib, i64(MR)), j0, r, jj)),
                    ),
                )

        def ragged_rows(whole, emit) -> None:
            """emit(i0, rows) for the rows past the whole row blocks, if any (decided at run time for rows
            symbolic in N)."""
            if not isinstance(m, Sym):
                if m % MR:
                    holds_band(whole, lambda: emit(i64(whole * MR), i64(m - whole * MR)))
                return
            i0 = b.mul(i64(whole), i64(MR))
            rows = b.sub(i64(m), i0)
            k.if_else(b.icmp_signed(">", rows, i64(0)), lambda: emit(i0, rows), lambda: None)

        def sliced_dynamic(j0, whole, k_slice):
            """sliced_panel for a k symbolic in N (see each_slice); a ragged last row block accumulates over the
            slices in the scratch tile."""
            each_slice(lambda k0, count, acc: k_slice(k0, count, micro_acc if acc else micro))
            panel_siblings(j0, whole)

            ragged_rows(whole, lambda i0, rows: tile_over_slices(j0, i0, rows, i64(NR), NR, False, micro, micro_acc))

        def tile_over_slices(j0, i0, rows, cols, width: int, padded: bool, first, rest) -> None:
            """Rows i0 .. i0 + rows of the panel at column j0 (width wide, cols of it in the result, zero padded
            past column n when `padded`) summed over the slices of k in the scratch tile (first stores, rest adds),
            then stored through the epilogue."""

            def one_slice(k0, count, acc):
                pack(j0, width, padded, k0, count)
                start = _advance(b, pa, b.add(a_off, b.add(b.mul(i0, i64(rs)), b.mul(k0, i64(ks)))), T)
                args = [start, i64(rs), i64(ks), rows, b.bitcast(panel, PTR), i64(width), count]
                b.call(rest if acc else first, args + [b.bitcast(tile, PTR), i64(width)])

            each_slice(one_slice)
            store_tile(k, root, out, tile, width, rows, cols, lead_dims, i0, j0, via_flat)

        def tail_panel():
            width = tail_h * vw
            j0 = b.mul(i64(n_full), i64(NR))
            cols = i64(tail) if tail is not None else b.sub(i64(n), j0)
            if sliced and dynamic_k:  # the panel holds one slice of k: each row block sums the slices in the tile
                return sliced_tail_panel(j0, cols, width)
            pack(j0, width, True)
            run_panel(j0, cols, micro_tail, width, b.bitcast(panel, PTR), i64(width), False)

        def sliced_tail_panel(j0, cols, width: int):
            """The ragged last column panel of a sliced product with k symbolic in N: per row block, every slice
            of k is packed (zero padded past column n) and its product added up in the scratch tile, which is
            then stored through the epilogue."""
            tail_acc = gemm_tile_function(k.module, dt, vw, MR, tail_h, accumulate=True)

            def row_block(ib):
                i0 = b.mul(ib, i64(MR))
                left = b.sub(i64(m), i0)
                rows = b.select(b.icmp_signed("<", left, i64(MR)), left, i64(MR))
                tile_over_slices(j0, i0, rows, cols, width, True, micro_tail, tail_acc)

            k.loop((m + MR - 1) // MR, row_block)

        def count_at(k0, size: int = K_SLICE):
            left = b.sub(i64(K), k0)
            return b.select(b.icmp_signed("<", left, i64(size)), left, i64(size))

        def each_slice(body, size: int = K_SLICE):
            """body(k0, count, accumulate) for each slice of a k symbolic in N: ceil(k / size) of them, the last one
            ragged, counted at run time (the first stores, the others add)."""
            body(i64(0), count_at(i64(0), size), False)
            k.loop(
                (K + size - 1) // size - 1,
                lambda s: (lambda k0: body(k0, count_at(k0, size), True))(b.mul(b.add(s, i64(1)), i64(size))),
            )

        def panels_and_bands():
            if banded_slices or banded:  # (each part its share of the panels, the last one ragged)
                block = sliced_block if banded_slices else banded_block
                k.share(n_panels, lambda lo, hi: column_blocks(lo, hi, block))
            elif tail != 0:  # one outer loop over all panels (so threads can split it), the last one ragged
                k.loop(
                    n_full + 1 if tail is not None else (n + NR - 1) // NR,
                    lambda jp: k.if_else(b.icmp_signed("<", jp, i64(n_full)), lambda: full_panel(jp), tail_panel),
                    parallel=True,
                )
            else:
                k.loop(n_full, full_panel, parallel=True)

        if split_rows and not lead_dims:  # (threads split the bands; inside, every panel, unsplit)

            def rows_part(lo, hi):
                part[0] = (lo, hi)
                panels_and_bands()
                part[0] = None

            k.share(all_bands, rows_part)
        else:
            panels_and_bands()

    k.loops(out.shape[:-2], per_batch, parallel=True)


def dot_tile_shape(m: int) -> tuple:
    """(MR, NR) of the dot-product tile, fewer rows when A has fewer than 4. With 32 vector registers, 16
    accumulators; with 16, at most 12 (a 4 x 4 tile's accumulators and its 8 loaded vectors spilled to the stack
    on every k step with AVX2)."""
    if vector_registers() >= 32:
        return {1: (1, 12), 2: (2, 6), 3: (3, 4)}.get(m, (DOT_MR, DOT_NR))
    return {1: (1, 12), 2: (2, 5), 3: (3, 3)}.get(m, (DOT_MR, DOT_NR - 1))


def dots_tile_function(module: ir.Module, dt: str, vw: int, MR: int = DOT_MR, NR: int = DOT_NR):
    """`tile(a, lda, rows, w, ldw, cols, K, out)`: out[r*NR + s] = dot(A row r, W row s) over K, for a
    MR x NR tile (rows/cols past the end repeat the last one)."""
    T = LLTYPE[dt]
    fn, b, new = _shared_function(module, f"graphnn_dots_tile_{dt}_{MR}x{NR}", [PTR, I64, I64, PTR, I64, I64, I64, PTR])
    if not new:
        return fn
    a, lda, rows, w, ldw, cols, K, out = fn.args
    vo = VectorOps(module, dt, vw)
    V, fma, hsum, esize = vo.V, vo.fma, vo.hsum, vo.esize
    zero_v = ir.Constant(V, [ir.Constant(T, 0.0)] * vw)
    arow = [_advance(b, a, b.mul(_clamped(b, r, rows), lda), T) for r in range(MR)]
    wrow = [_advance(b, w, b.mul(_clamped(b, s, cols), ldw), T) for s in range(NR)]
    accs = [b.alloca(V) for _ in range(MR * NR)]
    for acc in accs:
        b.store(zero_v, acc)

    def kstep(kk):
        off = b.mul(kk, i64(vw))
        av = [b.load(_advance(b, p, off, T), typ=V, align=esize) for p in arow]
        wv = [b.load(_advance(b, p, off, T), typ=V, align=esize) for p in wrow]
        for r in range(MR):
            for s in range(NR):
                slot = accs[r * NR + s]
                b.store(b.call(fma, [av[r], wv[s], b.load(slot)]), slot)

    full = b.udiv(K, i64(vw))
    emit_loop(fn, b, full, kstep)

    # the K % vw tail: one masked vector step (lanes past the end are neither loaded nor counted)
    I32 = ir.IntType(32)
    masked_load = vo.masked_load
    rest = b.urem(K, i64(vw))
    with b.if_then(b.icmp_unsigned("!=", rest, i64(0))):
        lanes = ir.Constant(ir.VectorType(I64, vw), list(range(vw)))
        limit = b.insert_element(ir.Constant(ir.VectorType(I64, vw), ir.Undefined), rest, ir.Constant(I32, 0))
        limit = b.shuffle_vector(
            limit, ir.Constant(ir.VectorType(I64, vw), ir.Undefined), ir.Constant(ir.VectorType(I32, vw), [0] * vw)
        )
        mask = b.icmp_signed("<", lanes, limit)
        off = b.mul(full, i64(vw))
        av = [b.call(masked_load, [_advance(b, p, off, T), ir.Constant(I32, esize), mask, zero_v]) for p in arow]
        wv = [b.call(masked_load, [_advance(b, p, off, T), ir.Constant(I32, esize), mask, zero_v]) for p in wrow]
        for r in range(MR):
            for s in range(NR):
                slot = accs[r * NR + s]
                b.store(b.call(fma, [av[r], wv[s], b.load(slot)]), slot)
    for i in range(MR * NR):
        x = b.call(hsum, [ir.Constant(T, -0.0), b.load(accs[i])], fastmath=("reassoc",))
        b.store(x, _advance(b, out, i64(i), T))
    b.ret_void()
    return fn


DOT_PACK = 256 << 10  # bytes of A's packed slice in the sliced dot-product schedule (kept in L2)
DOT_LONG_K = 2048  # k from which A @ W^T with a small result runs as dot products over slices of k


def dot_slice(dt: str, m: int = DOT_MR) -> int:
    """Elements of k per slice of the sliced dot-product schedule: a tile's NR rows of W for one slice fill at most
    half of this host's L1 data cache, and the slice of A's m rows (packed: rows of A a power of two apart share
    cache sets) at most DOT_PACK bytes."""
    esize = 4 if dt == "float32" else 8
    s = min(l1_data_bytes() // (2 * dot_tile_shape(m)[1] * esize), DOT_PACK // (m * esize))
    return max(64, 1 << (s.bit_length() - 1))


def _dots_by_slices(m, n, K, dt: str = "float32") -> bool:
    """A @ W^T over a long k with a small result (a weight gradient: k runs over N*H*W): dot products over slices of
    k, each slice of A and W read from memory once, instead of packing W^T panels element by element. The m x n
    result is accumulated in a stack scratch of at most MAX_PANEL float32s' bytes."""
    ints = all(isinstance(x, int) for x in (m, n, K))
    esize = 4 if dt == "float32" else 8
    return ints and K >= DOT_LONG_K and m <= 128 and m * n * esize <= 8 * MAX_PANEL


def emit_matmul_dots(k: Kernel, group, node, via_flat: bool, vw: int) -> None:
    """C = A @ W^T with A (m, K) and W (n, K) both contiguous along K: the shared micro-kernel keeps one
    vector accumulator per element of a MR x NR tile while k runs over whole vectors of both rows
    (MR + NR loads feed MR*NR FMAs), then sums lanes and the K % vw tail; the epilogue stores the tile."""
    root = group.root
    a, c = node.inputs
    w = c.producer.inputs[0]
    out = node.outputs[0]
    dt = out.dtype
    T = LLTYPE[dt]
    m, n, K = out.shape[-2], out.shape[-1], a.shape[-1]
    MR, NR = dot_tile_shape(m)
    micro = dots_tile_function(k.module, dt, vw, MR, NR)
    b = k.b
    pa, pw = direct_pointer(k, a), k.ptr[w.id]
    tile = k.alloca(ir.ArrayType(T, MR * NR))

    if _dots_by_slices(m, n, K, dt):
        return _dots_sliced(k, group, node, via_flat, micro, MR, NR, pa, pw, tile)

    def per_batch(lead_dims):
        a_off, w_off = _batch_offset(k, out, a, lead_dims), _batch_offset(k, out, w, lead_dims)

        def column_block(jt):
            j0 = b.mul(jt, i64(NR))
            cols = b.sub(i64(n), j0)
            wp = _advance(b, pw, b.add(w_off, b.mul(j0, i64(K))), T)
            ncols = b.select(b.icmp_signed("<", cols, i64(NR)), cols, i64(NR))

            def row_block(it):
                i0 = b.mul(it, i64(MR))
                rows = b.sub(i64(m), i0)
                ap = _advance(b, pa, b.add(a_off, b.mul(i0, i64(K))), T)
                b.call(micro, [ap, i64(K), rows, wp, i64(K), cols, i64(K), b.bitcast(tile, PTR)])
                nrows = b.select(b.icmp_signed("<", rows, i64(MR)), rows, i64(MR))
                store_tile(k, root, out, tile, NR, nrows, ncols, lead_dims, i0, j0, via_flat)

            k.loop((m + MR - 1) // MR, row_block)

        k.loop((n + NR - 1) // NR, column_block, parallel=True)

    k.loops(out.shape[:-2], per_batch, parallel=True)


def _dots_sliced(k: Kernel, group, node, via_flat: bool, micro, MR: int, NR: int, pa, pw, tile) -> None:
    """emit_matmul_dots over slices of k, outermost: each part (thread) takes a share of the column tiles, and for
    each slice of k computes the dot-product tiles of all rows of its columns, added into an m x n scratch that the
    epilogue then stores. A slice of A's rows is read from memory once per part and reused from cache by every
    column tile; W is read once."""
    root = group.root
    a = node.inputs[0]
    w = node.inputs[1].producer.inputs[0]
    out = node.outputs[0]
    dt = out.dtype
    T = LLTYPE[dt]
    m, n, K = out.shape[-2], out.shape[-1], a.shape[-1]
    S = dot_slice(dt, m)
    b = k.b
    acc = k.alloca(ir.ArrayType(T, m * n))  # (row r, column j0 + jj of the part's first column j0) at r * n + jj
    apack = k.alloca(ir.ArrayType(T, m * S))  # the slice of A's rows, contiguous

    def cell(offset):
        return b.gep(acc, [i64(0), offset], inbounds=True)

    def per_batch(lead_dims):
        a_off, w_off = _batch_offset(k, out, a, lead_dims), _batch_offset(k, out, w, lead_dims)

        def columns(lo, hi):
            j_lo = b.mul(lo, i64(NR))
            j_end = b.mul(hi, i64(NR))
            j_end = b.select(b.icmp_signed("<", j_end, i64(n)), j_end, i64(n))
            width = b.sub(j_end, j_lo)
            k.loop(m, lambda r: k.loop(width, lambda jj: b.store(k.const(0, dt), cell(b.add(b.mul(r, i64(n)), jj)))))

            def k_slice(s):
                k0 = b.mul(s, i64(S))
                rest = b.sub(i64(K), k0)
                klen = b.select(b.icmp_signed("<", rest, i64(S)), rest, i64(S))

                def pack_row(r):
                    src = _advance(b, pa, b.add(a_off, b.add(b.mul(r, i64(K)), k0)), T)
                    dst = b.gep(apack, [i64(0), b.mul(r, i64(S))], inbounds=True)

                    def put(kk):
                        b.store(b.load(_advance(b, src, kk, T), typ=T), b.gep(dst, [kk], inbounds=True))

                    k.loop(klen, put)

                k.loop(m, pack_row)

                def column_tile(t):
                    jl = b.mul(t, i64(NR))  # (from the part's first column)
                    cols = b.sub(width, jl)
                    ncols = b.select(b.icmp_signed("<", cols, i64(NR)), cols, i64(NR))
                    wp = _advance(b, pw, b.add(w_off, b.add(b.mul(b.add(j_lo, jl), i64(K)), k0)), T)

                    def row_tile(it):
                        i0 = b.mul(it, i64(MR))
                        rows = b.sub(i64(m), i0)
                        ap = b.bitcast(b.gep(apack, [i64(0), b.mul(i0, i64(S))], inbounds=True), PTR)
                        b.call(micro, [ap, i64(S), rows, wp, i64(K), cols, klen, b.bitcast(tile, PTR)])
                        nrows = b.select(b.icmp_signed("<", rows, i64(MR)), rows, i64(MR))

                        def add_row(r):
                            def add(jj):
                                src = b.load(b.gep(tile, [i64(0), b.add(b.mul(r, i64(NR)), jj)], inbounds=True))
                                at = cell(b.add(b.mul(b.add(i0, r), i64(n)), b.add(jl, jj)))
                                b.store(k.flags(b.fadd(b.load(at), src), ("reassoc",)), at)

                            k.loop(ncols, add)

                        k.loop(nrows, add_row)

                    k.loop((m + MR - 1) // MR, row_tile)

                k.loop(b.sub(hi, lo), column_tile)

            k.loop((K + S - 1) // S, k_slice)
            store_tile(k, root, out, acc, n, i64(m), width, lead_dims, i64(0), j_lo, via_flat)

        k.share((n + NR - 1) // NR, columns)

    k.loops(out.shape[:-2], per_batch, parallel=True)


ROW_BLOCK = 256  # output columns the row schedule accumulates in scratch at a time


def emit_matmul_rows(k: Kernel, group, node, via_flat: bool = False) -> None:
    """Row schedule for small or integer products: one block of an output row is accumulated in scratch, then
    stored through the epilogue. Rows and column blocks are independent, so threads split them."""
    root = group.root
    a, c = node.inputs
    out = node.outputs[0]
    dt = out.dtype
    n = out.shape[-1]
    K = a.shape[-1]
    b = k.b
    # (columns symbolic in N: blocks of ROW_BLOCK, the last one's width counted at run time)
    width = ROW_BLOCK if isinstance(n, Sym) else max(1, min(n, ROW_BLOCK))
    acc = k.alloca(ir.ArrayType(LLTYPE[dt], width))
    dot_order = transposed_view(k, c)

    def cell(j):
        return b.gep(acc, [i64(0), j], inbounds=True)

    def block(dims):
        lead_dims, i, jb = dims[:-2], dims[-2], dims[-1]
        j0 = b.mul(jb, i64(width))
        left = b.sub(i64(n), j0)
        cols = b.select(b.icmp_signed("<", left, i64(width)), left, i64(width))
        ba, bc = batch_dims(out, a, lead_dims), batch_dims(out, c, lead_dims)
        if dot_order:  # B = W^T with W contiguous along k: one dot product per output element

            def dot(jj):
                def step(s, red):
                    x = k.elem(a, Index(k, a.shape, ba + [i, red[0]]))
                    y = k.elem(c, Index(k, c.shape, bc + [red[0], b.add(j0, jj)]))
                    return k.flags(b.fadd(s, k.flags(b.fmul(x, y))), ("reassoc",))

                b.store(k.reduce((K,), k.const(0, dt), dt, step), cell(jj))

            k.loop(cols, dot)
        else:  # B contiguous along j: acc[j] += A[i, kk] * B[kk, j], vectorized over j
            k.loop(cols, lambda jj: b.store(k.const(0, dt), cell(jj)))

            def over_k(kk):
                x = k.elem(a, Index(k, a.shape, ba + [i, kk]))

                def upd(jj):
                    y = k.elem(c, Index(k, c.shape, bc + [kk, b.add(j0, jj)]))
                    b.store(k.flags(b.fadd(b.load(cell(jj)), k.flags(b.fmul(x, y)))), cell(jj))

                k.loop(cols, upd)

            k.loop(K, over_k)
        k.loop(
            cols, lambda jj: store_epilogue(k, root, out, lead_dims + [i, b.add(j0, jj)], b.load(cell(jj)), via_flat)
        )

    k.loops(out.shape[:-1] + (-(-n // width),), block, parallel=True)
