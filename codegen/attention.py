"""The attention schedules, never materializing the score matrix; a row whose keys are all removed gives zeros (and
a log-sum-exp of -inf), as in PyTorch. A removed pair (the causal cut, a -inf mask entry) adds nothing, as in the
reference (ir/ops/attention.py), even when its key or value row holds Inf or NaN: the loops stop at the causal
cut (a tile's rows share a key block, so in the forward the few keys after the tile's first row go only to the rows
that see them), and with a mask a removed pair's value row is replaced by zeros (forward) or its terms skipped
(backward).

attention (flash-attention style): a tile of query rows runs over blocks of keys with an online softmax. Per block,
the tile's scores go to a scratch block (each key row loaded once for all the tile's rows), the running maximum of
each row is updated and its accumulator and sum rescaled by exp(old max - new max), then the block's
exponentials are summed and their weighted value rows added (each value row loaded once for the tile). The key
block is sized from the host's L1 data cache and the tile from its vector registers (codegen/target.py). Tiles are
independent, so they are split over threads.

attention_backward (flash-attention 2 style; d = rowsum(g * out) comes from a reduction before it): per batch index,
the keys run in L1-sized blocks; each query row that sees a block recomputes its probabilities there once from the
saved log-sum-exp (p = exp(s - lse), ds = p * (g . v - d)) and adds its terms to its own dq row and to the block's dk
and dv accumulator rows, which are stored when the block is done (and ds to the mask's gradient, when that is read).
Batch indices are independent (split over threads).
The element-by-element form (any operand) computes each output row on its own: a query row of dq or dmask, a key
row of dk or dv, with the probabilities recomputed from the saved log-sum-exp.

q, k, v and g are read in place through their strided views (ir/views.py): a head of a fused qkv projection is
rows `3 * width` apart, never copied into a head-major tensor. Rows must be contiguous along the feature dimension
for the vector kernels; other operands run element by element.
"""

from __future__ import annotations

import math

import llvmlite.ir as ir

from graphnn.ir.views import strided_view

from graphnn.ir.symbolic import Sym

from .kernel import LLTYPE, Index, Kernel, i64, scratch_count
from .scalars import LLVMScalars
from .schedule import MAX_SCRATCH, VectorOps
from .target import l1_data_bytes, vector_registers, vector_width_bits


class _Rows:
    """Element access for one attention node: q, k, v, the mask and the rest, broadcast over the batch dims."""

    def __init__(self, k: Kernel, node):
        self.k, self.node, self.at = k, node, node.attrs
        ins = list(node.inputs)
        self.q, self.kk, self.v = ins[0], ins[1], ins[2]
        self.mask = ins[3] if self.at.get("masked") else None
        self.rest = ins[3 + (1 if self.mask is not None else 0) :]
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
        """scale * q_i . k_j + mask[i, j] (-inf where the mask is -inf, whatever q_i and k_j hold)."""
        s = self.s
        x = s.mul(self.dot(self.q, i, self.kk, j, batch, self.q.shape[-1]), s.const(self.at["scale"]))
        return self.add_mask(x, batch, i, j)

    def add_mask(self, x, batch: list, i, j):
        """The score x plus mask[i, j]; -inf where the mask is -inf (the pair is removed)."""
        if self.mask is None:
            return x
        m = self.elem(self.mask, batch, i, j)
        return self.k.b.select(self.masked_out(m), m, self.s.add(x, m))

    def masked_out(self, m):
        """Is the mask value m -inf (its pair removed)?"""
        return self.s.eq(m, self.k.const(-math.inf, self.dt))

    def removed(self, batch: list, i, j):
        """i1: does the mask remove key j from query row i (None without a mask; the loops skip causal pairs)."""
        return None if self.mask is None else self.masked_out(self.elem(self.mask, batch, i, j))

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


def _row_scratch(k: Kernel, dt: str, n):
    buf = k.alloca(ir.ArrayType(LLTYPE[dt], max(1, scratch_count(n, MAX_SCRATCH))))
    return lambda j: k.b.gep(buf, [i64(0), j], inbounds=True)


def _zero_row(k: Kernel, cell, n: int, dt: str) -> None:
    k.loop(n, lambda e: k.b.store(k.const(0, dt), cell(e)))


def _forward(k: Kernel, node) -> None:
    """attention element by element (any operand, any feature size): per query row, the scores into scratch, then
    the softmax-weighted sum of the value rows and the row's log-sum-exp."""
    r = _Rows(k, node)
    b, s, dt = k.b, r.s, r.dt
    out, lse = node.outputs
    lk, ev = r.kk.shape[-2], r.v.shape[-1]
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
        _zero_row(k, acc, ev, dt)

        def second(j):
            p = s.exp(s.sub(b.load(score(j)), shift))
            b.store(s.add(b.load(total), p), total)
            gone = r.removed(batch, i, j)

            def add(e):
                y = s.mul(p, r.elem(r.v, batch, j, e))
                b.store(s.add(b.load(acc(e)), y if gone is None else b.select(gone, k.const(0, dt), y)), acc(e))

            k.loop(ev, add)

        k.loop(n, second)
        t = b.load(total)
        if lse.id in k.ptr:
            k.store(
                lse,
                Index(k, lse.shape, list(dims)).flat,
                b.select(empty, k.const(-math.inf, dt), s.add(s.log(t), shift)),
            )
        scale = b.select(empty, k.const(0, dt), s.div(k.const(1, dt), t))
        k.loop(ev, lambda e: k.store(out, Index(k, out.shape, list(dims) + [e]).flat, s.mul(b.load(acc(e)), scale)))

    k.loops(out.shape[:-1], row, parallel=True)


def _backward(k: Kernel, node) -> None:
    """attention_backward element by element: per batch index (in parallel), the rows of dq, dk, dv (and dmask)."""
    r = _Rows(k, node)
    outs = [(w, o) for w, o in zip(("q", "k", "v", "mask"), node.outputs) if o.id in k.ptr]
    bodies = [(o, _grad_rows(k, r, w, o)) for w, o in outs]

    def per_batch(batch):
        for o, body in bodies:
            k.loop(o.shape[-2], lambda i, body=body: body(list(batch) + [i]))

    k.loops(node.outputs[0].shape[:-2], per_batch, parallel=True)


def _grad_rows(k: Kernel, r: _Rows, wrt: str, out):
    """The body computing one row (dims: batch indices and the row) of the gradient wrt q, k, v or the mask: per
    query row (wrt q, mask) or per key row (wrt k, v), the probabilities recomputed from lse, ds = p * (g_i . v_j -
    d_i), and the sum of ds (or p) times the other operand's rows."""
    b, s, dt = k.b, r.s, r.dt
    lse, d, g = r.rest
    node = r.node
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
        ds = s.mul(p, s.sub(dp, r.elem(d, batch, i)))
        removed = r.removed(batch, i, j)
        return p, ds if removed is None else b.select(removed, k.const(0, dt), ds)

    def skip(batch, i, j, y):
        """y, or 0 for a pair the mask removes (whose other operand may be Inf or NaN)."""
        removed = r.removed(batch, i, j)
        return y if removed is None else b.select(removed, k.const(0, dt), y)

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
                k.loop(
                    width,
                    lambda e: b.store(
                        s.add(b.load(acc(e)), skip(batch, i, j, s.mul(ds, r.elem(r.kk, batch, j, e)))), acc(e)
                    ),
                )

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
            k.loop(
                width,
                lambda e: b.store(s.add(b.load(acc(e)), skip(batch, i, j, s.mul(w, r.elem(src, batch, i, e)))), acc(e)),
            )

        count = b.sub(i64(lq), start)
        k.loop(b.select(b.icmp_signed(">", count, i64(0)), count, i64(0)), term)
        factor = k.const(node.attrs["scale"] if wrt == "k" else 1, dt)
        k.loop(width, lambda e: k.store(out, Index(k, out.shape, list(dims) + [e]).flat, s.mul(b.load(acc(e)), factor)))

    return per_query if wrt in ("q", "mask") else per_key


# -- vector rows ------------------------------------------------------------------------------------------------
# The common case: q, k, v (and g) are buffers, or strided views of buffers, whose feature sizes a vector width
# divides and whose rows are contiguous. A row is then a few vectors: a score is a chain of FMAs and one horizontal
# sum, an accumulator row stays in vector registers, and the exponentials run in their own loop over a scratch row
# (which LLVM vectorizes).


def _lanes(dt: str, n: int) -> int | None:
    """The widest vector (at most the target's) whose lane count divides n; None below 2 lanes."""
    vw = vector_width_bits() // (32 if dt == "float32" else 64)
    while vw > 1 and n % vw:
        vw //= 2
    return vw if vw >= 2 else None


class _Vec:
    """Row pointers (through each operand's strided view) and vector arithmetic over rows of the attention
    operands."""

    def __init__(self, k: Kernel, r: _Rows):
        self.k, self.r, self.b = k, r, k.b
        self.T = LLTYPE[r.dt]
        self._views: dict = {}

    def view(self, v):
        """v's strided view over a buffer of the kernel, or None."""
        if v.id not in self._views:
            view = strided_view(v, lambda u: u.id in self.k.inlined)
            self._views[v.id] = view if view is not None and view.base.id in self.k.ptr else None
        return self._views[v.id]

    def contiguous_rows(self, v) -> bool:
        view = self.view(v)
        return view is not None and view.strides[-1] == 1

    def stride(self, v) -> int:
        """Elements between consecutive rows of v."""
        return self.view(v).strides[-2]

    def row(self, v, batch: list, i):
        """Pointer to v[batch..., i, 0] (v's size-1 batch dims broadcast)."""
        b, nb, view = self.b, v.type.ndim - 2, self.view(v)
        off = i64(view.offset)
        for n, st, x in zip(v.shape[:-2], view.strides[:-2], batch[len(batch) - nb :] if nb else []):
            if n != 1 and st != 0:
                off = b.add(off, b.mul(x, i64(st)))
        off = b.add(off, b.mul(i, i64(view.strides[-2])))
        return b.gep(self.k.ptr[view.base.id], [off], source_etype=self.T, inbounds=True)

    def at(self, p, n):
        return self.b.gep(p, [n if isinstance(n, ir.Value) else i64(n)], source_etype=self.T, inbounds=True)

    def next_row(self, p, v, j):
        """Pointer to row j after the row at p (rows of v)."""
        return self.at(p, self.b.mul(j, i64(self.stride(v))))

    def load(self, vo: VectorOps, p, c: int):
        return self.b.load(self.at(p, c * vo.vw), typ=vo.V, align=vo.esize)

    def vectors(self, vo: VectorOps, p, n: int) -> list:
        return [self.load(vo, p, c) for c in range(n // vo.vw)]

    def dot_vectors(self, vo: VectorOps, xs: list, ys: list):
        """sum(xs . ys), both preloaded vectors."""
        b = self.b
        acc = None
        for x, y in zip(xs, ys):
            acc = self.k.flags(b.fmul(x, y)) if acc is None else b.call(vo.fma, [x, y, acc])
        return b.call(vo.hsum, [ir.Constant(self.T, -0.0), acc], fastmath=("reassoc",))

    def dot(self, vo: VectorOps, xs: list, p):
        """sum(xs . the row at p), xs preloaded vectors."""
        return self.dot_vectors(vo, xs, [self.load(vo, p, c) for c in range(len(xs))])

    def accumulators(self, vo: VectorOps, n: int) -> list:
        return [self.k.alloca(vo.V) for _ in range(n // vo.vw)]

    def clear(self, vo: VectorOps, accs: list) -> None:
        for a in accs:
            self.b.store(vo.zero, a)

    def axpy_vectors(self, vo: VectorOps, accs: list, w, ys: list) -> None:
        """accs += w * ys (preloaded vectors)."""
        wv = vo.splat(self.b, w)
        for a, y in zip(accs, ys):
            self.b.store(self.b.call(vo.fma, [wv, y, self.b.load(a)]), a)

    def axpy(self, vo: VectorOps, accs: list, w, p) -> None:
        """accs += w * the row at p."""
        self.axpy_vectors(vo, accs, w, [self.load(vo, p, c) for c in range(len(accs))])

    def scale(self, vo: VectorOps, accs: list, factor) -> None:
        fv = vo.splat(self.b, factor)
        for a in accs:
            self.b.store(self.k.flags(self.b.fmul(self.b.load(a), fv)), a)

    def store(self, vo: VectorOps, accs: list, factor, p) -> None:
        """The row at p = accs * factor."""
        fv = vo.splat(self.b, factor)
        for c, a in enumerate(accs):
            self.b.store(self.k.flags(self.b.fmul(self.b.load(a), fv)), self.at(p, c * vo.vw), align=vo.esize)


def _vector_lanes(k: Kernel, x: _Vec, node, operands: list, widths: list) -> list | None:
    """Lane counts for each feature size in widths when every operand is a view with contiguous rows of a float
    buffer; else None."""
    if node.outputs[0].dtype not in ("float32", "float64") or not all(x.contiguous_rows(v) for v in operands):
        return None
    if node.outputs[0].id not in k.ptr or 0 in node.inputs[0].shape[-2:] + node.inputs[1].shape[-2:]:
        return None
    lanes = [_lanes(node.outputs[0].dtype, n) for n in widths]
    return None if None in lanes else lanes


def _at_most(n, size: int) -> int:
    """A tile or block of `size` rows over n of them: n itself when fewer; `size` for an n symbolic in N (the
    loops clamp at run time, so the choice holds at every N)."""
    return size if isinstance(n, Sym) else min(n, size)


def query_tile(dt: str, ev: int, lanes: int) -> int:
    """Query rows per tile: their accumulator rows (ev / lanes vectors each) take at most half the vector
    registers, so the value row loaded per key serves them all without spilling; at most 4."""
    per_row = max(1, ev // lanes) if lanes else 1
    return max(1, min(4, (vector_registers() // 2) // per_row))


def key_block(dt: str, e: int, ev: int, rows: int) -> int:
    """Keys per block: a block's key and value rows (and the tile's scores) fill about half the L1 data cache, so
    they stay there while the tile's rows read them; a multiple of 16, from 16 to 512."""
    esize = 4 if dt == "float32" else 8
    per_key = (e + ev + rows) * esize
    n = (l1_data_bytes() // 2) // per_key
    return max(16, min(512, n - n % 16))


def _fast_forward(k: Kernel, node) -> bool:
    """attention over blocks of keys with an online softmax, a tile of query rows at a time (see the module)."""
    r = _Rows(k, node)
    x = _Vec(k, r)
    e, ev = r.q.shape[-1], r.v.shape[-1]
    lanes = _vector_lanes(k, x, node, [r.q, r.kk, r.v], [e, ev])
    if lanes is None:
        return False
    b, s, dt = k.b, r.s, r.dt
    vq, vv = VectorOps(k.module, dt, lanes[0]), VectorOps(k.module, dt, lanes[1])
    out, lse = node.outputs
    lq, lk = r.q.shape[-2], r.kk.shape[-2]
    # (a sequence length symbolic in N takes the full tile and block: the loops count rows and keys at run time)
    mq = _at_most(lq, query_tile(dt, ev, lanes[1]))
    bk = _at_most(lk, key_block(dt, e, ev, mq))
    causal = node.attrs.get("causal")
    block = k.alloca(ir.ArrayType(LLTYPE[dt], mq * bk))
    accs = [x.accumulators(vv, ev) for _ in range(mq)]
    top = [k.alloca(LLTYPE[dt]) for _ in range(mq)]  # running maximum per row
    seen = [k.alloca(LLTYPE[dt]) for _ in range(mq)]  # the block's maximum, as it grows
    total = [k.alloca(LLTYPE[dt]) for _ in range(mq)]
    scale = k.const(node.attrs["scale"], dt)
    ninf, zero, one = k.const(-math.inf, dt), k.const(0, dt), k.const(1, dt)

    def cell(t: int, jj):
        return b.gep(block, [i64(0), b.add(i64(t * bk), jj)], inbounds=True)

    def tile(dims):
        batch, i0 = dims[:-1], b.mul(dims[-1], i64(mq))
        last = i64(lq - 1)
        rows = [b.select(b.icmp_signed("<", b.add(i0, i64(t)), last), b.add(i0, i64(t)), last) for t in range(mq)]
        nkeys = i64(lk)
        if causal:  # the tile's last row sees keys up to it
            end = b.add(i0, i64(mq))
            nkeys = b.select(b.icmp_signed("<", end, nkeys), end, nkeys)
        qs = [x.vectors(vq, x.row(r.q, batch, i), e) for i in rows]
        kp, vp = x.row(r.kk, batch, i64(0)), x.row(r.v, batch, i64(0))
        for t in range(mq):
            b.store(ninf, top[t])
            b.store(zero, total[t])
            x.clear(vv, accs[t])

        def key_block_step(kb):
            j0 = b.mul(kb, i64(bk))
            left = b.sub(nkeys, j0)
            count = b.select(b.icmp_signed("<", left, i64(bk)), left, i64(bk))
            for t in range(mq):
                b.store(b.load(top[t]), seen[t])

            def scores(jj):
                j = b.add(j0, jj)
                ks = x.vectors(vq, x.next_row(kp, r.kk, j), e)
                for t, i in enumerate(rows):
                    y = r.add_mask(s.mul(x.dot_vectors(vq, qs[t], ks), scale), batch, i, j)
                    if causal:
                        y = b.select(b.icmp_signed(">", j, i), ninf, y)
                    b.store(y, cell(t, jj))
                    b.store(s.maximum(y, b.load(seen[t])), seen[t])

            k.loop(count, scores)
            for t in range(mq):
                old, new = b.load(top[t]), b.load(seen[t])
                empty = s.eq(new, ninf)
                shift = b.select(empty, zero, new)
                alpha = b.select(empty, one, s.exp(s.sub(old, shift)))  # 0 after a row's first keys
                b.store(new, top[t])
                x.scale(vv, accs[t], alpha)
                sum_slot = total[t]
                b.store(s.mul(b.load(sum_slot), alpha), sum_slot)

                def exps(jj, t=t, shift=shift, sum_slot=sum_slot):
                    p = s.exp(s.sub(b.load(cell(t, jj)), shift))
                    b.store(p, cell(t, jj))
                    b.store(s.add(b.load(sum_slot), p), sum_slot)

                k.loop(count, exps)

            def weighted(jj, first: int = 0, guarded: bool = False):
                """Value row j0 + jj into the accumulators of rows first.. (guarded: of those the mask lets see it;
                a removed pair adds nothing, as its value row may hold Inf or NaN)."""
                j = b.add(j0, jj)
                ys = x.vectors(vv, x.next_row(vp, r.v, j), ev)
                for t in range(first, mq):
                    yt = ys if not guarded else [b.select(r.removed(batch, rows[t], j), vv.zero, y) for y in ys]
                    x.axpy_vectors(vv, accs[t], b.load(cell(t, jj)), yt)

            if r.mask is not None:
                k.loop(count, lambda jj: weighted(jj, guarded=True))
            elif causal:  # keys up to the tile's first row i0 are seen by all its rows, key i0 + c by rows c..
                common = b.sub(b.add(i0, i64(1)), j0)
                common = b.select(b.icmp_signed("<", common, count), common, count)
                k.loop(b.select(b.icmp_signed(">", common, i64(0)), common, i64(0)), weighted)
                for c in range(1, mq):
                    jj = b.sub(b.add(i0, i64(c)), j0)
                    inside = b.and_(b.icmp_signed(">=", jj, i64(0)), b.icmp_signed("<", jj, count))
                    k.if_else(inside, lambda jj=jj, c=c: weighted(jj, c), lambda: None)
            else:
                k.loop(count, weighted)

        k.loop(b.udiv(b.add(nkeys, i64(bk - 1)), i64(bk)), key_block_step)
        for t, i in enumerate(rows):

            def finish(t=t, i=i):
                m, tot = b.load(top[t]), b.load(total[t])
                empty = s.eq(m, ninf)
                flat = Index(k, out.shape[:-1], list(batch) + [i]).flat
                x.store(vv, accs[t], b.select(empty, zero, s.div(one, tot)), x.at(k.ptr[out.id], b.mul(flat, i64(ev))))
                if lse.id in k.ptr:
                    k.store(lse, flat, b.select(empty, ninf, s.add(s.log(tot), m)))

            if t == 0 or (not isinstance(lq, Sym) and lq % mq == 0):
                finish()
            else:  # a last tile's missing rows repeat the last row: stored once
                k.if_else(b.icmp_signed("<", b.add(i0, i64(t)), i64(lq)), finish, lambda: None)

    k.loops(out.shape[:-2] + (-(-lq // mq),), tile, parallel=True)
    return True


def backward_key_block(dt: str, e: int, ev: int) -> int:
    """Keys per block of attention_backward: the block's key and value rows, its dk and dv accumulator rows and the
    two scratch rows fill about half the L1 data cache (key_block's rule)."""
    return key_block(dt, 2 * e, 2 * ev, 2)


def _fast_backward(k: Kernel, node) -> bool:
    """attention_backward over blocks of keys (see the module): per batch index, per key block, each query row that
    sees the block gets its scores and g . v products (scratch rows), then p and ds (vectorized exponentials), then
    one pass over the block's keys adding ds * k_j to its dq row, and p * g_i and ds * q_i to the block's dv and dk
    accumulator rows, which are stored when the block is done."""
    r = _Rows(k, node)
    lse, d, g = r.rest
    e, ev = r.q.shape[-1], r.v.shape[-1]
    lq, lk = r.q.shape[-2], r.kk.shape[-2]
    dq, dk, dv = node.outputs[:3]
    dmask = node.outputs[3] if len(node.outputs) > 3 and node.outputs[3].id in k.ptr else None
    x = _Vec(k, r)
    if dq.dtype not in ("float32", "float64") or 0 in (lq, lk, e, ev):
        return False
    if not all(x.contiguous_rows(v) for v in (r.q, r.kk, r.v, g)):
        return False
    lanes = [_lanes(dq.dtype, n) for n in (e, ev)]
    if None in lanes:
        return False
    b, s, dt = k.b, r.s, r.dt
    vq, vv = VectorOps(k.module, dt, lanes[0]), VectorOps(k.module, dt, lanes[1])
    bk = _at_most(lk, backward_key_block(dt, e, ev))
    if bk * (e + ev) > MAX_SCRATCH:  # the block's dk and dv accumulators live on the stack
        return False
    s1, s2 = _row_scratch(k, dt, bk), _row_scratch(k, dt, bk)
    # the block's dk and dv accumulator rows, as vectors: (key jj, vector c) at jj * (w / lanes) + c
    kbuf, vbuf = (k.alloca(ir.ArrayType(vo.V, bk * (w // vo.vw))) for vo, w in ((vq, e), (vv, ev)))

    def acc_vec(buf, vo: VectorOps, w: int, jj, c: int):
        return b.gep(buf, [i64(0), b.add(b.mul(jj, i64(w // vo.vw)), i64(c))], inbounds=True)

    qacc = x.accumulators(vq, e)
    scale = k.const(node.attrs["scale"], dt)
    ninf, zero = k.const(-math.inf, dt), k.const(0, dt)
    causal = node.attrs.get("causal")

    def out_row(o, batch, i):
        flat = Index(k, o.shape[:-1], list(batch) + [i]).flat
        return x.at(k.ptr[o.id], b.mul(flat, i64(o.shape[-1])))

    def fill(vo: VectorOps, p, n: int, value) -> None:
        for c in range(n // vo.vw):
            b.store(value, x.at(p, c * vo.vw), align=vo.esize)

    def add_scaled(vo: VectorOps, p, w, ys: list) -> None:
        """The row at p += w * ys (preloaded vectors)."""
        wv = vo.splat(b, w)
        for c, y in enumerate(ys):
            b.store(b.call(vo.fma, [wv, y, x.load(vo, p, c)]), x.at(p, c * vo.vw), align=vo.esize)

    def add_scaled_acc(buf, vo: VectorOps, w: int, jj, f, ys: list) -> None:
        """Accumulator row jj of buf += f * ys (preloaded vectors)."""
        fv = vo.splat(b, f)
        for c, y in enumerate(ys):
            slot = acc_vec(buf, vo, w, jj, c)
            b.store(b.call(vo.fma, [fv, y, b.load(slot)]), slot)

    def per_batch(batch):
        kp, vp = x.row(r.kk, batch, i64(0)), x.row(r.v, batch, i64(0))
        qp, gp = x.row(r.q, batch, i64(0)), x.row(g, batch, i64(0))
        if dq.id in k.ptr:
            k.loop(lq, lambda i: fill(vq, out_row(dq, batch, i), e, vq.zero))
        if dmask is not None:  # the pairs no query sees (causal) stay 0
            row0 = Index(k, dmask.shape, list(batch) + [i64(0), i64(0)]).flat
            k.loop(lq * lk, lambda t: k.store(dmask, b.add(row0, t), zero))

        def key_block_step(kb):
            j0 = b.mul(kb, i64(bk))
            left = b.sub(i64(lk), j0)
            count = b.select(b.icmp_signed("<", left, i64(bk)), left, i64(bk))
            for buf, vo, w in ((kbuf, vq, e), (vbuf, vv, ev)):
                k.loop(
                    b.mul(count, i64(w // vo.vw)), lambda t, buf=buf, vo=vo: b.store(vo.zero, b.gep(buf, [i64(0), t]))
                )
            start = j0 if causal else i64(0)  # with causal, only queries i >= j0 see the block
            nq = b.sub(i64(lq), start)

            def query(t):
                i = b.add(start, t)
                n = count
                if causal:  # keys j0 .. i
                    upto = b.add(b.sub(i, j0), i64(1))
                    n = b.select(b.icmp_signed("<", upto, count), upto, count)
                qs = x.vectors(vq, x.next_row(qp, r.q, i), e)
                gs = x.vectors(vv, x.next_row(gp, g, i), ev)
                li = r.elem(lse, batch, i)
                gone = s.eq(li, ninf)
                shift = b.select(gone, zero, li)
                di = r.elem(d, batch, i)

                def first(jj):
                    j = b.add(j0, jj)
                    y = r.add_mask(s.mul(x.dot(vq, qs, x.next_row(kp, r.kk, j)), scale), batch, i, j)
                    b.store(y, s1(jj))
                    b.store(x.dot(vv, gs, x.next_row(vp, r.v, j)), s2(jj))

                def second(jj):
                    p = b.select(gone, zero, s.exp(s.sub(b.load(s1(jj)), shift)))
                    b.store(p, s1(jj))
                    ds = s.mul(p, s.sub(b.load(s2(jj)), di))
                    removed = r.removed(batch, i, b.add(j0, jj))
                    b.store(ds if removed is None else b.select(removed, zero, ds), s2(jj))

                def mask_row(jj):
                    at = Index(k, dmask.shape, list(batch) + [i, b.add(j0, jj)]).flat
                    k.store(dmask, at, b.load(s2(jj)))

                def third(jj):
                    p, ds = b.load(s1(jj)), b.load(s2(jj))
                    if dq.id in k.ptr:
                        x.axpy(vq, qacc, ds, x.next_row(kp, r.kk, b.add(j0, jj)))
                    add_scaled_acc(kbuf, vq, e, jj, ds, qs)
                    add_scaled_acc(vbuf, vv, ev, jj, p, gs)

                def third_unless_removed(jj):  # a removed pair adds nothing (k_j, q_i or g_i may be Inf or NaN)
                    k.if_else(r.removed(batch, i, b.add(j0, jj)), lambda: None, lambda: third(jj))

                k.loop(n, first)
                k.loop(n, second)
                if dmask is not None:
                    k.loop(n, mask_row)
                x.clear(vq, qacc)
                k.loop(n, third if r.mask is None else third_unless_removed)
                if dq.id in k.ptr:
                    row = out_row(dq, batch, i)
                    add_scaled(vq, row, scale, [b.load(a) for a in qacc])

            k.loop(b.select(b.icmp_signed(">", nq, i64(0)), nq, i64(0)), query)

            def store(jj):
                j = b.add(j0, jj)
                for o, buf, w, vo, factor in ((dk, kbuf, e, vq, scale), (dv, vbuf, ev, vv, None)):
                    if o.id not in k.ptr:
                        continue
                    dst = out_row(o, batch, j)
                    for c in range(w // vo.vw):
                        y = b.load(acc_vec(buf, vo, w, jj, c))
                        if factor is not None:
                            y = k.flags(b.fmul(y, vo.splat(b, factor)))
                        b.store(y, x.at(dst, c * vo.vw), align=vo.esize)

            k.loop(count, store)

        k.loop((lk + bk - 1) // bk, key_block_step)

    k.loops(dq.shape[:-2], per_batch, parallel=True)
    return True


def emit_attention(k: Kernel, group, node, via_flat: bool = False) -> None:
    if not _fast_forward(k, node):
        _forward(k, node)


def emit_attention_backward(k: Kernel, group, node, via_flat: bool = False) -> None:
    if not _fast_backward(k, node):
        _backward(k, node)


def accepts(node, via_flat: bool, group) -> bool:
    """Scratch rows (scores, accumulators) fit on the stack."""
    return all(n <= MAX_SCRATCH for n in (node.inputs[1].shape[-2], node.inputs[0].shape[-1], node.inputs[2].shape[-1]))
