"""Module: the base class of every layer, with PyTorch's registration, traversal, state and repr."""
from __future__ import annotations

from collections import OrderedDict

import numpy as np

from ... import _tracer
from ..._grad_mode import scope
from ...tensor import Tensor
from ..parameter import Parameter


def _addindent(s: str, n: int) -> str:
    lines = s.split("\n")
    if len(lines) == 1:
        return s
    return lines[0] + "\n" + "\n".join(" " * n + line for line in lines[1:])


class Module:
    """Base class for all neural network modules."""

    def __init__(self, *args, **kwargs):
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "training", True)
        object.__setattr__(self, "_scope_name", "")

    # -- registration ---------------------------------------------------------------------------------
    def __setattr__(self, name, value):
        if "_parameters" not in self.__dict__:
            raise AttributeError("cannot assign attributes before Module.__init__() call")
        if isinstance(value, Parameter):
            dest = self._parameters
        elif isinstance(value, Module):
            dest = self._modules
            object.__setattr__(value, "_scope_name", name)
        elif name in self.__dict__.get("_buffer_names", ()):
            dest = self._buffers
        else:
            dest = None
        for d in (self._parameters, self._buffers, self._modules):
            if d is not dest:
                d.pop(name, None)
        if dest is None:
            object.__setattr__(self, name, value)
        else:  # replacing a member keeps its place (the order of named_parameters() and state_dict())
            self.__dict__.pop(name, None)
            dest[name] = value

    def __getattr__(self, name):
        d = self.__dict__
        for key in ("_parameters", "_buffers", "_modules"):
            if key in d and name in d[key]:
                return d[key][name]
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def __delattr__(self, name):
        for d in (self._parameters, self._buffers, self._modules):
            if name in d:
                del d[name]
                return
        object.__delattr__(self, name)

    def register_parameter(self, name: str, param) -> None:
        if param is None:
            self._parameters[name] = None
        else:
            setattr(self, name, param)

    def register_buffer(self, name: str, tensor, persistent: bool = True) -> None:
        """A tensor of the module's state that is not trained; a non-persistent one is left out of state_dict()."""
        self.__dict__.setdefault("_buffer_names", set()).add(name)
        non_persistent = self.__dict__.setdefault("_non_persistent_buffers_set", set())
        if persistent:
            non_persistent.discard(name)
        else:
            non_persistent.add(name)
        self.__dict__.pop(name, None)
        self._buffers[name] = tensor

    def add_module(self, name: str, module) -> None:
        if module is None:
            self._modules[name] = None
        else:
            setattr(self, name, module)

    register_module = add_module

    # -- calling ---------------------------------------------------------------------------------------
    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} must define forward()")

    def __call__(self, *args, **kwargs):
        tr = _tracer.current()
        if tr is not None:
            tr.guard(lambda m=self: m.training, self.training)
        with scope(self._scope_name or type(self).__name__):
            return self.forward(*args, **kwargs)

    # -- traversal ----------------------------------------------------------------------------------------
    def named_modules(self, memo: set | None = None, prefix: str = "", remove_duplicate: bool = True):
        """(name, module) of this module and its descendants, depth first; a module reachable under several names
        is listed once (its first name) unless remove_duplicate is False."""
        memo = set() if memo is None else memo
        if remove_duplicate:
            if self in memo:
                return
            memo.add(self)
        yield prefix, self
        for name, m in self._modules.items():
            if m is not None:
                yield from m.named_modules(memo, prefix + ("." if prefix else "") + name, remove_duplicate)

    def modules(self):
        for _, m in self.named_modules():
            yield m

    def named_children(self):
        for name, m in self._modules.items():
            if m is not None:
                yield name, m

    def children(self):
        for _, m in self.named_children():
            yield m

    def _named(self, attr: str, prefix: str, recurse: bool, remove_duplicate: bool = True):
        """(name, tensor) of a kind of member; a tensor shared by several modules (tied weights) is listed once,
        under its first name, unless remove_duplicate is False."""
        seen = set()
        mods = self.named_modules(prefix=prefix, remove_duplicate=remove_duplicate) if recurse else [(prefix, self)]
        for mp, m in mods:
            for name, t in getattr(m, attr).items():
                if t is None or id(t) in seen:
                    continue
                if remove_duplicate:
                    seen.add(id(t))
                yield mp + ("." if mp else "") + name, t

    def named_parameters(self, prefix: str = "", recurse: bool = True, remove_duplicate: bool = True):
        yield from self._named("_parameters", prefix, recurse, remove_duplicate)

    def parameters(self, recurse: bool = True):
        for _, p in self.named_parameters(recurse=recurse):
            yield p

    def named_buffers(self, prefix: str = "", recurse: bool = True, remove_duplicate: bool = True):
        yield from self._named("_buffers", prefix, recurse, remove_duplicate)

    def buffers(self, recurse: bool = True):
        for _, b in self.named_buffers(recurse=recurse):
            yield b

    # -- state ---------------------------------------------------------------------------------------------------
    def _state_entries(self, prefix: str = ""):
        """(key, tensor) of each state_dict entry in PyTorch's order: a module's parameters, its persistent buffers,
        then its submodules'. A tensor or submodule reachable under several names (tied weights) is listed under
        each of them."""
        for name, p in self._parameters.items():
            if p is not None:
                yield prefix + name, p
        skip = self.__dict__.get("_non_persistent_buffers_set", ())
        for name, b in self._buffers.items():
            if b is not None and name not in skip:
                yield prefix + name, b
        for name, m in self._modules.items():
            if m is not None:
                yield from m._state_entries(prefix + name + ".")

    def state_dict(self, destination=None, prefix: str = "", keep_vars: bool = False) -> OrderedDict:
        """Parameters and persistent buffers by name (tied tensors under each name, sharing their memory)."""
        out = OrderedDict() if destination is None else destination
        for k, t in self._state_entries(prefix):
            out[k] = t if keep_vars else t.detach()
        return out

    def load_state_dict(self, state_dict, strict: bool = True):
        """Copy values into the parameters and persistent buffers in place, in state_dict() order (so tied tensors
        stay tied, the entry listed last winning when their values differ)."""
        own = list(self._state_entries())
        names = {k for k, _ in own}
        missing = [k for k, _ in own if k not in state_dict]
        unexpected = [k for k in state_dict if k not in names]
        if strict and (missing or unexpected):
            raise RuntimeError(f"Error(s) in loading state_dict for {type(self).__name__}: "
                               f"missing keys {missing}, unexpected keys {unexpected}")
        for k, t in own:
            if k not in state_dict:
                continue
            v = state_dict[k]
            arr = v._concrete("load_state_dict") if isinstance(v, Tensor) else np.asarray(v)
            if tuple(arr.shape) != tuple(t.shape):
                raise RuntimeError(f"size mismatch for {k}: copying a param with shape {tuple(arr.shape)}, "
                                   f"the shape in the current model is {tuple(t.shape)}")
            t._data[...] = arr.astype(t.dtype_name, copy=False)
        return _IncompatibleKeys(missing, unexpected)

    # -- modes and helpers --------------------------------------------------------------------------------------
    def train(self, mode: bool = True):
        for m in self.modules():
            object.__setattr__(m, "training", mode)
        return self

    def eval(self):
        return self.train(False)

    def requires_grad_(self, requires_grad: bool = True):
        for p in self.parameters():
            p.requires_grad_(requires_grad)
        return self

    def zero_grad(self, set_to_none: bool = True) -> None:
        for p in self.parameters():
            if set_to_none:
                p.grad = None
            elif p.grad is not None:
                p.grad = Tensor._wrap(np.zeros_like(p.grad._data))

    def apply(self, fn):
        for m in self.children():
            m.apply(fn)
        fn(self)
        return self

    def to(self, *args, **kwargs):
        return self

    def cpu(self):
        return self

    def _cast(self, dtype: str):
        for t in list(self.parameters()) + list(self.buffers()):
            if t.dtype_name in ("float32", "float64"):
                t._assign_data(t._data.astype(dtype))
        return self

    def float(self):
        return self._cast("float32")

    def double(self):
        return self._cast("float64")

    # -- repr -----------------------------------------------------------------------------------------------------
    def extra_repr(self) -> str:
        return ""

    def _get_name(self) -> str:
        return type(self).__name__

    def __repr__(self) -> str:
        extra = self.extra_repr()
        extra_lines = extra.split("\n") if extra else []
        child_lines = [f"({k}): " + _addindent(repr(m), 2) for k, m in self._modules.items()]
        lines = extra_lines + child_lines
        s = self._get_name() + "("
        if lines:
            if len(extra_lines) == 1 and not child_lines:
                s += extra_lines[0]
            else:
                s += "\n  " + "\n  ".join(lines) + "\n"
        return s + ")"

    def __dir__(self):
        return list(super().__dir__()) + list(self._parameters) + list(self._modules) + list(self._buffers)


class _IncompatibleKeys(tuple):
    """(missing_keys, unexpected_keys) of load_state_dict, printed as PyTorch prints it."""

    def __new__(cls, missing, unexpected):
        t = super().__new__(cls, (missing, unexpected))
        t.missing_keys, t.unexpected_keys = missing, unexpected
        return t

    def __repr__(self) -> str:
        if not self.missing_keys and not self.unexpected_keys:
            return "<All keys matched successfully>"
        return f"_IncompatibleKeys(missing_keys={self.missing_keys!r}, unexpected_keys={self.unexpected_keys!r})"
