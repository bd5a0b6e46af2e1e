"""nn.utils.parametrize: a parameter or buffer computed by modules from `original` tensors, as PyTorch's.

register_parametrization moves module.<name> to module.parametrizations.<name>.original (or original0, original1,
... when the parametrization's right_inverse returns several tensors) and gives the module a class of its own
(`Parametrized<Class>`) with a property <name> that evaluates the parametrizations on every access (once per
`cached()` block); assigning module.<name> stores right_inverse(value) into the originals. State-dict keys, repr and
the errors follow PyTorch, so checkpoints line up."""

from __future__ import annotations

import contextlib
import copy

import numpy as np

from graphnn.core.grad_mode import no_grad
from graphnn.core.tensor import Tensor
from ..modules.container import ModuleDict, ModuleList
from ..parameter import Parameter

_cache_depth = 0
_cache: dict = {}


@contextlib.contextmanager
def cached():
    """Within the block each parametrized tensor is computed once, at its first access."""
    global _cache_depth, _cache
    _cache_depth += 1
    try:
        yield
    finally:
        _cache_depth -= 1
        if not _cache_depth:
            _cache = {}


def _set(original: Tensor, new: Tensor) -> None:
    """original takes new's value (and shape), staying the same tensor object."""
    arr = np.array(new._concrete("parametrize"), dtype=original.dtype_name)
    if tuple(arr.shape) == tuple(original.shape):
        original._assign(arr)
    else:
        original._assign_data(arr)
        original._bump()


def _register(module, name: str, t: Tensor) -> None:
    if isinstance(t, Parameter):
        module.register_parameter(name, t)
    else:
        module.register_buffer(name, t)


class ParametrizationList(ModuleList):
    """The parametrizations of one tensor, applied in order to its `original` tensor(s)."""

    def __init__(self, modules, original: Tensor, unsafe: bool = False):
        if len(modules) == 0:
            raise ValueError("ParametrizationList requires one or more modules.")
        super().__init__(modules)
        self.unsafe = unsafe
        shape, dtype = tuple(original.shape), original.dtype_name
        with no_grad():
            new = original
            for m in reversed(list(self)):
                if hasattr(m, "right_inverse"):
                    try:
                        new = m.right_inverse(new)
                    except NotImplementedError:  # (as PyTorch: a right_inverse that cannot be is the identity)
                        pass
        self.is_tensor = isinstance(new, Tensor)
        self.ntensors = 1 if self.is_tensor else len(new)
        if self.is_tensor:
            if original is not new:
                _set(original, new)
            _register(self, "original", original)
        else:
            for i, t in enumerate(new):
                if not isinstance(t, Tensor):
                    raise ValueError(f"'right_inverse' must return a Tensor or a Sequence of tensors. Got {type(t)}")
                t = t.detach().clone()
                if isinstance(original, Parameter):
                    t = Parameter(t, original.requires_grad)
                _register(self, f"original{i}", t)
        if not unsafe:
            z = self()
            if not isinstance(z, Tensor):
                raise ValueError(f"A parametrization must return a tensor. Got {type(z).__name__}.")
            if tuple(z.shape) != shape or z.dtype_name != dtype:
                raise ValueError(
                    "Registering a parametrization may not change the shape or dtype of the tensor, unless `unsafe` "
                    f"flag is enabled.\nunparametrized shape: {shape} dtype: {dtype}\n"
                    f"parametrized shape: {tuple(z.shape)} dtype: {z.dtype_name}"
                )

    def right_inverse(self, value) -> None:
        """Store `value` (a value of the parametrized tensor) into the originals through each right_inverse."""
        with no_grad():
            for m in reversed(list(self)):
                if hasattr(m, "right_inverse"):
                    value = m.right_inverse(value)
                elif not self.unsafe:
                    raise RuntimeError(f"parametrization {type(m).__name__} does not implement right_inverse.")
            if self.is_tensor:
                _set(self.original, value)
            else:
                if len(value) != self.ntensors:
                    raise ValueError(f"'right_inverse' must return a sequence of {self.ntensors} tensors")
                for i, t in enumerate(value):
                    _set(getattr(self, f"original{i}"), t)

    def forward(self):
        mods = list(self)
        if self.is_tensor:
            x = mods[0](self.original)
        else:
            x = mods[0](*(getattr(self, f"original{i}") for i in range(self.ntensors)))
        for m in mods[1:]:
            x = m(x)
        return x


def _inject_class(module) -> None:
    cls = module.__class__

    def getstate(self):
        raise RuntimeError(
            "Serialization of parametrized modules is only supported through state_dict(). See: "
            "https://pytorch.org/tutorials/beginner/saving_loading_models.html"
        )

    def deepcopy(self, memo):
        if id(self) in memo:
            return memo[id(self)]
        replica = self.__new__(self.__class__)
        memo[id(self)] = replica
        replica.__dict__.update(copy.deepcopy(self.__dict__, memo))
        return replica

    attrs = {"__getstate__": getstate, "__deepcopy__": deepcopy}
    module.__class__ = type(f"Parametrized{cls.__name__}", (cls,), attrs)


def _inject_property(module, name: str) -> None:
    def get(self):
        plist = self.parametrizations[name]
        if not _cache_depth:
            return plist()
        key = (id(self), name)
        if key not in _cache:
            _cache[key] = plist()
        return _cache[key]

    def set_(self, value):
        self.parametrizations[name].right_inverse(value)

    setattr(module.__class__, name, property(get, set_))


def register_parametrization(module, tensor_name: str, parametrization, *, unsafe: bool = False):
    """module.<tensor_name> becomes parametrization(original); a second call on the same name chains them."""
    parametrization.train(module.training)
    if is_parametrized(module, tensor_name):
        plist = module.parametrizations[tensor_name]
        if not unsafe:
            y = getattr(module, tensor_name)
            x = parametrization(y)
            if not isinstance(x, Tensor) or tuple(x.shape) != tuple(y.shape) or x.dtype_name != y.dtype_name:
                raise ValueError(
                    "Registering a parametrization may not change the shape or dtype of the tensor, unless `unsafe` "
                    "flag is enabled."
                )
        plist.append(parametrization)
        plist.unsafe |= unsafe
    elif tensor_name in module._buffers or tensor_name in module._parameters:
        original = getattr(module, tensor_name)
        plist = ParametrizationList([parametrization], original, unsafe=unsafe)
        delattr(module, tensor_name)
        if not is_parametrized(module):
            _inject_class(module)
            module.parametrizations = ModuleDict()
        _inject_property(module, tensor_name)
        module.parametrizations[tensor_name] = plist
    else:
        raise ValueError(
            f"Module '{module}' does not have a parameter, a buffer, or a parametrized element with name "
            f"'{tensor_name}'"
        )
    return module


def is_parametrized(module, tensor_name: str | None = None) -> bool:
    """Whether the module has parametrizations (on `tensor_name`, when given)."""
    plists = module.__dict__.get("_modules", {}).get("parametrizations")
    if not isinstance(plists, ModuleDict):
        return False
    return len(plists) > 0 if tensor_name is None else tensor_name in plists


def type_before_parametrizations(module) -> type:
    """The module's class before any parametrization was registered."""
    return module.__class__.__bases__[0] if is_parametrized(module) else type(module)


def remove_parametrizations(module, tensor_name: str, leave_parametrized: bool = True):
    """module.<tensor_name> becomes a plain parameter (or buffer) again: its current parametrized value, or
    (leave_parametrized=False) its original."""
    if not is_parametrized(module, tensor_name):
        raise ValueError(f"Module {module} does not have a parametrization on {tensor_name}")
    plist = module.parametrizations[tensor_name]
    if plist.is_tensor:
        original = plist.original
        if leave_parametrized:
            with no_grad():
                _set(original, getattr(module, tensor_name))
    else:
        if not leave_parametrized:
            raise ValueError(
                "Cannot leave unparametrized (`leave_parametrized=False`) a tensor that is parametrized in terms of "
                "a sequence of tensors."
            )
        with no_grad():
            t = getattr(module, tensor_name)
        requires_grad = any(getattr(plist, f"original{i}").requires_grad for i in range(plist.ntensors))
        original = Parameter(t.detach(), requires_grad) if requires_grad else t.detach()
    delattr(module.__class__, tensor_name)
    del module.parametrizations[tensor_name]
    _register(module, tensor_name, original)
    if not is_parametrized(module):
        delattr(module, "parametrizations")
        module.__class__ = module.__class__.__bases__[0]
    return module
