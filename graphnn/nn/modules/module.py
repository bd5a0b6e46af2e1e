"""Module: the base class of every layer, with PyTorch's registration, traversal, state and repr."""

from __future__ import annotations

import gc

from collections import OrderedDict, namedtuple

import numpy as np

from graphnn.compiler import tracer as _tracer
from graphnn.core.complex_tensor import ComplexTensor
from graphnn.core.dtypes import dtype as _dtype
from graphnn.core import dtypes as _half_dtypes
from graphnn.core.dtypes import to_dtype
from graphnn.core.grad_mode import cycle_collector_paused, scope
from graphnn.core.tensor import Tensor, zero_grad_in_place as _zero_grad_in_place
from ..parameter import ComplexParameter, Parameter
from ._backward_hooks import call_with_backward_hooks
from ._factory import check_device


class RemovableHandle:
    """Returned by the register_*_hook methods: remove() (or leaving a `with` block) unregisters the hook. Adding
    or removing a hook makes graphnn.compile trace the module again (hooks run while tracing)."""

    _next_id = 0

    def __init__(self, hooks: OrderedDict, module):
        self.hooks_dict, self._module = hooks, module
        self.id = RemovableHandle._next_id
        RemovableHandle._next_id += 1

    def remove(self) -> None:
        if self.hooks_dict.pop(self.id, None) is not None:
            if self._module is None:  # a global hook (register_module_forward_hook)
                _tracer.state_changed()
            else:
                _tracer.module_changed(self._module)

    def __enter__(self) -> "RemovableHandle":
        return self

    def __exit__(self, *exc) -> None:
        self.remove()


def _add_hook(module, attr: str, hook, prepend: bool, with_kwargs: bool = False) -> RemovableHandle:
    """Register hook in the table attr (handle id -> hook, as PyTorch's tables); the ids of hooks called with the
    keyword arguments too are kept in the module's _hooks_with_kwargs."""
    hooks = module.__dict__.get(attr)
    if hooks is None:  # a module made without Module.__init__ (e.g. unpickled from an older graphnn)
        hooks = OrderedDict()
        object.__setattr__(module, attr, hooks)
    handle = RemovableHandle(hooks, module)
    hooks[handle.id] = hook
    if with_kwargs:
        if "_hooks_with_kwargs" not in module.__dict__:
            object.__setattr__(module, "_hooks_with_kwargs", set())
        module._hooks_with_kwargs.add(handle.id)
    if prepend:
        hooks.move_to_end(handle.id, last=False)
    _tracer.module_changed(module)
    return handle


def _note_store(module, name: str, value, before) -> None:
    """module.<name> (an attribute or a buffer) = value while tracing: the trace sets the place after every call and
    reads what it held from there (`self.avg = 0.9 * self.avg + x`; Tracer.note_stored)."""
    tr = _tracer.current()
    if tr is not None:
        tr.note_stored(module, name, value, before)


def _hook_ids(module) -> tuple:
    """Which forward and backward hooks and pre-hooks are registered, the global ones included (a trace ran these)."""
    d = module.__dict__
    return tuple(tuple(d.get(k) or ()) for k in _HOOK_TABLES) + tuple(tuple(t) for t in _GLOBAL.values())


_HOOK_TABLES = ("_forward_pre_hooks", "_forward_hooks", "_backward_pre_hooks", "_backward_hooks")
# hooks every module runs (register_module_forward_pre_hook / register_module_forward_hook), before its own
_GLOBAL: dict = {"_forward_pre_hooks": OrderedDict(), "_forward_hooks": OrderedDict()}
_GLOBAL_WITH_KWARGS: set = set()


def _forward_hooks(module) -> tuple:
    """(pre-hooks, hooks) a call of module runs: the global ones first, then its own."""
    pre, post = module.__dict__.get("_forward_pre_hooks"), module.__dict__.get("_forward_hooks")
    gpre, gpost = _GLOBAL["_forward_pre_hooks"], _GLOBAL["_forward_hooks"]
    return ({**gpre, **pre} if gpre and pre else gpre or pre), ({**gpost, **post} if gpost and post else gpost or post)


def _add_global_hook(table: str, hook, with_kwargs: bool = False) -> RemovableHandle:
    hooks = _GLOBAL[table]
    handle = RemovableHandle(hooks, None)
    hooks[handle.id] = hook
    if with_kwargs:
        _GLOBAL_WITH_KWARGS.add(handle.id)
    _tracer.state_changed()
    return handle


def register_module_forward_pre_hook(hook) -> RemovableHandle:
    """hook(module, args) runs before every module's forward (before the module's own pre-hooks); a result other
    than None replaces the arguments."""
    return _add_global_hook("_forward_pre_hooks", hook)


def register_module_forward_hook(hook, *, with_kwargs: bool = False, always_call: bool = False) -> RemovableHandle:
    """hook(module, args, output) (or (module, args, kwargs, output) with_kwargs) runs after every module's forward
    (before the module's own hooks); a result other than None replaces the output."""
    return _add_global_hook("_forward_hooks", hook, with_kwargs)


def _run_pre_hooks(module, hooks: dict, args: tuple, kwargs: dict) -> tuple:
    keyed = module.__dict__.get("_hooks_with_kwargs") or ()
    for hid, hook in list(hooks.items()):
        if hid in keyed or hid in _GLOBAL_WITH_KWARGS:
            result = hook(module, args, kwargs)
            if result is not None:
                args, kwargs = result
        else:
            result = hook(module, args)
            if result is not None:
                args = result if isinstance(result, tuple) else (result,)
    return args, kwargs


def _run_hooks(module, hooks: dict, args: tuple, kwargs: dict, out):
    keyed = module.__dict__.get("_hooks_with_kwargs") or ()
    tr = _tracer.current()
    if tr is not None and hooks:  # (where hooks store traced tensors: see Tracer.collect_hook_stores)
        tr.hooks_run.update((id(h), h) for h in hooks.values())
    for hid, hook in list(hooks.items()):
        keys = hid in keyed or hid in _GLOBAL_WITH_KWARGS
        result = hook(module, args, kwargs, out) if keys else hook(module, args, out)
        if result is not None:
            out = result
    return out


def _addindent(s: str, n: int) -> str:
    lines = s.split("\n")
    if len(lines) == 1:
        return s
    return lines[0] + "\n" + "\n".join(" " * n + line for line in lines[1:])


def _size(shape) -> str:
    """A shape as PyTorch prints it in load_state_dict's errors (its Size's repr)."""
    return f"torch.Size({list(shape)})"


class Module:
    """Base class for all neural network modules."""

    def __init__(self, *args, **kwargs):
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "training", True)
        object.__setattr__(self, "_scope_name", "")
        object.__setattr__(self, "_forward_pre_hooks", OrderedDict())
        object.__setattr__(self, "_forward_hooks", OrderedDict())

    # -- registration ---------------------------------------------------------------------------------
    # PyTorch's rules: assigning a Parameter registers it (and drops a plain attribute, buffer or submodule of that
    # name); a Module likewise; a registered parameter / buffer / submodule name takes None (the slot stays) or a
    # value of its kind, anything else is a TypeError; other values are plain attributes.
    def __setattr__(self, name, value):
        d = self.__dict__
        params = d.get("_parameters")
        if isinstance(value, (Parameter, ComplexParameter)):
            if params is None:
                raise AttributeError("cannot assign parameters before Module.__init__() call")
            _remove_from(self, name, "_parameters")
            self.register_parameter(name, value)
        elif params is not None and name in params:
            if value is not None:
                raise TypeError(
                    f"cannot assign '{_typename(value)}' as parameter '{name}' (torch.nn.Parameter or None expected)"
                )
            self.register_parameter(name, value)
        else:
            modules = d.get("_modules")
            if isinstance(value, Module):
                if modules is None:
                    raise AttributeError("cannot assign module before Module.__init__() call")
                _remove_from(self, name, "_modules")
                self.add_module(name, value)
            elif modules is not None and name in modules:
                if value is not None:
                    raise TypeError(
                        f"cannot assign '{_typename(value)}' as child module '{name}' "
                        "(torch.nn.Module or None expected)"
                    )
                self.add_module(name, value)
            else:
                buffers = d.get("_buffers")
                if isinstance(value, Tensor) and getattr(value, "_is_buffer", False):  # nn.Buffer(...)
                    if buffers is None:
                        raise AttributeError("cannot assign buffer before Module.__init__() call")
                    _remove_from(self, name, "_buffers")
                    self.register_buffer(name, value, persistent=getattr(value, "persistent", True))
                elif buffers is not None and name in buffers:
                    if isinstance(value, ComplexTensor):
                        self.register_buffer(name, value, name not in d.get("_non_persistent_buffers_set", ()))
                        return
                    d.get("_complex_buffers", set()).discard(name)
                    if value is not None and not isinstance(value, Tensor):
                        raise TypeError(
                            f"cannot assign '{_typename(value)}' as buffer '{name}' "
                            "(torch.nn.Buffer, torch.Tensor or None expected)"
                        )
                    before = buffers[name]
                    buffers[name] = value  # (keeps its place, and persistent or not)
                    _note_store(self, name, value, before)
                    _tracer.module_changed(self)
                else:
                    if "_parameters" not in d:
                        raise AttributeError("cannot assign attributes before Module.__init__() call")
                    before = d.get(name)
                    object.__setattr__(self, name, value)
                    _note_store(self, name, value, before)
                    _tracer.module_changed(self)  # (a trace that read the old value must trace again)

    def __getattr__(self, name):
        d = self.__dict__
        for key in ("_parameters", "_buffers", "_modules"):
            table = d.get(key)
            if table is not None and name in table:
                value = table[name]
                tr = _tracer.current()
                # the trace uses this object: a later assignment must trace again (unless it is the trace's own
                # tensor: an argument that functional_call swapped in for the call, put back afterwards)
                if tr is not None and getattr(value, "_trace", None) is not tr:
                    tr.attr_guard(self, key, name, value)
                if name in d.get(_COMPLEX.get(key, ""), ()):
                    return ComplexTensor(value)
                return value
        if d.get("_graphnn_scripted") and name in ("save", "code", "graph", "inlined_graph"):  # (torch.jit's)
            from graphnn.jit import scripted_attribute

            return scripted_attribute(self, name)
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def __delattr__(self, name):
        d = self.__dict__
        for key in ("_parameters", "_buffers", "_modules"):
            table = d.get(key)
            if table is not None and name in table:
                del table[name]
                if key == "_buffers":
                    d.get("_buffer_names", set()).discard(name)
                    d.get("_non_persistent_buffers_set", set()).discard(name)
                _tracer.module_changed(self)
                return
        object.__delattr__(self, name)

    def register_parameter(self, name: str, param) -> None:
        """Register `param` (a Parameter, or None: a slot without value) under `name`, as PyTorch does."""
        if "_parameters" not in self.__dict__:
            raise AttributeError("cannot assign parameter before Module.__init__() call")
        _check_name(name, "parameter")
        _drop_plain(self, name, "_parameters")
        complex_params = self.__dict__.setdefault("_complex_params", set())
        complex_params.discard(name)
        if isinstance(param, ComplexParameter):  # kept as its real parameter (read back as complex)
            complex_params.add(name)
            param = param._ri
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(
                f"cannot assign '{_typename(param)}' object to parameter '{name}' (torch.nn.Parameter or None required)"
            )
        if param is not None and param.grad_fn is not None:
            raise ValueError(
                f"Cannot assign non-leaf Tensor to parameter '{name}'. Model parameters must be created "
                "explicitly. To express '{name}' as a function of another Tensor, compute the value in "
                "the forward() method."
            )
        self._parameters[name] = param  # (replacing a parameter keeps its place in named_parameters / state_dict)
        _tracer.module_changed(self)

    def register_buffer(self, name: str, tensor, persistent: bool = True) -> None:
        """A tensor of the module's state that is not trained; a non-persistent one is left out of state_dict()."""
        if "_buffers" not in self.__dict__:
            raise AttributeError("cannot assign buffer before Module.__init__() call")
        _check_name(name, "buffer")
        _drop_plain(self, name, "_buffers")
        complex_buffers = self.__dict__.setdefault("_complex_buffers", set())
        complex_buffers.discard(name)
        if isinstance(tensor, ComplexTensor):  # kept as its real view (what state_dict, .to() and graphs see)
            complex_buffers.add(name)  # (read back as complex)
            tensor = tensor._ri
        if tensor is not None and not isinstance(tensor, Tensor):
            raise TypeError(
                f"cannot assign '{_typename(tensor)}' object to buffer '{name}' (torch Tensor or None required)"
            )
        self.__dict__.setdefault("_buffer_names", set()).add(name)
        non_persistent = self.__dict__.setdefault("_non_persistent_buffers_set", set())
        if persistent:
            non_persistent.discard(name)
        else:
            non_persistent.add(name)
        self._buffers[name] = tensor
        _tracer.module_changed(self)

    def add_module(self, name: str, module) -> None:
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"{_typename(module)} is not a Module subclass")
        _check_name(name, "module")
        _drop_plain(self, name, "_modules")
        if module is not None:
            object.__setattr__(module, "_scope_name", name)
        self._modules[name] = module
        _tracer.module_changed(self)

    register_module = add_module

    # -- calling ---------------------------------------------------------------------------------------
    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} must define forward()")

    def __call__(self, *args, **kwargs):
        if gc.isenabled():  # the outermost module call runs with the cycle collector paused (see grad_mode)
            with cycle_collector_paused():
                return self(*args, **kwargs)
        tr = _tracer.current()
        compiled = self.__dict__.get("_compiled_call")
        if compiled is not None and tr is None:  # (module.compile(): tracing it calls the module itself)
            return compiled(*args, **kwargs)
        if tr is not None:  # (a training flag the trace set itself, model.train() inside the step, needs no guard)
            if id(self) not in tr.preset:
                tr.guard(lambda m=self: m.training, self.training)
            tr.module_guard(self, "hooks", _hook_ids, _hook_ids(self))
        with scope(self._scope_name or type(self).__name__):
            pre, post = _forward_hooks(self)
            bw_pre, bw = self.__dict__.get("_backward_pre_hooks"), self.__dict__.get("_backward_hooks")
            if bw_pre or bw:
                return call_with_backward_hooks(self, bw_pre or {}, bw or {}, self._call_forward, args, kwargs)
            if not pre and not post:
                return self.forward(*args, **kwargs)
            args, kwargs = _run_pre_hooks(self, pre or {}, args, kwargs)
            out = self.forward(*args, **kwargs)
            return _run_hooks(self, post or {}, args, kwargs, out)

    def _call_forward(self, args: tuple, kwargs: dict):
        """forward with the forward (pre-)hooks."""
        pre, post = _forward_hooks(self)
        args, kwargs = _run_pre_hooks(self, pre or {}, args, kwargs)
        return _run_hooks(self, post or {}, args, kwargs, self.forward(*args, **kwargs))

    # -- hooks ------------------------------------------------------------------------------------------
    def register_full_backward_pre_hook(self, hook, prepend: bool = False) -> RemovableHandle:
        """hook(module, grad_output) runs when the gradients of the module's outputs are computed; a tuple it
        returns replaces them (see _backward_hooks.py)."""
        return _add_hook(self, "_backward_pre_hooks", hook, prepend)

    def register_full_backward_hook(self, hook, prepend: bool = False) -> RemovableHandle:
        """hook(module, grad_input, grad_output) runs when the gradients of the module's tensor inputs are computed
        (None for inputs that do not require grad); a tuple it returns replaces grad_input."""
        return _add_hook(self, "_backward_hooks", hook, prepend)

    def to_empty(self, *, device=None, recurse: bool = True):
        """Every parameter and buffer given new storage of its shape and dtype, its values undefined (zeros here,
        graphnn having only the CPU); `device` must be the CPU."""
        check_device(device, "to_empty")
        for t in list(self.parameters(recurse)) + list(self.buffers(recurse)):
            t._assign_data(np.zeros(tuple(t.shape), t.dtype_name))
        return self

    def register_forward_pre_hook(self, hook, *, prepend: bool = False, with_kwargs: bool = False) -> RemovableHandle:
        """hook(module, args) (or (module, args, kwargs) with_kwargs) runs before forward; a result other than None
        replaces the arguments (a tuple, or one value; with_kwargs: an (args, kwargs) pair)."""
        return _add_hook(self, "_forward_pre_hooks", hook, prepend, with_kwargs)

    def register_forward_hook(
        self, hook, *, prepend: bool = False, with_kwargs: bool = False, always_call: bool = False
    ) -> RemovableHandle:
        """hook(module, args, output) (or (module, args, kwargs, output) with_kwargs) runs after forward; a
        result other than None replaces the output. Inside graphnn.compile hooks run while tracing."""
        return _add_hook(self, "_forward_hooks", hook, prepend, with_kwargs)

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
    # PyTorch's protocol: state_dict() walks the modules, each saving its own entries (_save_to_state_dict: parameters,
    # persistent buffers, get_extra_state()) between its state_dict hooks; load_state_dict() gives each module the
    # entries under its prefix (_load_from_state_dict, which subclasses override to rename legacy keys).
    def state_dict(self, *args, destination=None, prefix: str = "", keep_vars: bool = False) -> OrderedDict:
        """Parameters, persistent buffers and extra state by name (tied tensors under each name, sharing memory)."""
        if args:  # (the old positional form state_dict(destination, prefix, keep_vars))
            destination, prefix, keep_vars = (list(args) + [destination, prefix, keep_vars][len(args) :])[:3]
        out = OrderedDict() if destination is None else destination
        d = self.__dict__
        for hook in list(d.get("_state_dict_pre_hooks", {}).values()):
            hook(self, prefix, keep_vars)
        self._save_to_state_dict(out, prefix, keep_vars)
        for name, m in self._modules.items():
            if m is not None:
                m.state_dict(destination=out, prefix=prefix + name + ".", keep_vars=keep_vars)
        for hook in list(d.get("_state_dict_hooks", {}).values()):
            new = hook(self, out, prefix, {})
            out = out if new is None else new
        return out

    def _save_to_state_dict(self, destination: dict, prefix: str, keep_vars: bool) -> None:
        d = self.__dict__
        for name, p in self._parameters.items():
            if p is not None:
                p = p if keep_vars else p.detach()
                destination[prefix + name] = ComplexTensor(p) if name in d.get("_complex_params", ()) else p
        skip = d.get("_non_persistent_buffers_set", ())
        for name, b in self._buffers.items():
            if b is not None and name not in skip:
                b = b if keep_vars else b.detach()
                destination[prefix + name] = ComplexTensor(b) if name in d.get("_complex_buffers", ()) else b
        if _has_extra_state(self):
            destination[prefix + _EXTRA_STATE] = self.get_extra_state()

    def get_extra_state(self):
        """State beyond parameters and buffers that state_dict() saves (override it with set_extra_state)."""
        raise RuntimeError(
            "Reached a code path in Module.get_extra_state() that should never be called: override get_extra_state "
            "and set_extra_state together"
        )

    def set_extra_state(self, state) -> None:
        raise RuntimeError(
            "Reached a code path in Module.set_extra_state() that should never be called: override get_extra_state "
            "and set_extra_state together"
        )

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        """Copy values into the parameters and persistent buffers in place, in state_dict() order (so tied tensors
        stay tied, the entry listed last winning when their values differ); extra state goes to set_extra_state.
        assign=True puts the state_dict's tensors themselves in their places instead (their dtypes and memory; a
        parameter keeps its requires_grad)."""
        missing, unexpected, errors = [], [], []
        state_dict = OrderedDict(state_dict)

        meta = {"assign_to_params_buffers": assign}

        def load(module, prefix: str) -> None:
            module._load_from_state_dict(state_dict, prefix, meta, True, missing, unexpected, errors)
            for name, child in module._modules.items():
                if child is not None:
                    load(child, prefix + name + ".")
            keys = _IncompatibleKeys(missing, unexpected)
            for hook in list(module.__dict__.get("_load_state_dict_post_hooks", {}).values()):
                hook(module, keys)

        load(self, "")
        if strict:  # (PyTorch's message: missing and unexpected keys first, then the other errors)
            quoted = lambda keys: ", ".join(f'"{k}"' for k in keys)  # noqa: E731
            head = [f"Missing key(s) in state_dict: {quoted(missing)}. "] if missing else []
            head += [f"Unexpected key(s) in state_dict: {quoted(unexpected)}. "] if unexpected else []
            errors = head + errors
        if errors:
            raise RuntimeError(f"Error(s) in loading state_dict for {type(self).__name__}:\n\t" + "\n\t".join(errors))
        return _IncompatibleKeys(missing, unexpected)

    def _load_from_state_dict(
        self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
    ) -> None:
        """Load this module's own entries (those under prefix): parameters and persistent buffers in place, extra
        state through set_extra_state; unknown keys under prefix that no child owns are unexpected."""
        for hook in list(self.__dict__.get("_load_state_dict_pre_hooks", {}).values()):
            hook(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs)
        skip = self.__dict__.get("_non_persistent_buffers_set", ())
        own = [(n, p) for n, p in self._parameters.items() if p is not None]
        own += [(n, b) for n, b in self._buffers.items() if b is not None and n not in skip]
        for name, t in own:
            k = prefix + name
            if k not in state_dict:
                missing_keys.append(k)
                continue
            v = state_dict[k]
            if isinstance(v, ComplexTensor):  # (a complex parameter or buffer is its real view here)
                v = v._ri
            elif isinstance(v, np.ndarray) and np.iscomplexobj(v):
                v = np.stack([v.real, v.imag], -1)
            arr = v._concrete("load_state_dict") if isinstance(v, Tensor) else np.asarray(v)
            if tuple(arr.shape) != tuple(t.shape):
                error_msgs.append(
                    f"size mismatch for {k}: copying a param with shape {_size(arr.shape)} from checkpoint, "
                    f"the shape in current model is {_size(t.shape)}."
                )
                continue
            if local_metadata.get("assign_to_params_buffers"):
                new = v if isinstance(v, Tensor) else Tensor._wrap(arr)
                if name in self._parameters:
                    if not isinstance(new, Parameter):
                        new = Parameter(new, requires_grad=False)
                    new.requires_grad_(t.requires_grad)
                    self._parameters[name] = new
                else:
                    self._buffers[name] = new
                _tracer.module_changed(self)
                continue
            t._data[...] = arr.astype(t.dtype_name, copy=False)
            t._bump()  # an in-place write: graphs recorded before no longer hold the old values
        if _has_extra_state(self):
            if prefix + _EXTRA_STATE in state_dict:
                self.set_extra_state(state_dict[prefix + _EXTRA_STATE])
            else:
                missing_keys.append(prefix + _EXTRA_STATE)
        known = {n for n, _ in own} | ({_EXTRA_STATE} if _has_extra_state(self) else set())
        children = {n for n, m in self._modules.items() if m is not None}
        for k in state_dict:
            if k.startswith(prefix):
                rest = k[len(prefix) :]
                if rest not in known and rest.split(".", 1)[0] not in children:
                    unexpected_keys.append(k)

    def register_state_dict_pre_hook(self, hook) -> "RemovableHandle":
        """hook(module, prefix, keep_vars) before the module's state_dict() entries are saved."""
        return _add_hook(self, "_state_dict_pre_hooks", hook, False)

    def register_state_dict_post_hook(self, hook) -> "RemovableHandle":
        """hook(module, state_dict, prefix, local_metadata) after them; a dict it returns replaces the result."""
        return _add_hook(self, "_state_dict_hooks", hook, False)

    _register_state_dict_hook = register_state_dict_post_hook

    def register_load_state_dict_pre_hook(self, hook) -> "RemovableHandle":
        """hook(module, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs) before
        the module loads its entries (it may edit state_dict: rename legacy keys)."""
        return _add_hook(self, "_load_state_dict_pre_hooks", hook, False)

    def _register_load_state_dict_pre_hook(self, hook, with_module: bool = False) -> "RemovableHandle":
        """PyTorch's older form: hook(state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
        error_msgs), with the module first only when with_module."""
        if with_module:
            return self.register_load_state_dict_pre_hook(hook)
        return self.register_load_state_dict_pre_hook(lambda module, *args: hook(*args))

    def register_load_state_dict_post_hook(self, hook) -> "RemovableHandle":
        """hook(module, incompatible_keys) after the module and its children loaded (it may edit the key lists)."""
        return _add_hook(self, "_load_state_dict_post_hooks", hook, False)

    # -- modes and helpers --------------------------------------------------------------------------------------
    def train(self, mode: bool = True):
        tr = _tracer.current()
        for m in self.modules():
            object.__setattr__(m, "training", mode)
            if tr is not None:  # (model.train() inside a compiled step: set at every call, not a guard)
                tr.note_flag(m, "training", mode)
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
                _zero_grad_in_place(p)

    def apply(self, fn):
        for m in self.children():
            m.apply(fn)
        fn(self)
        return self

    def to(self, *args, **kwargs):
        """PyTorch's Module.to(device, dtype) / to(dtype) / to(tensor): the device must be the CPU (or 'meta', which
        keeps the values); a floating dtype casts the floating parameters, buffers and gradients in place (they stay
        the same objects)."""
        device, dtype = _parse_to(args, kwargs)
        if str(getattr(device, "type", device)) == "meta":
            # (PyTorch's meta tensors hold shapes only; graphnn has none: the module keeps its values, which a
            # stateless base for functional_call, as the ensembling tutorial's, never reads)
            device = None
        check_device(device, f"{type(self).__name__}.to")
        if dtype is None:
            return self
        if dtype not in ("float32", "float64"):
            raise TypeError(
                f"nn.Module.to only accepts floating point or complex dtypes, but got desired dtype={dtype}"
            )
        return self._cast(dtype)

    def cpu(self):
        return self

    def share_memory(self):
        """Move the parameters, buffers and existing gradients to shared memory, so that processes started with
        graphnn.multiprocessing train this very model (Hogwild)."""
        for t in list(self.parameters()) + list(self.buffers()):
            t.share_memory_()
            if t._grad is not None and t._grad._data is not None:
                t._grad.share_memory_()
        return self

    def cuda(self, device=None):
        check_device("cuda" if device is None else f"cuda:{device}", f"{type(self).__name__}.cuda")

    def type(self, dst_type):
        return self._cast(to_dtype(dst_type))

    def _cast(self, dtype: str):
        for t in list(self.parameters()) + list(self.buffers()):
            if t.dtype_name in ("float32", "float64") and t.dtype_name != dtype:
                t._assign_data(t._data.astype(dtype))
                g = t._grad
                if g is not None and g._data is not None:
                    t._grad = Tensor._wrap(g._data.astype(dtype))
        return self

    # -- lookup by dotted name --------------------------------------------------------------------------------------
    def get_submodule(self, target: str) -> "Module":
        """The submodule at a dotted path ('' is the module itself), as PyTorch's."""
        mod = self
        for item in target.split(".") if target else []:
            if not hasattr(mod, item):
                raise AttributeError(f"{mod._get_name()} has no attribute `{item}`")
            mod = getattr(mod, item)
            if not isinstance(mod, Module):
                raise AttributeError(f"`{item}` is not an nn.Module")
        return mod

    def set_submodule(self, target: str, module: "Module", strict: bool = False) -> None:
        """Put `module` at a dotted path: its parent must exist (with strict, so must the old submodule)."""
        if not target:
            raise ValueError("Cannot set the submodule without a target name!")
        parent_path, _, name = target.rpartition(".")
        parent = self.get_submodule(parent_path)
        if strict and not isinstance(parent._modules.get(name), Module):
            raise AttributeError(f"{parent._get_name()} has no attribute `{name}`")
        if not isinstance(module, Module):
            raise ValueError(f"`{type(module).__name__}` is not an nn.Module, found {type(module)}")
        setattr(parent, name, module)

    def __getstate__(self) -> dict:
        """Pickled and deep-copied without the native code of module.compile() (a copy runs eagerly until compiled)."""
        state = self.__dict__.copy()
        state.pop("_compiled_call", None)
        return state

    def compile(self, *args, **kwargs) -> None:
        """Compile this module's forward in place (torch's Module.compile): calling the module runs
        graphnn.compile(module, *args, **kwargs)'s native code from now on."""
        from graphnn.compiler.program import CompiledModule

        object.__setattr__(self, "_compiled_call", CompiledModule(self, *args, **kwargs))

    def get_parameter(self, target: str):
        module_path, _, name = target.rpartition(".")
        mod = self.get_submodule(module_path)
        if not hasattr(mod, name):
            raise AttributeError(f"{mod._get_name()} has no attribute `{name}`")
        param = getattr(mod, name)
        if not isinstance(param, Parameter):
            raise AttributeError(f"`{name}` is not an nn.Parameter")
        return param

    def get_buffer(self, target: str):
        module_path, _, name = target.rpartition(".")
        mod = self.get_submodule(module_path)
        if name not in mod._buffers:
            raise AttributeError(f"`{name}` is not a buffer")
        return mod._buffers[name]

    def float(self):
        return self._cast("float32")

    def double(self):
        return self._cast("float64")

    def half(self):
        """As .to(graphnn.float16): graphnn keeps such parameters in float32 (with a warning)."""
        return self.to(_half_dtypes.float16)

    def bfloat16(self):
        """As .to(graphnn.bfloat16): graphnn keeps such parameters in float32 (with a warning)."""
        return self.to(_half_dtypes.bfloat16)

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


def _parse_to(args: tuple, kwargs: dict) -> tuple:
    """(device, dtype name) from Module.to's arguments: a tensor gives its dtype, a dtype its name, a bool is
    non_blocking, anything else is a device."""
    unknown = set(kwargs) - {"device", "dtype", "non_blocking", "memory_format", "copy"}
    if unknown:
        raise TypeError(f"to() received an invalid combination of arguments: unexpected keyword {sorted(unknown)}")
    device, dtype = kwargs.get("device"), kwargs.get("dtype")
    for a in args:
        if isinstance(a, Tensor):
            dtype = a.dtype_name
        elif isinstance(a, (_dtype, np.dtype)) or a in (float, int, bool):
            dtype = a
        elif not isinstance(a, bool):
            device = a
    return device, None if dtype is None else to_dtype(dtype)


def _typename(value) -> str:
    """PyTorch's torch.typename: 'torch.FloatTensor' for a float32 tensor, the qualified class name otherwise."""
    if isinstance(value, Tensor):
        from graphnn.core.tensor import _TORCH_TYPE

        return f"torch.{_TORCH_TYPE.get(value.dtype_name, value.dtype_name)}Tensor"
    cls = type(value)
    return cls.__qualname__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__qualname__}"


def _check_name(name, kind: str) -> None:
    if not isinstance(name, str):
        raise TypeError(f"{kind} name should be a string. Got {type(name).__name__}")
    if "." in name:
        raise KeyError(f'{kind} name can\'t contain "."')
    if name == "":
        raise KeyError(f'{kind} name can\'t be empty string ""')


def _drop_plain(module, name: str, table: str) -> None:
    """Registering `name`: a plain instance attribute of that name would shadow the member, so it goes (e.g.
    `self.bias = None` then `register_parameter("bias", None)`); a class attribute (a method, a property) or a member
    of another kind is PyTorch's KeyError."""
    d = module.__dict__
    d.pop(name, None)
    other = any(name in d.get(k, {}) for k in ("_parameters", "_buffers", "_modules") if k != table)
    if other or (name not in d.get(table, {}) and hasattr(type(module), name)):
        raise KeyError(f"attribute '{name}' already exists")


_COMPLEX = {"_parameters": "_complex_params", "_buffers": "_complex_buffers"}  # names of complex ones (real views)


def _remove_from(module, name: str, keep: str) -> None:
    """Drop `name` from the instance dict and the member tables other than `keep` (PyTorch's remove_from)."""
    d = module.__dict__
    d.pop(name, None)
    for key in ("_parameters", "_buffers", "_modules"):
        if key != keep and name in d.get(key, {}):
            del d[key][name]
            if key == "_buffers":
                d.get("_buffer_names", set()).discard(name)
                d.get("_non_persistent_buffers_set", set()).discard(name)


_EXTRA_STATE = "_extra_state"


def _has_extra_state(module) -> bool:
    return type(module).get_extra_state is not Module.get_extra_state


class _IncompatibleKeys(namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])):
    """(missing_keys, unexpected_keys) of load_state_dict, printed as PyTorch prints it."""

    __slots__ = ()

    def __repr__(self) -> str:
        if not self.missing_keys and not self.unexpected_keys:
            return "<All keys matched successfully>"
        return f"_IncompatibleKeys(missing_keys={self.missing_keys!r}, unexpected_keys={self.unexpected_keys!r})"
