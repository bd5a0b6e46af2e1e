"""Optimizer base class: parameter groups, state, zero_grad, state_dict."""

from __future__ import annotations

import copy

import numpy as np

from graphnn.compiler import tracer as _tracer
from graphnn.core.tensor import Tensor


class Optimizer:
    def __init__(self, params, defaults: dict):
        self.defaults = dict(defaults)
        self.state: dict = {}
        self.param_groups: list = []
        params = list(params)
        if not params:
            raise ValueError("optimizer got an empty parameter list")
        groups = params if isinstance(params[0], dict) else [{"params": params}]
        for g in groups:
            self.add_param_group(g)

    def add_param_group(self, group: dict) -> None:
        group = dict(group)
        group["params"] = list(group["params"]) if not isinstance(group["params"], Tensor) else [group["params"]]
        for k, v in self.defaults.items():
            group.setdefault(k, v)
        self.param_groups.append(group)

    def zero_grad(self, set_to_none: bool = True) -> None:
        for g in self.param_groups:
            for p in g["params"]:
                if set_to_none:
                    p.grad = None
                elif p.grad is not None:
                    p.grad = Tensor._wrap(np.zeros(tuple(p.shape), p.dtype_name))  # (a traced .grad has no data)

    def _groups(self) -> list:
        """param_groups, noting (when tracing) that the trace depends on their hyper-parameters (lr, ...)."""
        tr = _tracer.current()
        if tr is not None:
            for g in self.param_groups:
                tr.guard(lambda g=g: _hyper(g), _hyper(g))
        return self.param_groups

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

    def _new_buffer(self, p, name: str, value) -> Tensor:
        buf = Tensor._wrap(np.zeros(tuple(p.shape), p.dtype_name))
        self.state.setdefault(p, {})[name] = buf
        buf._assign(value)
        return buf

    def state_dict(self) -> dict:
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
        params = [p for g in self.param_groups for p in g["params"]]
        for g, sg in zip(self.param_groups, state_dict["param_groups"]):
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
                    cur = old.get(k)
                    if isinstance(cur, Tensor) and cur._data is not None:
                        cur._assign_data(arr)
                    else:
                        cur = Tensor._wrap(arr)
                    st[k] = cur
                else:
                    st[k] = copy.deepcopy(v)

    def __repr__(self) -> str:
        s = type(self).__name__ + " ("
        for i, g in enumerate(self.param_groups):
            s += f"\nParameter Group {i}"
            for k in sorted(k for k in g if k != "params"):
                s += f"\n    {k}: {g[k]}"
        return s + "\n)"


def _hyper(group: dict) -> tuple:
    return tuple((k, repr(v)) for k, v in group.items() if k != "params")
