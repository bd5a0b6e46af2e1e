"""PyTorch's `out=` argument on graphnn's functions (`torch.matmul(a, b, out=c)`, `torch.cat(ts, out=c)`): the
result is computed as usual, then written into `out` (resized when its shape differs, as PyTorch resizes it) and
`out` is returned; a tuple result goes into a tuple of tensors. `install` wraps every public function of a graphnn
namespace (graphnn, graphnn.linalg, graphnn.fft, graphnn.special).

NumPy's spellings of two argument names, which PyTorch accepts everywhere (`x.sum(axis=1)`, `torch.cat(ts, axis=0)`,
`x.mean(0, keepdims=True)`), are taken too: `install` and `install_methods` translate `axis` to `dim` and `keepdims`
to `keepdim` for every function and Tensor method with those parameters."""

from __future__ import annotations

import functools
import inspect
import types


def _write(out, result, name: str):
    from graphnn.core.grad_mode import no_grad
    from graphnn.core.tensor import Tensor

    if isinstance(out, (tuple, list)):
        if not isinstance(result, tuple) or len(out) != len(result):
            raise TypeError(
                f"{name}(): argument 'out' must be a tuple of {len(result) if isinstance(result, tuple) else 1} Tensors"
            )
        return tuple(_write(o, r, name) for o, r in zip(out, result))
    if not isinstance(out, Tensor):
        raise TypeError(f"{name}(): argument 'out' must be Tensor, not {type(out).__name__}")
    if not isinstance(result, Tensor):
        raise TypeError(f"{name}() got an unexpected keyword argument 'out'")
    if out.requires_grad and result.requires_grad:
        raise RuntimeError(
            f"{name}(): functions with out=... arguments don't support automatic differentiation, but one of the "
            "arguments requires grad."
        )
    with no_grad():
        if tuple(out.shape) == tuple(result.shape):
            out.copy_(result)
        else:  # (PyTorch resizes out)
            out.data = result.detach().to(out.dtype)
    return out


def accepting_out(fn):
    @functools.wraps(fn)
    def wrapper(*args, out=None, **kwargs):
        result = fn(*args, **kwargs)
        return result if out is None else _write(out, result, fn.__name__)

    return wrapper


def _parameters(fn) -> tuple:
    """The names fn takes (its code object's: cheaper than inspect.signature for every function at import), with
    '*' / '**' for *args / **kwargs."""
    code = inspect.unwrap(fn).__code__
    names = code.co_varnames[: code.co_argcount + code.co_kwonlyargcount]
    return (
        names
        + ("*",) * bool(code.co_flags & inspect.CO_VARARGS)
        + ("**",) * bool(code.co_flags & inspect.CO_VARKEYWORDS)
    )


_NUMPY_NAMES = {"axis": "dim", "keepdims": "keepdim"}


def accepting_numpy_names(fn, names: dict):
    """fn also taking NumPy's argument names (`names`: NumPy's name -> fn's)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        if kwargs:
            for np_name, name in names.items():
                if np_name in kwargs:
                    if name in kwargs:
                        raise TypeError(f"{fn.__name__}() got both '{name}' and its alias '{np_name}'")
                    kwargs[name] = kwargs.pop(np_name)
        return fn(*args, **kwargs)

    return wrapper


def _numpy_names(params: tuple) -> dict:
    return {np_name: name for np_name, name in _NUMPY_NAMES.items() if name in params and np_name not in params}


def install(namespace: dict) -> None:
    for name, fn in list(namespace.items()):
        if name.startswith("_") or not isinstance(fn, types.FunctionType):
            continue
        if not (getattr(fn, "__module__", "") or "").startswith("graphnn"):
            continue
        params = _parameters(fn)
        if not params:
            continue
        fn = accepting_out(fn)  # (also those that name `out` in their signature, as PyTorch's: none writes it itself)
        aliases = _numpy_names(params)
        namespace[name] = accepting_numpy_names(fn, aliases) if aliases else fn


def install_methods(cls: type) -> None:
    """Tensor methods with a `dim` / `keepdim` parameter also take `axis` / `keepdims`."""
    for name, fn in list(vars(cls).items()):
        if name.startswith("__") or not isinstance(fn, types.FunctionType):
            continue
        aliases = _numpy_names(_parameters(fn))
        if aliases:
            setattr(cls, name, accepting_numpy_names(fn, aliases))
