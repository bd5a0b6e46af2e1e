"""NAdam with PyTorch's update rule (Dozat 2016: momentum decay schedule, optional decoupled weight decay)."""

from __future__ import annotations

import numpy as np

from ._state import check, check_adam_args, count_step, param_state
from ._adam_parts import decayed_gradient, update_moments
from ._hyper import as_dtype
from .optimizer import PerParameter


class NAdam(PerParameter):
    def __init__(
        self,
        params,
        lr: float = 2e-3,
        betas=(0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0,
        momentum_decay: float = 4e-3,
        decoupled_weight_decay: bool = False,
        *,
        foreach=None,
        maximize: bool = False,
        capturable: bool = False,
        differentiable: bool = False,
    ):
        check_adam_args(lr, eps, betas, weight_decay)
        check(momentum_decay, "momentum_decay value")
        defaults = dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay, momentum_decay=momentum_decay)
        defaults.update(decoupled_weight_decay=decoupled_weight_decay, maximize=maximize, foreach=foreach)
        defaults.update(capturable=capturable, differentiable=differentiable)
        super().__init__(params, defaults)

    def _update(self, g: dict, p, grad) -> None:
        dt = p.dtype_name
        grad = -grad if g["maximize"] else grad
        st = param_state(self, p, {"mu_product": np.ones((), "float32"), "exp_avg": 0.0, "exp_avg_sq": 0.0})
        step = count_step(st)
        lr, (b1, b2), eps, md = (self._hyper(g, k) for k in ("lr", "betas", "eps", "momentum_decay"))
        bias_correction2 = 1.0 - b2**step
        grad = decayed_gradient(self, g, p, grad, lr, dt)
        # the momentum schedule, in float64 as PyTorch's Python floats
        mu = b1 * (1.0 - 0.5 * 0.96 ** (step * md))
        mu_next = b1 * (1.0 - 0.5 * 0.96 ** ((step + 1.0) * md))
        mu_product = st["mu_product"]
        mu_product._assign(mu_product * as_dtype(mu, mu_product.dtype_name))
        exp_avg, exp_avg_sq = update_moments(st, grad, b1, b2, dt)
        denom = (exp_avg_sq / as_dtype(bias_correction2, dt)).sqrt() + as_dtype(eps, dt)
        prod = mu_product.double()
        c_grad = -lr * (1.0 - mu) / (1.0 - prod)
        c_avg = -lr * mu_next / (1.0 - prod * mu_next)
        p._assign(p + as_dtype(c_grad, dt) * grad / denom + as_dtype(c_avg, dt) * exp_avg / denom)
