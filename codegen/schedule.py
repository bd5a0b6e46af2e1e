"""Helpers shared by the hand-written schedules (GEMM, convolution, col2im, pooling gradients)."""

from __future__ import annotations

import llvmlite.ir as ir

from .kernel import LLTYPE, PTR, Index, Kernel, i64, regroup

MAX_SCRATCH = 1 << 16  # elements; larger rows/planes use the generic element-by-element schedule


def prod(shape) -> int:
    p = 1
    for s in shape:
        p *= s
    return p


def store_epilogue(k: Kernel, root, heavy_value, dims: list, x, via_flat: bool = False) -> None:
    """Store root at the position of heavy element `dims` (value x), computing the fused epilogue."""
    if via_flat:  # reshapes between heavy op and root: positions correspond through the row-major flat index
        flat = Index(k, heavy_value.shape, dims).flat
        idx = Index(k, root.shape, regroup(k, heavy_value.shape, dims, root.shape), flat)
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
    if k.epilogue:
        store_siblings(k, root, idx, y)


def store_siblings(k: Kernel, root, idx: Index, y) -> None:
    """Compute and store the kernel's epilogue siblings at the element just stored (same row-major position); each
    reads the root and earlier siblings there from registers."""
    flat = idx.flat
    k.provide(root, idx, y)
    k.provide(root, Index(k, root.shape, flat=flat), y)
    for s in k.epilogue:
        sidx = idx if s.shape == root.shape else Index(k, s.shape, regroup(k, root.shape, idx.dims, s.shape), flat)
        x = k.compute(s, sidx)
        k.store(s, flat, x)
        k.provide(s, sidx, x)
        k.provide(s, Index(k, s.shape, flat=flat), x)


def window_position(b, q, tap, stride: int, dil: int, pad: int):
    """The input position that window position q reads at kernel offset `tap` (i64 values): q*stride + tap*dil - pad
    (convolutions, pooling, im2col and their gradients all address their windows through this)."""
    return b.sub(b.add(b.mul(q, i64(stride)), b.mul(tap, i64(dil))), i64(pad))


def within(b, p, size: int):
    """0 <= p < size."""
    return b.and_(b.icmp_signed(">=", p, i64(0)), b.icmp_signed("<", p, i64(size)))


def tap_range(b, tap, stride: int, dil: int, pad: int, size: int, limit: int):
    """(first q, count) of the positions q in [0, limit) with 0 <= q*stride + tap*dil - pad < size, for a
    runtime kernel offset `tap` (an i64)."""
    off = b.sub(i64(pad), b.mul(tap, i64(dil)))  # q*stride >= off
    pos = b.sdiv(b.add(off, i64(stride - 1)), i64(stride))
    lo = b.select(b.icmp_signed(">", off, i64(0)), pos, i64(0))
    top = b.add(i64(size - 1), off)  # q*stride <= top
    hi = b.select(b.icmp_signed("<", top, i64(0)), i64(0), b.add(b.sdiv(top, i64(stride)), i64(1)))
    hi = b.select(b.icmp_signed("<", hi, i64(limit)), hi, i64(limit))
    return lo, b.select(b.icmp_signed(">", hi, lo), b.sub(hi, lo), i64(0))


class VectorOps:
    """The vector type and intrinsics for <vw x dt> (declared in the module on first use)."""

    def __init__(self, module: ir.Module, dt: str, vw: int):
        T = self.T = LLTYPE[dt]
        V = self.V = ir.VectorType(T, vw)
        self.M = ir.VectorType(ir.IntType(1), vw)
        self.vw, self.esize = vw, (4 if dt == "float32" else 8)
        self.align = ir.Constant(ir.IntType(32), self.esize)
        sfx = f"v{vw}{'f32' if dt == 'float32' else 'f64'}"

        def declare(name, ret, args):
            return module.globals.get(name) or ir.Function(module, ir.FunctionType(ret, args), name)

        self.fma = declare(f"llvm.fma.{sfx}", V, [V, V, V])
        self.hsum = declare(f"llvm.vector.reduce.fadd.{sfx}", T, [T, V])
        self.masked_load = declare(f"llvm.masked.load.{sfx}.p0", V, [PTR, ir.IntType(32), self.M, V])
        self.masked_store = declare(f"llvm.masked.store.{sfx}.p0", ir.VoidType(), [V, PTR, ir.IntType(32), self.M])
        self.zero = ir.Constant(V, [ir.Constant(T, 0.0)] * vw)

    def splat(self, b: ir.IRBuilder, x) -> ir.Value:
        """The scalar x in every lane."""
        undef = ir.Constant(self.V, ir.Undefined)
        lane0 = ir.Constant(ir.VectorType(ir.IntType(32), self.vw), [0] * self.vw)
        return b.shuffle_vector(b.insert_element(undef, x, ir.Constant(ir.IntType(32), 0)), undef, lane0)

    def mask(self, lanes: int) -> ir.Constant:
        """The first `lanes` lanes on."""
        return ir.Constant(self.M, [int(i < lanes) for i in range(self.vw)])
