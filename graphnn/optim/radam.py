"""RAdam (Liu et al. 2019) with PyTorch's update rule: Adam whose adaptive step is rectified by the variance of
the adaptive learning rate, and plain momentum SGD while that variance is intractable (rho_t <= 5)."""

from __future__ import annotations

from graphnn.core.dispatch import apply
from ._adam_parts import decayed_gradient, update_moments
from ._hyper import as_dtype
from ._state import check_adam_args, count_step, param_state
from .optimizer import PerParameter


class RAdam(PerParameter):
    def __init__(
        self,
        params,
        lr: float = 1e-3,
        betas=(0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0,
        decoupled_weight_decay: bool = False,
        *,
        foreach=None,
        maximize: bool = False,
        capturable: bool = False,
        differentiable: bool = False,
    ):
        check_adam_args(lr, eps, betas, weight_decay)
        defaults = dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay, maximize=maximize)
        defaults.update(foreach=foreach, capturable=capturable, decoupled_weight_decay=decoupled_weight_decay)
        defaults.update(differentiable=differentiable)
        super().__init__(params, defaults)

    def _update(self, g: dict, p, grad) -> None:
        dt = p.dtype_name
        grad = -grad if g["maximize"] else grad
        st = param_state(self, p, {"exp_avg": 0.0, "exp_avg_sq": 0.0})
        step = count_step(st)  # float64, as PyTorch's Python float
        lr, (b1, b2), eps = (self._hyper(g, k) for k in ("lr", "betas", "eps"))
        grad = decayed_gradient(self, g, p, grad, lr, dt)
        exp_avg, exp_avg_sq = update_moments(st, grad, b1, b2, dt)
        bc1, bc2 = 1.0 - b1**step, 1.0 - b2**step
        rho_inf = 2.0 / (1.0 - b2) - 1.0
        rho_t = rho_inf - 2.0 * step * b2**step / bc2
        tractable = rho_t > 5.0
        safe_rho = apply("select", [tractable, rho_t, 6.0])  # (the rectification is only read where rho_t > 5)
        rect = ((safe_rho - 4.0) * (safe_rho - 2.0) * rho_inf / ((rho_inf - 4.0) * (rho_inf - 2.0) * safe_rho)).sqrt()
        corrected = exp_avg / as_dtype(bc1, dt) * as_dtype(lr, dt)
        adaptive = corrected * as_dtype(bc2.sqrt() * rect, dt) / (exp_avg_sq.sqrt() + as_dtype(eps, dt))
        p._assign(p - apply("select", [tractable, adaptive, corrected]))
