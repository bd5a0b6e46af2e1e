"""torch.profiler's profile, record_function, schedule and ProfilerActivity for graphnn programs."""

from __future__ import annotations

import enum
import warnings
from contextlib import ContextDecorator
from typing import Callable

from . import recorder
from .chrome_trace import trace_dict, write_json
from .table import EventList, averages


class ProfilerActivity(enum.Enum):
    CPU = 0
    CUDA = 1
    XPU = 2
    MTIA = 3
    HPU = 4
    PrivateUse1 = 5


def supported_activities() -> set:
    return {ProfilerActivity.CPU}


class ProfilerAction(enum.Enum):
    NONE = 0
    WARMUP = 1
    RECORD = 2
    RECORD_AND_SAVE = 3


def schedule(
    *, wait: int, warmup: int, active: int, repeat: int = 0, skip_first: int = 0
) -> Callable[[int], ProfilerAction]:
    """step -> action: skip_first steps, then cycles of `wait` idle, `warmup` and `active` recorded steps (the
    last of which saves: on_trace_ready), `repeat` times (0: until the profile ends)."""
    if wait < 0 or warmup < 0 or active <= 0 or repeat < 0 or skip_first < 0:
        raise ValueError(
            f"schedule: need wait, warmup, repeat, skip_first >= 0 and active > 0 (got {wait}, {warmup}, {active}, {repeat}, {skip_first})"
        )
    cycle = wait + warmup + active

    def action(step: int) -> ProfilerAction:
        if step < skip_first:
            return ProfilerAction.NONE
        step -= skip_first
        if repeat > 0 and step >= repeat * cycle:
            return ProfilerAction.NONE
        k = step % cycle
        if k < wait:
            return ProfilerAction.NONE
        if k < wait + warmup:
            return ProfilerAction.WARMUP
        return ProfilerAction.RECORD if k < cycle - 1 else ProfilerAction.RECORD_AND_SAVE

    return action


def _always_record(step: int) -> ProfilerAction:
    return ProfilerAction.RECORD


_RECORDING = (ProfilerAction.RECORD, ProfilerAction.RECORD_AND_SAVE)


class record_function(ContextDecorator):
    """A named region in the profile (context manager or decorator); free when no profiler records."""

    def __init__(self, name: str, args: str | None = None):
        self.name = name
        self._open: list = []  # (recorder, index) per entry: a decorator's instance may be re-entered

    def __enter__(self) -> "record_function":
        rec = recorder.active()
        self._open.append((rec, rec.begin(self.name) if rec is not None else -1))
        return self

    def __exit__(self, *exc) -> bool:
        rec, idx = self._open.pop()
        if rec is not None:
            rec.end(idx)
        return False


class profile:
    """Records record_function regions and graphnn's ops (wall and thread CPU time, calls, optionally input
    shapes and result bytes) between start/stop (or the with block), following `schedule` over step() calls."""

    def __init__(
        self,
        activities=None,
        record_shapes: bool = False,
        profile_memory: bool = False,
        with_stack: bool = False,
        schedule: Callable[[int], ProfilerAction] | None = None,
        on_trace_ready: Callable | None = None,
        with_flops: bool = False,
        with_modules: bool = False,
        experimental_config=None,
        execution_trace_observer=None,
        acc_events: bool = False,
        use_cuda: bool | None = None,
    ):
        acts = set(activities) if activities is not None else supported_activities()
        if acts - supported_activities():
            names = ", ".join(sorted(str(a) for a in acts - supported_activities()))
            warnings.warn(
                f"graphnn.profiler: {names} not available (graphnn runs on the CPU); profiling the CPU", stacklevel=2
            )
        self.activities = acts
        self.record_shapes, self.profile_memory, self.with_stack = record_shapes, profile_memory, with_stack
        self.schedule = schedule or _always_record
        self._record_steps = schedule is not None  # ProfilerStep#N regions, as PyTorch adds with a schedule
        self.on_trace_ready = on_trace_ready
        self.step_num = 0
        self._action = ProfilerAction.NONE
        self._rec: recorder.Recorder | None = None  # recording now
        self._done: recorder.Recorder | None = None  # the last finished recording (what key_averages reports)
        self._step_region = -1
        self._running = False

    # recording periods
    def _begin_recording(self) -> None:
        self._rec = recorder.Recorder(self.record_shapes, self.profile_memory)
        recorder.start(self._rec, ProfilerActivity.CPU in self.activities)
        self._step_region = self._rec.begin(f"ProfilerStep#{self.step_num}") if self._record_steps else -1

    def _end_recording(self, save: bool) -> None:
        rec, self._rec = self._rec, None
        if rec is None:
            return
        if self._step_region >= 0:
            rec.end(self._step_region)
        recorder.stop(rec)
        self._done = rec
        if save and self.on_trace_ready is not None:
            self.on_trace_ready(self)

    def start(self) -> None:
        self._running = True
        self._action = self.schedule(self.step_num)
        if self._action in _RECORDING:
            self._begin_recording()

    def stop(self) -> None:
        if not self._running:
            return
        self._running = False
        self._end_recording(save=self._action in _RECORDING)

    def step(self) -> None:
        """Marks the end of a training step: moves along the schedule (ProfilerStep#N regions per step)."""
        if not self._running:
            return
        prev = self._action
        self.step_num += 1
        self._action = self.schedule(self.step_num)
        if prev in _RECORDING and (prev == ProfilerAction.RECORD_AND_SAVE or self._action not in _RECORDING):
            self._end_recording(save=True)
        elif self._rec is not None and self._record_steps:  # the next step's region in the same recording
            self._rec.end(self._step_region)
            self._step_region = self._rec.begin(f"ProfilerStep#{self.step_num}")
        if self._action in _RECORDING and self._rec is None:
            self._begin_recording()

    def __enter__(self) -> "profile":
        self.start()
        return self

    def __exit__(self, *exc) -> bool:
        self.stop()
        return False

    # results (of the last finished recording)
    def _events(self) -> list:
        rec = self._done if self._done is not None else self._rec
        return rec.events if rec is not None else []

    def events(self) -> list:
        """The recorded events (closed ones), in start order."""
        return [e for e in self._events() if e.end_ns >= 0]

    def key_averages(self, group_by_input_shape: bool = False, group_by_stack_n: int = 0) -> EventList:
        if group_by_input_shape and not self.record_shapes:
            raise RuntimeError("key_averages(group_by_input_shape=True) needs profile(record_shapes=True)")
        return averages(self._events(), group_by_input_shape, self.profile_memory)

    def export_chrome_trace(self, path: str) -> None:
        """Writes the Chrome trace JSON of the recording (gzip-compressed when path ends with .gz)."""
        rec = self._done if self._done is not None else self._rec
        if rec is None:
            raise RuntimeError("export_chrome_trace: the profiler has recorded nothing yet")
        write_json(trace_dict(rec.events, rec.t0_ns, rec.t0_epoch_us), path)

    def export_stacks(self, path: str, metric: str = "self_cpu_time_total") -> None:
        raise NotImplementedError("graphnn.profiler: export_stacks (with_stack) is not supported")
