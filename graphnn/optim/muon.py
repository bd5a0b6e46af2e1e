"""Muon (momentum orthogonalized by Newton-Schulz) with PyTorch's update rule, for 2-D parameters.

Per step: the momentum buffer moves toward the gradient (buf += (1 - momentum) (grad - buf)); the update is the
buffer (or, with nesterov, grad + momentum (buf - grad)) orthogonalized by `ns_steps` quintic Newton-Schulz
iterations X <- a X + (b A + c A A) X with A = X X^T (on the wide orientation, after dividing by its Frobenius
norm); decoupled weight decay scales the parameter by 1 - lr * weight_decay, then the update is subtracted times lr
adjusted to the shape ("original": sqrt(max(1, rows / cols)); "match_rms_adamw": 0.2 sqrt(max(rows, cols))).
PyTorch runs the iterations in bfloat16; graphnn runs them in the parameter's dtype (closer to the exact map).
"""

from __future__ import annotations

import math

from ._hyper import as_dtype
from ._state import param_state
from .optimizer import PerParameter

ADJUSTMENTS = (None, "original", "match_rms_adamw")


class Muon(PerParameter):
    def __init__(
        self,
        params,
        lr: float = 1e-3,
        weight_decay: float = 0.1,
        momentum: float = 0.95,
        nesterov: bool = True,
        ns_coefficients: tuple = (3.4445, -4.775, 2.0315),
        eps: float = 1e-7,
        ns_steps: int = 5,
        adjust_lr_fn: str | None = None,
    ):
        if not 0.0 <= lr:
            raise ValueError(f"Learning rate should be >= 0 but is: {lr}")
        if not 0.0 <= momentum:
            raise ValueError(f"momentum should be >= 0 but is: {momentum}")
        if not 0.0 <= weight_decay:
            raise ValueError(f"weight decay should be >= 0 but is: {weight_decay}")
        if adjust_lr_fn not in ADJUSTMENTS and adjust_lr_fn != "none":
            raise ValueError(f"Adjust learning rate function {adjust_lr_fn} is not supported")
        if len(tuple(ns_coefficients)) != 3:
            raise ValueError("Coefficients must be a tuple of exactly 3 values")
        if ns_steps >= 100:
            raise ValueError("Number of steps must be less than 100 for computational efficiency")
        defaults = dict(lr=lr, weight_decay=weight_decay, momentum=momentum, nesterov=nesterov, eps=eps)
        defaults.update(ns_coefficients=tuple(ns_coefficients), ns_steps=ns_steps, adjust_lr_fn=adjust_lr_fn)
        super().__init__(params, defaults)
        for g in self.param_groups:
            for p in g["params"]:
                if p.ndim != 2:
                    raise ValueError(
                        f"Muon only supports 2D parameters whereas we found a parameter with size: {p.size()}"
                    )

    def _update(self, g: dict, p, grad) -> None:
        dt = p.dtype_name
        st = param_state(self, p, {"momentum_buffer": 0.0})
        mu = self._hyper(g, "momentum")
        buf = st["momentum_buffer"]
        buf._assign(buf + (grad - buf) * as_dtype(1.0 - mu, dt))
        update = grad + (buf - grad) * as_dtype(mu, dt) if g["nesterov"] else buf
        ortho = newton_schulz(update, g["ns_coefficients"], g["ns_steps"], g["eps"])
        lr = self._hyper(g, "lr")
        p._assign(p * as_dtype(1.0 - lr * self._hyper(g, "weight_decay"), dt))
        p._assign(p - ortho * as_dtype(lr * _lr_ratio(g["adjust_lr_fn"], tuple(p.shape)), dt))


def newton_schulz(g, coefficients: tuple, steps: int, eps: float):
    """The quintic Newton-Schulz map of g toward the nearest (semi-)orthogonal matrix, as Muon uses it."""
    a, b, c = coefficients
    tall = g.shape[0] > g.shape[1]
    x = g.T if tall else g
    x = x / x.norm().clamp(min=eps)
    for _ in range(steps):
        gram = x @ x.T
        x = a * x + (b * gram + c * (gram @ gram)) @ x
    return x.T if tall else x


def _lr_ratio(adjust: str | None, shape: tuple) -> float:
    rows, cols = shape[:2]
    if adjust is None or adjust == "original":
        return math.sqrt(max(1.0, rows / cols))
    if adjust == "match_rms_adamw":
        return 0.2 * math.sqrt(max(rows, cols))
    return 1.0
