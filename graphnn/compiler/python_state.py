"""Python side effects of tracing: graphnn.compile runs a model's Python code once per input signature.

The plain Python attributes of a module and its submodules are compared before and after tracing; a change
(a counter, a list appended to, an attribute set) would not be repeated by compiled calls, so it is reported
with a TraceWarning at the user's call.
"""

from __future__ import annotations

import warnings

from graphnn.compiler.python_reads import MODULE_INTERNALS
from graphnn.core.grad_mode import user_location


class TraceWarning(UserWarning):
    """graphnn.compile traced Python code with side effects that compiled calls do not repeat."""


def _fingerprint(v):
    if v is None or isinstance(v, (bool, int, float, str)):
        return ("value", v)
    if isinstance(v, (list, dict, set)):
        items = list(v.values()) if isinstance(v, dict) else list(v)
        return (type(v).__name__, len(v), tuple(id(x) for x in items))
    return ("object", id(v))


def _describe_state(v) -> str:
    if isinstance(v, (list, dict, set)):
        return f"{type(v).__name__} of {len(v)} items"
    return repr(v) if v is None or isinstance(v, (bool, int, float, str)) else f"<{type(v).__name__} object>"


def python_state(module) -> dict:
    """Shallow snapshot of the plain Python attributes of a module and its submodules."""
    state = {}
    for prefix, m in module.named_modules():
        for k, v in vars(m).items():
            if k not in MODULE_INTERNALS:
                state[(prefix or type(module).__name__, k)] = (_fingerprint(v), _describe_state(v))
    return state


def warn_state_changes(name: str, before: dict, after: dict) -> None:
    """Warn (TraceWarning, at the user's call) about module attributes that tracing changed."""

    def shown(state, key, missing):
        return state[key][1] if key in state else missing

    changed = [
        f"{'.'.join(key)}: {shown(before, key, '(unset)')} -> {shown(after, key, '(deleted)')}"
        for key in sorted(set(before) | set(after), key=str)
        if before.get(key, (None,))[0] != after.get(key, (None,))[0]
    ]
    if not changed:
        return
    msg = (
        f"graphnn.compile: tracing {name} changed Python state ({'; '.join(changed)}). Compiled calls do not "
        "run forward's Python code again (it runs once per new input signature), so these changes are not "
        "repeated, and tensors stored this way are symbolic, without values."
    )
    warn_at_user(msg)


def warn_at_user(msg: str) -> None:
    """A TraceWarning at the user's line that called into graphnn."""
    loc = user_location()
    if loc is None:
        warnings.warn(msg, TraceWarning, stacklevel=4)
    else:
        warnings.warn_explicit(msg, TraceWarning, loc[0], loc[1], module="graphnn.compile")
