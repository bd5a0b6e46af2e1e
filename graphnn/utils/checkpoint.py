"""torch.utils.checkpoint: activation checkpointing trades memory for recomputation on an accelerator. graphnn runs
the function as is (its eager gradient keeps what the backward reads, and a compiled step plans memory over the
whole step), so results and gradients are those of the plain call. PyTorch's recomputation has one visible effect,
which graphnn repeats eagerly: the function runs again when the backward reaches its result, so state it updates (a
BatchNorm's running statistics) is updated twice per training step; that rerun draws the random numbers of the
first run (preserve_rng_state) and leaves the generator where it was. Inside graphnn.compile, as with torch.compile,
the function runs once (a compiled model and a compiled step alike)."""

from __future__ import annotations

import warnings

from graphnn.compiler import tracer as _tracer
from graphnn.compiler.pytree import flatten, map_tensors
from graphnn.core.grad_mode import is_grad_enabled, no_grad
from graphnn.core.tensor import Tensor


def noop_context_fn() -> tuple:
    """The default context_fn of checkpoint: two contexts that do nothing (forward's and the recomputation's)."""
    import contextlib

    return contextlib.nullcontext(), contextlib.nullcontext()


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
    from graphnn import random as graphnn_random

    if use_reentrant is None:  # (as PyTorch warns)
        warnings.warn(
            "torch.utils.checkpoint: the use_reentrant parameter should be passed explicitly; use_reentrant=False "
            "is recommended (graphnn computes the same for both)",
            UserWarning,
            stacklevel=2,
        )
    state = graphnn_random.get_rng_state() if preserve_rng_state else None
    out = function(*args, **kwargs)
    if _tracer.current() is None:  # (compiled, as torch.compile's, the function runs once: no rerun)
        _rerun_in_backward(out, function, args, kwargs, state)
    if use_reentrant and is_grad_enabled() and not any(isinstance(a, Tensor) and a.requires_grad for a in args):
        warnings.warn(
            "checkpoint(use_reentrant=True): none of the inputs requires grad, so the output does not either and "
            "the checkpointed layers get no gradients (use_reentrant=False, or an input that requires grad)",
            UserWarning,
            stacklevel=2,
        )
        return map_tensors(out, lambda t, _path: t.detach())
    return out


def _rerun_in_backward(out, function, args, kwargs, rng_state) -> None:
    """When the backward reaches out (its first tensor that requires grad), run function(*args, **kwargs) again
    without gradient, as PyTorch's recomputation does (once per backward pass through it)."""
    leaves: list = []
    flatten(out, leaves)
    first = next((t for t in leaves if t.requires_grad), None)
    if first is None or not is_grad_enabled():
        return
    from graphnn import random as graphnn_random

    detached = map_tensors(tuple(args), lambda t, _path: t.detach())

    def rerun(grad):
        with graphnn_random.fork_rng():
            if rng_state is not None:
                graphnn_random.set_rng_state(rng_state)
            with no_grad():
                function(*detached, **kwargs)

    first.register_hook(rerun)


def checkpoint_sequential(functions, segments, input, use_reentrant=None, **kwargs):  # noqa: A002
    """Run a Sequential (or a list of modules) on input, as torch.utils.checkpoint.checkpoint_sequential does."""
    modules = list(functions.children()) if hasattr(functions, "children") else list(functions)
    for m in modules:
        input = m(input)
    return input
