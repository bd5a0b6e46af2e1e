"""A scan node as a native loop calling its body's graph function once per step, with the carries kept in place.

Each step reads its carry from where the step before wrote it, so no carry is copied between steps:
- a carry the body also returns as a stacked output (y[t] = the new carry, e.g. an RNN's hidden state) is written
  straight into that output's row t;
- a carry whose inputs are stacked (y[t] = the carry read at step t: the history a gradient scan keeps) is written
  into the row the next step reads;
- any other carry alternates between the final-carry buffer and a scratch buffer, so that the last step writes
  the final buffer.
The first step reads the initial carry in place. Stacked outputs that repeat an input or another output are copied
after each step, except those the carries above already placed.
"""

from __future__ import annotations

import llvmlite.ir as ir

from .kernel import I8, PTR, emit_loop, i64


def carry_homes(body, bl, nc: int) -> list:
    """Per carry: ("hist", y index), ("dup", y index) or ("swap", None), as the module docstring describes. Only
    carries the body function writes itself (not an input passed through) get a stacked home."""
    homes = []
    for i in range(nc):
        home = ("swap", None)
        if isinstance(bl.output_slots[i], int):
            ys = body.outputs[nc:]
            hist = [j for j, v in enumerate(ys) if v is body.inputs[i]]
            dup = [j for j, v in enumerate(ys) if v is body.outputs[i]]
            home = ("hist", hist[0]) if hist else ("dup", dup[0]) if dup else home
        homes.append(home)
    return homes


def half_scan_buffers(node) -> tuple:
    """([buffer keys], [bytes of one step's rows in each]) that a loop over a part of a scan's batch rows uses:
    the carries, the per-step inputs (a row per step), the weights (0: shared whole), the stacked and final
    outputs, the carries' scratch and the status word; every batched buffer's rows are whole rows of its steps."""
    at = node.attrs
    nc, nx, length = at["n_carry"], at["n_xs"], at["length"]
    carries, xs, consts = node.inputs[:nc], node.inputs[nc : nc + nx], node.inputs[nc + nx :]
    finals, ys = node.outputs[:nc], node.outputs[nc:]
    keys = [v.id for v in carries + xs + consts + ys + finals] + [("carry", node.id, i) for i in range(nc)] + ["status"]
    slabs = (
        [v.type.nbytes for v in carries]
        + [v.type.nbytes // length for v in xs]
        + [0] * len(consts)
        + [v.type.nbytes // length for v in ys]
        + [v.type.nbytes for v in finals] * 2
        + [0]
    )
    return keys, slabs


def emit_scan(mb, fn, eb: ir.IRBuilder, node, ptr_of, body_fn, bl, body=None) -> None:
    """Emit the loop of scan `node` into `fn` at `eb` (mb: the ModuleBuilder; body_fn, bl: the body's function
    and Layout; ptr_of: the buffers of the enclosing graph function). `body`: the graph body_fn computes when it is
    not the node's own body (the body at a part of the batch rows, whose buffers ptr_of then points into)."""
    at = node.attrs
    body = body or at["body"].graph
    nc, nx, length = at["n_carry"], at["n_xs"], at["length"]
    reverse = bool(at.get("reverse"))
    carries_in, xs, consts = node.inputs[:nc], node.inputs[nc : nc + nx], node.inputs[nc + nx :]
    finals, ys = node.outputs[:nc], node.outputs[nc:]
    n_slots = bl.n_inputs + bl.n_outputs + 2  # + the body's arena and the status pointer
    slots = eb.alloca(ir.ArrayType(PTR, n_slots))

    def slot(i):
        return eb.gep(slots, [i64(0), i64(i)], inbounds=True)

    def row(p, v, t):  # row t of a stacked buffer
        return eb.gep(p, [eb.mul(t, i64(v.type.nbytes // max(length, 1)))], source_etype=I8)

    if length == 0:
        for i, f in enumerate(finals):
            mb.memcpy(eb, ptr_of(f.id), ptr_of(carries_in[i].id), body.inputs[i].type.nbytes)
        return
    for j, c in enumerate(consts):
        eb.store(ptr_of(c.id), slot(nc + nx + j))
    eb.store(ptr_of(("body_arena", node.id)), slot(n_slots - 2))
    eb.store(ptr_of("status"), slot(n_slots - 1))
    # Every pointer used inside the loop is computed before it (values must dominate their uses).
    x_base = [ptr_of(x.id) for x in xs]
    y_base = [ptr_of(y.id) for y in ys]
    final_ptrs = [ptr_of(f.id) for f in finals]
    scratch = [ptr_of(("carry", node.id, i)) for i in range(nc)]
    homes = carry_homes(body, bl, nc)
    placed = {nc + j for kind, j in homes if kind != "swap"}  # stacked outputs the carries write themselves
    first = i64(length - 1 if reverse else 0)
    for i, (kind, j) in enumerate(homes):
        eb.store(ptr_of(carries_in[i].id), slot(i))  # the first step reads the initial carry in place
        if kind == "hist":
            mb.memcpy(eb, row(y_base[j], ys[j], first), ptr_of(carries_in[i].id), body.inputs[i].type.nbytes)

    def step(t):
        tt = eb.sub(i64(length - 1), t) if reverse else t
        last = eb.icmp_signed("==", t, i64(length - 1))
        for j, (x, p) in enumerate(zip(xs, x_base)):
            eb.store(row(p, x, tt), slot(nc + j))
        outs = []
        for i, (kind, j) in enumerate(homes):
            if kind == "dup":
                outs.append(row(y_base[j], ys[j], tt))
            elif kind == "hist":
                nxt = eb.sub(tt, i64(1)) if reverse else eb.add(tt, i64(1))
                nxt = eb.select(last, i64(0), nxt)  # (no row after the last step: its carry goes to the final buffer)
                outs.append(eb.select(last, final_ptrs[i], row(y_base[j], ys[j], nxt)))
            else:  # the last step writes the final buffer
                to_final = eb.icmp_signed("==", eb.urem(eb.sub(i64(length - 1), t), i64(2)), i64(0))
                outs.append(eb.select(to_final, final_ptrs[i], scratch[i]))
        outs += [row(p, y, tt) for y, p in zip(ys, y_base)]
        for j, p in enumerate(outs):
            eb.store(p, slot(bl.n_inputs + j))
        eb.call(body_fn, [eb.bitcast(slots, PTR)])
        for j, s in enumerate(bl.output_slots):  # outputs the body function does not write itself
            if isinstance(s, tuple) and j not in placed:
                kind, src = s
                src_ptr = eb.load(slot(src if kind == "input" else bl.n_inputs + src), typ=PTR)
                mb.memcpy(eb, outs[j], src_ptr, body.outputs[j].type.nbytes)
        for i in range(nc):  # the next step reads the carries where this one wrote them
            eb.store(outs[i], slot(i))

    emit_loop(fn, eb, length, step)
    for i, (kind, _) in enumerate(homes):
        if kind == "dup":
            mb.memcpy(eb, final_ptrs[i], eb.load(slot(i), typ=PTR), body.outputs[i].type.nbytes)
