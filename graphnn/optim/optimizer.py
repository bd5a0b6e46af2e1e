"""Optimizer base class: parameter groups, state, zero_grad, state_dict."""

from __future__ import annotations

import collections
import copy
import functools
import inspect
import sys
import warnings

import numpy as np

from graphnn.compiler import tracer as _tracer
from graphnn.ir import config
from graphnn.core.grad_mode import no_grad
from graphnn.core.tensor import Tensor, zero_grad_in_place as _zero_grad_in_place
from graphnn.nn.modules.module import RemovableHandle, _add_hook, _typename
from ._hyper import hyper, structure


class ParamGroup(dict):
    """A param group (a dict, as PyTorch's). Numbers that graphnn's optimizers read are runtime inputs of compiled
    steps (see _hyper.py); a value that other code reads while graphnn.compile traces (a custom optimizer's
    `group["lr"]`, a training step logging the lr) is a constant of the trace, guarded: when a scheduler changes
    it, the step traces again, as torch.compile's does."""

    def __getitem__(self, key):
        v = dict.__getitem__(self, key)
        self._read(key, v)
        return v

    def get(self, key, default=None):
        if key not in self:
            return default
        v = dict.__getitem__(self, key)
        self._read(key, v)
        return v

    def __setitem__(self, key, value) -> None:
        """group[key] = value; a tensor a compiled step computes (`g["lr"] = base_lr * scale`) is set to its value
        after every call, as tensors stored on modules are (Tracer.stored)."""
        tr = _tracer.current()
        if tr is not None:
            store = ("item", id(self), key)
            tr.note_stored(self, key, value, dict.get(self, key), store)
        dict.__setitem__(self, key, value)

    def _read(self, key, v) -> None:
        """Guard the value read (when tracing) unless graphnn's own code read it: the caller of __getitem__ / get."""
        tr = _tracer.current()
        if tr is not None and key != "params" and tr.active:
            caller = sys._getframe(2).f_globals.get("__name__", "")
            if not caller.startswith("graphnn."):
                tr.guard_entry(self, key, v)


class Optimizer:
    """Parameter groups (a list of tensors, of (name, tensor) pairs, or of dicts with "params" and per-group
    hyper-parameters overriding the defaults), per-parameter state, zero_grad and state_dict, as PyTorch's.

    graphnn's own update rules (the step of each optimizer class defined in graphnn.optim) run eagerly op by op for
    their first GRAPHNN_HOT_OPTIMIZER calls; after that, a step without a closure runs compiled: the update of every
    parameter as one native call (a few merged kernels), as PyTorch's foreach and fused implementations run it as a
    few kernels instead of an op per parameter and term. Hyper-parameters stay inputs (a scheduler moving lr needs no
    new compilation); a step that cannot be compiled keeps running eagerly."""

    # numbers whose being zero changes the terms of an update (an update tests them in Python: `if wd: ...`)
    _zero_tested = ("weight_decay", "momentum")
    _eager_steps = 0
    _compiled_step = None  # the compiled update (graphnn.compile of the class's step), or False: stays eager

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        step = cls.__dict__.get("step")
        own = cls.__module__.startswith(__name__.rsplit(".", 1)[0] + ".")
        if step is not None and own and inspect.signature(step).parameters["closure"].default is None:
            step = cls.step = _hot_step(step)  # (not L-BFGS, whose step needs its closure)
        if step is not None:
            cls.step = _with_step_hooks(step)

    def __init__(self, params, defaults: dict):
        if isinstance(params, Tensor):
            raise TypeError(
                "params argument given to the optimizer should be an iterable of Tensors or dicts, but got "
                + _typename(params)
            )
        if defaults.get("fused") and defaults.get("foreach"):
            raise RuntimeError("`fused` and `foreach` cannot be `True` together.")
        if defaults.get("differentiable"):
            raise NotImplementedError(f"{type(self).__name__}: differentiable=True is not supported")
        self.defaults = dict(defaults)
        self.state: dict = collections.defaultdict(dict)  # (as PyTorch's: a custom step reads self.state[p])
        self.param_groups: list = []
        params = list(params)
        if not params:
            raise ValueError("optimizer got an empty parameter list")
        groups = params if isinstance(params[0], dict) else [{"params": params}]
        for g in groups:
            self.add_param_group(g)

    def __getstate__(self) -> dict:
        """Pickled and deep-copied without its compiled step (native code; a copy compiles its own)."""
        state = self.__dict__.copy()
        state.pop("_compiled_step", None)
        return state

    def register_step_pre_hook(self, hook) -> RemovableHandle:
        """hook(optimizer, args, kwargs) before each step(); a result (args, kwargs) replaces them."""
        return _add_hook(self, "_step_pre_hooks", hook, False)

    def register_step_post_hook(self, hook) -> RemovableHandle:
        """hook(optimizer, args, kwargs) after each step()."""
        return _add_hook(self, "_step_post_hooks", hook, False)

    def register_state_dict_pre_hook(self, hook, prepend: bool = False) -> RemovableHandle:
        """hook(optimizer) before state_dict()."""
        return _add_hook(self, "_state_dict_pre_hooks", hook, prepend)

    def register_state_dict_post_hook(self, hook, prepend: bool = False) -> RemovableHandle:
        """hook(optimizer, state_dict) after state_dict(); a dict it returns replaces the result."""
        return _add_hook(self, "_state_dict_post_hooks", hook, prepend)

    def register_load_state_dict_pre_hook(self, hook, prepend: bool = False) -> RemovableHandle:
        """hook(optimizer, state_dict) before load_state_dict(); a dict it returns is loaded instead."""
        return _add_hook(self, "_load_state_dict_pre_hooks", hook, prepend)

    def register_load_state_dict_post_hook(self, hook, prepend: bool = False) -> RemovableHandle:
        """hook(optimizer) after load_state_dict()."""
        return _add_hook(self, "_load_state_dict_post_hooks", hook, prepend)

    def add_param_group(self, param_group: dict) -> None:
        """Append a group: its "params" (tensors, or (name, tensor) pairs) and hyper-parameters, the missing ones
        taken from the defaults. A parameter may belong to one group only."""
        if not isinstance(param_group, dict):
            raise TypeError(f"param_group must be a dict, but got {type(param_group).__name__}")
        group = param_group  # (the dict itself becomes the group, as in PyTorch)
        params = group["params"]
        if isinstance(params, Tensor):
            params = [params]
        elif isinstance(params, set):
            raise TypeError(
                "optimizer parameters need to be organized in ordered collections, but the ordering of tensors in "
                "sets will change between runs. Please use a list instead."
            )
        params = list(params)
        names = [p[0] for p in params if isinstance(p, tuple)]
        if names:
            if len(names) != len(params):
                raise ValueError("all optimizer params should be with/without names. Some param names are missing")
            params = [p[1] for p in params]
            group["param_names"] = names
        for p in params:
            if not isinstance(p, Tensor):
                raise TypeError("optimizer can only optimize Tensors, but one of the params is " + _typename(p))
            if not p.is_leaf:
                raise ValueError("can't optimize a non-leaf Tensor")
        if len({id(p) for p in params}) != len(params):
            warnings.warn(
                "optimizer contains a parameter group with duplicate parameters; in future, this will cause an "
                "error; see github.com/pytorch/pytorch/issues/40967 for more information",
                stacklevel=3,
            )
        group["params"] = params
        for k, v in self.defaults.items():
            group.setdefault(k, v)
        taken = {id(p) for g in self.param_groups for p in g["params"]}
        if any(id(p) in taken for p in params):
            raise ValueError("some parameters appear in more than one parameter group")
        if any(("param_names" in g) != bool(names) for g in self.param_groups):
            raise ValueError(
                "all optimizer param groups should be with/without names. cannot add param group "
                + ("with names" if names else "without names")
                + " to the optimizer"
            )
        self.param_groups.append(ParamGroup(group))

    def zero_grad(self, set_to_none: bool = True) -> None:
        for g in self.param_groups:
            for p in g["params"]:
                if set_to_none:
                    p.grad = None
                elif p.grad is not None:
                    _zero_grad_in_place(p)

    def _groups(self) -> list:
        """param_groups, noting (when tracing) what the trace depends on: the groups' tensors, the keys of each group,
        whether the numbers in `_zero_tested` are zero (that decides which terms an update has) and every value that
        is not a number. The numbers themselves are read at each call (`_hyper`), so a scheduler moving lr, momentum
        or betas (even to 0) needs no new trace."""
        tr = _tracer.current()
        if tr is not None:
            tr.guard(self._membership, self._membership())  # (add_param_group: a new trace)
            for g in self.param_groups:  # (as they are when the step ends: see guard_at_end)
                tr.guard_at_end(lambda g=g: structure(g, self._zero_tested))
        return self.param_groups

    def _membership(self) -> tuple:
        """Which tensors each param group updates."""
        return tuple(tuple(map(id, g["params"])) for g in self.param_groups)

    def _hyper(self, group: dict, key: str):
        """group[key]; when tracing, a number (or each number of a tuple such as betas) is a float64 0-d graph input
        read from the group at every call of the compiled step (see _hyper.py)."""
        return hyper(self.param_groups, group, key)

    def _grad(self, p):
        """p.grad, noting (when tracing) that the trace depends on whether it exists."""
        tr = _tracer.current()
        if tr is not None and id(p) not in tr.grad_writes:
            tr.guard(lambda p=p: p._grad is None, p._grad is None)
        return p.grad

    def _state_buffer(self, p, name: str):
        """An optimizer state tensor, or None; the trace depends on whether it exists."""
        st = self.state.setdefault(p, {})
        tr = _tracer.current()
        if tr is not None:
            tr.guard(lambda st=st, name=name: name in st, name in st)
        return st.get(name)

    def _state_of(self, p, fresh: dict) -> dict:
        """opt.state[p] holding the named buffers, each created from the array fresh[name] when missing. Use it where
        a first step computes with the fresh values exactly as later steps do with the state (Adam's zeros): a trace
        then depends on which tensors the state holds, not on whether it existed, so the step that creates the
        state is traced once for every later step too."""
        st = self.state.setdefault(p, {})
        for name, value in fresh.items():
            if name not in st:
                st[name] = Tensor._wrap(value)
        tr = _tracer.current()
        if tr is not None:
            for name in fresh:
                tr.guard(lambda st=st, name=name, t=st[name]: st.get(name) is t, True)
        return st

    def _new_buffer(self, p, name: str, value) -> Tensor:
        buf = Tensor._wrap(np.zeros(tuple(p.shape), p.dtype_name))
        self.state.setdefault(p, {})[name] = buf
        buf._assign(value)
        return buf

    def state_dict(self) -> dict:
        d = self.__dict__
        for hook in list(d.get("_state_dict_pre_hooks", {}).values()):
            hook(self)
        out = self._state_dict()
        for hook in list(d.get("_state_dict_post_hooks", {}).values()):
            new = hook(self, out)
            out = out if new is None else new
        return out

    def _state_dict(self) -> dict:
        index = {}
        groups = []
        for g in self.param_groups:
            ids = []
            for p in g["params"]:
                index.setdefault(id(p), len(index))
                ids.append(index[id(p)])
            groups.append({**{k: v for k, v in g.items() if k != "params"}, "params": ids})
        state = {}
        for g in self.param_groups:
            for p in g["params"]:
                if self.state.get(p):
                    state[index[id(p)]] = {
                        k: (v.detach() if isinstance(v, Tensor) else copy.deepcopy(v)) for k, v in self.state[p].items()
                    }
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict) -> None:
        d = self.__dict__
        for hook in list(d.get("_load_state_dict_pre_hooks", {}).values()):
            new = hook(self, state_dict)
            state_dict = state_dict if new is None else new
        self._load_state_dict(state_dict)
        for hook in list(d.get("_load_state_dict_post_hooks", {}).values()):
            hook(self)

    def _load_state_dict(self, state_dict: dict) -> None:
        params = [p for g in self.param_groups for p in g["params"]]
        saved = state_dict["param_groups"]
        if len(saved) != len(self.param_groups):
            raise ValueError("loaded state dict has a different number of parameter groups")
        if any(len(g["params"]) != len(sg["params"]) for g, sg in zip(self.param_groups, saved)):
            raise ValueError(
                "loaded state dict contains a parameter group that doesn't match the size of optimizer's group"
            )
        for g, sg in zip(self.param_groups, saved):
            g.update({k: v for k, v in sg.items() if k != "params"})
        loaded = {params[int(i)]: st for i, st in state_dict["state"].items()}
        for p in params:
            # Updated in place: compiled training steps hold (and guard on) these dicts and state tensors.
            st = self.state.setdefault(p, {})
            old = dict(st)
            st.clear()
            for k, v in loaded.get(p, {}).items():
                if isinstance(v, (Tensor, np.ndarray)):
                    arr = np.array(v._concrete("load_state_dict") if isinstance(v, Tensor) else v)
                    if k != "step" and p.dtype_name.startswith("float"):
                        arr = arr.astype(p.dtype_name)  # as PyTorch: state (but the step count) in p's dtype
                    cur = old.get(k)
                    if isinstance(cur, Tensor) and cur._data is not None:
                        cur._assign_data(arr)
                    else:
                        cur = Tensor._wrap(arr)
                    st[k] = cur
                else:
                    st[k] = copy.deepcopy(v)

    def __repr__(self) -> str:
        """PyTorch's: each group's hyper-parameters (and param_names), sorted by name."""
        s = type(self).__name__ + " ("
        for i, g in enumerate(self.param_groups):
            s += f"\nParameter Group {i}\n"
            s += "".join(f"    {k}: {g[k]}\n" for k in sorted(g) if k != "params")
        return s + ")"


_GLOBAL_PRE: dict = {}  # register_optimizer_step_pre_hook: every optimizer's, before its own
_GLOBAL_POST: dict = {}


def register_optimizer_step_pre_hook(hook) -> RemovableHandle:
    """hook(optimizer, args, kwargs) before every optimizer's step() (before its own pre-hooks); a result (args,
    kwargs) replaces them."""
    handle = RemovableHandle(_GLOBAL_PRE, None)
    _GLOBAL_PRE[handle.id] = hook
    _tracer.state_changed()  # (compiled steps trace again, running it)
    return handle


def register_optimizer_step_post_hook(hook) -> RemovableHandle:
    """hook(optimizer, args, kwargs) after every optimizer's step() (before its own post-hooks)."""
    handle = RemovableHandle(_GLOBAL_POST, None)
    _GLOBAL_POST[handle.id] = hook
    _tracer.state_changed()
    return handle


def _with_step_hooks(step):
    """step() with the optimizer's step pre- and post-hooks around it (register_step_pre_hook)."""

    @functools.wraps(step)
    def hooked(self, *args, **kwargs):
        d = self.__dict__
        d["_opt_called"] = True  # (an LR scheduler stepped before its optimizer warns)
        pre, post = d.get("_step_pre_hooks"), d.get("_step_post_hooks")
        if not pre and not post and not _GLOBAL_PRE and not _GLOBAL_POST:
            return step(self, *args, **kwargs)
        for hook in list(_GLOBAL_PRE.values()) + list((pre or {}).values()):
            new = hook(self, args, kwargs)
            if new is not None:
                args, kwargs = new
        out = step(self, *args, **kwargs)
        for hook in list(_GLOBAL_POST.values()) + list((post or {}).values()):
            hook(self, args, kwargs)
        return out

    return hooked


def _hot_step(step):
    """step(self, closure=None), running compiled after GRAPHNN_HOT_OPTIMIZER eager calls (see Optimizer)."""

    @functools.wraps(step)
    def hot_step(self, closure=None):
        if closure is not None or _tracer.current() is not None:
            return step(self, closure)
        hot = config.get("GRAPHNN_HOT_OPTIMIZER")
        if not hot or self._compiled_step is False or self._eager_steps < hot:
            self._eager_steps += 1
            return step(self)
        if self._compiled_step is None:
            from graphnn.compiler.program import CompiledFunction

            def update():
                step(self)

            self._compiled_step = CompiledFunction(update, f"{type(self).__name__}.step", fullgraph=True)
        try:
            self._compiled_step()
        except Exception:  # noqa: BLE001  (a step that cannot be traced: it runs eagerly, raising any real error)
            self._compiled_step = False  # (tracing changes nothing, and an update's native code checks no index)
            return step(self)
        return None

    return hot_step


class PerParameter(Optimizer):
    """An optimizer whose step updates each parameter that has a gradient by `_update(group, p, grad)`."""

    def step(self, closure=None):
        loss = closure() if closure is not None else None
        with no_grad():
            for g in self._groups():
                for p in g["params"]:
                    grad = self._grad(p)
                    if grad is not None:
                        self._update(g, p, grad)
        return loss

    def _update(self, group: dict, p, grad) -> None:
        raise NotImplementedError
