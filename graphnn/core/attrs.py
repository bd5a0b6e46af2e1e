"""Normalizing PyTorch-style layer arguments into IR attributes."""

from __future__ import annotations


def ntuple(x, n: int) -> tuple:
    if isinstance(x, (tuple, list)):
        if len(x) != n:
            raise ValueError(f"expected {n} values, got {tuple(x)}")
        return tuple(int(v) for v in x)
    return (int(x),) * n


def conv_padding(padding, ksize: tuple, dilation: tuple, stride: tuple) -> tuple:
    """PyTorch padding (int, tuple, 'same', 'valid') as one (lo, hi) pair per spatial dim."""
    n = len(ksize)
    if padding == "valid":
        return ((0, 0),) * n
    if padding == "same":
        if any(s != 1 for s in stride):
            raise ValueError("padding='same' is not supported for strided convolutions")
        pads = []
        for k, d in zip(ksize, dilation):
            total = d * (k - 1)
            pads.append((total // 2, total - total // 2))
        return tuple(pads)
    return tuple((p, p) for p in ntuple(padding, n))
