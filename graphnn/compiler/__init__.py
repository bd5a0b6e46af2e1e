"""graphnn.compile: tracing Python code into IR (tracer, pytrees, guards), the compiled programs, scan.

Also torch.compiler's public functions, for model code that calls them (graphnn compiles a whole function, and
runs it eagerly where its trace needs concrete values, so most of them change nothing)."""

from __future__ import annotations


def is_compiling() -> bool:
    """Is graphnn.compile tracing the code that calls this (the code runs once per trace, not per call)?"""
    from . import tracer

    return tracer.current() is not None


is_dynamo_compiling = is_compiling


def disable(fn=None, recursive: bool = True, *, reason: str | None = None):
    """Accepted as torch.compiler.disable: fn is returned as it is (compiled with its caller; a part whose trace needs
    concrete values makes the call run eagerly, as PyTorch runs a disabled function eagerly)."""
    return (lambda f: f) if fn is None else fn


def allow_in_graph(fn):
    return fn


def assume_constant_result(fn):
    return fn


def reset() -> None:
    """Make compiled functions check all their guards again at their next call (graphnn's guards are exact, so
    nothing else needs resetting)."""
    from . import tracer

    tracer.state_changed()


def cudagraph_mark_step_begin() -> None:
    """Accepted (no CUDA graphs on the CPU)."""


def list_backends(exclude_tags=()) -> list:
    return ["inductor"]


def set_stance(stance: str = "default", *, skip_guard_eval_unsafe: bool = False, force_backend=None) -> None:
    """Accepted: "default" only (graphnn has no other stance)."""
    if stance != "default":
        raise RuntimeError(f"graphnn.compiler.set_stance: only the 'default' stance exists, got {stance!r}")
