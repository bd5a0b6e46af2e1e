"""graphnn.autograd.profiler: torch.autograd.profiler's profile and record_function (the older API)."""

from __future__ import annotations

from .profile import ProfilerActivity, profile as _profile, record_function

__all__ = ["profile", "record_function"]


class profile(_profile):
    """torch.autograd.profiler.profile: a context manager recording the CPU (enabled=False records nothing)."""

    def __init__(
        self,
        enabled: bool = True,
        *,
        use_cuda: bool = False,
        use_device=None,
        record_shapes: bool = False,
        with_flops: bool = False,
        profile_memory: bool = False,
        with_stack: bool = False,
        with_modules: bool = False,
        use_kineto: bool = False,
        use_cpu: bool = True,
        experimental_config=None,
        acc_events: bool = False,
    ):
        super().__init__([ProfilerActivity.CPU], record_shapes, profile_memory, with_stack)
        self.enabled = enabled

    def start(self) -> None:
        if self.enabled:
            super().start()

    @property
    def function_events(self) -> list:
        return self.events()

    @property
    def self_cpu_time_total(self) -> float:
        """Microseconds: the sum of every event's self time."""
        return self.key_averages().self_cpu_time_total

    def table(self, sort_by: str | None = None, row_limit: int = 100, **kw) -> str:
        return self.key_averages().table(sort_by=sort_by, row_limit=row_limit, **kw)

    def __str__(self) -> str:
        return self.table()
