"""Memory planning: place every materialized intermediate in one arena by liveness (Glow-style)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .symbolic import Sym, _make

ALIGN = 64


@dataclass
class MemoryPlan:
    offsets: dict  # value id -> byte offset in the arena
    size: int  # arena size in bytes


def plan_memory(buffers: list, order: dict) -> MemoryPlan:
    """Assign arena offsets.

    buffers: list of (value id, nbytes, first step, last step); two buffers may share memory when their
    [first, last] step ranges do not overlap. Largest first, each at the lowest offset that fits.
    Sizes symbolic in N (ir/symbolic.py) go after the others, placed so that they fit at every N (see
    _plan_symbolic).
    """
    buffers = [(vid, _bound(n) if isinstance(n, Sym) else n, f, last) for vid, n, f, last in buffers]
    symbolic = [b for b in buffers if isinstance(b[1], Sym)]
    if symbolic and all(b[1].den == 1 and all(c >= 0 for c in b[1].coefs) for b in symbolic):
        plan = plan_memory([b for b in buffers if not isinstance(b[1], Sym)], order)
        offsets, size = _plan_symbolic(symbolic, plan.size)
        return MemoryPlan({**plan.offsets, **offsets}, size)
    # the buffers placed so far, as columns (offset, end, first step, last step): each placement compares itself
    # with all of them at once (an unrolled loop of a few hundred steps has tens of thousands of buffers)
    cols = np.zeros((4, len(buffers)), np.int64)
    offsets = {}
    size = 0
    for i, (vid, nbytes, first, last) in enumerate(sorted(buffers, key=lambda b: (-b[1], b[2]))):
        nbytes = max(ALIGN, (nbytes + ALIGN - 1) // ALIGN * ALIGN)
        off = _lowest_fit(cols[:, :i], nbytes, first, last)
        cols[:, i] = (off, off + nbytes, first, last)
        offsets[vid] = off
        size = max(size, off + nbytes)
    return MemoryPlan(offsets, size)


def _lowest_fit(placed: np.ndarray, nbytes: int, first: int, last: int) -> int:
    """The lowest offset where nbytes fit beside the placed buffers (columns offset, end, first, last) whose step
    ranges overlap [first, last]: the first gap, in offset order, at least nbytes wide after every earlier end."""
    live = ~((placed[3] < first) | (last < placed[2]))
    if not live.any():
        return 0
    o, e = placed[0, live], placed[1, live]
    order = np.lexsort((e, o))
    o, e = o[order], e[order]
    before = np.zeros(len(o), np.int64)  # the highest end among the buffers below each one (0 for the first)
    np.maximum.accumulate(e[:-1], out=before[1:])
    fits = before + nbytes <= o
    k = int(np.argmax(fits))
    return int(before[k]) if fits[k] else int(max(0, e.max()))


def _bound(n: Sym):
    """A polynomial with nonnegative coefficients that is at least n at every N >= 0: n itself when it has that form,
    else each coefficient of floor(p / den) rounded up and negative ones dropped (a buffer of floor((800 N - 9537) /
    64) bytes gets 13 N: slightly more memory instead of code valid at one N only)."""
    if n.den == 1 and all(c >= 0 for c in n.coefs):
        return n
    return _make([max(0, -(-c // n.den)) for c in n.coefs], n.rep)


def _plan_symbolic(buffers: list, base: int) -> tuple:
    """(offsets, end) of buffers whose sizes are polynomials in N with nonnegative coefficients, from byte `base`
    on. Offsets are such polynomials too, and every comparison is made coefficient by coefficient: a <= b for
    each power implies a <= b at every N >= 0, so the placement is valid for every N with no guard."""
    width = max(len(b[1].coefs) for b in buffers)
    rep = buffers[0][1].rep

    def vec(x) -> tuple:
        c = x.coefs if isinstance(x, Sym) else (x,)
        return tuple(c) + (0,) * (width - len(c))

    le = lambda a, b: all(x <= y for x, y in zip(a, b))  # noqa: E731
    placed: list = []  # (offset, end, first, last) as coefficient vectors
    offsets, size = {}, vec(base)
    for vid, nbytes, first, last in sorted(buffers, key=lambda b: (tuple(-c for c in vec(b[1])[::-1]), b[2])):
        n = tuple(-(-c // ALIGN) * ALIGN for c in vec(nbytes))  # each term a multiple of ALIGN: aligned at every N
        conflicts = [(o, e) for o, e, f, l in placed if not (l < first or last < f)]
        candidates = [vec(base)] + sorted(e for _, e in conflicts)
        for off in candidates:
            end = tuple(x + y for x, y in zip(off, n))
            if all(le(end, o) or le(e, off) for o, e in conflicts):
                break
        else:  # past every conflict's end
            off = tuple(max(col) for col in zip(vec(base), *(e for _, e in conflicts)))
            end = tuple(x + y for x, y in zip(off, n))
        placed.append((off, end, first, last))
        offsets[vid] = _make(list(off), rep)
        size = tuple(max(x, y) for x, y in zip(size, end))
    return offsets, _make(list(size), rep)


def kernel_liveness(groups: list, inlined: set, live: set | None = None) -> tuple:
    """(first, last, sizes) of the values a sequence of kernels (fusion groups, in execution order) writes: the
    step that writes each, the last step that reads it, and its bytes. A value a kernel computes inline (`inlined`)
    is not read from memory. With `live` (ids of values something reads), an extra output of a root's node that is
    not live is not written (attention's log-sum-exp without a gradient), except by a scan or a host call, which
    write all."""
    from .registry import family, get_op

    first, last, sizes = {}, {}, {}
    for step, g in enumerate(groups):
        writes_all = family(g.root.producer) == "scan" or get_op(g.root.producer.op).host
        for r in g.roots:
            for o in r.producer.outputs:
                if live is not None and o is not r and o.id not in live and not writes_all:
                    continue
                first.setdefault(o.id, step)
                sizes[o.id] = o.type.nbytes
        for n in g.nodes:
            for v in n.inputs:
                if v.id not in inlined:
                    last[v.id] = step
    return first, last, sizes
