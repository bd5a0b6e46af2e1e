"""Memory planning: place every materialized intermediate in one arena by liveness (Glow-style)."""

from __future__ import annotations

from dataclasses import dataclass

ALIGN = 64


@dataclass
class MemoryPlan:
    offsets: dict  # value id -> byte offset in the arena
    size: int  # arena size in bytes


def plan_memory(buffers: list, order: dict) -> MemoryPlan:
    """Assign arena offsets.

    buffers: list of (value id, nbytes, first step, last step); two buffers may share memory when their
    [first, last] step ranges do not overlap. Largest first, each at the lowest offset that fits.
    """
    placed: list = []  # (offset, end, first, last)
    offsets = {}
    size = 0
    for vid, nbytes, first, last in sorted(buffers, key=lambda b: (-b[1], b[2])):
        nbytes = max(ALIGN, (nbytes + ALIGN - 1) // ALIGN * ALIGN)
        conflicts = sorted((o, e) for o, e, f, l in placed if not (l < first or last < f))
        off = 0
        for o, e in conflicts:
            if off + nbytes <= o:
                break
            off = max(off, e)
        placed.append((off, off + nbytes, first, last))
        offsets[vid] = off
        size = max(size, off + nbytes)
    return MemoryPlan(offsets, size)


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
