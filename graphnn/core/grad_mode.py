"""Gradient mode (no_grad / enable_grad) and the scope stack used to label recorded ops."""

from __future__ import annotations

import contextlib
import gc
import functools
import inspect
import os
import sys
import threading
import traceback

_state = threading.local()


def is_grad_enabled() -> bool:
    return getattr(_state, "grad", True)


def _set_grad_mode(mode: bool) -> None:
    _state.grad = bool(mode)


class _GradModeContext:
    """Base of no_grad / enable_grad / set_grad_enabled / inference_mode: a context manager and a decorator.

    As a decorator it wraps functions and generator functions (each resumption of the generator runs in the
    mode); every call uses its own context, so recursive and concurrent calls restore the right mode."""

    def _mode(self) -> bool:
        raise NotImplementedError

    def clone(self):
        return type(self)()

    def __enter__(self):
        self.prev = is_grad_enabled()
        _set_grad_mode(self._mode())
        return self

    def __exit__(self, *exc):
        _set_grad_mode(self.prev)
        return False

    def __call__(self, fn):
        if not callable(fn):
            raise TypeError(f"{type(self).__name__} decorates a function, got {type(fn).__name__}")
        if inspect.isclass(fn):
            raise TypeError(f"{type(self).__name__} cannot decorate a class")
        ctx = self.clone

        if inspect.isgeneratorfunction(fn):

            @functools.wraps(fn)
            def generator(*args, **kwargs):
                gen = fn(*args, **kwargs)
                try:
                    with ctx():
                        response = gen.send(None)
                    while True:
                        try:
                            request = yield response
                        except GeneratorExit:
                            with ctx():
                                gen.close()
                            raise
                        except BaseException:
                            with ctx():
                                response = gen.throw(*sys.exc_info())
                        else:
                            with ctx():
                                response = gen.send(request)
                except StopIteration as e:
                    return e.value

            return generator

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with ctx():
                return fn(*args, **kwargs)

        return wrapper


class _NoParamDecorator(_GradModeContext):
    """Also usable as a bare decorator: `@no_grad` as well as `@no_grad()`."""

    def __new__(cls, orig_func=None):
        if orig_func is None:
            return super().__new__(cls)
        return cls()(orig_func)


class no_grad(_NoParamDecorator):
    """Context manager / decorator: ops inside record no gradient."""

    def _mode(self) -> bool:
        return False


class enable_grad(_NoParamDecorator):
    """Context manager / decorator: ops inside record gradients (also inside no_grad)."""

    def _mode(self) -> bool:
        return True


class set_grad_enabled(_GradModeContext):
    """Sets gradient recording on or off: at once when called as a function (`set_grad_enabled(False)`), for a
    block as a context manager (the previous mode is restored at its end), or for a function as a decorator."""

    def __init__(self, mode: bool) -> None:
        self.prev = is_grad_enabled()
        self.mode = bool(mode)
        _set_grad_mode(self.mode)

    def _mode(self) -> bool:
        return self.mode

    def clone(self):
        return _FixedMode(self.mode)

    def __call__(self, fn):
        _set_grad_mode(self.prev)  # decorating: the mode applies to the calls, not from now on
        return super().__call__(fn)

    def __enter__(self):  # the mode was set by the constructor; prev is the mode before it
        _set_grad_mode(self.mode)
        return self

    def __repr__(self) -> str:
        return f"set_grad_enabled(mode={self.mode})"


class _FixedMode(_GradModeContext):
    def __init__(self, mode: bool) -> None:
        self.mode = mode

    def _mode(self) -> bool:
        return self.mode

    def clone(self):
        return _FixedMode(self.mode)


INFERENCE_REGIONS = [0]  # inference_mode(True) blocks entered and not left, in any thread (a cheap first test)


class inference_mode(_GradModeContext):
    """PyTorch's inference_mode, with no_grad's semantics here: inference_mode() / inference_mode(True) disables
    gradient recording, and the tensors eager ops make in it are inference tensors (Tensor.is_inference());
    inference_mode(False) enables it (as PyTorch's, whose InferenceMode(False) sets grad mode on)."""

    def __new__(cls, mode=True):
        if callable(mode) and not isinstance(mode, bool):  # @inference_mode without parentheses
            return cls()(mode)
        return super().__new__(cls)

    def __init__(self, mode: bool = True) -> None:
        self.mode = bool(mode)

    def _mode(self) -> bool:
        return not self.mode

    def __enter__(self):
        self.prev = is_grad_enabled()
        _set_grad_mode(self._mode())
        _inference_stack().append(self.mode)
        INFERENCE_REGIONS[0] += self.mode
        return self

    def __exit__(self, *exc):
        INFERENCE_REGIONS[0] -= _inference_stack().pop()
        return super().__exit__(*exc)

    def clone(self):
        return inference_mode(self.mode)


def _inference_stack() -> list:
    if not hasattr(_state, "inference"):
        _state.inference = []
    return _state.inference


def is_inference_mode_enabled() -> bool:
    stack = _inference_stack()
    return bool(stack and stack[-1])


class cycle_collector_paused:  # noqa: N801  (used as a context manager function; a class costs less per use)
    """Python's cycle collector off for the block (restored after; nested uses are free). Every eager op records IR
    nodes and values that reference each other and live until backward; while that graph grows, each full
    collection traverses all of it again, which made a forward over a long time loop, and the gradient graph built
    for it, spend a third of their time and more in the collector. Garbage made in the block is collected after."""

    __slots__ = ("was",)

    def __enter__(self) -> None:
        self.was = gc.isenabled()
        gc.disable()

    def __exit__(self, *exc) -> None:
        if self.was:
            gc.enable()


def scopes() -> list:
    if not hasattr(_state, "scopes"):
        _state.scopes = []
    return _state.scopes


class scope:  # noqa: N801  (a context manager; a class costs less per module call than a generator)
    """Within: ops are recorded under the module path extended by `name`."""

    __slots__ = ("name",)

    def __init__(self, name: str):
        self.name = name

    def __enter__(self) -> None:
        scopes().append(self.name)
        _state.scope_str = None

    def __exit__(self, *exc) -> None:
        scopes().pop()
        _state.scope_str = None


def current_scope() -> str:
    """The dotted module path of the ops being recorded (joined once per scope change, not per op)."""
    s = getattr(_state, "scope_str", None)
    if s is None:
        s = _state.scope_str = ".".join(s for s in scopes() if s)
    return s


_PKG_DIRS = None


def _package_dirs() -> tuple:
    global _PKG_DIRS
    if _PKG_DIRS is None:
        import graphnn
        import graphnn.codegen
        import graphnn.ir
        import importlib.util

        mods = (graphnn, graphnn.ir, graphnn.codegen)
        dirs = [os.path.dirname(os.path.abspath(m.__file__)) for m in mods]
        tools = importlib.util.find_spec("graphnn.tools")  # (found, not imported: the API does not load the tools)
        dirs += list(tools.submodule_search_locations or []) if tools is not None else []
        _PKG_DIRS = tuple(os.path.abspath(d) + os.sep for d in dirs)
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


def model_frame() -> str | None:
    """'file:line: code' of the innermost frame outside graphnn's library code (graphnn, ir, codegen; the models in
    graphnn.tools count as user code) below the `record_sources()` block: the line of the model that ran an op
    (None for ops that library code ran, such as an optimizer's update)."""
    import linecache

    lib = _package_dirs()[:3]
    stop = getattr(_state, "sources", None)
    fr = sys._getframe(1)
    while fr is not None and fr is not stop:
        f = os.path.abspath(fr.f_code.co_filename)
        if not f.startswith(lib) and "contextlib" not in f:
            return f"{fr.f_code.co_filename}:{fr.f_lineno}: {linecache.getline(fr.f_code.co_filename, fr.f_lineno).strip()}"
        fr = fr.f_back
    return None


def recording_sources() -> bool:
    """Does tracing record every op's user source line (node.meta["source"])? (see `record_sources`)"""
    return getattr(_state, "sources", None) is not None


@contextlib.contextmanager
def record_sources():
    """Within: traced ops record the user's source line ('file:line: code'), as `graphnn viz` shows it; frames of
    the caller of this block and outside it are not searched. Off by default (index-checked ops always record
    theirs): finding the frame costs a walk up the stack per op."""
    before = getattr(_state, "sources", None)
    _state.sources = sys._getframe(2)  # the frame that entered the block (above it: contextlib's __enter__)
    try:
        yield
    finally:
        _state.sources = before
