"""Adadelta with PyTorch's update rule (Zeiler 2012, with a learning rate, weight decay and maximize)."""

from __future__ import annotations

from ._state import check, count_step, decay, param_state
from ._hyper import as_dtype
from .optimizer import PerParameter


class Adadelta(PerParameter):
    def __init__(
        self,
        params,
        lr: float = 1.0,
        rho: float = 0.9,
        eps: float = 1e-6,
        weight_decay: float = 0,
        foreach=None,
        *,
        capturable: bool = False,
        maximize: bool = False,
        differentiable: bool = False,
    ):
        check(lr, "learning rate")
        check(rho, "rho value", 0.0, 1.0)
        check(eps, "epsilon value")
        check(weight_decay, "weight_decay value")
        defaults = dict(lr=lr, rho=rho, eps=eps, weight_decay=weight_decay, maximize=maximize)
        defaults.update(capturable=capturable, foreach=foreach, differentiable=differentiable)
        super().__init__(params, defaults)

    def _update(self, g: dict, p, grad) -> None:
        dt = p.dtype_name
        lr, rho, eps = (as_dtype(self._hyper(g, k), dt) for k in ("lr", "rho", "eps"))
        st = param_state(self, p, {"square_avg": 0.0, "acc_delta": 0.0})
        count_step(st)
        grad = decay(-grad if g["maximize"] else grad, p, self, g, dt)
        one_minus_rho = as_dtype(1 - self._hyper(g, "rho"), dt)
        square_avg, acc_delta = st["square_avg"], st["acc_delta"]
        square_avg._assign(square_avg * rho + grad * one_minus_rho * grad)
        delta = (acc_delta + eps).sqrt() / (square_avg + eps).sqrt() * grad
        acc_delta._assign(acc_delta * rho + delta * one_minus_rho * delta)
        p._assign(p - delta * lr)
