"""graphnn.scan: run a function over the leading axis of tensors as one IR loop (not unrolled)."""

from __future__ import annotations

from graphnn import ir
from graphnn.ir.ops.scan import Body, with_history
from graphnn.ir.types import TensorType

from graphnn.core.dispatch import apply
from graphnn.compiler.tracer import Tracer, current as _current
from graphnn.core.grad_mode import is_grad_enabled
from graphnn.core.tensor import Tensor


def _as_list(x) -> tuple:
    if isinstance(x, Tensor):
        return [x], True
    return list(x), False


_BODIES: dict = {}  # (cache_key, operand signature, grad mode) -> (Body, loop constants, structure of the result)
MAX_BODIES = 64


def scan(fn, init, xs, reverse: bool = False, cache_key=None):
    """carry, ys = scan(fn, init, xs): for t in range(len): carry, y_t = fn(carry, xs[t]).

    `init`/`xs` are tensors or tuples of tensors; fn returns (carry, y) with the same structure for carry.
    The body is traced once into an IR subgraph; tensors it reads from outside (weights) become loop
    constants, so gradients reach them through the reverse scan. A caller whose body is the same function of the
    same tensors at every call (an RNN layer's step over its weights) passes a hashable `cache_key` saying so: outside
    graphnn.compile the traced body is then kept for the next call with operands of the same shapes.
    """
    carries, single_carry = _as_list(init)
    seqs, single_x = _as_list(xs)
    if not seqs:
        raise ValueError("scan needs at least one sequence in xs")
    length = seqs[0].shape[0]
    for s in seqs:
        if s.ndim == 0 or s.shape[0] != length:
            raise ValueError(f"scan: every sequence needs leading dimension {length}, got {tuple(s.shape)}")
    key = None
    if cache_key is not None and _current() is None:
        sig = tuple((tuple(t.shape), t.dtype_name, t.requires_grad) for t in carries + seqs)
        key = (cache_key, sig, len(carries), is_grad_enabled())
        hit = _BODIES.get(key)
        if hit is not None:
            body_attr, consts, single_y = hit
            return _run(body_attr, carries, seqs, consts, single_carry, single_y, reverse)
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
    body_attr = Body(body)
    if key is not None:
        if len(_BODIES) >= MAX_BODIES:
            _BODIES.pop(next(iter(_BODIES)))
        _BODIES[key] = (body_attr, consts, single_y)
    return _run(body_attr, carries, seqs, consts, single_carry, single_y, reverse)


def _run(body_attr, carries: list, seqs: list, consts: list, single_carry: bool, single_y: bool, reverse: bool):
    length = seqs[0].shape[0]
    operands = carries + seqs + consts
    attrs = {"body": body_attr, "n_carry": len(carries), "n_xs": len(seqs), "length": length, "reverse": bool(reverse)}
    if _current() is None and is_grad_enabled() and any(t.requires_grad for t in operands):
        # eager, and a backward() may follow: the loop also stacks what its gradient reads, so that backward() does
        # not run it again (graphnn.compile's passes merge the two loops instead)
        attrs = with_history(attrs, tuple(t.is_floating_point() for t in operands))
    outs = apply("scan", operands, attrs, name="ScanBackward0")
    outs = (list(outs) if isinstance(outs, tuple) else [outs])[: len(body_attr.graph.outputs)]
    final, stacked = outs[: len(carries)], outs[len(carries) :]
    return (final[0] if single_carry else tuple(final)), (stacked[0] if single_y else tuple(stacked))
