"""Random example inputs for tracing a model, and the one-line error a user sees when a model or shape does not fit."""

from __future__ import annotations

import graphnn


class ModelError(ValueError):
    """A MODEL argument or an input shape the tools cannot use; the message is one line for the user."""


def one_line(e: BaseException) -> str:
    """An exception's message on one line (OpError messages carry the source line on a second one)."""
    lines = [s.strip() for s in str(e).splitlines() if s.strip()]
    return "; ".join(lines) or type(e).__name__


def example_inputs(shapes: list) -> list:
    """One random float32 tensor per shape; a shape too large to allocate is a ModelError."""
    out = []
    for shape in shapes:
        try:
            out.append(graphnn.randn(*shape))
        except (MemoryError, ValueError, OverflowError) as e:
            dims = "x".join(map(str, shape))
            raise ModelError(f"cannot make a random input of shape {dims}: {one_line(e)}") from None
    return out
