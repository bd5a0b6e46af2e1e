"""The attention schedule: attention, attention_lse and attention_grad row by row, never materializing the score
matrix. Each output row (a query row, or a key row for the k and v gradients) is independent, so rows are split
over threads. Per row, the scores are computed once into a scratch row (dot products vectorized over the head
dimension), then exponentiated against the row maximum (or the saved log-sum-exp) and summed into an accumulator
row; a row whose keys are all removed gives zeros, as in PyTorch.
"""

from __future__ import annotations

import math

import llvmlite.ir as ir

from .kernel import LLTYPE, Index, Kernel, i64
from .scalars import LLVMScalars
from .schedule import MAX_SCRATCH, VectorOps
from .target import vector_width_bits


class _Rows:
    """Element access for one attention node: q, k, v, the mask and the rest, broadcast over the batch dims."""

    def __init__(self, k: Kernel, node, has_v: bool = True):
        self.k, self.node, self.at = k, node, node.attrs
        n = 3 if has_v else 2
        ins = list(node.inputs)
        self.q, self.kk = ins[0], ins[1]
        self.v = ins[2] if has_v else None
        self.mask = ins[n] if self.at.get("masked") else None
        self.rest = ins[n + (1 if self.mask is not None else 0) :]
        self.dt = self.q.dtype
        self.s = LLVMScalars(k, self.dt, reassoc=True)

    def elem(self, v, batch: list, *last):
        """v[batch..., *last] with v's dims of size 1 broadcast (batch dims aligned to the output's from the right)."""
        lead = len(v.shape) - len(last)
        full = list(batch[len(batch) - lead :]) + list(last)
        dims = [i64(0) if n == 1 else x for n, x in zip(v.shape, full)]
        return self.k.elem(v, Index(self.k, v.shape, dims))

    def dot(self, a, ia, b_, ib, batch: list, n: int):
        """sum over e < n of a[batch, ia, e] * b[batch, ib, e] (vectorizable, reassociated)."""
        k, s = self.k, self.s

        def step(acc, red):
            return s.add(acc, s.mul(self.elem(a, batch, ia, red[0]), self.elem(b_, batch, ib, red[0])))

        return k.reduce((n,), k.const(0, self.dt), self.dt, step)

    def score(self, batch: list, i, j):
        """scale * q_i . k_j + mask[i, j]."""
        s = self.s
        x = s.mul(self.dot(self.q, i, self.kk, j, batch, self.q.shape[-1]), s.const(self.at["scale"]))
        return s.add(x, self.elem(self.mask, batch, i, j)) if self.mask is not None else x

    def key_count(self, i):
        """Keys query row i sees: all, or those up to i (causal, upper-left aligned)."""
        b, lk = self.k.b, self.kk.shape[-2]
        if not self.at.get("causal"):
            return i64(lk)
        n = b.add(i, i64(1))
        return b.select(b.icmp_signed("<", n, i64(lk)), n, i64(lk))


def _var(k: Kernel, dt: str, value):
    slot = k.alloca(LLTYPE[dt])
    k.b.store(value, slot)
    return slot


def _row_scratch(k: Kernel, dt: str, n: int):
    buf = k.alloca(ir.ArrayType(LLTYPE[dt], max(1, n)))
    return lambda j: k.b.gep(buf, [i64(0), j], inbounds=True)


def _zero_row(k: Kernel, cell, n: int, dt: str) -> None:
    k.loop(n, lambda e: k.b.store(k.const(0, dt), cell(e)))


def _forward(k: Kernel, node, lse_only: bool) -> None:
    """attention (out rows) or attention_lse (one value per row): per query row, scores into scratch, then the
    softmax-weighted sum of the value rows."""
    r = _Rows(k, node, has_v=not lse_only)
    b, s, dt = k.b, r.s, r.dt
    out = node.outputs[0]
    lk = r.kk.shape[-2]
    ev = 0 if lse_only else r.v.shape[-1]
    score = _row_scratch(k, dt, lk)
    acc = _row_scratch(k, dt, ev)

    def row(dims):
        batch, i = dims[:-1], dims[-1]
        n = r.key_count(i)
        m = _var(k, dt, k.const(-math.inf, dt))

        def first(j):
            x = r.score(batch, i, j)
            b.store(x, score(j))
            b.store(s.maximum(x, b.load(m)), m)

        k.loop(n, first)
        top = b.load(m)
        empty = s.eq(top, k.const(-math.inf, dt))
        shift = b.select(empty, k.const(0, dt), top)
        total = _var(k, dt, k.const(0, dt))
        if not lse_only:
            _zero_row(k, acc, ev, dt)

        def second(j):
            p = s.exp(s.sub(b.load(score(j)), shift))
            b.store(s.add(b.load(total), p), total)
            if not lse_only:
                k.loop(ev, lambda e: b.store(s.add(b.load(acc(e)), s.mul(p, r.elem(r.v, batch, j, e))), acc(e)))

        k.loop(n, second)
        t = b.load(total)
        if lse_only:
            lse = b.select(empty, k.const(-math.inf, dt), s.add(s.log(t), shift))
            k.store(out, Index(k, out.shape, list(dims)).flat, lse)
            return
        scale = b.select(empty, k.const(0, dt), s.div(k.const(1, dt), t))
        k.loop(ev, lambda e: k.store(out, Index(k, out.shape, list(dims) + [e]).flat, s.mul(b.load(acc(e)), scale)))

    k.loops(out.shape[:-1] if not lse_only else out.shape, row, parallel=True)


def _grad(k: Kernel, node) -> None:
    """attention_grad: per query row (wrt q, mask) or per key row (wrt k, v), the probabilities recomputed from
    lse, ds = p * (g_i . v_j - d_i), and the sum of ds (or p) times the other operand's rows."""
    r = _Rows(k, node)
    b, s, dt = k.b, r.s, r.dt
    lse, d, g = r.rest
    out = node.outputs[0]
    wrt = node.attrs["wrt"]
    lq, lk, ev = r.q.shape[-2], r.kk.shape[-2], r.v.shape[-1]
    width = out.shape[-1]
    acc = _row_scratch(k, dt, width)
    causal = node.attrs.get("causal")

    def prob_and_ds(batch, i, j, need_ds: bool):
        li = r.elem(lse, batch, i)
        gone = s.eq(li, k.const(-math.inf, dt))
        p = s.exp(s.sub(r.score(batch, i, j), b.select(gone, k.const(0, dt), li)))
        p = b.select(gone, k.const(0, dt), p)
        if not need_ds:
            return p
        dp = r.dot(g, i, r.v, j, batch, ev)
        return p, s.mul(p, s.sub(dp, r.elem(d, batch, i)))

    def per_query(dims):  # wrt q: dq_i = scale * sum_j ds_ij k_j; wrt mask: the row ds_i.
        batch, i = dims[:-1], dims[-1]
        n = r.key_count(i)
        if wrt == "mask":
            k.loop(lk, lambda j: b.store(k.const(0, dt), acc(j)))
            k.loop(n, lambda j: b.store(prob_and_ds(batch, i, j, True)[1], acc(j)))
        else:
            _zero_row(k, acc, width, dt)

            def term(j):
                ds = prob_and_ds(batch, i, j, True)[1]
                k.loop(width, lambda e: b.store(s.add(b.load(acc(e)), s.mul(ds, r.elem(r.kk, batch, j, e))), acc(e)))

            k.loop(n, term)
        factor = k.const(1 if wrt == "mask" else node.attrs["scale"], dt)
        k.loop(width, lambda e: k.store(out, Index(k, out.shape, list(dims) + [e]).flat, s.mul(b.load(acc(e)), factor)))

    def per_key(dims):  # wrt k: dk_j = scale * sum_i ds_ij q_i; wrt v: dv_j = sum_i p_ij g_i.
        batch, j = dims[:-1], dims[-1]
        start = j if causal else i64(0)
        _zero_row(k, acc, width, dt)

        def term(t):
            i = b.add(start, t)
            if wrt == "v":
                w, src = prob_and_ds(batch, i, j, False), g
            else:
                w, src = prob_and_ds(batch, i, j, True)[1], r.q
            k.loop(width, lambda e: b.store(s.add(b.load(acc(e)), s.mul(w, r.elem(src, batch, i, e))), acc(e)))

        count = b.sub(i64(lq), start)
        k.loop(b.select(b.icmp_signed(">", count, i64(0)), count, i64(0)), term)
        factor = k.const(node.attrs["scale"] if wrt == "k" else 1, dt)
        k.loop(width, lambda e: k.store(out, Index(k, out.shape, list(dims) + [e]).flat, s.mul(b.load(acc(e)), factor)))

    k.loops(out.shape[:-1], per_query if wrt in ("q", "mask") else per_key, parallel=True)


# -- vector rows ------------------------------------------------------------------------------------------------
# The common case: q, k, v (and g) are buffers whose feature sizes a vector width divides. A row is then a few
# vectors: a score is a chain of FMAs and one horizontal sum, an accumulator row stays in vector registers, and
# the exponentials run in their own loop over a scratch row (which LLVM vectorizes).


def _lanes(dt: str, n: int) -> int | None:
    """The widest vector (at most the target's) whose lane count divides n; None below 2 lanes."""
    vw = vector_width_bits() // (32 if dt == "float32" else 64)
    while vw > 1 and n % vw:
        vw //= 2
    return vw if vw >= 2 else None


class _Vec:
    """Row pointers and vector arithmetic over rows of the attention operands (buffers, row-major)."""

    def __init__(self, k: Kernel, r: _Rows):
        self.k, self.r, self.b = k, r, k.b
        self.T = LLTYPE[r.dt]

    def row(self, v, batch: list, i):
        """Pointer to v[batch..., i, 0] (v's size-1 batch dims broadcast)."""
        b, nb = self.b, v.type.ndim - 2
        off = i64(0)
        if nb:
            dims = [i64(0) if n == 1 else x for n, x in zip(v.shape[:-2], batch[len(batch) - nb :])]
            off = b.mul(Index(self.k, v.shape[:-2], dims).flat, i64(v.shape[-2] * v.shape[-1]))
        off = b.add(off, b.mul(i, i64(v.shape[-1])))
        return b.gep(self.k.ptr[v.id], [off], source_etype=self.T, inbounds=True)

    def at(self, p, n):
        return self.b.gep(p, [n if isinstance(n, ir.Value) else i64(n)], source_etype=self.T, inbounds=True)

    def load(self, vo: VectorOps, p, c: int):
        return self.b.load(self.at(p, c * vo.vw), typ=vo.V, align=vo.esize)

    def vectors(self, vo: VectorOps, p, n: int) -> list:
        return [self.load(vo, p, c) for c in range(n // vo.vw)]

    def dot(self, vo: VectorOps, xs: list, p):
        """sum(xs . the row at p), xs preloaded vectors."""
        b = self.b
        acc = None
        for c, x in enumerate(xs):
            y = self.load(vo, p, c)
            acc = self.k.flags(b.fmul(x, y)) if acc is None else b.call(vo.fma, [x, y, acc])
        return b.call(vo.hsum, [ir.Constant(self.T, -0.0), acc], fastmath=("reassoc",))

    def accumulators(self, vo: VectorOps, n: int) -> list:
        return [self.k.alloca(vo.V) for _ in range(n // vo.vw)]

    def clear(self, vo: VectorOps, accs: list) -> None:
        for a in accs:
            self.b.store(vo.zero, a)

    def axpy(self, vo: VectorOps, accs: list, w, p) -> None:
        """accs += w * the row at p."""
        wv = vo.splat(self.b, w)
        for c, a in enumerate(accs):
            self.b.store(self.b.call(vo.fma, [wv, self.load(vo, p, c), self.b.load(a)]), a)

    def store(self, vo: VectorOps, accs: list, factor, p) -> None:
        """The row at p = accs * factor."""
        fv = vo.splat(self.b, factor)
        for c, a in enumerate(accs):
            self.b.store(self.k.flags(self.b.fmul(self.b.load(a), fv)), self.at(p, c * vo.vw), align=vo.esize)


def _vector_lanes(k: Kernel, node, operands: list, widths: list) -> list | None:
    """Lane counts for each feature size in widths when every operand is a buffer of a float dtype; else None."""
    if node.outputs[0].dtype not in ("float32", "float64") or any(v.id not in k.ptr for v in operands):
        return None
    if node.outputs[0].id not in k.ptr:
        return None
    lanes = [_lanes(node.outputs[0].dtype, n) for n in widths]
    return None if None in lanes else lanes


def _fast_forward(k: Kernel, node, lse_only: bool) -> bool:
    r = _Rows(k, node, has_v=not lse_only)
    ops = [r.q, r.kk] + ([] if lse_only else [r.v])
    e = r.q.shape[-1]
    ev = 0 if lse_only else r.v.shape[-1]
    lanes = _vector_lanes(k, node, ops, [e] + ([ev] if ev else []))
    if lanes is None:
        return False
    b, s, dt, x = k.b, r.s, r.dt, _Vec(k, r)
    vq = VectorOps(k.module, dt, lanes[0])
    vv = VectorOps(k.module, dt, lanes[1]) if ev else None
    out = node.outputs[0]
    lk = r.kk.shape[-2]
    score = _row_scratch(k, dt, lk)
    accs = x.accumulators(vv, ev) if ev else []
    scale = k.const(node.attrs["scale"], dt)

    def row(dims):
        batch, i = dims[:-1], dims[-1]
        n = r.key_count(i)
        qs = x.vectors(vq, x.row(r.q, batch, i), e)
        kp = x.row(r.kk, batch, i64(0))
        m = _var(k, dt, k.const(-math.inf, dt))

        def scores(j):
            y = s.mul(x.dot(vq, qs, x.at(kp, b.mul(j, i64(e)))), scale)
            if r.mask is not None:
                y = s.add(y, r.elem(r.mask, batch, i, j))
            b.store(y, score(j))
            b.store(s.maximum(y, b.load(m)), m)

        k.loop(n, scores)
        top = b.load(m)
        empty = s.eq(top, k.const(-math.inf, dt))
        shift = b.select(empty, k.const(0, dt), top)
        total = _var(k, dt, k.const(0, dt))

        def exps(j):
            p = s.exp(s.sub(b.load(score(j)), shift))
            b.store(p, score(j))
            b.store(s.add(b.load(total), p), total)

        k.loop(n, exps)
        t = b.load(total)
        if lse_only:
            lse = b.select(empty, k.const(-math.inf, dt), s.add(s.log(t), shift))
            k.store(out, Index(k, out.shape, list(dims)).flat, lse)
            return
        x.clear(vv, accs)
        vp = x.row(r.v, batch, i64(0))
        k.loop(n, lambda j: x.axpy(vv, accs, b.load(score(j)), x.at(vp, b.mul(j, i64(ev)))))
        inv = b.select(empty, k.const(0, dt), s.div(k.const(1, dt), t))
        flat = b.mul(Index(k, out.shape[:-1], list(dims)).flat, i64(ev))
        x.store(vv, accs, inv, x.at(k.ptr[out.id], flat))

    k.loops(out.shape if lse_only else out.shape[:-1], row, parallel=True)
    return True


def _fast_grad(k: Kernel, node) -> bool:
    """attention_grad for q, k or v in three passes per output row: the scores (and g . v products) into scratch
    rows, then p and ds there (vectorized exponentials), then the weighted sum of the other operand's rows."""
    r = _Rows(k, node)
    wrt = node.attrs["wrt"]
    if wrt == "mask":
        return False
    lse, d, g = r.rest
    e, ev = r.q.shape[-1], r.v.shape[-1]
    lq, lk = r.q.shape[-2], r.kk.shape[-2]
    if max(lq, lk) > MAX_SCRATCH:
        return False
    lanes = _vector_lanes(k, node, [r.q, r.kk, r.v, g], [e, ev])
    if lanes is None:
        return False
    b, s, dt, x = k.b, r.s, r.dt, _Vec(k, r)
    vq, vv = VectorOps(k.module, dt, lanes[0]), VectorOps(k.module, dt, lanes[1])
    out = node.outputs[0]
    width = out.shape[-1]
    vo = vv if wrt == "v" else vq
    s1, s2 = _row_scratch(k, dt, max(lq, lk)), _row_scratch(k, dt, max(lq, lk))
    accs = x.accumulators(vo, width)
    scale = k.const(node.attrs["scale"], dt)
    causal = node.attrs.get("causal")
    need_dp = wrt != "v"

    def weight(batch, i, t):
        """p (wrt v) or ds of pair t of the row, from the scores and g . v products in s1, s2."""
        li = r.elem(lse, batch, i)
        gone = s.eq(li, k.const(-math.inf, dt))
        p = s.exp(s.sub(b.load(s1(t)), b.select(gone, k.const(0, dt), li)))
        p = b.select(gone, k.const(0, dt), p)
        return p if not need_dp else s.mul(p, s.sub(b.load(s2(t)), r.elem(d, batch, i)))

    def score(batch, xs, i, kp, j):
        y = s.mul(x.dot(vq, xs, kp), scale)
        return s.add(y, r.elem(r.mask, batch, i, j)) if r.mask is not None else y

    def per_query(dims):  # dq_i = scale * sum_j ds_ij k_j
        batch, i = dims[:-1], dims[-1]
        n = r.key_count(i)
        qs = x.vectors(vq, x.row(r.q, batch, i), e)
        gs = x.vectors(vv, x.row(g, batch, i), ev)
        kp, vp = x.row(r.kk, batch, i64(0)), x.row(r.v, batch, i64(0))

        def first(j):
            b.store(score(batch, qs, i, x.at(kp, b.mul(j, i64(e))), j), s1(j))
            b.store(x.dot(vv, gs, x.at(vp, b.mul(j, i64(ev)))), s2(j))

        k.loop(n, first)
        k.loop(n, lambda j: b.store(weight(batch, i, j), s1(j)))
        x.clear(vo, accs)
        k.loop(n, lambda j: x.axpy(vo, accs, b.load(s1(j)), x.at(kp, b.mul(j, i64(e)))))
        x.store(vo, accs, scale, x.at(k.ptr[out.id], b.mul(Index(k, out.shape[:-1], list(dims)).flat, i64(width))))

    def per_key(dims):  # dk_j = scale * sum_i ds_ij q_i; dv_j = sum_i p_ij g_i
        batch, j = dims[:-1], dims[-1]
        start = j if causal else i64(0)
        count = b.sub(i64(lq), start)
        count = b.select(b.icmp_signed(">", count, i64(0)), count, i64(0))
        ks = x.vectors(vq, x.row(r.kk, batch, j), e)
        vs = x.vectors(vv, x.row(r.v, batch, j), ev) if need_dp else None
        qp, gp = x.row(r.q, batch, start), x.row(g, batch, start)

        def first(t):
            i = b.add(start, t)
            b.store(score(batch, ks, i, x.at(qp, b.mul(t, i64(e))), j), s1(t))
            if need_dp:
                b.store(x.dot(vv, vs, x.at(gp, b.mul(t, i64(ev)))), s2(t))

        k.loop(count, first)
        k.loop(count, lambda t: b.store(weight(batch, b.add(start, t), t), s1(t)))
        x.clear(vo, accs)
        src, n = (gp, ev) if wrt == "v" else (qp, e)
        k.loop(count, lambda t: x.axpy(vo, accs, b.load(s1(t)), x.at(src, b.mul(t, i64(n)))))
        factor = k.const(1, dt) if wrt == "v" else scale
        x.store(vo, accs, factor, x.at(k.ptr[out.id], b.mul(Index(k, out.shape[:-1], list(dims)).flat, i64(width))))

    k.loops(out.shape[:-1], per_query if wrt == "q" else per_key, parallel=True)
    return True


def emit_attention(k: Kernel, group, node, via_flat: bool = False) -> None:
    if not _fast_forward(k, node, lse_only=False):
        _forward(k, node, lse_only=False)


def emit_attention_lse(k: Kernel, group, node, via_flat: bool = False) -> None:
    if not _fast_forward(k, node, lse_only=True):
        _forward(k, node, lse_only=True)


def emit_attention_grad(k: Kernel, group, node, via_flat: bool = False) -> None:
    if not _fast_grad(k, node):
        _grad(k, node)


def accepts(node, via_flat: bool, group) -> bool:
    """Scratch rows (scores, accumulators) fit on the stack."""
    return max(node.inputs[1].shape[-2], node.outputs[0].shape[-1]) <= MAX_SCRATCH
