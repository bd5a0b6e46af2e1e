"""Stochastic gradient descent with momentum, dampening, Nesterov, weight decay and maximize (PyTorch's rules)."""

from __future__ import annotations

from ._hyper import as_dtype
from .optimizer import PerParameter


class SGD(PerParameter):
    def __init__(
        self,
        params,
        lr: float = 1e-3,
        momentum: float = 0,
        dampening: float = 0,
        weight_decay: float = 0,
        nesterov: bool = False,
        *,
        maximize: bool = False,
        foreach: bool | None = None,
        differentiable: bool = False,
        fused: bool | None = None,
    ):
        if lr < 0 or momentum < 0 or weight_decay < 0:
            raise ValueError(f"Invalid SGD hyper-parameters lr={lr}, momentum={momentum}, weight_decay={weight_decay}")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")
        super().__init__(
            params,
            dict(
                lr=lr,
                momentum=momentum,
                dampening=dampening,
                weight_decay=weight_decay,
                nesterov=nesterov,
                maximize=maximize,
                foreach=foreach,
                differentiable=differentiable,
                fused=fused,
            ),
        )

    def _update(self, g: dict, p, grad) -> None:
        dt = p.dtype_name
        d_p = -grad if g["maximize"] else grad
        if g["weight_decay"]:
            d_p = d_p + p * as_dtype(self._hyper(g, "weight_decay"), dt)
        if g["momentum"]:
            momentum = as_dtype(self._hyper(g, "momentum"), dt)
            buf = self._state_buffer(p, "momentum_buffer")
            if buf is None:
                buf = self._new_buffer(p, "momentum_buffer", d_p)
            else:
                buf._assign(buf * momentum + d_p * as_dtype(1 - self._hyper(g, "dampening"), dt))
            d_p = d_p + buf * momentum if g["nesterov"] else buf
        p._assign(p - d_p * as_dtype(self._hyper(g, "lr"), dt))
