"""Adam and AdamW with PyTorch's update rule (bias correction, optional AMSGrad, maximize)."""

from __future__ import annotations

import numpy as np

from graphnn.core.grad_mode import no_grad
from ._hyper import as_dtype
from .optimizer import Optimizer


class Adam(Optimizer):
    """Adam; decoupled_weight_decay=True is AdamW. foreach, capturable and fused are accepted and ignored (a
    compiled training step is one native call anyway); differentiable=True is not supported."""

    def __init__(
        self,
        params,
        lr: float = 1e-3,
        betas=(0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0,
        amsgrad: bool = False,
        *,
        foreach: bool | None = None,
        maximize: bool = False,
        capturable: bool = False,
        differentiable: bool = False,
        fused: bool | None = None,
        decoupled_weight_decay: bool = False,
    ):
        if lr < 0 or eps < 0 or not (0 <= betas[0] < 1 and 0 <= betas[1] < 1) or weight_decay < 0:
            raise ValueError(
                f"Invalid Adam hyper-parameters lr={lr}, betas={betas}, eps={eps}, weight_decay={weight_decay}"
            )
        defaults = dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay, amsgrad=amsgrad)
        defaults.update(maximize=maximize, foreach=foreach, capturable=capturable, differentiable=differentiable)
        defaults.update(fused=fused, decoupled_weight_decay=decoupled_weight_decay)
        super().__init__(params, defaults)

    def step(self, closure=None):
        loss = closure() if closure is not None else None
        with no_grad():
            for g in self._groups():
                lr, (b1, b2), eps = (self._hyper(g, k) for k in ("lr", "betas", "eps"))
                for p in g["params"]:
                    grad = self._grad(p)
                    if grad is None:
                        continue
                    grad = -grad if g["maximize"] else grad
                    dt = p.dtype_name
                    names = ("exp_avg", "exp_avg_sq") + (("max_exp_avg_sq",) if g["amsgrad"] else ())
                    fresh = {"step": np.zeros((), "float32"), **{n: np.zeros(tuple(p.shape), dt) for n in names}}
                    st = self._state_of(p, fresh)
                    step = st["step"]
                    step._assign(step + 1.0)
                    if g["weight_decay"]:
                        wd = self._hyper(g, "weight_decay")
                        if g["decoupled_weight_decay"]:
                            p._assign(p * as_dtype(1.0 - lr * wd, dt))
                        else:
                            grad = grad + p * as_dtype(wd, dt)
                    exp_avg, exp_avg_sq = st["exp_avg"], st["exp_avg_sq"]
                    exp_avg._assign(exp_avg + (grad - exp_avg) * as_dtype(1.0 - b1, dt))
                    exp_avg_sq._assign(exp_avg_sq * as_dtype(b2, dt) + grad * grad * as_dtype(1.0 - b2, dt))
                    s = step.double()  # bias corrections in float64, as PyTorch's (Python floats): 1 - b2**step
                    bc1 = (1.0 - b1**s).type_as_dtype(dt)  # cancels catastrophically in float32
                    bc2_sqrt = (1.0 - b2**s).sqrt().type_as_dtype(dt)
                    second = exp_avg_sq
                    if g["amsgrad"]:
                        st["max_exp_avg_sq"]._assign(st["max_exp_avg_sq"].max(exp_avg_sq))
                        second = st["max_exp_avg_sq"]
                    denom = second.sqrt() / bc2_sqrt + as_dtype(eps, dt)
                    p._assign(p - exp_avg / denom * (as_dtype(lr, dt) / bc1))
        return loss


class AdamW(Adam):
    """Adam with decoupled weight decay (default 1e-2), as PyTorch's."""

    def __init__(
        self,
        params,
        lr: float = 1e-3,
        betas=(0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
        amsgrad: bool = False,
        *,
        maximize: bool = False,
        foreach: bool | None = None,
        capturable: bool = False,
        differentiable: bool = False,
        fused: bool | None = None,
    ):
        super().__init__(
            params,
            lr,
            betas,
            eps,
            weight_decay,
            amsgrad,
            foreach=foreach,
            maximize=maximize,
            capturable=capturable,
            differentiable=differentiable,
            fused=fused,
            decoupled_weight_decay=True,
        )
