"""Pieces the Adam-family update rules share (NAdam, RAdam): weight decay, plain or decoupled, and the two moment
updates, written in the rounding order PyTorch's implementations use."""

from __future__ import annotations

from ._hyper import as_dtype


def decayed_gradient(opt, g: dict, p, grad, lr, dt: str):
    """grad with L2 weight decay (weight_decay * p) added, or, with decoupled_weight_decay, p itself shrunk by
    lr * weight_decay (AdamW style) and grad unchanged."""
    if not g["weight_decay"]:
        return grad
    wd = opt._hyper(g, "weight_decay")
    if g.get("decoupled_weight_decay"):
        p._assign(p * as_dtype(1.0 - lr * wd, dt))
        return grad
    return grad + p * as_dtype(wd, dt)


def update_moments(st: dict, grad, b1, b2, dt: str) -> tuple:
    """exp_avg moved towards grad by 1 - b1, exp_avg_sq towards grad^2 by 1 - b2 (in place); returns both."""
    exp_avg, exp_avg_sq = st["exp_avg"], st["exp_avg_sq"]
    exp_avg._assign(exp_avg + as_dtype(1.0 - b1, dt) * (grad - exp_avg))
    exp_avg_sq._assign(exp_avg_sq * as_dtype(b2, dt) + as_dtype(1.0 - b2, dt) * grad * grad)
    return exp_avg, exp_avg_sq
