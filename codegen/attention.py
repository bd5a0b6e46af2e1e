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


def emit_attention(k: Kernel, group, node, via_flat: bool = False) -> None:
    _forward(k, node, lse_only=False)


def emit_attention_lse(k: Kernel, group, node, via_flat: bool = False) -> None:
    _forward(k, node, lse_only=True)


def emit_attention_grad(k: Kernel, group, node, via_flat: bool = False) -> None:
    _grad(k, node)


def accepts(node, via_flat: bool, group) -> bool:
    """Scratch rows (scores, accumulators) fit on the stack."""
    from .schedule import MAX_SCRATCH

    return max(node.inputs[1].shape[-2], node.outputs[0].shape[-1]) <= MAX_SCRATCH
