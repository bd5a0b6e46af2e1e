"""torch.jit's entry points as PyTorch programs use them: script and trace return the function or module itself (its
Python runs eagerly, or as traced by graphnn.compile when it is compiled), and the decorators that mark functions for
the TorchScript compiler (ignore, unused, export, is_scripting) change nothing. Saving and loading TorchScript
archives is refused with a pointer to graphnn's own formats."""

from __future__ import annotations


def script(obj=None, optimize=None, _frames_up=0, _rcb=None, example_inputs=None):
    return obj


def trace(func, example_inputs=None, *args, **kwargs):
    return func


def trace_module(mod, inputs, *args, **kwargs):
    return mod


def ignore(drop=False, **kwargs):
    if callable(drop):
        return drop
    return lambda fn: fn


def unused(fn):
    return fn


def export(fn):
    return fn


def is_scripting() -> bool:
    return False


def is_tracing() -> bool:
    return False


def save(m, f, _extra_files=None):
    raise NotImplementedError(
        "graphnn.jit.save: graphnn writes no TorchScript archives; save the weights with graphnn.save(model.state_dict(), "
        "path), or a native library with graphnn.export(model, example_inputs, directory)"
    )


def load(f, map_location=None, _extra_files=None):
    raise NotImplementedError(
        "graphnn.jit.load: graphnn reads no TorchScript archives; rebuild the model in Python and load its state_dict"
    )
