"""Schedules that produce each output from its sources' side: col2im and tiled max-pool gradients.

As element rules these ops gather (each output element searches the windows that may contain it, with
divisions and bounds checks per element); here they loop over the source instead: col2im accumulates
every column row into a scratch plane of one (image, channel) with contiguous inner loops, and the
max-pool gradient finds each window's maximum once and writes the whole window. The group's elementwise
epilogue (e.g. the ReLU gradient after a pooling gradient) is applied while storing.
"""
from __future__ import annotations

import itertools

import llvmlite.ir as ir

from graphnn.ir.ops.im2col import geometry

from .kernel import LLTYPE, Index, Kernel, i64
from .lowerings import argmax_over, masked_load, window_loader
from .schedule import prod, store_epilogue, tap_range


def emit_col2im(k: Kernel, group, node, via_flat: bool = False) -> None:
    root = group.root
    col = node.inputs[0]
    out = node.outputs[0]
    dt = out.dtype
    at = node.attrs
    kernel, stride, dil = at["kernel"], at["stride"], at["dilation"]
    pad = [p[0] for p in at["padding"]]
    sp = out.shape[2:]
    nsp = len(sp)
    qs_shape = geometry(out.shape, at)[0]
    plane, n_taps, n_q = prod(sp), prod(kernel), prod(qs_shape)
    sp_strides = [prod(sp[d + 1:]) for d in range(nsp)]
    q_strides = [prod(qs_shape[d + 1:]) for d in range(nsp)]
    b = k.b
    acc = k.alloca(ir.ArrayType(LLTYPE[dt], plane))

    def cell(flat):
        return b.gep(acc, [i64(0), flat], inbounds=True)

    def per_image_channel(dims):
        n, c = dims
        k.loop(plane, lambda p: b.store(k.const(0, dt), cell(p)))

        def over_taps(kk):
            row = b.add(b.mul(c, i64(n_taps)), Index(k, tuple(kernel), list(kk)).flat)
            ranges = [tap_range(b, kk[d], stride[d], dil[d], pad[d], sp[d], qs_shape[d]) for d in range(nsp)]

            def rec(d, qcol, pflat):
                lo, count = ranges[d]

                def body(t):
                    q = b.add(lo, t)
                    p = b.sub(b.add(b.mul(q, i64(stride[d])), b.mul(kk[d], i64(dil[d]))), i64(pad[d]))
                    qc = b.add(qcol, b.mul(q, i64(q_strides[d])))
                    pf = b.add(pflat, b.mul(p, i64(sp_strides[d])))
                    if d + 1 < nsp:
                        rec(d + 1, qc, pf)
                        return
                    v = k.elem(col, Index(k, col.shape, [row, qc]))
                    slot = cell(pf)
                    b.store(k.flags(b.fadd(b.load(slot), v)), slot)
                k.loop(count, body)
            rec(0, b.mul(n, i64(n_q)), i64(0))
        k.loops(tuple(kernel), over_taps)

        def epi(ps):
            flat = i64(0)
            for p, st in zip(ps, sp_strides):
                flat = b.add(flat, b.mul(p, i64(st)))
            store_epilogue(k, root, out, [n, c] + list(ps), b.load(cell(flat)), via_flat)
        k.loops(sp, epi)
    k.loops(out.shape[:2], per_image_channel)


def tiled_pool(attrs) -> bool:
    """Do the pooling windows tile the input (stride == kernel, no dilation), so each element is in at most one?"""
    return all(s == kk and d == 1 for s, kk, d in zip(attrs["stride"], attrs["kernel"], attrs["dilation"]))


def emit_max_pool_grad(k: Kernel, group, node, via_flat: bool = False) -> None:
    """Gradient of a tiling max pool: per window, one argmax, then the incoming gradient at the maximum and
    zeros elsewhere; positions that no window covers (a ragged edge) get zeros."""
    root = group.root
    x, g = node.inputs
    out = node.outputs[0]
    dt = out.dtype
    kernel, pad = node.attrs["kernel"], node.attrs["padding"]
    nsp = len(kernel)
    lead, sp, qs_shape = out.shape[:-nsp], out.shape[-nsp:], g.shape[-nsp:]
    b = k.b
    zero = k.const(0, dt)
    # windows can reach outside the input with padding or ceil_mode: such positions are skipped
    ragged = any(pad) or any(q * kk > s for q, kk, s in zip(qs_shape, kernel, sp))

    def per_window(dims):
        lead_dims, qs = dims[:len(lead)], dims[len(lead):]
        at = window_loader(k, node, x, lead_dims, qs)
        pos, _ = argmax_over(k, tuple(kernel), lambda kk: masked_load(k, *at(kk), x), x.dtype)
        gv = k.elem(g, Index(k, g.shape, list(dims)))
        for t, kk in enumerate(itertools.product(*[range(s) for s in kernel])):
            ok, p = at([i64(v) for v in kk])
            val = b.select(b.icmp_signed("==", pos, i64(t)), gv, zero)
            if ragged:
                k.if_else(ok, lambda p=p, val=val: store_epilogue(k, root, out, p, val, via_flat), lambda: None)
            else:
                store_epilogue(k, root, out, p, val, via_flat)
    k.loops(tuple(lead) + tuple(qs_shape), per_window)

    # Ragged edges: in each dimension d, positions from the end of the last window on, over the full range of
    # later dimensions and the covered range of earlier ones (disjoint pieces).
    covered = [min(sp[d], qs_shape[d] * kernel[d] - pad[d]) for d in range(nsp)]
    for d in range(nsp):
        if covered[d] >= sp[d]:
            continue
        ranges = [covered[e] if e < d else sp[e] for e in range(nsp)]
        first = [0] * d + [covered[d]] + [0] * (nsp - d - 1)
        ranges[d] = sp[d] - covered[d]

        def edge(dims, first=first):
            ps = [b.add(v, i64(f)) if f else v for v, f in zip(dims[len(lead):], first)]
            store_epilogue(k, root, out, list(dims[:len(lead)]) + ps, zero, via_flat)
        k.once(lambda ranges=ranges, edge=edge: k.loops(tuple(lead) + tuple(ranges), edge))
