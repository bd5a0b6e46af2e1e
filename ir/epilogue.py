"""Epilogue siblings: elementwise kernels that read a product's result run in the product's epilogue.

Fusion inlines a product into a single elementwise consumer (matmul + bias + activation is one kernel). When the
product's result is also read elsewhere, it is materialized: in a training step the pre-activation of a layer is
kept for the gradient, so the product writes it, and the activation (and the halves of a GELU that the backward
keeps) each ran as a kernel of its own that reads it back. Here such later groups become siblings of the
product's group: at each element the product's schedule stores, it also computes and stores their roots, in order,
a sibling reading the product's root (or an earlier sibling's) at that element taking the value just computed.

A group S becomes a sibling of a product group G when:
  * S computes its root element by element over the same positions (same element count, row-major): its nodes are
    elementwise, broadcast or index remaps, and what it reads of G's roots flows through same-shape elementwise
    ops and reshapes only;
  * everything else S reads is ready when G runs (written by an earlier kernel, or an input or constant);
  * S's root is no graph output (an output may be written in place of an input that later kernels read).
No kernel is moved except S, and S only earlier, so every kernel still reads what it did.
"""

from __future__ import annotations

from .fusion import Group, epilogue_source
from .registry import family, get_op

ALIGNED = ("elementwise", "broadcast")


def attach_epilogues(groups: list, inlined: set, outputs: set) -> list:
    """The groups (in execution order) with the siblings of each product group (schedule 'gemm') moved into it."""
    writer = {}  # value id -> index of the group writing it
    readers: dict = {}  # value id -> indices of the groups reading it from memory
    for i, g in enumerate(groups):
        for r in g.roots:
            for o in r.producer.outputs:
                writer[o.id] = i
        for n in g.nodes:
            for v in n.inputs:
                if v.id not in inlined:
                    readers.setdefault(v.id, set()).add(i)
    taken: dict = {}  # index of a sibling -> index of its product group
    extras: dict = {}
    for i, g in enumerate(groups):
        if i in taken or not _is_product_group(g):
            continue
        written = {g.root.id}
        size = g.root.type.size
        candidates = sorted(readers.get(g.root.id, ()))
        while candidates:
            j = candidates.pop(0)
            s = groups[j]
            if j <= i or j in taken or not _can_follow(s, i, written, size, writer, inlined, outputs):
                continue
            taken[j] = i
            extras.setdefault(i, []).append(s)
            written.add(s.root.id)
            candidates = sorted(set(candidates) | {c for c in readers.get(s.root.id, ()) if c > j})
    out = []
    for i, g in enumerate(groups):
        if i in taken:
            continue
        if i in extras:
            members = extras[i]
            nodes = {n.id: n for m in [g] + members for n in m.nodes}
            g = Group(g.root, sorted(nodes.values(), key=lambda n: n.id), extra=members, own=g.nodes)
        out.append(g)
    return out


def _is_product_group(g: Group) -> bool:
    if g.loops or g.scalars or g.extra or len(g.root.producer.outputs) != 1:
        return False
    node, _ = epilogue_source(g)
    return node is not None and get_op(node.op).schedule == "gemm"


def _can_follow(s: Group, at: int, written: set, size: int, writer: dict, inlined: set, outputs: set) -> bool:
    """May group s run in the epilogue of the product group at position `at`, whose kernel writes `written`?"""
    if s.loops or s.scalars or s.extra or s.root.type.size != size or s.root.id in outputs:
        return False
    if len(s.root.producer.outputs) != 1:
        return False
    aligned = set(written)  # values at the element being stored
    reads_product = False
    for n in s.nodes:
        d = get_op(n.op)
        if d.index_checked or not (d.pattern in ALIGNED or d.remap):
            return False
        out = n.outputs[0]
        for v in n.inputs:
            if v.id in aligned:
                if d.pattern in ALIGNED and out.shape == v.shape or family(n) == "reshape":
                    aligned.add(out.id)
                    reads_product = reads_product or v.id in written
                else:
                    return False
            elif v.id not in inlined and writer.get(v.id, -1) >= at:
                return False  # written by the product's kernel or a later one: not ready
    return reads_product and s.root.id in aligned
