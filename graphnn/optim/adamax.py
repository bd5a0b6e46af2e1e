"""Adamax (Adam with the infinity norm) with PyTorch's update rule (weight decay, maximize)."""

from __future__ import annotations

from graphnn.core.dispatch import apply
from ._hyper import as_dtype
from ._state import check_adam_args, count_step, decay, param_state
from .optimizer import PerParameter


class Adamax(PerParameter):
    def __init__(
        self,
        params,
        lr: float = 2e-3,
        betas=(0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0,
        foreach=None,
        *,
        maximize: bool = False,
        differentiable: bool = False,
        capturable: bool = False,
    ):
        check_adam_args(lr, eps, betas, weight_decay)
        defaults = dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay, foreach=foreach)
        defaults.update(maximize=maximize, differentiable=differentiable, capturable=capturable)
        super().__init__(params, defaults)

    def _update(self, g: dict, p, grad) -> None:
        dt = p.dtype_name
        st = param_state(self, p, {"exp_avg": 0.0, "exp_inf": 0.0})
        s = count_step(st)
        grad = decay(-grad if g["maximize"] else grad, p, self, g, dt)
        b1, b2 = self._hyper(g, "betas")
        exp_avg, exp_inf = st["exp_avg"], st["exp_inf"]
        exp_avg._assign(exp_avg + (grad - exp_avg) * as_dtype(1.0 - b1, dt))
        exp_inf._assign(
            apply("maximum", [exp_inf * as_dtype(b2, dt), grad.abs() + as_dtype(self._hyper(g, "eps"), dt)])
        )
        clr = (self._hyper(g, "lr") / (1.0 - b1**s)).type_as_dtype(dt)  # in float64, as PyTorch's Python floats
        p._assign(p - exp_avg / exp_inf * clr)
