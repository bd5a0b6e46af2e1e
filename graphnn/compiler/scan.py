"""graphnn.scan: run a function over the leading axis of tensors as one IR loop (not unrolled)."""

from __future__ import annotations

from graphnn import ir
from graphnn.ir.ops.scan import Body
from graphnn.ir.types import TensorType

from graphnn.core.dispatch import apply
from graphnn.compiler.tracer import Tracer
from graphnn.core.tensor import Tensor


def _as_list(x) -> tuple:
    if isinstance(x, Tensor):
        return [x], True
    return list(x), False


def scan(fn, init, xs, reverse: bool = False):
    """carry, ys = scan(fn, init, xs): for t in range(len): carry, y_t = fn(carry, xs[t]).

    `init`/`xs` are tensors or tuples of tensors; fn returns (carry, y) with the same structure for carry.
    The body is traced once into an IR subgraph; tensors it reads from outside (weights) become loop
    constants, so gradients reach them through the reverse scan.
    """
    carries, single_carry = _as_list(init)
    seqs, single_x = _as_list(xs)
    if not seqs:
        raise ValueError("scan needs at least one sequence in xs")
    length = seqs[0].shape[0]
    for s in seqs:
        if s.ndim == 0 or s.shape[0] != length:
            raise ValueError(f"scan: every sequence needs leading dimension {length}, got {tuple(s.shape)}")
    tracer = Tracer("scan_body")
    with tracer:

        def sym(t, name, shape):
            v = tracer.add_input(TensorType(shape, t.dtype_name), name, "input", None)
            return Tensor._symbolic(v, tracer, t.requires_grad)

        c_sym = [sym(c, f"carry{i}", tuple(c.shape)) for i, c in enumerate(carries)]
        x_sym = [sym(s, f"x{i}", tuple(s.shape[1:])) for i, s in enumerate(seqs)]
        try:
            new_carry, y = fn(c_sym[0] if single_carry else tuple(c_sym), x_sym[0] if single_x else tuple(x_sym))
        finally:
            tracer.finish()
    if tracer.updates:
        raise RuntimeError("scan bodies cannot update state in place")
    new_c, _ = _as_list(new_carry)
    ys, single_y = _as_list(y)
    if len(new_c) != len(carries):
        raise ValueError(f"scan body returned {len(new_c)} carries for {len(carries)}")
    body = tracer.graph
    body.outputs = [tracer.lift(t) for t in new_c + ys]
    for c, v in zip(carries, body.outputs):
        if tuple(c.shape) != v.shape or c.dtype_name != v.dtype:
            raise ValueError(f"scan body changed a carry from {c._type} to {v.type}")
    ir.optimize(body)
    n_args = len(carries) + len(seqs)
    consts = [acc() for acc in tracer.bindings[n_args:]]
    outs = apply(
        "scan",
        carries + seqs + consts,
        {"body": Body(body), "n_carry": len(carries), "n_xs": len(seqs), "length": length, "reverse": bool(reverse)},
        name="ScanBackward0",
    )
    outs = list(outs) if isinstance(outs, tuple) else [outs]
    final, stacked = outs[: len(carries)], outs[len(carries) :]
    return (final[0] if single_carry else tuple(final)), (stacked[0] if single_y else tuple(stacked))
