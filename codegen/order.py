"""Schedules that walk each row along one axis in order: argsort (a heap sort) and cumsum (a running sum).

A row is every position of the other axes; its elements lie `inner` apart (the product of the axes after the
sorted one). Rows are independent, so the loop over them is split over threads.
"""

from __future__ import annotations

import llvmlite.ir as ir

from .kernel import FLOAT, LLTYPE, Index, Kernel, i64, scratch_count
from .lowerings import icmp
from .schedule import MAX_SCRATCH, prod


def _rows(k: Kernel, node, per_row) -> None:
    """per_row(at_in, at_out) for every row of the node along its axis: at_in(j) / at_out(j) give the flat index of
    the row's j-th element in the input / the output (whose axis may be shorter)."""
    x, out = node.inputs[0], node.outputs[0]
    shape = x.shape or (1,)
    a = node.attrs["axis"] % len(shape)
    outer, inner = prod(shape[:a]), prod(shape[a + 1 :])
    n, m = shape[a], (out.shape or (1,))[a]
    b = k.b

    def along(base, j):
        return b.add(base, b.mul(j, i64(inner))) if inner != 1 else b.add(base, j)

    def row(dims):
        o, i = dims
        base_in = b.add(b.mul(o, i64(n * inner)), i)
        base_out = b.add(b.mul(o, i64(m * inner)), i)
        per_row(lambda j: along(base_in, j), lambda j: along(base_out, j))

    k.loops((outer, inner), row, parallel=True)


def _while(k: Kernel, cond, body) -> None:
    """`while cond(): body()` at the builder's position (cond and body emit their own instructions)."""
    b, fn = k.b, k.fn
    head = fn.append_basic_block("while")
    inner = fn.append_basic_block("while_body")
    done = fn.append_basic_block("while_done")
    b.branch(head)
    b.position_at_end(head)
    b.cbranch(cond(), inner, done)
    b.position_at_end(inner)
    body()
    b.branch(head)
    b.position_at_end(done)


def _order(k: Kernel, dtype: str, descending: bool):
    """before(xp, p, xq, q): does the element at position p (value xp) come before the one at q in a stable sort,
    NaN above every number?"""
    b = k.b

    def before(xp, p, xq, q):
        if dtype in FLOAT:
            nan_p, nan_q = b.fcmp_unordered("uno", xp, xp), b.fcmp_unordered("uno", xq, xq)
            if descending:
                lt = b.or_(b.fcmp_ordered(">", xp, xq), b.and_(nan_p, b.not_(nan_q)))
            else:
                lt = b.or_(b.fcmp_ordered("<", xp, xq), b.and_(b.not_(nan_p), nan_q))
            eq = b.or_(b.fcmp_ordered("==", xp, xq), b.and_(nan_p, nan_q))
        else:
            lt = icmp(k, dtype, ">" if descending else "<", xp, xq)
            eq = icmp(k, dtype, "==", xp, xq)
        return b.or_(lt, b.and_(eq, b.icmp_signed("<", p, q)))

    return before


def emit_sort(k: Kernel, group, node, via_flat: bool = False) -> None:
    """argsort: per row, the pairs (value, position) are kept in a heap ordered by (value, position), the stable
    order (ties keep their positions' order): the first `k` pairs are heapified (the root is the last of them in
    sorted order), every later pair that comes before the root replaces it, and the heap is then sorted in place
    (a heap sort when k is the row's length). The positions live in the output row, the values in a scratch row
    next to them (up to MAX_SCRATCH; longer heaps read each value through its position)."""
    x, out = node.inputs[0], node.outputs[0]
    a = node.attrs["axis"] % max(1, x.type.ndim)
    n = (x.shape or (1,))[a]
    top = node.attrs.get("k", n)
    b = k.b
    before = _order(k, x.dtype, bool(node.attrs.get("descending")))
    root = k.alloca(LLTYPE["int64"])
    keys = k.alloca(ir.ArrayType(LLTYPE[x.dtype], scratch_count(top, MAX_SCRATCH))) if 0 < top <= MAX_SCRATCH else None

    def per_row(at_in, at_out):
        def value(p):  # x at row position p
            return k.load(x, Index(k, x.shape, flat=at_in(p)))

        def pair(j):  # (value, position) at heap slot j
            pos = k.load(out, Index(k, out.shape, flat=at_out(j)))
            if keys is None:
                return value(pos), pos
            return b.load(b.gep(keys, [i64(0), j], inbounds=True)), pos

        def put(j, pr):
            if keys is not None:
                b.store(pr[0], b.gep(keys, [i64(0), j], inbounds=True))
            k.store(out, at_out(j), pr[1])

        def later(p, q):  # pair p comes after pair q
            return before(q[0], q[1], p[0], p[1])

        def choose(c, p, q):
            return b.select(c, p[0], q[0]), b.select(c, p[1], q[1])

        def sift_down(start, end):
            """Restore the heap below `start` within [0, end): move its pair down past later children."""
            b.store(start, root)

            def cond():
                return b.icmp_signed("<", b.add(b.mul(b.load(root), i64(2)), i64(1)), end)

            def body():
                r = b.load(root)
                c = b.add(b.mul(r, i64(2)), i64(1))
                c2 = b.add(c, i64(1))
                c2 = b.select(b.icmp_signed("<", c2, end), c2, c)  # no right child: c against itself (False)
                pc, pc2 = pair(c), pair(c2)
                right = later(pc2, pc)
                c = b.select(right, c2, c)
                pc = choose(right, pc2, pc)
                pr = pair(r)
                swap = later(pc, pr)
                put(r, choose(swap, pc, pr))
                put(c, choose(swap, pr, pc))
                b.store(b.select(swap, c, end), root)

            _while(k, cond, body)

        k.loop(top, lambda j: put(j, (value(j), j)))
        k.loop(top // 2, lambda t: sift_down(b.sub(i64(top // 2 - 1), t), i64(top)))

        def scan(t):  # a later element that comes before the heap's last pair replaces it
            j = b.add(t, i64(top))
            p = (value(j), j)

            def replace():
                put(i64(0), p)
                sift_down(i64(0), i64(top))

            k.if_else(later(pair(i64(0)), p), replace, lambda: None)

        if 0 < top < n:
            k.loop(n - top, scan)

        def extract(t):
            end = b.sub(i64(top - 1), t)
            first, last = pair(i64(0)), pair(end)
            put(i64(0), last)
            put(end, first)
            sift_down(i64(0), end)

        k.loop(max(top - 1, 0), extract)

    _rows(k, node, per_row)


def emit_prefix_sum(k: Kernel, group, node, via_flat: bool = False) -> None:
    """cumsum: per row, a running sum stored at every position (from the end when reversed)."""
    x, out = node.inputs[0], node.outputs[0]
    n = (x.shape or (1,))[node.attrs["axis"] % max(1, x.type.ndim)]
    dt = out.dtype
    at = "float64" if dt in FLOAT else dt  # (float32 sums run in float64, as the reference and PyTorch's CPU kernel)
    b = k.b
    acc = k.alloca(LLTYPE[at])
    reverse = bool(node.attrs.get("reverse"))

    def per_row(at_in, at_out):
        b.store(k.const(0, at), acc)

        def step(t):
            j = b.sub(i64(n - 1), t) if reverse else t
            v = k.convert(k.load(x, Index(k, x.shape, flat=at_in(j))), x.dtype, at)
            s = k.flags(b.fadd(b.load(acc), v)) if at in FLOAT else b.add(b.load(acc), v)
            b.store(s, acc)
            k.store(out, at_out(j), k.convert(s, at, dt))

        k.loop(n, step)

    _rows(k, node, per_row)


def sorts_in_place(n, via_flat: bool, group) -> bool:
    """The schedules write the node's own output buffer (an opaque op: always its group's root)."""
    return n.outputs[0] is group.root
