"""The global random generator behind randn/rand/init and manual_seed."""

from __future__ import annotations

import numpy as np

_gen = np.random.default_rng(0)


def generator(source=None) -> np.random.Generator:
    """The NumPy generator to draw from: a graphnn.Generator's own stream when given, else the global one."""
    return _gen if source is None else source._rng


def manual_seed(seed: int):
    """Seed graphnn's random number generator (factories, init, dropout)."""
    global _gen
    _gen = np.random.default_rng(int(seed))
    return _gen


def seed() -> int:
    s = int(np.random.SeedSequence().entropy % (2**63))
    manual_seed(s)
    return s


def get_rng_state() -> dict:
    """The state of graphnn's generator (a NumPy bit-generator state; pass it to set_rng_state)."""
    return _gen.bit_generator.state


def set_rng_state(new_state: dict) -> None:
    _gen.bit_generator.state = new_state
