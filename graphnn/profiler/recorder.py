"""What the profiler records: timed regions (record_function, ProfilerStep#N) and graphnn ops (through the
op observer hook of graphnn.core.dispatch.apply), each with wall and thread CPU time and its parent."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from graphnn.core import dispatch


@dataclass
class Event:
    """One timed region: times in ns (perf_counter / thread_time), parent the index of the enclosing event."""

    name: str
    cat: str  # "user_annotation" (record_function), "cpu_op" (a graphnn op)
    start_ns: int
    cpu_start_ns: int
    tid: int
    parent: int | None
    end_ns: int = -1
    cpu_ns: int = 0
    shapes: list = field(default_factory=list)
    bytes: int = 0  # bytes of the op's results (profile_memory)
    traced: bool = False  # an op emitted while graphnn.compile traces (no value computed)

    @property
    def dur_ns(self) -> int:
        return self.end_ns - self.start_ns


class Recorder:
    """Collects events of every thread; one per recording period of a profile."""

    def __init__(self, record_shapes: bool = False, profile_memory: bool = False):
        self.record_shapes, self.profile_memory = record_shapes, profile_memory
        self.events: list[Event] = []
        self._local = threading.local()
        self.t0_ns = time.perf_counter_ns()
        self.t0_epoch_us = time.time() * 1e6

    def _stack(self) -> list:
        s = getattr(self._local, "stack", None)
        if s is None:
            s = self._local.stack = []
        return s

    def begin(self, name: str, cat: str = "user_annotation") -> int:
        """Open a region in this thread; returns its index (for end)."""
        stack = self._stack()
        ev = Event(
            name,
            cat,
            time.perf_counter_ns(),
            time.thread_time_ns(),
            threading.get_ident(),
            stack[-1] if stack else None,
        )
        self.events.append(ev)
        stack.append(len(self.events) - 1)
        return stack[-1]

    def end(self, idx: int) -> None:
        """Close region idx (and regions opened inside it and left open by an exception)."""
        now, cpu = time.perf_counter_ns(), time.thread_time_ns()
        stack = self._stack()
        if idx not in stack:
            return
        while stack:
            i = stack.pop()
            ev = self.events[i]
            ev.end_ns, ev.cpu_ns = now, cpu - ev.cpu_start_ns
            if i == idx:
                return

    def op_observer(self, op: str, inputs: list):
        """dispatch.apply's hook: opens an op event; returns the callable that closes it with the results."""
        idx = self.begin("graphnn::" + op, "cpu_op")
        ev = self.events[idx]
        if self.record_shapes:
            ev.shapes = [list(getattr(t, "shape", ())) for t in inputs]

        def done(outs: list) -> None:
            if self.profile_memory:
                ev.bytes = sum(int(getattr(getattr(t, "_data", None), "nbytes", 0)) for t in outs)
            ev.traced = getattr(outs[0], "_data", 0) is None if outs else False
            self.end(idx)

        return done


_ACTIVE: list[Recorder] = []  # the recorder of the running profile (at most one), for record_function


def active() -> Recorder | None:
    return _ACTIVE[-1] if _ACTIVE else None


def start(rec: Recorder, ops: bool = True) -> None:
    _ACTIVE.append(rec)
    if ops:
        dispatch.op_observer = rec.op_observer


def stop(rec: Recorder) -> None:
    if rec in _ACTIVE:
        _ACTIVE.remove(rec)
    dispatch.op_observer = _ACTIVE[-1].op_observer if _ACTIVE else None
