"""A generated 10-class image data set (32x32, one channel): each class is a noisy, shifted stroke pattern."""

from __future__ import annotations

import numpy as np


def _templates(rng: np.random.Generator, n_classes: int, size: int) -> np.ndarray:
    yy, xx = np.mgrid[0:size, 0:size] / (size - 1) * 2 - 1
    out = np.zeros((n_classes, size, size), np.float32)
    for c in range(n_classes):
        for _ in range(3):  # three Gaussian strokes per class
            cx, cy = rng.uniform(-0.6, 0.6, 2)
            angle = rng.uniform(0, np.pi)
            u = (xx - cx) * np.cos(angle) + (yy - cy) * np.sin(angle)
            v = -(xx - cx) * np.sin(angle) + (yy - cy) * np.cos(angle)
            out[c] += np.exp(-((u / 0.5) ** 2) - (v / 0.08) ** 2)
    return out


def make_dataset(n: int, n_classes: int = 10, size: int = 32, noise: float = 0.35, seed: int = 0):
    """(images float32 [n, 1, size, size], labels int64 [n])."""
    rng = np.random.default_rng(seed)
    templates = _templates(np.random.default_rng(1234), n_classes, size)
    labels = rng.integers(0, n_classes, n)
    images = templates[labels]
    shifts = rng.integers(-2, 3, (n, 2))
    images = np.stack([np.roll(img, tuple(s), axis=(0, 1)) for img, s in zip(images, shifts)])
    images = images + rng.normal(0, noise, images.shape)
    return images[:, None].astype(np.float32), labels.astype(np.int64)
