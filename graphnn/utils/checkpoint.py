"""torch.utils.checkpoint: activation checkpointing trades memory for recomputation on an accelerator. graphnn runs
the function as is (its eager gradient keeps what the backward reads, and a compiled step plans memory over the
whole step), so results and gradients are those of the plain call."""

from __future__ import annotations


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
    return function(*args, **kwargs)


def checkpoint_sequential(functions, segments, input, use_reentrant=None, **kwargs):  # noqa: A002
    """Run a Sequential (or a list of modules) on input, as torch.utils.checkpoint.checkpoint_sequential does."""
    modules = list(functions.children()) if hasattr(functions, "children") else list(functions)
    for m in modules:
        input = m(input)
    return input
