"""Gradient mode (no_grad / enable_grad) and the scope stack used to label recorded ops."""
from __future__ import annotations

import contextlib
import os
import threading
import traceback

_state = threading.local()


def is_grad_enabled() -> bool:
    return getattr(_state, "grad", True)


def set_grad_enabled(mode: bool) -> None:
    _state.grad = bool(mode)


class _GradMode(contextlib.ContextDecorator):
    def __init__(self, mode: bool):
        self.mode = mode

    def __enter__(self):
        self.prev = is_grad_enabled()
        set_grad_enabled(self.mode)
        return self

    def __exit__(self, *exc):
        set_grad_enabled(self.prev)
        return False


def no_grad() -> _GradMode:
    """Context manager / decorator: ops inside record no gradient."""
    return _GradMode(False)


def enable_grad() -> _GradMode:
    return _GradMode(True)


def scopes() -> list:
    if not hasattr(_state, "scopes"):
        _state.scopes = []
    return _state.scopes


@contextlib.contextmanager
def scope(name: str):
    stack = scopes()
    stack.append(name)
    try:
        yield
    finally:
        stack.pop()


def current_scope() -> str:
    return ".".join(s for s in scopes() if s)


_PKG_DIRS = None


def _package_dirs() -> tuple:
    global _PKG_DIRS
    if _PKG_DIRS is None:
        import graphnn
        import graphnn.codegen
        import graphnn.ir
        import graphnn.tools

        mods = (graphnn, graphnn.ir, graphnn.codegen, graphnn.tools)
        _PKG_DIRS = tuple(os.path.dirname(os.path.abspath(m.__file__)) + os.sep for m in mods)
    return _PKG_DIRS


def user_location() -> tuple | None:
    """(file, line, source) of the innermost stack frame outside graphnn itself."""
    dirs = _package_dirs()
    for fr in reversed(traceback.extract_stack()):
        f = os.path.abspath(fr.filename)
        if not f.startswith(dirs) and "contextlib" not in f:
            return fr.filename, fr.lineno, (fr.line or "").strip()
    return None


def user_frame() -> str | None:
    """'file:line: source' of the innermost stack frame outside graphnn itself."""
    loc = user_location()
    return f"{loc[0]}:{loc[1]}: {loc[2]}" if loc else None

