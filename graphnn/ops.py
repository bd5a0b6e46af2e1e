"""Defining new ops: one call makes a primitive that works eagerly, under graphnn.compile, in backward(), in
`graphnn viz`/`summary` and in the fuzzer.

    import graphnn

    graphnn.ops.elementwise(
        "softsign",
        scalar=lambda s, x: s.div(x, s.add(s.const(1), s.abs(x))),          # one element, in the scalar language
        grad=lambda b, x, y, g: b.div(g, b.mul(b.add(b.abs(x), 1.0), b.add(b.abs(x), 1.0))),  # in IR ops
        float_only=True, api=("softsign",))

    graphnn.softsign(graphnn.randn(3))       # also Tensor.softsign() and inside compiled code

`scalar(s, *xs)` is written with the methods of `s` (graphnn.ir.scalar.Scalars: add, mul, div, exp, log, erf,
select, comparisons, ...): codegen compiles it to vectorized native code, NumPy evaluates it as the reference, and
the test suite's rounding-error analysis follows it. `grad(b, x, y, g)` (unary) or `grad(b, x, y, out, g) ->
(gx, gy)` (binary, before un-broadcasting) builds the gradient from IR ops: `b.<op>(...)` emits any registered op,
Python numbers become constants. See graphnn.ir.registry.OpDef for every trait a definition may carry.
"""

from __future__ import annotations

from graphnn.ir.ops.elementwise import binary, unary
from graphnn.ir.registry import OPS, Fuzz, OpDef, get_op, register
from graphnn.ir.scalar import Scalars

__all__ = ["elementwise", "register", "install_api", "Fuzz", "OpDef", "Scalars", "get_op"]


def elementwise(
    name: str,
    scalar,
    grad=None,
    *,
    num_inputs: int = 1,
    float_only: bool = False,
    api: tuple = (),
    torch_name: str | None = None,
    fuzz: Fuzz | None = None,
    doc: str = "",
    reference=None,
) -> OpDef:
    """Define an elementwise op (num_inputs 1) or a broadcasting binary op (num_inputs 2) from its scalar expression,
    and expose it as graphnn.<api name> and Tensor.<api name>. `reference`: an independent NumPy kernel
    (default: the scalar expression evaluated with NumPy). `fuzz`: its traits for the fuzzer (default: smooth
    when it has a gradient)."""
    fuzz = fuzz if fuzz is not None else Fuzz(smooth=grad is not None)
    if num_inputs == 1:
        d = unary(
            name,
            reference,
            scalar,
            grad,
            float_only=float_only,
            torch_name=torch_name,
            fuzz=fuzz,
            doc=doc,
            api=tuple(api),
        )
    elif num_inputs == 2:
        if float_only:
            raise ValueError("float_only applies to unary ops (binary ops follow their operands' dtypes)")
        d = binary(name, reference, scalar, grad, torch_name=torch_name, fuzz=fuzz, doc=doc, api=tuple(api))
    else:
        raise ValueError(f"elementwise ops take 1 or 2 inputs, got num_inputs={num_inputs}")
    install_api(d)
    return d


def _function(op: str, n: int):
    from graphnn.core.dispatch import apply

    if n == 1:

        def fn(input):
            return apply(op, [input])
    else:

        def fn(input, other):
            return apply(op, [input, other])

    fn.__name__ = fn.__qualname__ = op
    fn.__doc__ = get_op(op).doc or f"The {op} op, elementwise."
    return fn


def install_api(d: OpDef) -> None:
    """Expose op `d` under each of its api names as graphnn.<name> and Tensor.<name> (names graphnn already
    defines, with PyTorch's own signatures, are kept)."""
    import graphnn

    from graphnn.core.tensor import Tensor

    for name in d.api:
        fn = _function(d.name, d.num_inputs)
        if not hasattr(graphnn, name):
            setattr(graphnn, name, fn)
        if not hasattr(Tensor, name):
            setattr(Tensor, name, fn)


def install_all() -> None:
    """Expose every registered op with api names (called when graphnn is imported)."""
    for d in OPS.values():
        if d.api:
            install_api(d)
