"""torch.utils.checkpoint: activation checkpointing trades memory for recomputation on an accelerator. graphnn runs
the function as is (its eager gradient keeps what the backward reads, and a compiled step plans memory over the
whole step), so results and gradients are those of the plain call."""

from __future__ import annotations

import warnings

from graphnn.compiler.pytree import map_tensors
from graphnn.core.grad_mode import is_grad_enabled
from graphnn.core.tensor import Tensor


def checkpoint(
    function,
    *args,
    use_reentrant=None,
    context_fn=None,
    determinism_check="default",
    debug=False,
    preserve_rng_state=True,
    **kwargs,
):
    """function(*args, **kwargs) (graphnn keeps what the backward needs; nothing is recomputed). With
    use_reentrant=True and no tensor argument requiring grad, the result does not require grad either (the layer
    inside gets no gradient), with PyTorch's warning."""
    out = function(*args, **kwargs)
    if use_reentrant and is_grad_enabled() and not any(isinstance(a, Tensor) and a.requires_grad for a in args):
        warnings.warn(
            "checkpoint(use_reentrant=True): none of the inputs requires grad, so the output does not either and "
            "the checkpointed layers get no gradients (use_reentrant=False, or an input that requires grad)",
            UserWarning,
            stacklevel=2,
        )
        return map_tensors(out, lambda t, _path: t.detach())
    return out


def checkpoint_sequential(functions, segments, input, use_reentrant=None, **kwargs):  # noqa: A002
    """Run a Sequential (or a list of modules) on input, as torch.utils.checkpoint.checkpoint_sequential does."""
    modules = list(functions.children()) if hasattr(functions, "children") else list(functions)
    for m in modules:
        input = m(input)
    return input
