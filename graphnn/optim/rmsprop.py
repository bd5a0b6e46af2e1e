"""RMSprop with PyTorch's update rule (momentum, centered, weight decay, maximize)."""

from __future__ import annotations

from ._state import check, count_step, decay, param_state
from ._hyper import as_dtype
from .optimizer import PerParameter


class RMSprop(PerParameter):
    def __init__(
        self,
        params,
        lr: float = 1e-2,
        alpha: float = 0.99,
        eps: float = 1e-8,
        weight_decay: float = 0,
        momentum: float = 0,
        centered: bool = False,
        capturable: bool = False,
        foreach=None,
        maximize: bool = False,
        differentiable: bool = False,
    ):
        check(lr, "learning rate")
        check(eps, "epsilon value")
        check(momentum, "momentum value")
        check(weight_decay, "weight_decay value")
        check(alpha, "alpha value")
        defaults = dict(lr=lr, momentum=momentum, alpha=alpha, eps=eps, centered=centered, weight_decay=weight_decay)
        defaults.update(capturable=capturable, foreach=foreach, maximize=maximize, differentiable=differentiable)
        super().__init__(params, defaults)

    def _update(self, g: dict, p, grad) -> None:
        dt = p.dtype_name
        buffers = {"square_avg": 0.0}
        if g["momentum"] > 0:
            buffers["momentum_buffer"] = 0.0
        if g["centered"]:
            buffers["grad_avg"] = 0.0
        st = param_state(self, p, buffers)
        count_step(st)
        grad = decay(-grad if g["maximize"] else grad, p, self, g, dt)
        alpha = self._hyper(g, "alpha")
        one_minus_alpha = as_dtype(1 - alpha, dt)
        square_avg = st["square_avg"]
        square_avg._assign(square_avg * as_dtype(alpha, dt) + one_minus_alpha * grad * grad)
        if g["centered"]:
            grad_avg = st["grad_avg"]
            grad_avg._assign(grad_avg + one_minus_alpha * (grad - grad_avg))  # lerp towards grad
            avg = (square_avg - grad_avg * grad_avg).sqrt()
        else:
            avg = square_avg.sqrt()
        avg = avg + as_dtype(self._hyper(g, "eps"), dt)
        lr = as_dtype(self._hyper(g, "lr"), dt)
        if g["momentum"] > 0:
            buf = st["momentum_buffer"]
            buf._assign(buf * as_dtype(self._hyper(g, "momentum"), dt) + grad / avg)
            p._assign(p - buf * lr)
        else:
            p._assign(p - lr * grad / avg)
