"""The kernel of a merged group (ir/merge.py): one-element roots first, then one flat loop per set of member groups.

Each one-element root is computed once into a register (`Kernel.known`) that every later read takes, and stored
(by one part only when the kernel runs in parts). Each flat loop computes its members' roots element by element in
execution order; a member reading the root of an earlier one gets the value just computed (`Kernel.provide`), so
the state an update reads and writes goes through memory once. The loops read no root another loop writes, so in a
split kernel every loop is divided among the parts.
"""

from __future__ import annotations

from .kernel import Index, Kernel, i64


def emit_merged(k: Kernel, group) -> None:
    b = k.b
    values = []
    for m in group.scalars:
        x = k.compute(m.root, Index(k, m.root.shape, [i64(0)] * len(m.root.shape), i64(0)))
        k.known[m.root.id] = x
        values.append((m.root, x))

    def store_all():
        for root, x in values:
            k.store(root, i64(0), x)

    if k.split and values:  # every part computes the values; one stores them
        with b.if_then(b.icmp_signed("==", k.fn.args[-2], i64(0))):
            store_all()
    else:
        store_all()
    k.split_each = True
    k.hoist_scalars([m for loop in group.loops for m in loop])  # (after the one-element roots they may read)
    for loop in group.loops:

        def body(i, loop=loop):
            for m in loop:
                idx = Index(k, m.root.shape, flat=i)
                x = k.compute(m.root, idx)
                k.store(m.root, i, x)
                k.provide(m.root, idx, x)

        k.loop(loop[0].root.type.size, body, parallel=True)
