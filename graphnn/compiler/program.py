"""graphnn.compile: trace once per input signature, optimize, differentiate, fuse, and run native code."""

from __future__ import annotations

import contextvars
import types
import warnings
import weakref

import numpy as np

import numbers
import threading
from collections import OrderedDict

from graphnn import ir
from graphnn.ir import config
from graphnn.codegen import CompiledGraph, LoweringError, dynamic
from graphnn.ir.graph import Node
from graphnn.ir.partition import drop_unread_residuals, partition
from graphnn.ir.passes import lower_for_codegen
from graphnn.ir.registry import MissingGradient

from graphnn.compiler import python_reads, tracer as _tracer
from graphnn.core.grad_mode import INFERENCE_REGIONS, is_grad_enabled, is_inference_mode_enabled
from graphnn.compiler.python_state import python_state, warn_at_user, warn_state_changes
from graphnn.compiler.pytree import (
    BadLeaf,
    bad_argument,
    changed_copy,
    flatten,
    map_numbers,
    map_tensors,
    number_leaves,
    numbers_dynamic,
    numbers_erased,
    signature,
    unflatten,
)
from graphnn.compiler.tracer import EPOCH as _EPOCH, Tracer
from graphnn.core.tensor import Tensor, TraceError


def _optimized(graph: ir.Graph) -> ir.Graph:
    g = graph.copy()  # copy() keeps meta (the write-back map)
    ir.optimize(g)
    ir.verify(g)
    return g


_DYNAMIC = contextvars.ContextVar("graphnn_compile_dynamic", default=True)  # the compiled callable's `dynamic`


def _native(graph: ir.Graph, allow_dynamic: bool | None = None) -> CompiledGraph:
    """Native code for a graph; an op without a native lowering is reported at the user's call. Code that
    communicates is first checked to run the same collectives as on the other ranks. Unless the callable was
    compiled with dynamic=False, a graph that differs from an earlier one only in its batch size runs code
    compiled for every size (codegen/dynamic.py)."""
    allow = _DYNAMIC.get() if allow_dynamic is None else allow_dynamic
    try:
        native = dynamic.native_for(graph) if allow else None
        if native is None:
            native = CompiledGraph(graph)
            if allow:
                dynamic.compiled(graph)
    except LoweringError as e:
        from graphnn.core.dispatch import located

        raise LoweringError(located(str(e), "")) from None
    if native.communicates:
        from graphnn.distributed import check_compiled

        check_compiled(graph, graph.name)
    return native


def run_native(native: CompiledGraph, arrays: list) -> list:
    """Call native code; an index it found out of range becomes an error that also names the user's call."""
    try:
        return native(arrays)
    except IndexError as e:
        from graphnn.core.dispatch import IndexOpError, located

        raise IndexOpError(located(str(e), "")) from None
    except ValueError:
        strided = [i for i in native._wb_targets if not arrays[i].flags.c_contiguous]
        if not strided:
            raise
    # an argument updated in place is a strided view (x[:, 1:3].mul_(2) in the compiled function): the code runs on
    # a contiguous copy, whose new value is then written through the view
    copies = list(arrays)
    for i in strided:
        copies[i] = np.ascontiguousarray(arrays[i])
    outs = run_native(native, copies)
    for i in strided:
        arrays[i][...] = copies[i]
    return outs


def _lowered(graph: ir.Graph) -> ir.Graph:
    """The graph codegen compiles: convolutions rewritten as GEMMs, re-optimized."""
    g = graph.copy()
    lower_for_codegen(g, optimized=True)
    ir.verify(g)
    return g


class _Stages(dict):
    """A program's graphs by stage name; a stage named with later() is computed when first read (the fusion plan
    of its native code: a new batch size or sequence length does not need it to run)."""

    def later(self, name: str, make) -> None:
        self.__dict__.setdefault("_later", {})[name] = make
        dict.__setitem__(self, name, None)

    def __getitem__(self, name):
        make = self.__dict__.get("_later", {}).pop(name, None)
        if make is not None:
            dict.__setitem__(self, name, make())
        return dict.__getitem__(self, name)

    def get(self, name, default=None):
        return self[name] if name in self else default

    def items(self):
        return [(k, self[k]) for k in self]

    def values(self):
        return [self[k] for k in self]


class _Guarded:
    """Reuse test of a specialization: its guards, with captured tensors checked by identity first, and the guards
    on state that only graphnn calls change (requires_grad flags, module attributes) only after such a change."""

    guards: list
    bindings: list
    epoch_guards: list = []
    _fast = _other = _direct = None  # guard and binding fast paths (built on first use)
    _epoch = -1  # _tracer.EPOCH when the epoch guards last held

    def valid(self) -> bool:
        fast = self._fast
        if fast is None:
            self._split_guards()
            fast = self._fast
        for t, g in fast:  # captured tensors still holding the array that passed last time: one identity test
            if t._data is not g.last:
                return guards_hold(self.guards) and self._epoch_valid()
        if self._epoch != _EPOCH[0] and not self._epoch_valid():
            return False
        return guards_hold(self._other)

    def _epoch_valid(self) -> bool:
        epoch = _EPOCH[0]
        if not guards_hold(self.epoch_guards):
            return False
        self._epoch = epoch
        return True

    def _split_guards(self) -> None:
        self._fast = [
            (acc.tensor, acc) for acc, _ in self.guards if isinstance(acc, _tracer.SameArray) and acc.tensor is not None
        ]
        self._other = [
            (acc, e) for acc, e in self.guards if not (isinstance(acc, _tracer.SameArray) and acc.tensor is not None)
        ]
        self._direct = [acc.tensor if isinstance(acc, _tracer.Captured) else None for acc in self.bindings]


def bind(bindings: list, args: list) -> list:
    """The tensor bound to each graph input at a call: the next argument, an argument's .grad, or the accessor's."""
    out, it = [], iter(args)
    for acc in bindings:
        if acc is None:
            out.append(next(it))
        elif type(acc) is _tracer.ArgGrad:
            out.append(args[acc.index]._grad)
        else:
            out.append(acc())
    return out


def _distinct(args: list) -> bool:
    return len(args) < 2 or len({id(t) for t in args}) == len(args)


def _aliased_args_error():
    from graphnn.core.dispatch import located

    return NotImplementedError(
        located(
            "graphnn.compile: the same tensor is passed as two arguments of a compiled function that updates an argument "
            "in place or sets an argument's .grad; pass distinct tensors (e.g. x.clone())",
            "",
        )
    )


def _bump_versions(captured: list, arg_pos: list, args: list) -> None:
    """Compiled code wrote these tensors in place: eager graphs recorded before no longer hold their values."""
    for t in captured:
        if t._vc is not None:
            t._bump()
    for i in arg_pos:
        t = args[i]
        if t._vc is not None:
            t._bump()


class Program(_Guarded):
    """One specialization of a traced callable: its graphs, native code and how to bind and unpack it."""

    def __init__(self, tracer: Tracer, out_spec, outputs: list, grad_finals: list, stages: dict, arg_grads: list = ()):
        self.tracer = tracer
        self.out_spec = out_spec
        self.guards = tracer.guards
        self.epoch_guards = tracer.epoch_guards
        self.bindings = tracer.bindings
        self.arg_grads = list(arg_grads)  # (argument position, position in outputs or None, concrete)
        self.arg_effects = tracer.has_arg_effects()
        self.updated = [t for t, _ in tracer.updates.values() if t._trace is not tracer]
        self.updated_args = [tracer.arg_index[k] for k in tracer.updates if k in tracer.arg_index]
        self._effects = bool(self.arg_effects or self.arg_grads or self.updated or self.updated_args)
        self.host_calls = list(tracer.host_calls)  # (run after the native code, in their traced order)
        self.stored: list = []  # (module, name, output position): see build_program
        self.stages = stages = _Stages(stages)
        stages["lowered"] = _lowered(stages["optimized"])
        self.native = _native(stages["lowered"])
        stages.later("fused", lambda: self.native.plan)
        self.n_user = len(outputs)
        self.grad_targets = grad_finals  # (tensor, position in returned outputs or None, concrete)
        # results that are an argument itself (`return x.mul_(2)`): the caller's tensor is returned, as eagerly (its
        # value is the result's, written back), so later in-place ops on the result change the argument too
        self.out_same = [
            (j, tracer.arg_index[id(t)])
            for j, t in enumerate(outputs)
            if t._trace is tracer and id(t) in tracer.arg_index
        ]

    def feeds(self, args: list) -> list:
        if self._fast is None:
            self._split_guards()
        arrays, it = [], iter(args)
        for acc, t in zip(self.bindings, self._direct):
            if t is None:
                if acc is None:
                    t = next(it)
                elif type(acc) is _tracer.ArgGrad:
                    t = args[acc.index]._grad
                else:
                    t = acc()
            arrays.append(t._data)
        return arrays

    def run(self, args: list):
        effects = self._effects
        if effects and self.arg_effects and not _distinct(args):
            raise _aliased_args_error()
        arrays = self.feeds(args)
        for i, check in self.tracer.checks:
            check(arrays[i])
        outs = run_native(self.native, arrays)
        leaves = [Tensor._wrap(a) for a in outs[: self.n_user]]
        if self.grad_targets or self.arg_grads:
            _anomaly_check(outs, [pos for _, pos, _ in self.grad_targets] + [pos for _, pos, _ in self.arg_grads])
        for t, pos, concrete in self.grad_targets:
            t._grad = Tensor._wrap(outs[pos]) if pos is not None else concrete
        if effects:  # arguments' .grad; versions of the tensors written in place
            for i, pos, concrete in self.arg_grads:
                args[i]._grad = Tensor._wrap(outs[pos]) if pos is not None else concrete
            _bump_versions(self.updated, self.updated_args, args)
        if self.out_same:
            for j, i in self.out_same:
                leaves[j] = args[i]
        for target, name, pos in self.stored:  # (prune's hook sets module.weight at every forward)
            _put(target, name, Tensor._wrap(outs[pos]))
        for fn, a, kw in self.host_calls:  # (a scheduler's step inside a compiled training step)
            fn(*a, **kw)
        _arguments_require_grad(self.tracer, args)
        _mark_inference(leaves)
        spec = self.out_spec
        return leaves[spec[1]] if spec[0] == "leaf" else unflatten(spec, leaves)


def _arguments_require_grad(tracer, args: list) -> None:
    """Arguments the traced code called requires_grad_() on (a Hamiltonian network's `x.requires_grad_(True)` in
    forward) require grad after the call, as eagerly."""
    for i in tracer.arg_requires_grad:
        a = args[i]
        if not a.requires_grad and a.grad_fn is None:
            a.requires_grad_(True)


def _anomaly_check(outs: list, positions: list) -> None:
    """Under autograd.set_detect_anomaly(True): a gradient the compiled step computed with NaN in it is an error, as
    PyTorch's anomaly mode reports the backward that made it."""
    from graphnn.autograd import _ANOMALY

    if _ANOMALY[0]:
        for k, pos in enumerate(p for p in positions if p is not None):
            if np.isnan(outs[pos]).any():
                raise RuntimeError(f"Function 'CompiledFunctionBackward' returned nan values in its {k}th output.")


def _mark_inference(tensors: list) -> None:
    """Results of a compiled call inside inference_mode() are inference tensors, as eager results there are."""
    if INFERENCE_REGIONS[0] and is_inference_mode_enabled():
        for t in tensors:
            t._inference = True


def _put(target, name, value) -> None:
    """A stored tensor back where the traced code put it: a module attribute, or a dict / list entry."""
    if isinstance(target, (dict, list)):
        target[name] = value
    else:
        setattr(target, name, value)


def guards_hold(guards: list) -> bool:
    """Do all (accessor, expected) guards of a trace hold now? A guard that cannot be evaluated does not."""
    try:
        for acc, expected in guards:
            if acc() != expected:
                return False
    except Exception:
        return False
    return True


def trace_function(fn, args: tuple, kwargs: dict, names: dict, name: str, state_leaves=frozenset()) -> tuple:
    """Trace fn(*args, **kwargs) into a graph; returns (tracer, out_spec, output tensors, grad finals).

    Each tensor leaf of the argument trees is a graph input, in the order _pytree.signature() lists them; the leaves
    at `state_leaves` are passed as themselves (arguments the function also reaches as state: Tracer.arg_as_state)."""
    tracer = Tracer(name, names)
    real: list = []
    state = python_reads.data_snapshot(fn, tuple(args) + tuple(kwargs.values()))
    watched = python_reads.watch(tracer, [h for _, h, key, _ in state if key is python_reads._ALL])
    positions = _NUMBER_INPUTS.get()
    with tracer:

        def arg(t, path):
            real.append(t)
            if len(real) - 1 in state_leaves:
                return tracer.arg_as_state(t, path)
            return tracer.arg(t, path)

        sym = [map_tensors(a, arg, f"x{i}") for i, a in enumerate(args)]
        sym_kw = {k: map_tensors(v, arg, k) for k, v in kwargs.items()}
        numbers: list = []  # (the SymNumbers standing for number arguments)
        if positions:
            sym, sym_kw = _numbers_as_inputs(tracer, tuple(sym), sym_kw, positions, numbers)
        drawn = python_reads.host_random_snapshot(fn)
        try:
            result = fn(*sym, **sym_kw)
            _views_current(result, tracer)
        except BaseException:  # (a trace that stops: its Python side effects undone before the call runs eagerly,
            python_reads.restore_state(state)  # the numbers it drew from Python's and NumPy's generators too)
            python_reads.restore_host_random(drawn)
            raise
        finally:
            finals = tracer.finish()
            python_reads.unwatch(watched)
        if positions:
            _check_number_results(tracer, result)
        tracer.keep_escaped(result)
        tracer.collect_hook_stores(result)
        python_reads.note_replaced(tracer, state)
        tracer.bind_stored()
        tracer.end_temporaries()
    if tracer.has_arg_effects() and not _distinct(real):
        raise _aliased_args_error()
    # (containers that forward hooks store into are set again at every call; places whose earlier tensor the trace
    # replaced hold it again until the first call: see Tracer.bind_stored)
    stores = {id(c) for key, (c, _, _) in tracer.stored.items() if key[0] == "item" and key not in tracer.stored_over}
    changed = python_reads.changed_state([e for e in state if id(e[1]) not in stores])
    changed += [  # (lists and dicts passed as arguments are traced as copies: a change to one is made to the copy)
        f"argument {k}: entries added, removed or replaced"
        for k, (a, s) in enumerate(zip(tuple(args) + tuple(kwargs.values()), tuple(sym) + tuple(sym_kw.values())))
        if not isinstance(a, Tensor) and changed_copy(a, s, frozenset(map(id, numbers)))
    ]
    if changed:  # compiled calls would not repeat the change: undo it, and the call runs eagerly (see TraceError)
        python_reads.restore_state(state)
        raise PythonStateChange(
            f"graphnn.compile({name}): tracing changed Python state ({'; '.join(changed)}), which compiled calls "
            "would not change again"
        )
    python_reads.global_guards(fn, tracer)
    python_reads.data_guards(tracer, fn)
    python_reads.watched_guards(tracer)
    if python_reads.drew_numbers(drawn, fn):  # (compiled calls would reuse the numbers: the call runs eagerly)
        python_reads.restore_host_random(drawn)
        raise HostRandomDraw(f"graphnn.compile({name}) draws numbers from a NumPy or Python random generator")
    leaves: list = []
    spec = flatten(result, leaves)
    return tracer, spec, leaves, finals


def _with_dtype_guard(traced: tuple) -> tuple:
    """A compiled trace depends on the default dtype (factories inside make tensors of it): set_default_dtype
    moves the epoch, and this guard then traces again."""
    from graphnn.core.dtypes import get_default_dtype

    traced[0].epoch_guard(get_default_dtype, get_default_dtype())
    return traced


def build_program(tracer: Tracer, spec, leaves: list, finals: list) -> Program:
    g = tracer.graph
    outs = [tracer.lift(t) for t in leaves]
    grad_finals = []
    for t, final in finals:
        if final is not None and final._trace is tracer:
            grad_finals.append((t, len(outs), None))
            outs.append(final._value)
        else:
            grad_finals.append((t, None, final))
    arg_grads = []
    for i, final in tracer.arg_grad_finals:
        if final is not None and final._trace is tracer:
            arg_grads.append((i, len(outs), None))
            outs.append(final._value)
        else:
            arg_grads.append((i, None, final))
    stored = []  # (module / container, name / key, output position): tensors the trace stored (see Tracer.stored)
    for module, name, t in tracer.stored.values():
        if t._value is not None:
            stored.append((module, name, len(outs)))
            outs.append(t._value)
    writeback = {}  # (last: these outputs are written into their inputs, not returned)
    for t, v in tracer.updates.values():
        writeback[len(outs)] = g.inputs.index(tracer.input_of[id(t)])
        outs.append(v)
    g.outputs = outs
    g.meta["writeback"] = writeback
    ir.verify(g)
    stages = {"traced": g.copy(), "optimized": _optimized(g)}
    prog = Program(tracer, spec, leaves, grad_finals, stages, arg_grads)
    prog.stored = stored
    return prog


MAX_SPECIALIZATIONS_VAR = "GRAPHNN_MAX_SPECIALIZATIONS"
DEFAULT_MAX_SPECIALIZATIONS = config.SETTINGS[MAX_SPECIALIZATIONS_VAR].default


def default_max_specializations() -> int:
    """The bound on kept specializations per compiled callable: $GRAPHNN_MAX_SPECIALIZATIONS, else 64."""
    return config.get(MAX_SPECIALIZATIONS_VAR)


def _checked_limit(n) -> int:
    if n is None:
        return default_max_specializations()
    if isinstance(n, bool) or not isinstance(n, numbers.Integral):
        raise TypeError(f"max_specializations must be a positive int or None, got {type(n).__name__}")
    if n < 1:
        raise ValueError(f"max_specializations must be at least 1, got {n}")
    return int(n)


class Specializations:
    """The programs of one compiled callable by signature key, least recently used first, at most `limit` in all.

    Iterating, len() and [key] see the keys (several programs share a key when their guards differ). Evicting a
    program only drops this reference: a call running it, or an eager graph whose backward will run it, keeps it
    alive; a later call with its signature traces again (the native code usually comes from the compile cache).
    """

    def __init__(self, limit: int):
        self.limit = limit
        self._progs: OrderedDict = OrderedDict()  # key -> [program]
        self._count = 0
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._progs)

    def __iter__(self):
        with self._lock:
            return iter(list(self._progs))

    def __contains__(self, key) -> bool:
        return key in self._progs

    def __getitem__(self, key) -> list:
        return list(self._progs[key])

    def keys(self) -> list:
        return list(self)

    @property
    def programs(self) -> int:
        """Number of programs kept."""
        return self._count

    def find(self, key):
        """A program for key whose guards hold (key becomes the most recently used), or None."""
        with self._lock:
            progs = self._progs.get(key)
            if not progs:
                return None
            self._progs.move_to_end(key)
            return next((p for p in progs if p.valid()), None)

    def add(self, key, prog):
        """Keep prog for key, evicting the least recently used programs past the limit; returns the program to run
        (one another thread added for key meanwhile, if its guards hold)."""
        with self._lock:
            progs = self._progs.setdefault(key, [])
            self._progs.move_to_end(key)
            other = next((p for p in progs if p.valid()), None)
            if other is not None:
                return other
            progs.append(prog)
            self._count += 1
            self._shrink()
            return prog

    def set_limit(self, limit: int) -> None:
        with self._lock:
            self.limit = limit
            self._shrink()

    def _shrink(self) -> None:
        while self._count > self.limit:
            key, progs = next(iter(self._progs.items()))
            progs.pop(0)
            self._count -= 1
            if not progs:
                del self._progs[key]


RETRACE_WARNING = 8  # traces again for one argument signature after which a warning says why
NUMBER_VALUES = 8  # signatures differing only in int / float / bool arguments that are traced; more run eagerly

# Number arguments (int, float) that take a second value are traced as 0-d graph inputs (as torch.compile makes them
# dynamic): one program for all their values, unless the trace needs a value (a branch on it, a shape, range()):
# then every value is a constant of its own trace (up to NUMBER_VALUES).
_NUMBER_INPUTS = contextvars.ContextVar("graphnn_number_inputs", default=frozenset())  # positions being traced
_ARG_NUMBERS = threading.local()  # .values: this call's numbers at the dynamic positions, in position order


def _numbers_as_inputs(tracer, args: tuple, kwargs: dict, positions: frozenset, made: list) -> tuple:
    """args and kwargs with the numbers at `positions` (see pytree.number_leaves) replaced by SymNumbers: 0-d graph
    inputs that read this call's values (_ARG_NUMBERS); the SymNumbers are appended to `made`."""
    from graphnn.core.sym_number import SymNumber

    rank = {p: j for j, p in enumerate(sorted(positions))}

    def replace(i, x):
        if i not in rank:
            return x
        dtype = "float64" if type(x) is float else "int64"
        read = lambda j=rank[i]: _ARG_NUMBERS.values[j]  # noqa: E731
        made.append(SymNumber(tracer.scalar_input(("argument number", i), read, f"n{i}", dtype), type(x)))
        return made[-1]

    return map_numbers(args, kwargs, replace)


def _sym_numbers(obj, out: list) -> list:
    """The SymNumbers in a tree of tuples, lists, dicts and dataclasses (appended to out)."""
    from graphnn.core.sym_number import SymNumber

    if isinstance(obj, SymNumber):
        out.append(obj)
    elif isinstance(obj, (tuple, list)):
        for o in obj:
            _sym_numbers(o, out)
    elif isinstance(obj, dict):
        for o in obj.values():
            _sym_numbers(o, out)
    elif hasattr(type(obj), "__dataclass_fields__") and not isinstance(obj, type):
        for name in type(obj).__dataclass_fields__:
            _sym_numbers(getattr(obj, name, None), out)
    return out


def _check_number_results(tracer, result) -> None:
    """A result that is a number argument, or computed from number arguments alone, would come back a symbolic
    value or a tensor where eager calls give a number: such traces keep their numbers constant."""
    if _sym_numbers(result, []):
        raise TraceError("a number argument is a result")
    numbers = {id(t._value) for key, t in tracer.scalars.items() if key[0] == "argument number"}
    leaves: list = []
    flatten(result, leaves)
    for t in leaves:
        if t._value is None:
            continue
        seen, todo, inputs = set(), [t._value], []
        while todo:
            v = todo.pop()
            if id(v) in seen:
                continue
            seen.add(id(v))
            if v.producer is None:
                inputs.append(v)
            else:
                todo.extend(v.producer.inputs)
        if inputs and all(id(v) in numbers for v in inputs):
            raise TraceError("a result computed from number arguments alone")


class PythonStateChange(TraceError):
    """The traced function changed plain Python state (a counter in a global or a dict): calls run eagerly."""


class HostRandomDraw(TraceError):
    """The traced function drew numbers from NumPy's or Python's generators (a mixup coefficient, a random crop):
    compiled calls would reuse the trace's numbers, so calls run eagerly (torch.compile draws them at every call)."""


def _warn_eager(name: str, e: Exception) -> None:
    if isinstance(e, HostRandomDraw):
        warn_at_user(
            f"{e} (a random generator): compiled calls would reuse the numbers of the trace, so these calls run "
            "eagerly, drawing anew each time; fullgraph=True makes this an error. Draw with graphnn (torch.rand, "
            "torch.randn, torch.distributions, dropout), which draws anew at every compiled call, to compile all of it."
        )
        return
    if isinstance(e, PythonStateChange):
        warn_at_user(
            f"{e}: these calls run eagerly (the right results, without native code); fullgraph=True makes this an "
            "error. Keep counters and other Python state outside the compiled function (or in tensors) to compile "
            "all of it."
        )
        return
    first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    warn_at_user(
        f"graphnn.compile({name}) runs eagerly for these arguments: tracing it needed a concrete value ({first}). "
        "As torch.compile at a graph break, the calls still compute the right results, without native code; "
        "fullgraph=True makes this an error. Read values (.item(), bool(), .numpy()) outside the compiled function "
        "to compile all of it."
    )


def _warn_numbers(name: str) -> None:
    warn_at_user(
        f"graphnn.compile({name}) traced {NUMBER_VALUES} signatures that differ only in the values of int, float or "
        "bool arguments (each value is a constant of its own trace); calls with further values run eagerly, as "
        "torch.compile's do past its recompile limit. Pass a number that changes from call to call as a tensor "
        "(graphnn.tensor(t)) to compile one program for all its values."
    )


def _warn_retraces(name: str) -> None:
    warn_at_user(
        f"graphnn.compile({name}) traced {RETRACE_WARNING} times for arguments it had seen before: a plain Python "
        "value it reads (a global or closure variable, a module attribute, an entry of a dict it names) keeps "
        "changing, and each new value was traced again; from now on these calls run eagerly, as torch.compile's do "
        "past its recompile limit. Pass a number that changes at every call as an argument (a tensor) to trace once."
    )


class CompiledFunction:
    """`graphnn.compile(fn)`: fn is traced on the first call for each argument signature and runs natively after.

    Arguments are pytrees: tensors, possibly nested in tuples, lists, dicts and namedtuples, are graph inputs;
    other leaves are constants of the trace. Inside fn, `loss.backward()`, `.grad` and optimizer steps are traced
    too, so a whole training step becomes one native call that updates parameters in place. At most
    `max_specializations` signatures are kept (least recently used ones are dropped).
    """

    def __init__(
        self, fn, name: str | None = None, max_specializations: int | None = None, dynamic=None, fullgraph=False
    ):
        self.fn = fn
        self.dynamic = dynamic  # False: every batch size compiled on its own (see compile())
        self.fullgraph = fullgraph  # True: a trace that cannot finish is an error, not an eager fallback
        self._eager: dict = {}  # argument signature -> why it runs eagerly (its trace needed a concrete value)
        self._warned: set = set()  # kinds of eager fallback already warned about (see _program)
        self._state_changes: set = set()  # signatures whose trace changed Python state once (see _program)
        self.name = name or getattr(fn, "__name__", "fn")
        self.cache = Specializations(_checked_limit(max_specializations))
        self.last: Program | None = None
        self._hot = None  # (key, program) of the last call: one tuple, so a thread never pairs a key with another's
        self._retraces = 0  # traces for an argument signature traced before (see python_reads)
        self._number_values: dict = {}  # numbers_erased(key) -> the keys traced with it (see NUMBER_VALUES)
        self._number_inputs: dict = {}  # numbers_erased(key) -> positions of the numbers passed as graph inputs
        self._numbers_constant: set = set()  # numbers_erased(key) whose numbers cannot be inputs (a trace needs them)
        self._state_leaves: set = set()  # argument leaves also reached as state (see Tracer.arg_as_state)

    def __get__(self, obj, objtype=None):
        """As a method (`@graphnn.compile` on a function in a class body): bound to its object, which the trace
        receives as its first argument."""
        return self if obj is None else types.MethodType(self, obj)

    @property
    def max_specializations(self) -> int:
        return self.cache.limit

    @max_specializations.setter
    def max_specializations(self, n: int) -> None:
        self.cache.set_limit(_checked_limit(n))

    def _names(self) -> dict:
        return {}

    def _signature_fn(self):
        """The function whose parameters name the arguments in error messages."""
        return self.fn

    def _trace(self, args: tuple, kwargs: dict) -> tuple:
        return _with_dtype_guard(
            trace_function(self.fn, args, kwargs, self._names(), self.name, frozenset(self._state_leaves))
        )

    _grads_in_key = True  # a traced backward() accumulates into arguments' .grad: the key says whether they are None

    def _signature(self, args: tuple, kwargs: dict, leaves: list) -> tuple:
        try:
            return signature(args, kwargs, leaves, self._grads_in_key)
        except BadLeaf:
            raise bad_argument(self._signature_fn(), args, kwargs) from None

    def __call__(self, *args, **kwargs):
        if _tracer.current() is not None:  # called while an enclosing graphnn.compile traces: trace inline
            return self.fn(*args, **kwargs)
        leaves: list = []
        key = (is_grad_enabled(), self._signature(args, kwargs, leaves))
        if self._state_leaves:  # (arguments also reached as state: keyed by which tensors they are)
            key += (tuple(id(leaves[i]) if i < len(leaves) else None for i in sorted(self._state_leaves)),)
        if self._number_inputs:
            key = self._numbers_keyed(key)
        hot = self._hot
        if hot is not None and hot[0] == key and hot[1].valid():  # the common case: same as last call
            return hot[1].run(leaves)
        try:
            prog = self._program(key, args, kwargs, leaves, self._build)
        except _tracer.ArgumentIsState as e:  # trace again with that argument passed as itself
            self._state_leaves.add(e.position)
            return self(*args, **kwargs)
        return self.fn(*args, **kwargs) if prog is None else prog.run(leaves)

    def _program(self, key, args: tuple, kwargs: dict, leaves: list, build):
        """The program for key, traced and compiled by build(args, kwargs, leaves) when none holds; None when calls
        with this signature run eagerly (their trace needed a concrete value: see _traced)."""
        if key in self._eager:
            return None
        prog = self.cache.find(key)  # (the last program, which calls reuse without the cache, is the newest there)
        if prog is None:
            if key not in self.cache and not self.fullgraph:
                erased = numbers_erased(key)
                values = self._number_values.setdefault(erased, set())
                if values and key not in values and erased not in self._numbers_constant:
                    prog = self._numbers_as_inputs(key, erased, values, args, kwargs, leaves, build)
                    if prog is not None:
                        return prog
                if len(values) >= NUMBER_VALUES and key not in values:
                    if len(values) == NUMBER_VALUES:
                        _warn_numbers(self.name)
                        values.add(None)  # (warned once)
                    self._eager[key] = "a new value of a number argument"
                    return None
                values.add(key)
            if key in self.cache:  # traced before with these arguments: a Python value it read has changed
                self._retraces += 1
                if self._retraces >= RETRACE_WARNING and not self.fullgraph:
                    if self._retraces == RETRACE_WARNING:
                        _warn_retraces(self.name)
                    self._eager[key] = "traced again too often"
                    return None
            token = _DYNAMIC.set(self.dynamic is not False)
            try:
                built = build(args, kwargs, leaves)
            except TraceError as e:
                if self.fullgraph:
                    raise
                if isinstance(e, PythonStateChange) and key not in self._state_changes:
                    # (the first time: the change may be a one-time initialization, made eagerly now; the next
                    # call traces again and compiles unless it changes state again)
                    self._state_changes.add(key)
                    return None
                self._eager[key] = str(e)
                # (once per function and kind: a counter's message names its changing value, so Python's
                # once-per-location filter would print it for every argument signature)
                first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
                kind = "python state" if isinstance(e, PythonStateChange) else first
                if kind not in self._warned:
                    self._warned.add(kind)
                    _warn_eager(self.name, e)
                return None
            finally:
                _DYNAMIC.reset(token)
            prog = self.cache.add(key, built)
        self.last, self._hot = prog, (key, prog)
        return prog

    def _numbers_keyed(self, key):
        """key with the numbers traced as graph inputs keyed by type only (their values, for this call's run, in
        _ARG_NUMBERS)."""
        positions = self._number_inputs.get(numbers_erased(key))
        if positions is None:
            return key
        key, _ARG_NUMBERS.values = numbers_dynamic(key, positions)
        return key

    def _numbers_as_inputs(self, key, erased, seen: set, args: tuple, kwargs: dict, leaves: list, build):
        """The program for a call whose int / float arguments differ from those of earlier traces (`seen`) with the
        differing ones as graph inputs, or None when its trace needs their values (they stay constants)."""
        now = number_leaves(key)
        eligible: dict = {}  # position -> value of the call's int and float arguments (not bools, static fields)
        map_numbers(args, kwargs, lambda i, x: eligible.setdefault(i, x) if type(x) in (int, float) else x)
        positions = frozenset(
            i
            for other in seen
            if other is not None
            for i, pair in enumerate(number_leaves(other))
            if i in eligible and pair != now[i]
        )
        if not positions:
            return None
        token = _NUMBER_INPUTS.set(positions)
        _ARG_NUMBERS.values = [eligible[i] for i in sorted(positions)]
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                built = build(args, kwargs, leaves)
        except Exception:  # (TraceError, or a number used where a Python number is needed: constants as before)
            self._numbers_constant.add(erased)
            return None
        finally:
            _NUMBER_INPUTS.reset(token)
        for w in caught:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        self._number_inputs[erased] = positions
        key = numbers_dynamic(key, positions)[0]  # (_ARG_NUMBERS holds this call's numbers for its run)
        prog = self.cache.add(key, built)
        self.last, self._hot = prog, (key, prog)
        return prog

    def _build(self, args: tuple, kwargs: dict, leaves: list):
        tracer, spec, outs, finals = self._trace(args, kwargs)
        if (
            is_grad_enabled()
            and not tracer.did_backward
            and not finals
            and not tracer.arg_grad_finals
            and any((t.requires_grad and t._trace is tracer) or id(t) in tracer.ended_grad_temporaries for t in outs)
        ):
            # results that require grad: differentiable, as a compiled module's (backward() runs compiled code)
            return SplitProgram(tracer, spec, outs, [t.requires_grad for t in leaves])
        return build_program(tracer, spec, outs, finals)

    @property
    def graphs(self) -> dict:
        """IR of the most recent call: 'traced', 'optimized', 'lowered' (what codegen compiles: convolutions as
        GEMMs) and 'fused' (the FusionPlan of 'lowered'); compiled modules add 'forward'/'backward'."""
        if self.last is None:
            raise RuntimeError("call the compiled function once first")
        return self.last.stages


class CompiledModule(CompiledFunction):
    """`graphnn.compile(module)`: the module's forward compiled; outputs support .backward() natively."""

    _grads_in_key = False  # forward does not call backward(): inputs' .grad does not change the trace

    def __init__(
        self, module, name: str | None = None, max_specializations: int | None = None, dynamic=None, fullgraph=False
    ):
        super().__init__(module, name or type(module).__name__, max_specializations, dynamic, fullgraph)
        self.module = module

    def _names(self) -> dict:
        names = {id(p): n for n, p in self.module.named_parameters()}
        names.update({id(b): n for n, b in self.module.named_buffers()})
        return names

    def _signature_fn(self):
        return self.module.forward

    def __getattr__(self, item):
        return getattr(self.__dict__["module"], item)

    def _trace(self, args: tuple, kwargs: dict) -> tuple:
        before = python_state(self.module)
        out = _with_dtype_guard(trace_function(self.module, args, kwargs, self._names(), self.name))
        # (tensors set as module attributes are set again by every call: not a change compiled calls skip)
        where = {id(m): prefix or type(self.module).__name__ for prefix, m in self.module.named_modules()}
        repeated = {(where.get(id(m)), name) for m, name, _ in out[0].stored.values() if id(m) in where}
        after = {k: v for k, v in python_state(self.module).items() if k not in repeated}
        warn_state_changes(f"{self.name}.forward", {k: v for k, v in before.items() if k not in repeated}, after)
        return out

    def __call__(self, *args, **kwargs):
        if _tracer.current() is not None:  # called while an enclosing graphnn.compile traces: trace inline
            return self.module(*args, **kwargs)
        leaves: list = []
        sig = self._signature(args, kwargs, leaves)
        grad = is_grad_enabled()
        if grad and (any(t.requires_grad for t in leaves) or any(p.requires_grad for p in self.module.parameters())):
            key, build = ("train", sig), self._build_split
        else:
            key, build = (grad, sig), self._build
        if self._number_inputs:
            key = self._numbers_keyed(key)
        hot = self._hot
        if hot is not None and hot[0] == key and hot[1].valid():
            return hot[1].run(leaves)
        try:
            prog = self._program(key, args, kwargs, leaves, build)
        except _tracer.ArgumentIsState:  # (the forward reaches its own argument as state: such calls run eagerly)
            self._eager[key], prog = "an argument is also the module's state", None
        return self.module(*args, **kwargs) if prog is None else prog.run(leaves)

    def _build_split(self, args: tuple, kwargs: dict, leaves: list) -> SplitProgram:
        tracer, spec, outs, _ = self._trace(args, kwargs)
        return SplitProgram(tracer, spec, outs, [t.requires_grad for t in leaves])

    def __repr__(self) -> str:
        return f"Compiled({self.module!r})"


def _grad_stopped(n) -> bool:
    """Does no gradient flow through node n: detach()'s op, or an op traced under no_grad?"""
    from graphnn.ir.registry import get_op

    return "detach" in get_op(n.op).view or bool(n.meta.get("nograd"))


def _without_grad(t) -> bool:
    """Was traced output t computed without gradient (see _grad_stopped)?"""
    p = t._value.producer if isinstance(t, Tensor) and t._value is not None else None
    return p is not None and _grad_stopped(p)


def _views_current(result, tracer) -> None:
    """Views among the results whose base an in-place op changed after they were taken take their values from the
    base again (as in PyTorch, where they share its memory), while the trace still runs."""
    from graphnn.compiler.pytree import flatten
    from graphnn.core.tensor import check_view_current

    leaves: list = []
    flatten(result, leaves)
    for t in leaves:
        if isinstance(t, Tensor) and t._base is not None and (t._view_gen is not None or t._trace is not tracer):
            check_view_current(t, tracer)


def _reached(g, sources: list) -> set:
    """Ids of the values of g computed from any of `sources` (not through a node _grad_stopped)."""
    reached = {v.id for v in sources}
    for n in g.nodes:
        if _grad_stopped(n):
            continue
        if any(v.id in reached for v in n.inputs):
            reached.update(o.id for o in n.outputs)
    return reached


class SplitProgram(_Guarded):
    """A forward graph that also returns the values its backward graph needs, plus that backward graph.

    Calling it runs the native forward and records one `call` node, so `loss.backward()` in eager code
    reaches the compiled backward.
    """

    def __init__(self, tracer: Tracer, spec, leaves: list, arg_requires_grad: list):
        self.tracer, self.out_spec, self.guards, self.bindings = tracer, spec, tracer.guards, tracer.bindings
        self.epoch_guards = tracer.epoch_guards
        self.arg_effects = tracer.has_arg_effects()
        self.updated = [t for t, _ in tracer.updates.values() if t._trace is not tracer]
        self.updated_args = [tracer.arg_index[k] for k in tracer.updates if k in tracer.arg_index]
        g = tracer.graph
        # (an output computed without gradient - autograd.grad's result without create_graph, a detached value, one
        # computed under no_grad - stays so; the symbolic tensors' own flags do not follow index assignments)
        # tensors the forward set as module attributes (an MoE layer's auxiliary loss, a style-loss module's loss)
        # are outputs too, differentiable as the results: set on their modules after every call
        stored = [(m, name, t) for m, name, t in tracer.stored.values() if t._value is not None]
        self.stored = [(m, name) for m, name, _ in stored]
        self.n_results = len(leaves)
        leaves = list(leaves) + [t for _, _, t in stored]
        without_grad = [_without_grad(t) for t in leaves]
        outs = [tracer.lift(t) for t in leaves]
        g.outputs = list(outs)
        updates = list(tracer.updates.values())  # state written by forward (e.g. BatchNorm running statistics)
        fwd_inputs = list(g.inputs)
        self.stages = _Stages({"traced": g.copy()})
        arg_req = iter(arg_requires_grad)
        # (random inputs never require grad: calling their accessor would draw, and so consume, random numbers)
        requires = [
            next(arg_req) if acc is None else (v.meta.get("kind") not in ("random", "grad") and acc().requires_grad)
            for acc, v in zip(self.bindings, fwd_inputs)
        ]
        wrt = [i for i, v in enumerate(fwd_inputs) if v.type.is_float and requires[i]]
        # a result requires grad when computed (not detached, not under no_grad) from an input that does
        reached = _reached(g, [fwd_inputs[i] for i in wrt])
        self.out_requires_grad = [not w and v.id in reached for w, v in zip(without_grad, outs)]
        # gradient hooks (register_hook) of captured tensors, arguments and traced values run as traced ops
        hooked = [(a.tensor, v) for a, v in zip(self.bindings, fwd_inputs) if isinstance(a, _tracer.Captured)]
        with tracer:
            hooks = tracer.grad_hooks(hooked + [(s, s._value) for s in tracer.arg_syms])
            part = partition(g, outs, wrt, [v for _, v in updates], hooks=hooks)
        part = drop_unread_residuals(part, _optimized(part.backward))
        self.float_outs, self.grad_pos, self.res_input_pos = part.float_outs, part.grad_pos, part.res_input_pos
        self.missing_gradient = part.missing_gradient  # raised when a gradient is asked for, as in eager mode
        self.n_out, self.n_res = part.n_out, part.n_res
        fwd = part.forward
        fwd.meta["writeback"] = {
            part.n_out + part.n_res + k: fwd_inputs.index(tracer.input_of[id(t)]) for k, (t, _) in enumerate(updates)
        }
        self.stages["forward"] = _optimized(fwd)
        self.stages["backward"] = part.backward
        self.stages["optimized"] = self.stages["forward"]
        self.stages["lowered"] = _lowered(self.stages["forward"])
        self._dynamic = _DYNAMIC.get()  # (the backward is compiled later, outside the compiled callable's build)
        self.native = _native(self.stages["lowered"])
        self.stages.later("fused", lambda: self.native.plan)
        self._native_bwd = None
        self.out_types = part.out_types
        self.key = self.stages["forward"].structural_hash() + "/" + self.stages["backward"].structural_hash()

    @property
    def native_backward(self) -> CompiledGraph:
        if self._native_bwd is None:
            self.stages["lowered_backward"] = _lowered(self.stages["backward"])
            self._native_bwd = _native(self.stages["lowered_backward"], self._dynamic)
            # residuals and cotangents are new arrays at every call: not kept bound, so the forward graph can
            # reuse its output arrays once the backward is done with them
            self._native_bwd.stable = set()
            self.stages.later("fused_backward", lambda: self._native_bwd.plan)
        return self._native_bwd

    # -- the `call` op protocol (attrs["fn"]) --------------------------------------------------------------
    def ir_key(self) -> str:
        return f"compiled<{self.key}>"

    def run(self, args: list):
        if self.arg_effects and not _distinct(args):
            raise _aliased_args_error()
        tensors = bind(self.bindings, args)
        for i, check in self.tracer.checks:
            check(tensors[i]._data)
        inputs = [t._eager_value() for t in tensors]  # (before the call: its state updates make new versions)
        outs = run_native(self.native, [t._data for t in tensors])
        if self.updated or self.updated_args:
            _bump_versions(self.updated, self.updated_args, args)
        node = Node("call", inputs, {"fn": _ForwardFn(self)}, self.out_types)
        for o, a in zip(node.outputs, outs):
            o.data = a
        from graphnn.autograd import make_grad_fn

        fn = make_grad_fn("CompiledFunctionBackward", [t for t in tensors if t.requires_grad])
        leaves = []
        for j in range(self.n_out):
            t = Tensor._wrap(outs[j], requires_grad=node.outputs[j].type.is_float and self.out_requires_grad[j])
            if t.requires_grad:
                t._value, t.grad_fn = node.outputs[j], fn
            leaves.append(t)
        for (target, name), t in zip(self.stored, leaves[self.n_results :]):
            _put(target, name, t)
        for call, a, kw in self.tracer.host_calls:  # (a scheduler's step, flags the traced code set)
            call(*a, **kw)
        _arguments_require_grad(self.tracer, args)
        return unflatten(self.out_spec, leaves[: self.n_results])


class _ForwardFn:
    """attrs['fn'] of the recorded call node: the compiled forward, whose gradient is the compiled backward."""

    def __init__(self, prog: SplitProgram):
        self.prog = prog

    def ir_key(self) -> str:
        return self.prog.ir_key()

    def cache_identity(self) -> SplitProgram:
        """What this attribute stands for, for the eager backward cache (graphnn/core/backward_cache.py)."""
        return self.prog

    def out_types(self, types):
        return list(self.prog.out_types)

    def run(self, arrays):
        return run_native(self.prog.native, arrays)

    def grad(self, b, node, cts):
        p = self.prog
        if p.missing_gradient:
            raise MissingGradient(p.missing_gradient)
        res_in = [node.inputs[i] for i in p.res_input_pos]
        res_out = node.outputs[p.n_out :]
        ct = [
            cts[j] if cts[j] is not None else b.full(0.0, node.outputs[j].shape, node.outputs[j].dtype)
            for j in p.float_outs
        ]
        grads = b.emit("call", *(res_in + list(res_out) + ct), fn=_BackwardFn(p))
        grads = grads if isinstance(grads, tuple) else (grads,)
        result = [None] * len(node.inputs)
        for i, gr in zip(p.grad_pos, grads):
            result[i] = gr
        return result


class _BackwardFn:
    def __init__(self, prog: SplitProgram, weak: bool = False):
        self._prog = weakref.ref(prog) if weak else prog

    @property
    def prog(self) -> SplitProgram:
        p = self._prog() if isinstance(self._prog, weakref.ref) else self._prog
        if p is None:
            raise RuntimeError("the compiled program of this gradient no longer exists")
        return p

    def weakened(self) -> _BackwardFn:
        """The same gradient, referring to its program weakly (kept by the eager backward cache)."""
        return _BackwardFn(self.prog, weak=True)

    def ir_key(self) -> str:
        return self.prog.ir_key() + ".backward"

    def out_types(self, types):
        return [v.type for v in self.prog.stages["backward"].outputs]

    def run(self, arrays):
        return run_native(self.prog.native_backward, arrays)

    def grad(self, b, node, cts):
        raise MissingGradient("the compiled backward has no gradient (double backward through graphnn.compile)")


def compile(  # noqa: A001
    obj=None,
    *,
    name: str | None = None,
    max_specializations: int | None = None,
    fullgraph: bool = False,
    dynamic=None,
    backend="inductor",
    mode=None,
    options=None,
    disable: bool = False,
):
    """Compile a Module or a function (e.g. a whole training step) to native code.

    torch.compile's tuning options (backend, mode, options) are accepted and change nothing (graphnn always compiles
    the whole graph); disable=True returns obj itself. A function whose trace needs a concrete value (`.item()`, a
    branch on a tensor) runs eagerly for that argument signature, with a warning, as torch.compile runs the code
    around a graph break; fullgraph=True makes that an error instead.

    Each new argument signature (tree structure, tensor shapes, dtypes, requires_grad and constant values) is
    traced once; at most max_specializations of them are kept (default: $GRAPHNN_MAX_SPECIALIZATIONS, else 64), the
    least recently used being dropped. Batch sizes, as torch.compile's automatic dynamic shapes: once a second
    size of one graph has been seen, one program is compiled for every size and later sizes are only traced and
    checked against it (dynamic=None or True, and $GRAPHNN_DYNAMIC not 0); dynamic=False compiles each size on
    its own. Without obj, returns a decorator with these options.
    """
    from graphnn.nn.modules.module import Module

    if obj is None:
        return lambda o: compile(
            o, name=name, max_specializations=max_specializations, fullgraph=fullgraph, dynamic=dynamic, disable=disable
        )
    if disable:
        return obj

    if isinstance(obj, Module):
        from .optimized_module import OptimizedModule

        return OptimizedModule(obj, name, max_specializations, dynamic, fullgraph)
    import inspect

    if inspect.isgeneratorfunction(obj) or inspect.isasyncgenfunction(obj) or inspect.iscoroutinefunction(obj):
        if fullgraph:
            raise TypeError(f"graphnn.compile(fullgraph=True) cannot compile {obj.__name__}: it is a generator")
        warn_at_user(
            f"graphnn.compile({obj.__name__}): a generator (or coroutine) function runs eagerly; compile the functions "
            "it calls for each item instead"
        )
        return obj
    if callable(obj):
        return CompiledFunction(obj, name, max_specializations, dynamic, fullgraph)
    raise TypeError(f"graphnn.compile expects a Module or a callable, got {type(obj).__name__}")
