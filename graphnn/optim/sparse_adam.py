"""SparseAdam with PyTorch's update rule on the rows a sparse gradient would list (the moments and the parameter
elsewhere stay as they are). graphnn's gradients are dense (its sparse tensors are dense-backed), so those rows are the
ones with a non-zero gradient entry: an embedding's looked-up rows, updated whole as PyTorch updates them (a looked-up
row whose gradient summed to exactly zero everywhere is the one case left as it is)."""

from __future__ import annotations


import numpy as np

from graphnn.core.dispatch import apply
from ._hyper import as_dtype
from ._state import count_step
from .optimizer import PerParameter


class SparseAdam(PerParameter):
    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8, maximize: bool = False):
        if not 0.0 < lr:
            raise ValueError(f"Invalid learning rate: {lr}")
        if not 0.0 < eps:
            raise ValueError(f"Invalid epsilon value: {eps}")
        for i in (0, 1):
            if not 0.0 <= betas[i] < 1.0:
                raise ValueError(f"Invalid beta parameter at index {i}: {betas[i]}")
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps, maximize=maximize))

    def _update(self, g: dict, p, grad) -> None:
        dt = p.dtype_name
        zeros = np.zeros(tuple(p.shape), dt)
        st = self._state_of(p, {"step": np.zeros((), "float32"), "exp_avg": zeros, "exp_avg_sq": zeros.copy()})
        step = count_step(st)
        grad = -grad if g["maximize"] else grad
        b1, b2 = self._hyper(g, "betas")
        # the rows the gradient touches, as PyTorch's sparse gradient lists the embedding rows looked up (a row whose
        # gradient summed to exactly 0 everywhere is taken as not looked up: dense gradients cannot tell)
        present = grad != 0
        if p.ndim > 1:
            present = present.any(dim=tuple(range(1, p.ndim)), keepdim=True)
        exp_avg, exp_avg_sq = st["exp_avg"], st["exp_avg_sq"]
        m = exp_avg + (grad - exp_avg) * as_dtype(1.0 - b1, dt)
        v = exp_avg_sq + (grad * grad - exp_avg_sq) * as_dtype(1.0 - b2, dt)
        exp_avg._assign(apply("select", [present, m, exp_avg]))
        exp_avg_sq._assign(apply("select", [present, v, exp_avg_sq]))
        step_size = self._hyper(g, "lr") * (1.0 - b2**step).sqrt() / (1.0 - b1**step)  # float64, as PyTorch's
        update = m / (v.sqrt() + as_dtype(self._hyper(g, "eps"), dt)) * as_dtype(-step_size, dt)
        p._assign(apply("select", [present, p + update, p]))
