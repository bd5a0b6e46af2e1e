"""ASGD (averaged SGD) with PyTorch's update rule: a decayed SGD step with the step size eta, the average `ax` of
the iterates from step t0 on, and eta / mu (float32 state, as PyTorch's) recomputed from the step count."""

from __future__ import annotations

from graphnn.core.dispatch import apply
from ._hyper import as_dtype
from ._state import check, count_step, decay
from .optimizer import PerParameter

import numpy as np


class ASGD(PerParameter):
    def __init__(
        self,
        params,
        lr: float = 1e-2,
        lambd: float = 1e-4,
        alpha: float = 0.75,
        t0: float = 1e6,
        weight_decay: float = 0,
        foreach=None,
        maximize: bool = False,
        differentiable: bool = False,
        capturable: bool = False,
    ):
        check(lr, "learning rate")
        check(weight_decay, "weight_decay value")
        defaults = dict(lr=lr, lambd=lambd, alpha=alpha, t0=t0, weight_decay=weight_decay, foreach=foreach)
        defaults.update(maximize=maximize, differentiable=differentiable, capturable=capturable)
        super().__init__(params, defaults)

    def _update(self, g: dict, p, grad) -> None:
        dt = p.dtype_name
        fresh = {
            "step": np.zeros((), "float32"),
            "eta": np.array(g["lr"], "float32"),
            "mu": np.ones((), "float32"),
            "ax": np.zeros(tuple(p.shape), dt),
        }
        st = self._state_of(p, fresh)
        step = count_step(st)
        grad = decay(-grad if g["maximize"] else grad, p, self, g, dt)
        lr, lambd, alpha, t0 = (self._hyper(g, k) for k in ("lr", "lambd", "alpha", "t0"))
        eta, mu, ax = st["eta"].double(), st["mu"], st["ax"]
        p._assign(p * as_dtype(1.0 - lambd * eta, dt))
        p._assign(p - grad * as_dtype(eta, dt))
        mu_d = as_dtype(mu, dt)
        ax._assign(apply("select", [mu == 1.0, p, ax + (p - ax) * mu_d]))
        st["eta"]._assign((lr / (1.0 + lambd * lr * step) ** alpha).type_as_dtype("float32"))
        st["mu"]._assign((1.0 / apply("maximum", [step - t0, 1.0])).type_as_dtype("float32"))
