"""key_averages(): events grouped by name, and their table in PyTorch's layout."""

from __future__ import annotations

from dataclasses import dataclass, field

from .recorder import Event


@dataclass
class EventAvg:
    """The events of one name (and input shapes, when grouped by them); times in microseconds."""

    key: str
    count: int = 0
    cpu_time_total: float = 0.0  # wall time inside the regions
    self_cpu_time_total: float = 0.0  # minus the time of the regions opened inside
    thread_cpu_time_total: float = 0.0  # CPU time of the thread (time.thread_time) inside the regions
    cpu_memory_usage: int = 0
    self_cpu_memory_usage: int = 0
    input_shapes: str = ""
    cats: set = field(default_factory=set)

    @property
    def cpu_time(self) -> float:
        return self.cpu_time_total / max(self.count, 1)

    @property
    def self_cpu_time(self) -> float:
        return self.self_cpu_time_total / max(self.count, 1)

    # no accelerator: device times are zero (sort keys of CUDA programs still work)
    cuda_time_total = self_cuda_time_total = device_time_total = self_device_time_total = 0.0


SORT_KEYS = (
    "cpu_time_total",
    "self_cpu_time_total",
    "cpu_time",
    "self_cpu_time",
    "count",
    "cpu_memory_usage",
    "self_cpu_memory_usage",
    "cuda_time_total",
    "self_cuda_time_total",
    "device_time_total",
    "self_device_time_total",
)


def averages(events: list[Event], group_by_input_shape: bool = False, profile_memory: bool = False) -> "EventList":
    """One EventAvg per name (first-seen order) of a recorder's events (parents index this list; events left
    open are skipped); self time excludes the regions each event encloses."""
    child_ns = [0] * len(events)
    child_bytes = [0] * len(events)
    for e in events:
        if e.parent is not None and e.end_ns >= 0:
            child_ns[e.parent] += e.dur_ns
            child_bytes[e.parent] += e.bytes
    groups: dict = {}
    for i, e in enumerate(events):
        if e.end_ns < 0:
            continue
        shapes = str(e.shapes) if group_by_input_shape else ""
        g = groups.get((e.name, shapes))
        if g is None:
            g = groups[(e.name, shapes)] = EventAvg(e.name, input_shapes=shapes)
        g.count += 1
        g.cats.add(e.cat)
        g.cpu_time_total += e.dur_ns / 1e3
        g.self_cpu_time_total += max(e.dur_ns - child_ns[i], 0) / 1e3
        g.thread_cpu_time_total += e.cpu_ns / 1e3
        g.cpu_memory_usage += e.bytes + child_bytes[i]
        g.self_cpu_memory_usage += e.bytes
    return EventList(groups.values(), group_by_input_shape, profile_memory)


def format_time(us: float) -> str:
    if us >= 1e6:
        return f"{us / 1e6:.3f}s"
    if us >= 1e3:
        return f"{us / 1e3:.3f}ms"
    return f"{us:.3f}us"


def format_memory(n: int) -> str:
    for unit, size in (("Gb", 1 << 30), ("Mb", 1 << 20), ("Kb", 1 << 10)):
        if abs(n) >= size:
            return f"{n / size:.2f} {unit}"
    return f"{n} b"


class EventList(list):
    """A list of EventAvg with PyTorch's table()."""

    def __init__(self, items=(), group_by_input_shape: bool = False, profile_memory: bool = False):
        super().__init__(items)
        self.group_by_input_shape = group_by_input_shape
        self.profile_memory = profile_memory

    @property
    def self_cpu_time_total(self) -> float:
        return sum(e.self_cpu_time_total for e in self)

    def table(
        self,
        sort_by: str | None = None,
        row_limit: int = 100,
        max_src_column_width: int = 75,
        max_name_column_width: int = 55,
        max_shapes_column_width: int = 80,
        header: str | None = None,
        top_level_events_only: bool = False,
    ) -> str:
        """Name, Self CPU %, Self CPU, CPU total %, CPU total, CPU time avg, (CPU Mem, Self CPU Mem),
        # of Calls (, Input Shapes), sorted by sort_by (descending) and cut to row_limit rows."""
        rows = list(self)
        if sort_by is not None:
            if sort_by not in SORT_KEYS:
                raise ValueError(f"table: sort_by={sort_by!r} is not one of {', '.join(SORT_KEYS)}")
            rows.sort(key=lambda e: getattr(e, sort_by), reverse=True)
        if row_limit is not None and row_limit > 0:
            rows = rows[:row_limit]
        total = self.self_cpu_time_total
        name_w = min(max([len(e.key) for e in rows] + [4]) + 4, max_name_column_width)
        heads = ["Name", "Self CPU %", "Self CPU", "CPU total %", "CPU total", "CPU time avg"]
        widths = [name_w] + [12] * 5
        if self.profile_memory:
            heads += ["CPU Mem", "Self CPU Mem"]
            widths += [12, 12]
        heads.append("# of Calls")
        widths.append(12)
        if self.group_by_input_shape:
            shapes_w = min(max([len(e.input_shapes) for e in rows] + [12]) + 4, max_shapes_column_width)
            heads.append("Input Shapes")
            widths.append(shapes_w)

        def line(cells: list) -> str:
            return "  ".join(f"{c:>{w}}" for c, w in zip(cells, widths)) + "  "

        def cut(s: str, w: int) -> str:
            return s if len(s) <= w - 3 else s[: w - 3] + "..."

        def pct(x: float) -> str:
            return f"{100 * x / total:.2f}%" if total > 0 else "0.00%"

        sep = "  ".join("-" * w for w in widths) + "  "
        out = [header] if header else []
        out += [sep, line(heads), sep]
        for e in rows:
            cells = [
                cut(e.key, name_w),
                pct(e.self_cpu_time_total),
                format_time(e.self_cpu_time_total),
                pct(e.cpu_time_total),
                format_time(e.cpu_time_total),
                format_time(e.cpu_time),
            ]
            if self.profile_memory:
                cells += [format_memory(e.cpu_memory_usage), format_memory(e.self_cpu_memory_usage)]
            cells.append(str(e.count))
            if self.group_by_input_shape:
                cells.append(cut(e.input_shapes, widths[-1]))
            out.append(line(cells))
        out += [sep, f"Self CPU time total: {format_time(total)}", ""]
        return "\n".join(out)

    def __str__(self) -> str:
        return self.table()
