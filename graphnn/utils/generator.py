"""graphnn.Generator: a random number generator object, as torch.Generator (samplers, random_split, DataLoader)."""

from __future__ import annotations

import numpy as np

from graphnn.core import random as _random

DEFAULT_SEED = 67280421310721  # torch.Generator().initial_seed()


class Generator:
    """An independent stream of random numbers: `graphnn.Generator().manual_seed(s)` gives the same stream for the
    same seed. Used where PyTorch takes `generator=` (samplers, random_split, DataLoader)."""

    def __init__(self, device: str = "cpu"):
        self.device = device
        self.manual_seed(DEFAULT_SEED)

    def manual_seed(self, seed: int) -> "Generator":
        self._seed = int(seed)
        self._rng = np.random.default_rng(self._seed & (2**64 - 1))
        return self

    def seed(self) -> int:
        """Seed from fresh entropy; returns the seed."""
        s = int(np.random.SeedSequence().entropy % (2**63))
        self.manual_seed(s)
        return s

    def initial_seed(self) -> int:
        return self._seed

    def get_state(self) -> dict:
        """The generator's state (a NumPy bit-generator state dict, restored by set_state)."""
        return self._rng.bit_generator.state

    def set_state(self, state: dict) -> "Generator":
        self._rng.bit_generator.state = state
        return self

    def __repr__(self) -> str:
        return f"<graphnn.Generator object (seed {self._seed})>"


def numpy_rng(generator: Generator | None) -> np.random.Generator:
    """The NumPy generator to draw from: the given Generator's, else a new one seeded from graphnn's global generator
    (so results follow graphnn.manual_seed, and each call draws a fresh seed, as PyTorch's samplers do)."""
    if generator is not None:
        return generator._rng
    return np.random.default_rng(draw_seed(None))


def draw_seed(generator: Generator | None) -> int:
    """A 63-bit seed drawn from `generator` (or graphnn's global generator)."""
    rng = generator._rng if generator is not None else _random.generator()
    return int(rng.integers(0, 2**63 - 1))


def randperm(n: int, generator: Generator | None = None) -> list:
    """A random permutation of range(n), as a list of ints."""
    return numpy_rng(generator).permutation(n).tolist()


class _DefaultGenerator(Generator):
    """graphnn.default_generator: the global generator (graphnn.manual_seed's) as a Generator object."""

    def __init__(self):
        self.device = "cpu"

    @property
    def _rng(self) -> np.random.Generator:
        return _random.generator()

    @property
    def _seed(self) -> int:
        return _random.initial_seed()

    def manual_seed(self, seed: int) -> "Generator":
        _random.manual_seed(seed)
        return self


default_generator = _DefaultGenerator()
