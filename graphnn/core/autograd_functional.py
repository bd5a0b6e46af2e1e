"""graphnn.autograd.functional: vjp, jvp, jacobian, hessian, hvp and vhp of a function of tensors, as PyTorch's.

Everything is built on graphnn.autograd.grad: a vjp is one reverse pass; a Jacobian is one reverse pass per output
element (its rows); a jvp contracts those rows with v; the Hessian is the Jacobian of the gradient, and
hvp / vhp differentiate the gradient (computed with create_graph=True) against v, which for a twice
differentiable function are the same product (the Hessian is symmetric).
"""

from __future__ import annotations

import numpy as np

from graphnn.core.grad_mode import enable_grad
from graphnn.core.tensor import Tensor, stack, tensor, zeros, zeros_like


def _autograd():
    from graphnn import autograd

    return autograd


def _as_tuple(x, arg: str, fn: str) -> tuple:
    """(tuple of tensors, whether x was a tuple or list)."""
    is_tuple = isinstance(x, (tuple, list))
    xs = tuple(x) if is_tuple else (x,)
    for i, t in enumerate(xs):
        if not isinstance(t, Tensor):
            what = f"The {arg} given to {fn} must be either a Tensor or a tuple of Tensors"
            raise TypeError(f"{what} but the value at index {i} has type {type(t).__name__}.")
    return xs, is_tuple


def _prepare(inputs: tuple, create_graph: bool) -> tuple:
    """Inputs to differentiate against: the tensors themselves when the result must stay differentiable (so the
    outer computation reaches them), else detached copies that require grad."""
    return tuple(x if create_graph and x.requires_grad else x.detach().requires_grad_(True) for x in inputs)


def _finish(xs: tuple, is_tuple: bool, create_graph: bool):
    xs = tuple(x if create_graph or x is None else x.detach() for x in xs)
    return xs if is_tuple else xs[0]


def _grad(outputs: tuple, inputs: tuple, seeds: tuple, create_graph: bool, strict: bool, fn: str) -> tuple:
    """d(sum of seeds . outputs)/d inputs; an input the outputs do not depend on gets zeros (strict: an error)."""
    pairs = [(o, s) for o, s in zip(outputs, seeds) if o.requires_grad]
    grads = (None,) * len(inputs)
    if pairs:
        grads = _autograd().grad(
            [o for o, _ in pairs],
            list(inputs),
            [s for _, s in pairs],
            retain_graph=True,
            create_graph=create_graph,
            allow_unused=True,
        )
    out = []
    for i, (x, g) in enumerate(zip(inputs, grads)):
        if g is None:
            if strict:
                raise RuntimeError(
                    f"The output of the user-provided function is independent of input {i}. This is not allowed "
                    f"in strict mode ({fn})."
                )
            g = zeros_like(x)
        out.append(g)
    return tuple(out)


_V_NONE = {  # when v may be omitted, by what it stands beside
    "output of the user-provided function": "the user-provided function returns a single Tensor with a single element.",
    "input": "the input to the user-provided function is a single Tensor with a single element.",
}


def _check_v(v, outputs: tuple, fn: str, what: str) -> tuple:
    """The vectors v (one per output / input, shaped as it); None only beside a single one-element tensor."""
    if v is None:
        if len(outputs) != 1 or outputs[0].numel() != 1:
            raise RuntimeError("The vector v can only be None if " + _V_NONE[what])
        return (None,)
    vs, _ = _as_tuple(v, "v", fn)
    if len(vs) != len(outputs):
        raise RuntimeError(f"{fn}: v has {len(vs)} tensors but the {what} has {len(outputs)}")
    for i, (a, b) in enumerate(zip(vs, outputs)):
        if tuple(a.shape) != tuple(b.shape):
            raise RuntimeError(
                f"Mismatch in shape: entry {i} in v has size {tuple(a.shape)} while the {what} has size "
                f"{tuple(b.shape)}."
            )
    return vs


def _call(func, inputs: tuple, fn: str) -> tuple:
    out = func(*inputs)
    outs, is_tuple = _as_tuple(out, "outputs of the user-provided function", fn)
    return outs, is_tuple


def vjp(func, inputs, v=None, create_graph: bool = False, strict: bool = False):
    """(func(*inputs), v^T J): the gradient of v . func(inputs) with respect to each input."""
    with enable_grad():
        xs, in_tuple = _as_tuple(inputs, "inputs", "vjp")
        xs = _prepare(xs, create_graph)
        outs, out_tuple = _call(func, xs, "vjp")
        seeds = _check_v(v, outs, "vjp", "output of the user-provided function")
        grads = _grad(outs, xs, seeds, create_graph, strict, "vjp")
    return _finish(outs, out_tuple, create_graph), _finish(grads, in_tuple, create_graph)


def _rows(out: Tensor, xs: tuple, create_graph: bool, strict: bool, fn: str) -> tuple:
    """The Jacobian of `out` with respect to each input, shaped out.shape + input.shape (one reverse pass per
    element of out)."""
    n = out.numel()
    if not out.requires_grad:
        if strict:
            raise RuntimeError(f"The output of the user-provided function does not require gradients ({fn}).")
        return tuple(zeros(tuple(out.shape) + tuple(x.shape), dtype=x.dtype_name) for x in xs)
    per_input = [[] for _ in xs]
    for j in range(n):
        seed = np.zeros(n, out.dtype_name)
        seed[j] = 1.0
        grads = _grad((out,), xs, (tensor(seed.reshape(tuple(out.shape))),), create_graph, strict, fn)
        for k, g in enumerate(grads):
            per_input[k].append(g)
    return tuple(
        (stack(rows) if rows else zeros((0,) + tuple(x.shape), dtype=x.dtype_name)).reshape(
            tuple(out.shape) + tuple(x.shape)
        )
        for rows, x in zip(per_input, xs)
    )


def jacobian(
    func,
    inputs,
    create_graph: bool = False,
    strict: bool = False,
    vectorize: bool = False,
    strategy: str = "reverse-mode",
):
    """d func(inputs) / d inputs: a tensor out.shape + in.shape; a tuple over inputs and/or over outputs (outputs
    outermost) when func returns / takes tuples. `vectorize` and `strategy` are accepted for compatibility."""
    if strategy not in ("reverse-mode", "forward-mode"):
        raise ValueError('Expected strategy to be either "forward-mode" or "reverse-mode".')
    with enable_grad():
        xs, in_tuple = _as_tuple(inputs, "inputs", "jacobian")
        xs = _prepare(xs, create_graph)
        outs, out_tuple = _call(func, xs, "jacobian")
        jac = [_rows(o, xs, create_graph, strict, "jacobian") for o in outs]
    jac = [tuple(j if create_graph else j.detach() for j in row) for row in jac]
    per_output = [row if in_tuple else row[0] for row in jac]
    return tuple(per_output) if out_tuple else per_output[0]


def jvp(func, inputs, v=None, create_graph: bool = False, strict: bool = False):
    """(func(*inputs), J v): the Jacobian's rows contracted with v."""
    with enable_grad():
        xs, in_tuple = _as_tuple(inputs, "inputs", "jvp")
        xs = _prepare(xs, create_graph)
        vs = _check_v(v, xs, "jvp", "input")
        outs, out_tuple = _call(func, xs, "jvp")
        result = []
        for o in outs:
            total = zeros(tuple(o.shape), dtype=o.dtype_name)
            for j, x, vk in zip(_rows(o, xs, create_graph, strict, "jvp"), xs, vs):
                m = j.reshape(o.numel(), x.numel())
                total = total + (m.sum(1) if vk is None else m.matmul(vk.reshape(x.numel()))).reshape(tuple(o.shape))
            result.append(total)
    return _finish(outs, out_tuple, create_graph), _finish(tuple(result), out_tuple, create_graph)


def _scalar(func, fn: str):
    def f(*xs):
        out = func(*xs)
        outs, _ = _as_tuple(out, "outputs of the user-provided function", fn)
        if len(outs) != 1 or outs[0].numel() != 1:
            raise RuntimeError(
                f"The function given to {fn} should return a single Tensor with a single element, got "
                f"{[tuple(o.shape) for o in outs]}"
            )
        return outs[0].reshape(())

    return f


def hessian(
    func,
    inputs,
    create_graph: bool = False,
    strict: bool = False,
    vectorize: bool = False,
    outer_jacobian_strategy: str = "reverse-mode",
):
    """The Hessian of a scalar function: in.shape + in.shape (a tuple of tuples for several inputs)."""
    scalar = _scalar(func, "hessian")
    xs, in_tuple = _as_tuple(inputs, "inputs", "hessian")

    def gradient(*ys):
        g = jacobian(scalar, ys, create_graph=True, strict=strict)
        return g if in_tuple else g[0]

    return jacobian(gradient, xs if in_tuple else xs[0], create_graph=create_graph, strict=strict)


def vhp(func, inputs, v=None, create_graph: bool = False, strict: bool = False):
    """(func(*inputs), v^T H) for a scalar function."""
    return _hessian_product(func, inputs, v, create_graph, strict, "vhp")


def hvp(func, inputs, v=None, create_graph: bool = False, strict: bool = False):
    """(func(*inputs), H v) for a scalar function (H symmetric: the same product as vhp)."""
    return _hessian_product(func, inputs, v, create_graph, strict, "hvp")


def _hessian_product(func, inputs, v, create_graph: bool, strict: bool, fn: str):
    with enable_grad():
        xs, in_tuple = _as_tuple(inputs, "inputs", fn)
        xs = _prepare(xs, True)
        out = _scalar(func, fn)(*xs)
        vs = _check_v(v, xs, fn, "input")
        grads = _grad((out,), xs, (None,), True, strict, fn)
        products = _grad(grads, xs, vs, create_graph, strict, fn)
    return _finish((out,), False, create_graph), _finish(products, in_tuple, create_graph)
