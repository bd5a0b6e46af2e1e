"""Module.register_full_backward_hook / register_full_backward_pre_hook: hooks called with the gradients of a
module's outputs (pre-hooks; hook(module, grad_output)) and of its tensor inputs (hook(module, grad_input,
grad_output)) during backward, eagerly and while graphnn.compile traces the backward. They are gradient hooks
(Tensor.register_hook) on the outputs and on an identity copy of each input that requires grad; a hook returning
gradients replaces them (with several inputs or outputs, only an inspecting hook is supported)."""

from __future__ import annotations

from graphnn.core.dispatch import apply, located
from graphnn.core.grad_mode import is_grad_enabled
from graphnn.core.tensor import Tensor


def _flat_outputs(out) -> list:
    if isinstance(out, Tensor):
        return [out]
    if isinstance(out, (tuple, list)):
        return [o for o in out if isinstance(o, Tensor)]
    return []


def _replaced(module, kind: str, result, grads: list, pending: int):
    """The replacement gradients a hook returned (a tuple, one per entry), checked."""
    result = tuple(result) if isinstance(result, (tuple, list)) else (result,)
    if len(result) != len(grads):
        raise RuntimeError(
            located(f"backward hook of {type(module).__name__} returned {len(result)} {kind}, expected {len(grads)}")
        )
    if pending > 1 and any(r is not g for r, g in zip(result, grads)):
        raise NotImplementedError(
            located(
                f"a backward hook of {type(module).__name__} replaced {kind} of several tensors: graphnn calls "
                "full backward hooks from per-tensor gradient hooks, which can replace only a single tensor's"
            )
        )
    return result


def call_with_backward_hooks(module, pre_hooks: dict, hooks: dict, run, args: tuple, kwargs: dict):
    """run(args, kwargs) with the module's full backward (pre-)hooks attached to its inputs and outputs."""
    if not is_grad_enabled():
        return run(args, kwargs)
    args = list(args)
    slots = [i for i, a in enumerate(args) if isinstance(a, Tensor)]
    needs = [i for i in slots if args[i].requires_grad]
    for i in needs:  # a new tensor per input: its gradient is the module's grad_input
        args[i] = apply("mul", [args[i], 1.0])
    out = run(tuple(args), kwargs)
    outs = [o for o in _flat_outputs(out) if o.requires_grad]
    if not outs:
        return out
    # the caller gets a new tensor per output (as PyTorch's BackwardHookFunction): the hooks see the gradient after
    # the tensor hooks the caller registers on what it got
    copies = {id(o): apply("mul", [o, 1.0]) for o in outs}
    if isinstance(out, Tensor):
        out = copies[id(out)]
    else:
        items = [copies.get(id(o), o) if isinstance(o, Tensor) else o for o in out]
        out = type(out)(*items) if hasattr(out, "_fields") else type(out)(items)  # (a named tuple too)
    got_out: dict = {}
    got_in: dict = {}
    state = {"grad_output": None}

    def input_grads_done():
        grad_input = tuple(got_in.get(i) for i in slots)
        for hook in list(hooks.values()):
            res = hook(module, grad_input, state["grad_output"])
            if res is not None:
                grad_input = _replaced(module, "grad_input", res, list(grad_input), len(needs))
        got_in.clear()
        return grad_input

    def output_grads_done():
        grad_output = tuple(got_out[k] for k in range(len(outs)))
        for hook in list(pre_hooks.values()):
            res = hook(module, grad_output)
            if res is not None:
                grad_output = _replaced(module, "grad_output", res, list(grad_output), len(outs))
        state["grad_output"] = grad_output
        got_out.clear()
        if not needs and hooks:  # no input requires grad: the hooks see grad_input of Nones now
            input_grads_done()
        return grad_output

    def on_output(k):
        def hook(grad):
            got_out[k] = grad
            if len(got_out) == len(outs):
                return output_grads_done()[k]
            return None

        return hook

    def on_input(i):
        def hook(grad):
            got_in[i] = grad
            if len(got_in) == len(needs):
                return input_grads_done()[slots.index(i)]
            return None

        return hook

    for k, o in enumerate(outs):
        o.register_hook(on_output(k))
    if hooks:
        for i in needs:
            args[i].register_hook(on_input(i))
    return out
