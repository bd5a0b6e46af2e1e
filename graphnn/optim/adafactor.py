"""Adafactor with PyTorch's update rule (torch.optim.Adafactor): second moments factored into row and column means
for matrices (a full one for vectors), a relative step size, update clipping by its RMS.

Per step t: beta2_t = 1 - t^beta2_decay; rho = min(lr, 1 / sqrt(t)); alpha = max(eps2, RMS(p)) rho; decoupled
weight decay scales p by 1 - lr weight_decay; the row and column variances move toward the mean squared gradient of
each row and column (their outer product over the mean row variance estimates the full one); the update
grad / sqrt(max(estimate, eps1^2)) is divided by max(1, RMS(update) / d) and subtracted times alpha. PyTorch's
Python floats (t, RMS values) are float64 0-d tensors here, so the step also runs compiled."""

from __future__ import annotations

import numpy as np

from graphnn.core.dispatch import apply
from ._hyper import as_dtype
from ._state import count_step, param_state
from .optimizer import PerParameter


class Adafactor(PerParameter):
    def __init__(
        self,
        params,
        lr: float = 1e-2,
        beta2_decay: float = -0.8,
        eps: tuple = (None, 1e-3),
        d: float = 1.0,
        weight_decay: float = 0.0,
        *,
        foreach=None,
        maximize: bool = False,
    ):
        if not 0.0 <= lr:
            raise ValueError(f"Learning rate should be >= 0 but is: {lr}")
        if not 0.0 >= beta2_decay:
            raise ValueError(f"beta2_decay should be <= 0 but is: {beta2_decay}")
        if eps[0] is not None and not 0.0 <= eps[0]:
            raise ValueError(f"epsilon1 should be >= 0 but is: {eps[0]}")
        if not 0.0 <= eps[1]:
            raise ValueError(f"epsilon2 should be >= 0 but is: {eps[1]}")
        if not 1.0 <= d:
            raise ValueError(f"Clipping threshold d should be >= 1 but is: {d}")
        if not 0.0 <= weight_decay:
            raise ValueError(f"weight_decay should be >= 0 but is: {weight_decay}")
        defaults = dict(lr=lr, beta2_decay=beta2_decay, eps=tuple(eps), d=d, weight_decay=weight_decay)
        defaults.update(foreach=foreach, maximize=maximize)
        super().__init__(params, defaults)

    def _update(self, g: dict, p, grad) -> None:
        dt = p.dtype_name
        shape = tuple(p.shape)
        if len(shape) > 1:
            buffers = {
                "row_var": np.zeros(shape[:-1] + (1,), dt),
                "col_var": np.zeros(shape[:-2] + (1,) + shape[-1:], dt),
            }
        else:
            buffers = {"variance": 0.0}
        st = param_state(self, p, buffers)
        grad = -grad if g["maximize"] else grad
        eps1, eps2 = g["eps"]
        eps1 = float(np.finfo(dt).eps) if eps1 is None else eps1
        t = count_step(st)
        weight = as_dtype(t ** g["beta2_decay"], dt)  # 1 - beta2_t
        lr = self._hyper(g, "lr")
        size = max(p.numel(), 1)
        rho = apply("minimum", [lr, 1.0 / t.sqrt()])
        alpha = apply("maximum", [p.norm(2).double() / size**0.5, eps2]) * rho
        if g["weight_decay"]:
            p._assign(p * as_dtype(1.0 - lr * self._hyper(g, "weight_decay"), dt))
        if len(shape) > 1:
            row, col = st["row_var"], st["col_var"]
            row._assign(row + (grad.square().sum(-1, keepdim=True) / shape[-1] - row) * weight)
            col._assign(col + (grad.square().sum(-2, keepdim=True) / shape[-2] - col) * weight)
            estimate = (row @ col) / row.mean(dim=-2, keepdim=True).clamp(min=eps1)
        else:
            var = st["variance"]
            var._assign(var + (grad * grad - var) * weight)
            estimate = var
        update = estimate.clamp(min=eps1 * eps1).rsqrt() * grad
        denom = apply("maximum", [update.norm(2).double() / (size**0.5 * g["d"]), 1.0])
        p._assign(p - update * as_dtype(alpha / denom, dt))
