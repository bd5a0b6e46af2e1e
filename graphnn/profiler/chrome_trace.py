"""Chrome trace JSON (chrome://tracing, Perfetto, TensorBoard's profiler plugin) of recorded events."""

from __future__ import annotations

import gzip
import json
import os
import socket
import time

from .recorder import Event


def trace_dict(events: list[Event], t0_ns: int, t0_epoch_us: float) -> dict:
    """{'traceEvents': complete ('X') events in microseconds since the epoch, ...} of the closed events."""
    pid = os.getpid()
    out = []
    for i, e in enumerate(events):
        if e.end_ns < 0:
            continue
        args = {"External id": i, "Thread CPU time (us)": round(e.cpu_ns / 1e3, 3)}
        if e.parent is not None:
            args["Parent id"] = e.parent
        if e.shapes:
            args["Input Dims"] = e.shapes
        if e.bytes:
            args["Bytes"] = e.bytes
        if e.traced:
            args["Traced"] = True
        ts = t0_epoch_us + (e.start_ns - t0_ns) / 1e3
        out.append(
            {
                "ph": "X",
                "cat": e.cat,
                "name": e.name,
                "pid": pid,
                "tid": e.tid,
                "ts": round(ts, 3),
                "dur": round(e.dur_ns / 1e3, 3),
                "args": args,
            }
        )
    return {"schemaVersion": 1, "displayTimeUnit": "ms", "traceEvents": out, "deviceProperties": []}


def write_json(obj: dict, path: str) -> None:
    """Write obj as JSON (gzip-compressed when path ends with .gz), whole or not at all."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    data = json.dumps(obj).encode()
    if path.endswith(".gz"):
        data = gzip.compress(data)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def tensorboard_trace_handler(dir_name: str, worker_name: str | None = None, use_gzip: bool = False):
    """on_trace_ready handler: writes <dir_name>/<worker>.<ms>.pt.trace.json[.gz] (worker: host_pid)."""
    worker = worker_name or f"{socket.gethostname()}_{os.getpid()}"

    def handler(prof) -> None:
        name = f"{worker}.{int(time.time() * 1000)}.pt.trace.json" + (".gz" if use_gzip else "")
        prof.export_chrome_trace(os.path.join(dir_name, name))

    return handler
