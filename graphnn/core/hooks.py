"""Gradient hooks on tensors (Tensor.register_hook): called with the tensor's gradient during backward(), eagerly
and inside graphnn.compile; a hook may return a replacement gradient. The autograd engine (graphnn.autograd, and
the tracer for compiled code) calls them through ir.vjp's hooks."""

from __future__ import annotations

from graphnn.compiler import tracer as _tracer
from graphnn.core.dispatch import located


USED = [False]  # has any tensor had a gradient hook (until then backward() need not look for them)


class RemovableHandle:
    """What register_hook returns: remove() unregisters the hook (also as a context manager)."""

    def __init__(self, hooks: list, fn):
        self._hooks, self._fn = hooks, fn

    def remove(self) -> None:
        for i, f in enumerate(self._hooks):
            if f is self._fn:
                del self._hooks[i]
                _tracer.state_changed()  # compiled code traced with the hook must trace again
                return

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.remove()


def register_hook(t, hook) -> RemovableHandle:
    """Call hook(grad) whenever t's gradient is computed; a tensor it returns replaces the gradient."""
    if not t.requires_grad:
        raise RuntimeError(located("cannot register a hook on a tensor that doesn't require gradient"))
    if t._grad_hooks is None:
        t._grad_hooks = []
    t._grad_hooks.append(hook)
    USED[0] = True
    if t._captured:
        _tracer.state_changed()  # compiled code traced without the hook must trace again
    if t._value is not None and t.grad_fn is not None or t._trace is not None:
        t._value.meta["hooks"] = t._grad_hooks  # a computed tensor: its recorded (or traced) value carries them
    return RemovableHandle(t._grad_hooks, hook)


def register_post_accumulate_grad_hook(t, hook) -> RemovableHandle:
    """Call hook(t) after backward() has accumulated a gradient into t.grad (a leaf that requires grad; eager
    code: an optimizer stepping each parameter as soon as its gradient is ready)."""
    if not t.requires_grad or t.grad_fn is not None:
        raise RuntimeError(
            located("post accumulate grad hooks can only be registered on leaf tensors that require grad")
        )
    hooks = t.__dict__.setdefault("_post_accumulate_hooks", [])
    hooks.append(hook)
    return RemovableHandle(hooks, hook)


def call_hooks(fns: list, grad, type_):
    """grad after each hook of fns in order (one returning a tensor replaces it for the next and for backward)."""
    for fn in list(fns):
        new = fn(grad)
        if new is not None:
            if tuple(new.shape) != tuple(type_.shape):
                raise RuntimeError(
                    located(
                        f"hook {getattr(fn, '__name__', fn)!s} returned a gradient of shape {list(new.shape)} "
                        f"for a tensor of shape {list(type_.shape)}",
                        "",
                    )
                )
            grad = new
    return grad


def run_post_accumulate_hooks(t) -> None:
    """Call t's post-accumulate-grad hooks, after a gradient was accumulated into t.grad (eagerly, or traced)."""
    for hook in list(t.__dict__.get("_post_accumulate_hooks", ())):
        hook(t)
