"""SymNumber: an int or float argument of a compiled call traced as a graph input (see compiler/program.py).

Python arithmetic on it gives SymNumbers computed as Python would (ints in int64, floats in float64); meeting a
tensor it acts as the Python number would (it takes the tensor's dtype, or the default float dtype). A decision on
its value (bool(), an `if` on a comparison, int(), float(), an index, a format) raises TraceError: the trace then
keeps the number a constant."""

from __future__ import annotations

import operator


class SymNumber:
    __slots__ = ("t", "kind")

    def __init__(self, t, kind: type):
        self.t, self.kind = t, kind  # t: a 0-d symbolic tensor (int64 for an int, float64 for a float)

    def as_tensor(self, dtype: str):
        """The number as a 0-d tensor of dtype (a cast of the graph input)."""
        return self.t if self.t.dtype_name == dtype else self.t.type_as_dtype(dtype)

    def _value_needed(self, *_args, **_kwargs):
        from graphnn.core.tensor import TraceError

        raise TraceError("the trace needs the value of a number argument")

    __bool__ = __int__ = __float__ = __index__ = __complex__ = _value_needed
    __round__ = __trunc__ = __floor__ = __ceil__ = __format__ = __hash__ = _value_needed
    __lt__ = __le__ = __gt__ = __ge__ = __eq__ = __ne__ = _value_needed
    __str__ = __repr__ = __array__ = __len__ = __iter__ = _value_needed

    def _binary(self, other, fn, reflected: bool = False, true_div: bool = False):
        from graphnn.core.tensor import Tensor

        if isinstance(other, Tensor):
            return NotImplemented  # (the tensor's reflected operator: the number acts as a Python number there)
        if isinstance(other, SymNumber):
            kind = float if float in (self.kind, other.kind) or true_div else int
            b = other.as_tensor("float64" if kind is float else "int64")
        elif type(other) in (int, float, bool):
            kind = float if type(other) is float or self.kind is float or true_div else int
            b = float(other) if kind is float else int(other)
        else:
            return NotImplemented
        a = self.as_tensor("float64" if kind is float else "int64")
        return SymNumber(fn(b, a) if reflected else fn(a, b), kind)

    def __pow__(self, o):
        if self.kind is int and type(o) is int and o < 0:  # (an int to a negative power is a float in Python)
            return SymNumber(self.as_tensor("float64"), float) ** o
        return self._binary(o, operator.pow)

    def __rpow__(self, o):
        return self._binary(o, operator.pow, True)

    def __neg__(self):
        return SymNumber(-self.t, self.kind)

    def __pos__(self):
        return self

    def __abs__(self):
        return SymNumber(self.t.abs(), self.kind)


def _operators() -> None:
    """SymNumber's arithmetic operators and their reflections (a / b a float even for ints, as in Python)."""
    for name in ("add", "sub", "mul", "truediv", "floordiv", "mod"):
        fn, true_div = getattr(operator, name), name == "truediv"
        setattr(SymNumber, f"__{name}__", lambda self, o, fn=fn, d=true_div: self._binary(o, fn, False, d))
        setattr(SymNumber, f"__r{name}__", lambda self, o, fn=fn, d=true_div: self._binary(o, fn, True, d))


_operators()
