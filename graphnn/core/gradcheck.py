"""torch.autograd.gradcheck / gradgradcheck: a function's gradients against central finite differences.

The analytical Jacobian comes from graphnn's own backward (one autograd.grad per output element, with a one-hot
cotangent), the numerical one from evaluating the function at x +- eps per input element (without gradient
change); they must agree within atol + rtol * |numerical| elementwise, as PyTorch's slow mode checks. Use
float64 inputs: in float32 the differences' rounding (~1e-7 / eps) is above the default tolerances.
"""

from __future__ import annotations

import warnings

import numpy as np


class GradcheckError(RuntimeError):
    """A gradient disagrees with its finite-difference estimate (raise_exception=True)."""


def _tuple(x) -> tuple:
    return tuple(x) if isinstance(x, (tuple, list)) else (x,)


def _outputs(func, inputs: tuple) -> tuple:
    from graphnn.core.tensor import Tensor

    return tuple(o for o in _tuple(func(*inputs)) if isinstance(o, Tensor))


def _numerical(func, inputs: tuple, wrt: list, out_sizes: list, eps: float) -> list:
    """Per output, per differentiated input: the (n_in, n_out) finite-difference Jacobian."""
    jac = [[np.zeros((inputs[i].numel(), n)) for i in wrt] for n in out_sizes]
    # (gradient recording stays on: gradgradcheck's function computes a gradient)
    for k, i in enumerate(wrt):
        flat = inputs[i]._data.reshape(-1)  # (a view of the tensor's storage: changed in place, restored)
        for e in range(flat.size):
            orig = flat[e]
            flat[e] = orig + eps
            plus = [o.detach().numpy().astype(np.float64).reshape(-1) for o in _outputs(func, inputs)]
            flat[e] = orig - eps
            minus = [o.detach().numpy().astype(np.float64).reshape(-1) for o in _outputs(func, inputs)]
            flat[e] = orig
            for j, (p, m) in enumerate(zip(plus, minus)):
                jac[j][k][e] = (p - m) / (2 * eps)
    return jac


def _analytical(outs: tuple, inputs: tuple, wrt: list) -> list:
    """Per output, per differentiated input: the (n_in, n_out) Jacobian from backward (zeros where unused)."""
    from graphnn.autograd import grad
    from graphnn.core.tensor import Tensor

    jac = []
    for o in outs:
        n = o.numel()
        per = [np.zeros((inputs[i].numel(), n)) for i in wrt]
        if o.requires_grad:
            for e in range(n):
                seed = np.zeros(n, o.dtype_name)
                seed[e] = 1
                gs = grad(
                    [o],
                    [inputs[i] for i in wrt],
                    [Tensor(seed.reshape(tuple(o.shape)))],
                    retain_graph=True,
                    allow_unused=True,
                )
                for k, g in enumerate(gs):
                    if g is not None:
                        per[k][:, e] = g.detach().numpy().reshape(-1)
        jac.append(per)
    return jac


def gradcheck(
    func,
    inputs,
    *,
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-3,
    raise_exception: bool = True,
    nondet_tol: float = 0.0,
    check_undefined_grad: bool = True,
    check_grad_dtypes: bool = False,
    check_batched_grad: bool = False,
    check_batched_forward_grad: bool = False,
    check_forward_ad: bool = False,
    check_backward_ad: bool = True,
    fast_mode: bool = False,
    masked=None,
) -> bool:
    """True when func's gradients wrt its inputs that require grad match central differences; otherwise a
    GradcheckError (or False with raise_exception=False). The forward-mode, batched and fast-mode checks are
    accepted and the full backward check is what runs."""
    from graphnn.core.tensor import Tensor

    inputs = _tuple(inputs)
    wrt = [i for i, x in enumerate(inputs) if isinstance(x, Tensor) and x.requires_grad]
    if not wrt:
        raise ValueError(
            "gradcheck expects at least one input tensor to require gradient, but none of the them have "
            "requires_grad=True."
        )
    for i in wrt:
        if inputs[i].dtype_name != "float64":
            warnings.warn(
                f"Input #{i} requires gradient and is not a double precision floating point. This check will "
                "likely fail if all the inputs are not of double precision floating point. ",
                UserWarning,
                stacklevel=2,
            )
    outs = _outputs(func, inputs)
    analytical = _analytical(outs, inputs, wrt) if check_backward_ad else None
    numerical = _numerical(func, inputs, wrt, [o.numel() for o in outs], eps)
    if analytical is None:
        return True
    for j in range(len(outs)):
        for k, i in enumerate(wrt):
            a, n = analytical[j][k], numerical[j][k]
            if not np.allclose(a, n, rtol=rtol, atol=atol):
                msg = f"Jacobian mismatch for output {j} with respect to input {i},\nnumerical:{n}\nanalytical:{a}\n"
                if raise_exception:
                    raise GradcheckError(msg)
                return False
    return True


def gradgradcheck(
    func,
    inputs,
    grad_outputs=None,
    *,
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-3,
    gen_non_contig_grad_outputs: bool = False,
    raise_exception: bool = True,
    nondet_tol: float = 0.0,
    check_undefined_grad: bool = True,
    check_grad_dtypes: bool = False,
    check_batched_grad: bool = False,
    check_fwd_over_rev: bool = False,
    check_rev_over_rev: bool = True,
    fast_mode: bool = False,
    masked: bool = False,
) -> bool:
    """gradcheck of the gradient: the function (inputs, grad_outputs) -> d(func . grad_outputs)/d(inputs), its
    gradients recorded (create_graph) and checked against finite differences. grad_outputs default to random
    tensors (requiring grad) of the outputs' shapes."""
    from graphnn.autograd import grad
    from graphnn.core.tensor import Tensor

    inputs = _tuple(inputs)
    outs = _outputs(func, inputs)
    if grad_outputs is None:
        rng = np.random.default_rng(0)
        grad_outputs = tuple(
            Tensor(rng.standard_normal(tuple(o.shape)).astype(o.dtype_name), requires_grad=True) for o in outs
        )
    grad_outputs = _tuple(grad_outputs)
    n = len(inputs)

    def first_order(*args):
        xs, gos = args[:n], args[n:]
        ys = _outputs(func, xs)
        diff = [x for x in xs if isinstance(x, Tensor) and x.requires_grad]
        pairs = [(y, g) for y, g in zip(ys, gos) if y.requires_grad]
        gs = grad([y for y, _ in pairs], diff, [g for _, g in pairs], create_graph=True, allow_unused=True)
        return tuple(g for g in gs if g is not None)

    return gradcheck(first_order, inputs + grad_outputs, eps=eps, atol=atol, rtol=rtol, raise_exception=raise_exception)
