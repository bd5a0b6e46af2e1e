"""torch.jit's entry points as PyTorch programs use them: script and trace return the function or module itself (its
Python runs eagerly, or as traced by graphnn.compile when it is compiled), marked so that
`isinstance(m, torch.jit.ScriptModule)` holds; the decorators and annotations of the TorchScript compiler (ignore,
unused, export, Final, Attribute, annotate, interface) change nothing; fork / wait run the call at once; freeze and
optimize_for_inference return the module in eval mode. save / load keep the scripted module itself (a pickle, as
graphnn.save writes it, with its _extra_files): a round trip within Python programs, not a TorchScript archive."""

from __future__ import annotations

import builtins
import contextlib
import typing

Final = typing.Final


class TracerWarning(Warning):
    pass


class Error(RuntimeError):
    pass


def _mark(obj):
    """obj, noted as scripted / traced (ScriptModule and ScriptFunction's isinstance checks)."""
    try:
        object.__setattr__(obj, "_graphnn_scripted", True)
    except (AttributeError, TypeError):  # (a builtin function)
        pass
    return obj


class _ScriptMeta(type):
    def __instancecheck__(cls, obj) -> bool:
        return type.__instancecheck__(cls, obj) or (
            bool(getattr(obj, "_graphnn_scripted", False)) and cls._matches(obj)
        )


def _module_base():
    from graphnn.nn.modules.module import Module

    return Module


class ScriptFunction(metaclass=_ScriptMeta):
    """What script(fn) / trace(fn) return, for isinstance checks (graphnn returns the function itself)."""

    @staticmethod
    def _matches(obj) -> bool:
        return callable(obj) and not builtins.isinstance(obj, _module_base())


class ScriptModule(metaclass=_ScriptMeta):
    """What script(module) / trace(module) return, for isinstance checks (graphnn returns the module itself)."""

    @staticmethod
    def _matches(obj) -> bool:
        return builtins.isinstance(obj, _module_base())


RecursiveScriptModule = TopLevelTracedModule = ScriptModule


def script(obj=None, optimize=None, _frames_up=0, _rcb=None, example_inputs=None):
    return _mark(obj)


def trace(func, example_inputs=None, *args, **kwargs):
    _mark(func)
    if example_inputs is not None:
        try:
            object.__setattr__(func, "_graphnn_example", example_inputs)
        except (AttributeError, TypeError):
            pass
    return func


def trace_module(mod, inputs, *args, **kwargs):
    return _mark(mod)


def scripted_attribute(m, name: str):
    """The attributes a ScriptModule has beyond the module's own (Module.__getattr__ asks for them): save(f),
    `code` (the forward's Python source: graphnn runs it as written) and `graph` (graphnn's IR of the forward,
    traced with trace()'s example inputs)."""
    if name == "save":
        return lambda f, _extra_files=None: save(m, f, _extra_files)
    if name == "code":
        import inspect

        return inspect.getsource(type(m).forward)
    if name in ("graph", "inlined_graph"):
        example = getattr(m, "_graphnn_example", None)
        if example is None:
            raise AttributeError(f"{name}: graphnn keeps the IR of a module traced with example inputs (jit.trace)")
        from graphnn.compiler.program import compile as _compile

        c = _compile(m)
        c(*example) if isinstance(example, tuple) else c(example)
        return c.graphs["traced"]
    raise AttributeError(name)


def script_method(fn):
    return fn


def script_if_tracing(fn):
    return fn


def ignore(drop=False, **kwargs):
    if callable(drop):
        return drop
    return lambda fn: fn


def unused(fn):
    return fn


def export(fn):
    return fn


def interface(obj):
    return obj


def annotate(the_type, the_value):
    return the_value


def Attribute(value, type=None):  # noqa: N802  (PyTorch's name)
    return value


def is_scripting() -> bool:
    return False


def is_tracing() -> bool:
    return False


def isinstance(obj, target_type) -> bool:  # noqa: A001  (torch.jit.isinstance; this module uses builtins')
    origin = typing.get_origin(target_type)
    return builtins.isinstance(obj, origin or target_type)


class Future:
    """The result of fork: the call already ran."""

    def __init__(self, value):
        self._value = value

    def wait(self):
        return self._value

    def value(self):
        return self._value

    def done(self) -> bool:
        return True


def fork(func, *args, **kwargs) -> Future:
    """Run func(*args, **kwargs) now (TorchScript may run it in parallel; the result is the same)."""
    return Future(func(*args, **kwargs))


def wait(future):
    return future.wait()


def freeze(mod, preserved_attrs=None, optimize_numerics: bool = True):
    """The module itself (graphnn.compile folds constants); as PyTorch, only modules in eval mode."""
    if getattr(mod, "training", False):
        raise RuntimeError(
            "Freezing is currently only implemented for modules in eval mode. Please call .eval() on your module "
            "before freezing."
        )
    return mod


def optimize_for_inference(mod, other_methods=None):
    """The module in eval mode (compile it with graphnn.compile for native code)."""
    return mod.eval() if hasattr(mod, "eval") else mod


_FUSION = {"onednn": False, "strategy": [("STATIC", 2), ("DYNAMIC", 10)]}


def enable_onednn_fusion(enabled: bool) -> None:
    _FUSION["onednn"] = bool(enabled)


def onednn_fusion_enabled() -> bool:
    return _FUSION["onednn"]


def set_fusion_strategy(strategy):
    old, _FUSION["strategy"] = _FUSION["strategy"], strategy
    return old


@contextlib.contextmanager
def fuser(name):
    yield


@contextlib.contextmanager
def optimized_execution(should_optimize):
    yield


class CompilationUnit:
    """TorchScript source compiled at run time: graphnn has no TorchScript compiler."""

    def __init__(self, lang=None, _frames_up=0):
        raise NotImplementedError(
            "graphnn.jit.CompilationUnit: graphnn compiles no TorchScript source; write the function in Python "
            "(graphnn.compile makes native code of it)"
        )


_KEY = "__graphnn_jit_module__"


def save(m, f, _extra_files=None):
    """Write the scripted module (graphnn.save's pickle of it) and _extra_files {name: str or bytes}."""
    from graphnn.artifact.checkpoint import save as _save

    _save({_KEY: m, "extra_files": dict(_extra_files or {})}, f)


def load(f, map_location=None, _extra_files=None):
    """The module jit.save wrote (its class must be importable, as for torch.load of a whole model); the entries of
    `_extra_files` are filled from the saved ones. A TorchScript archive written by PyTorch is not readable."""
    from graphnn.artifact.checkpoint import CheckpointError, load as _load

    try:
        saved = _load(f, weights_only=False)
    except CheckpointError as e:
        raise RuntimeError(
            f"graphnn.jit.load: {e}. graphnn reads the modules graphnn.jit.save wrote, not PyTorch's TorchScript "
            "archives: rebuild the model in Python and load its state_dict"
        ) from None
    if not (builtins.isinstance(saved, dict) and _KEY in saved):
        raise RuntimeError("graphnn.jit.load: the file holds no module saved by graphnn.jit.save")
    if _extra_files is not None:
        for name in _extra_files:
            _extra_files[name] = saved["extra_files"].get(name, _extra_files[name])
    return saved[_KEY]
