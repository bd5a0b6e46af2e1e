"""graphnn.serialization: torch.serialization's entry points for programs that call them. graphnn.load reads
only graphnn's own checkpoint format (no pickled code runs), so the safe-globals allow-list is kept for
compatibility and consulted by nothing."""

from __future__ import annotations

import contextlib

from graphnn.artifact.checkpoint import load, save  # noqa: F401

_SAFE: list = []


def add_safe_globals(safe_globals: list) -> None:
    _SAFE.extend(safe_globals)


def get_safe_globals() -> list:
    return list(_SAFE)


def clear_safe_globals() -> None:
    _SAFE.clear()


@contextlib.contextmanager
def safe_globals(safe_globals: list):
    """Within the block the globals are on the allow-list (see the module's note)."""
    n = len(_SAFE)
    _SAFE.extend(safe_globals)
    try:
        yield
    finally:
        del _SAFE[n:]


def default_restore_location(storage, location):
    return storage
