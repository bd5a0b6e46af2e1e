"""torch._dynamo's names that training scripts set or call (config.cache_size_limit, reset, mark_dynamic): graphnn's
compile keeps its own limits (graphnn.compile(max_specializations=...)) and makes the batch dimension dynamic once a
second size is seen, so these are accepted and change nothing."""

from __future__ import annotations

from types import SimpleNamespace

from graphnn.compiler import disable, is_compiling, reset  # noqa: F401

config = SimpleNamespace(
    cache_size_limit=8,
    accumulated_cache_size_limit=256,
    suppress_errors=False,
    verbose=False,
    optimize_ddp=True,
    capture_scalar_outputs=False,
    capture_dynamic_output_shape_ops=False,
    automatic_dynamic_shapes=True,
    assume_static_by_default=True,
)


def mark_dynamic(t, index, min=None, max=None) -> None:  # noqa: A002  (PyTorch's argument names)
    """Accepted: graphnn compiles one program for every batch size once it has seen two."""


def maybe_mark_dynamic(t, index) -> None:
    """Accepted, as mark_dynamic."""


def mark_static(t, index=None) -> None:
    """Accepted."""
