"""The global random generator behind randn/rand/init and manual_seed."""

from __future__ import annotations

import numpy as np

_gen = np.random.default_rng(0)


def generator() -> np.random.Generator:
    return _gen


def manual_seed(seed: int):
    """Seed graphnn's random number generator (factories, init, dropout)."""
    global _gen
    _gen = np.random.default_rng(int(seed))
    return _gen


def seed() -> int:
    s = int(np.random.SeedSequence().entropy % (2**63))
    manual_seed(s)
    return s
