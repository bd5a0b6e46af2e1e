"""The global random generator behind randn/rand/init and manual_seed."""

from __future__ import annotations

import contextlib

import numpy as np

_gen = np.random.default_rng(0)
_seed = [0]  # the seed of the global generator (initial_seed)


def generator(source=None) -> np.random.Generator:
    """The NumPy generator to draw from: a graphnn.Generator's own stream when given, else the global one."""
    return _gen if source is None else source._rng


def manual_seed(seed: int):
    """Seed graphnn's random number generator (factories, init, dropout)."""
    global _gen
    _gen = np.random.default_rng(int(seed))
    _seed[0] = int(seed)
    return _gen


def seed() -> int:
    s = int(np.random.SeedSequence().entropy % (2**63))
    manual_seed(s)
    return s


def initial_seed() -> int:
    """The seed the global generator was last seeded with (manual_seed or seed; 0 at import)."""
    return _seed[0]


_STATE_BYTES = 16  # PCG64's 128-bit state and increment, little-endian


def get_rng_state():
    """The global generator's state as a tensor of byte values (PyTorch's ByteTensor; graphnn keeps them as
    int64): NumPy PCG64's state and increment (16 bytes each), has_uint32 and uinteger (4 bytes)."""
    from graphnn.core.tensor import Tensor

    st = _gen.bit_generator.state
    if st.get("bit_generator") != "PCG64":
        raise RuntimeError(f"get_rng_state: the generator is {st.get('bit_generator')}, not PCG64")
    raw = (
        st["state"]["state"].to_bytes(_STATE_BYTES, "little")
        + st["state"]["inc"].to_bytes(_STATE_BYTES, "little")
        + bytes([st["has_uint32"]])
        + int(st["uinteger"]).to_bytes(4, "little")
    )
    return Tensor._wrap(np.frombuffer(raw, np.uint8).astype(np.int64))


def set_rng_state(new_state) -> None:
    """Restore a state from get_rng_state (a tensor of byte values, or a NumPy bit-generator state dict)."""
    if isinstance(new_state, dict):
        _gen.bit_generator.state = new_state
        return
    raw = bytes(np.asarray(new_state, np.int64).astype(np.uint8).tobytes())
    if len(raw) != 2 * _STATE_BYTES + 5:
        raise RuntimeError(f"set_rng_state: expected a state of {2 * _STATE_BYTES + 5} bytes, got {len(raw)}")
    _gen.bit_generator.state = {
        "bit_generator": "PCG64",
        "state": {
            "state": int.from_bytes(raw[:_STATE_BYTES], "little"),
            "inc": int.from_bytes(raw[_STATE_BYTES : 2 * _STATE_BYTES], "little"),
        },
        "has_uint32": raw[2 * _STATE_BYTES],
        "uinteger": int.from_bytes(raw[2 * _STATE_BYTES + 1 :], "little"),
    }


@contextlib.contextmanager
def fork_rng(
    devices=None, enabled: bool = True, _caller: str = "fork_rng", _devices_kw: str = "devices", device_type="cuda"
):
    """Within the block, random draws use the global generator as usual; after it, the generator (and its seed) is
    what it was before (torch.random.fork_rng; graphnn has only the CPU generator)."""
    global _gen
    if not enabled:
        yield
        return
    gen, state, seed_was = _gen, _gen.bit_generator.state, _seed[0]
    try:
        yield
    finally:
        _gen, _seed[0] = gen, seed_was
        _gen.bit_generator.state = state
