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
