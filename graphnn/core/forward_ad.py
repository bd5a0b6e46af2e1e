"""torch.autograd.forward_ad: dual tensors (a primal value with a tangent) and the Jacobian-vector product of what is
computed from them. graphnn records the operations on a dual tensor as any others and computes the tangent of a
result when it is unpacked, by the double-vjp rule: with g(u) = J^T u, J t is the gradient of <g(u), t> with
respect to u (one backward through the recorded graph and one through its gradient)."""

from __future__ import annotations

import contextlib
from collections import namedtuple

UnpackedDualTensor = namedtuple("UnpackedDualTensor", ["primal", "tangent"])

_levels: list = []  # one dict per open dual_level: id(dual tensor) -> (dual tensor, tangent)


@contextlib.contextmanager
def dual_level():
    """The region in which make_dual's tensors carry their tangents (left: they are plain tensors again)."""
    _levels.append({})
    try:
        yield len(_levels) - 1
    finally:
        _levels.pop()


def enter_dual_level() -> int:
    _levels.append({})
    return len(_levels) - 1


def exit_dual_level(*, level=None) -> None:
    _levels.pop()


def make_dual(tensor, tangent, *, level=None):
    """A tensor with tensor's values whose tangent is `tangent` (same shape); needs an open dual_level."""
    if not _levels:
        raise RuntimeError("make_dual: a dual tensor can only be made inside a forward_ad.dual_level() region")
    if tuple(tangent.shape) != tuple(tensor.shape):
        raise RuntimeError(
            f"make_dual: the tangent's shape {list(tangent.shape)} must match the primal's {list(tensor.shape)}"
        )
    dual = tensor.detach().clone().requires_grad_(True)
    _levels[-1][id(dual)] = (dual, tangent.detach())
    return dual


def unpack_dual(tensor, *, level=None) -> UnpackedDualTensor:
    """(primal, tangent) of a tensor computed from dual tensors of the open level: the tangent is the Jacobian of
    tensor with respect to those duals times their tangents (None when tensor does not depend on any)."""
    from graphnn import autograd
    from graphnn.core.grad_mode import enable_grad
    from graphnn.core.tensor import zeros_like

    entry = _levels[-1].get(id(tensor)) if _levels else None
    if entry is not None:  # a dual tensor itself
        return UnpackedDualTensor(tensor.detach(), entry[1])
    duals = list(_levels[-1].values()) if _levels else []
    if not duals or not getattr(tensor, "requires_grad", False):
        return UnpackedDualTensor(tensor, None)
    with enable_grad():
        u = zeros_like(tensor).requires_grad_(True)
        grads = autograd.grad(
            tensor, [d for d, _ in duals], grad_outputs=u, create_graph=True, allow_unused=True, retain_graph=True
        )
        pairs = [(g, t) for g, (_, t) in zip(grads, duals) if g is not None]
        if not pairs:
            return UnpackedDualTensor(tensor.detach(), None)
        total = sum((g * t).sum() for g, t in pairs)
        if not total.requires_grad:  # (the result is constant in the duals)
            return UnpackedDualTensor(tensor.detach(), zeros_like(tensor))
        (jvp,) = autograd.grad(total, [u], allow_unused=True)
    return UnpackedDualTensor(tensor.detach(), zeros_like(tensor) if jvp is None else jvp.detach())
