"""Expose functions of PyTorch's API as graphnn.<name>(input, ...), Tensor.<name>(...) and, for in-place forms,
Tensor.<name>_(...) (names graphnn already defines are kept)."""

from __future__ import annotations


def _inplace(name: str):
    def method(self, *args, **kwargs):
        return self._inplace_op(name + "_", lambda: getattr(self, name)(*args, **kwargs))

    method.__name__ = method.__qualname__ = name + "_"
    return method


def install(module, both=None, inplace=(), *, functions=None, methods=None) -> None:
    """The one way API functions reach graphnn and Tensor (names already defined are kept):
    both: name -> fn(input, ...) as graphnn.<name> and Tensor.<name>; functions: graphnn.<name> only; methods:
    Tensor.<name> only (functions of self, or properties); inplace: names whose Tensor.<name>_ computes
    Tensor.<name> in place."""
    from graphnn.core.tensor import Tensor

    for name, fn in {**(both or {}), **(functions or {})}.items():
        if not hasattr(module, name):
            setattr(module, name, fn)
    for name, fn in {**(both or {}), **(methods or {})}.items():
        if name not in Tensor.__dict__:
            setattr(Tensor, name, fn)
    for name in inplace:
        if name + "_" not in Tensor.__dict__:
            setattr(Tensor, name + "_", _inplace(name))


def install_operators() -> None:
    """x // y, x % y and their reflected and in-place forms (floor_divide, remainder)."""
    from graphnn.core import math_ops
    from graphnn.core.tensor import Tensor

    Tensor.__floordiv__ = lambda self, o: math_ops.floor_divide(self, o)
    Tensor.__rfloordiv__ = lambda self, o: math_ops.floor_divide(o, self)
    Tensor.__mod__ = lambda self, o: math_ops.remainder(self, o)
    Tensor.__rmod__ = lambda self, o: math_ops.remainder(o, self)
    Tensor.__ifloordiv__ = lambda self, o: self._inplace_op("floor_divide_", lambda: math_ops.floor_divide(self, o))
    Tensor.__imod__ = lambda self, o: self._inplace_op("remainder_", lambda: math_ops.remainder(self, o))
