"""Per-parameter optimizer state shared by the optimizers written like PyTorch's (a float32 `step` count and
buffers shaped like the parameter)."""

from __future__ import annotations

import numbers

import numpy as np

from graphnn.core.tensor import Tensor
from ._hyper import as_dtype


def check(value, name: str, low: float = 0.0, high: float | None = None, open_high: bool = False) -> None:
    """PyTorch's argument check of a hyper-parameter: `Invalid <name>: <value>` unless low <= value (< or <=) high."""
    if not isinstance(value, numbers.Real):
        return
    bad = value < low or (high is not None and (value >= high if open_high else value > high))
    if bad:
        raise ValueError(f"Invalid {name}: {value}")


def param_state(opt, p, buffers: dict) -> dict:
    """opt.state[p], created on the first step with `step` = 0 (float32, 0-d) and each named buffer filled with its
    value (a number: shaped like p; an array: a copy of it); when tracing, the trace depends on whether the state
    existed."""
    if opt._state_buffer(p, "step") is None:
        st = opt.state.setdefault(p, {})
        st["step"] = Tensor._wrap(np.zeros((), "float32"))
        for name, fill in buffers.items():
            arr = fill.copy() if isinstance(fill, np.ndarray) else np.full(tuple(p.shape), fill, p.dtype_name)
            st[name] = Tensor._wrap(arr)
    return opt.state[p]


def count_step(st: dict) -> Tensor:
    """step += 1; returns the new count in float64 (PyTorch computes with it as a Python float)."""
    step = st["step"]
    if not isinstance(step, Tensor):  # (a count PyTorch's sparse or older optimizers keep as a Python number)
        step = st["step"] = Tensor._wrap(np.array(step, "float32"))
    step._assign(step + 1.0)
    return step.double()


def decay(grad, p, opt, group: dict, dt: str):
    """L2 weight decay folded into the gradient (grad + weight_decay * p) when the group has one."""
    if group["weight_decay"]:
        return grad + p * as_dtype(opt._hyper(group, "weight_decay"), dt)
    return grad


def check_adam_args(lr, eps, betas, weight_decay) -> None:
    """The Adam family's argument checks (Adamax, NAdam, RAdam), with PyTorch's messages."""
    check(lr, "learning rate")
    check(eps, "epsilon value")
    check(betas[0], "beta parameter at index 0", high=1.0, open_high=True)
    check(betas[1], "beta parameter at index 1", high=1.0, open_high=True)
    check(weight_decay, "weight_decay value")
