"""Rprop with PyTorch's update rule: per-element step sizes grown by etaplus while the gradient keeps its sign and
shrunk by etaminus when it flips (that step is then skipped), clamped to step_sizes."""

from __future__ import annotations

import numpy as np

from graphnn.core.dispatch import apply
from ._hyper import as_dtype
from ._state import check, count_step, param_state
from .optimizer import PerParameter


class Rprop(PerParameter):
    def __init__(
        self,
        params,
        lr: float = 1e-2,
        etas=(0.5, 1.2),
        step_sizes=(1e-6, 50),
        *,
        capturable: bool = False,
        foreach=None,
        maximize: bool = False,
        differentiable: bool = False,
    ):
        check(lr, "learning rate")
        if not 0.0 < etas[0] < 1.0 < etas[1]:
            raise ValueError(f"Invalid eta values: {etas[0]}, {etas[1]}")
        defaults = dict(lr=lr, etas=tuple(etas), step_sizes=tuple(step_sizes), foreach=foreach, maximize=maximize)
        defaults.update(differentiable=differentiable, capturable=capturable)
        super().__init__(params, defaults)

    def _update(self, g: dict, p, grad) -> None:
        dt = p.dtype_name
        st = param_state(self, p, {"prev": 0.0, "step_size": np.full(tuple(p.shape), g["lr"], dt)})
        count_step(st)
        grad = -grad if g["maximize"] else grad
        etaminus, etaplus = (as_dtype(e, dt) for e in self._hyper(g, "etas"))
        lo, hi = (as_dtype(s, dt) for s in self._hyper(g, "step_sizes"))
        prev, step_size = st["prev"], st["step_size"]
        sign = (grad * prev).sign()
        factor = apply("select", [sign > 0, etaplus, apply("select", [sign < 0, etaminus, as_dtype(1.0, dt)])])
        step_size._assign((step_size * factor).clamp(lo, hi))
        grad = apply("select", [sign < 0, 0.0, grad])
        p._assign(p - grad.sign() * step_size)
        prev._assign(grad)
