"""Resolve a MODEL argument (`path/to/file.py:Name` or `package.module:Name`) to a Module, and input shapes."""

from __future__ import annotations

import importlib
import importlib.util
import os
import re
import sys

import graphnn  # noqa: F401
from graphnn.nn import Module
from graphnn.viz.inputs import ModelError, example_inputs, one_line  # noqa: F401  (used by the CLI too)


def _import_file(path: str):
    if not os.path.isfile(path):
        raise ModelError(f"no such file: {path}")
    name = "graphnn_model_" + os.path.splitext(os.path.basename(path))[0].replace("-", "_")
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ModelError(f"cannot import {path}: not a Python file")
    mod = importlib.util.module_from_spec(spec)
    folder = os.path.dirname(os.path.abspath(path))
    sys.path.insert(0, folder)  # sibling imports of the model file
    sys.modules[name] = mod
    try:
        spec.loader.exec_module(mod)
    except Exception as e:
        sys.modules.pop(name, None)
        raise ModelError(f"cannot import {path}: {type(e).__name__}: {one_line(e)}") from None
    finally:
        sys.path.remove(folder)
    return mod


def _import_module(name: str):
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as e:
        raise ModelError(f"cannot import module {name!r}: {one_line(e)}") from None
    except Exception as e:
        raise ModelError(f"cannot import module {name!r}: {type(e).__name__}: {one_line(e)}") from None


def load_model(spec: str) -> Module:
    """A Module from `file.py:Name` or `pkg.module:Name`: a Module class (built with no arguments), a factory
    function returning a Module, or a Module instance."""
    if ":" not in spec:
        raise ModelError(f"MODEL must be path/to/file.py:Name or package.module:Name, got {spec!r}")
    where, _, attr = spec.rpartition(":")
    if not where or not attr:
        raise ModelError(f"MODEL must be path/to/file.py:Name or package.module:Name, got {spec!r}")
    is_file = where.endswith(".py") or os.sep in where or "/" in where
    mod = _import_file(where) if is_file else _import_module(where)
    obj = mod
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise ModelError(f"{where} has no attribute {attr!r}")
        obj = getattr(obj, part)
    if isinstance(obj, Module):
        return obj
    if not callable(obj):
        raise ModelError(f"{spec} is a {type(obj).__name__}, not a Module class, factory or instance")
    try:
        model = obj()
    except Exception as e:
        raise ModelError(f"cannot build {spec} with no arguments: {type(e).__name__}: {one_line(e)}") from None
    if not isinstance(model, Module):
        raise ModelError(f"{spec}() returned a {type(model).__name__}, not a graphnn.nn.Module")
    return model


SHAPE_EXPECTED = "expected comma-separated sizes like 1,1,32,32"
_X_FORM = re.compile(r"\s*[0-9]+(?:\s*x\s*[0-9]+)+\s*")


def _shape_error(text: str, problem: str) -> ModelError:
    return ModelError(f"--input-shape {text!r}: {problem}; {SHAPE_EXPECTED}")


def parse_shape(text: str) -> tuple:
    """'1,1,32,32' -> (1, 1, 32, 32). Positive integers separated by commas (or all by 'x': 1x1x32x32), spaces
    around them and one enclosing () or [] allowed; anything else is a ModelError naming the bad part."""
    body = text.strip()
    if body[:1] + body[-1:] in ("()", "[]"):
        body = body[1:-1]
    if not body.strip():
        raise _shape_error(text, "no sizes")
    items = [p.strip() for p in body.split("x" if _X_FORM.fullmatch(body) else ",")]
    for i, item in enumerate(items, 1):
        if not item:
            raise _shape_error(text, f"size {i} of {len(items)} is empty")
        if not re.fullmatch(r"[0-9]+", item) or int(item) == 0:
            raise _shape_error(text, f"{item!r} is not a positive integer")
    return tuple(int(p) for p in items)


def input_shapes(args, command: str) -> list:
    """The parsed --input-shape values of a model command (required); an export directory is refused."""
    from graphnn.viz.stages import is_export

    if is_export(args.model):
        raise ModelError(
            f"{args.model} is an export directory: graphnn {command} needs the model's source "
            f"(path/to/file.py:Name); graphnn viz draws an export"
        )
    model = str(args.model)
    if ":" not in model and ("/" in model or os.sep in model or os.path.exists(model)):  # a path, not file.py:Name
        if not os.path.exists(model):
            raise ModelError(f"{model}: no such file or directory")
        what = "a directory but not an export (no manifest.json)" if os.path.isdir(model) else "a file"
        raise ModelError(f"{model} is {what}: MODEL must be path/to/file.py:Name (or an export directory, for viz)")
    if not args.input_shape:
        raise ModelError("--input-shape is required (the shape of the model's input, e.g. 1,1,32,32)")
    return [parse_shape(s) for s in args.input_shape]
