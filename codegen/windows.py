"""im2col's runs: the loop nest that copies one image's sliding windows, shared by the im2col kernel (heavy.py)
and by a convolution's product that builds each image's column matrix itself (gemm.py)."""

from __future__ import annotations

import llvmlite.ir as ir

from graphnn.ir.ops.im2col import geometry

from .kernel import Index, Kernel, i64
from .schedule import tap_range, window_position, within


def im2col_runs(k: Kernel, x, attrs: dict, n, start, store) -> None:
    """The columns of image n of x (an i64) as a loop nest over (c, k..., q...) (no index is divided):
    `start(n, c, kk, qs)` gives the flat position of the run of the last output axis at (c, kk, qs[:-1]) and
    `store(flat, value)` writes one element. Each run is written in three parts: zeros where the window hangs over
    the padding before and after (their bounds computed once per run), and between them the input read with no
    check (a contiguous row when the stride is 1); a run whose other window positions fall in the padding is
    zeros."""
    kernel = attrs["kernel"]
    stride, dil = attrs["stride"], attrs["dilation"]
    pad = [p[0] for p in attrs["padding"]]
    nsp = len(kernel)
    outs = geometry(x.shape, attrs)[0]
    b = k.b
    zero = k.const(0, x.dtype)
    last = nsp - 1

    def run(loop_dims):
        c, kk, qs = loop_dims[0], loop_dims[1 : 1 + nsp], loop_dims[1 + nsp :]
        first = start(n, c, kk, qs)
        pos = [window_position(b, q, t, stride[d], dil[d], pad[d]) for d, (q, t) in enumerate(zip(qs, kk))]
        inside = ir.Constant(ir.IntType(1), 1)
        for d, p in enumerate(pos):
            inside = b.and_(inside, within(b, p, x.shape[2 + d]))

        def zeros():
            k.loop(outs[last], lambda q: store(b.add(first, q), zero))

        def rows():
            lo, count = tap_range(b, kk[last], stride[last], dil[last], pad[last], x.shape[-1], outs[last])
            hi = b.add(lo, count)
            k.loop(lo, lambda q: store(b.add(first, q), zero))

            def copy(t):
                q = b.add(lo, t)
                src = window_position(b, q, kk[last], stride[last], dil[last], pad[last])
                store(b.add(first, q), k.elem(x, Index(k, x.shape, [n, c] + pos + [src])))

            k.loop(count, copy)
            k.loop(b.sub(i64(outs[last]), hi), lambda t: store(b.add(first, b.add(hi, t)), zero))

        k.if_else(inside, rows, zeros)

    k.loops((x.shape[1],) + tuple(kernel) + outs[:last], run)
