"""Adagrad with PyTorch's update rule (learning-rate decay, initial accumulator value, weight decay, maximize)."""

from __future__ import annotations

from ._state import check, count_step, decay, param_state
from ._hyper import as_dtype
from .optimizer import PerParameter


class Adagrad(PerParameter):
    def __init__(
        self,
        params,
        lr: float = 1e-2,
        lr_decay: float = 0,
        weight_decay: float = 0,
        initial_accumulator_value: float = 0,
        eps: float = 1e-10,
        foreach=None,
        *,
        maximize: bool = False,
        differentiable: bool = False,
        fused=None,
    ):
        check(lr, "learning rate")
        check(lr_decay, "lr_decay value")
        check(weight_decay, "weight_decay value")
        check(initial_accumulator_value, "initial_accumulator_value value")
        check(eps, "epsilon value")
        defaults = dict(lr=lr, lr_decay=lr_decay, eps=eps, weight_decay=weight_decay)
        defaults.update(initial_accumulator_value=initial_accumulator_value, foreach=foreach, maximize=maximize)
        defaults.update(differentiable=differentiable, fused=fused)
        super().__init__(params, defaults)
        for g in self.param_groups:  # as PyTorch's: the state exists from the start
            for p in g["params"]:
                param_state(self, p, {"sum": g["initial_accumulator_value"]})

    def _update(self, g: dict, p, grad) -> None:
        dt = p.dtype_name
        st = param_state(self, p, {"sum": g["initial_accumulator_value"]})
        step = count_step(st)
        grad = decay(-grad if g["maximize"] else grad, p, self, g, dt)
        clr = self._hyper(g, "lr") / (1.0 + (step - 1.0) * self._hyper(g, "lr_decay"))  # float64, as PyTorch's
        acc = st["sum"]
        acc._assign(acc + grad * grad)
        std = acc.sqrt() + as_dtype(self._hyper(g, "eps"), dt)
        p._assign(p - as_dtype(clr, dt) * grad / std)
