"""torch.multiprocessing: Python's multiprocessing, through which tensors in shared memory (Tensor.share_memory_,
Module.share_memory) reach child processes as the same memory (graphnn.core.shared_memory), and PyTorch's spawn().

Several processes can train one shared model (Hogwild): each process's eager optimizer steps write the shared
parameters in place. A compiled training step (graphnn.compile) works in each process as well: it is traced and
compiled per process (the compile cache on disk is shared)."""

from __future__ import annotations

import multiprocessing as _mp
from multiprocessing import *  # noqa: F403 (Process, Queue, set_start_method, get_context, ...)
from multiprocessing import get_context, get_start_method, set_start_method  # noqa: F401

from graphnn.core.shared_memory import register_reductions

__all__ = list(_mp.__all__) + ["spawn", "start_processes", "ProcessRaisedException", "ProcessExitedException",
                                "get_sharing_strategy", "set_sharing_strategy", "get_all_sharing_strategies"]  # fmt: skip

_STRATEGIES = {"file_system"}  # named POSIX shared memory: one strategy
_strategy = ["file_system"]


def get_all_sharing_strategies() -> set:
    return set(_STRATEGIES)


def get_sharing_strategy() -> str:
    return _strategy[0]


def set_sharing_strategy(new_strategy: str) -> None:
    """PyTorch's 'file_descriptor' and 'file_system' both map to named shared-memory segments here."""
    if new_strategy not in ("file_system", "file_descriptor"):
        raise ValueError(f"set_sharing_strategy: unknown strategy {new_strategy!r}")
    _strategy[0] = new_strategy


class ProcessRaisedException(Exception):
    """A process started by spawn() raised: its traceback is the message."""

    def __init__(self, msg: str, error_index: int, error_pid: int):
        super().__init__(msg)
        self.error_index, self.pid = error_index, error_pid


class ProcessExitedException(Exception):
    """A process started by spawn() exited with a nonzero code."""

    def __init__(self, msg: str, error_index: int, error_pid: int, exit_code: int):
        super().__init__(msg)
        self.error_index, self.pid, self.exit_code = error_index, error_pid, exit_code


def _wrap(fn, i: int, args: tuple, error_queue) -> None:
    import traceback

    try:
        fn(i, *args)
    except KeyboardInterrupt:
        pass
    except Exception:  # noqa: BLE001 (sent to the parent, which raises it)
        error_queue.put(traceback.format_exc())
        raise SystemExit(1) from None


class ProcessContext:
    """The processes spawn() started; join() waits for all and raises if one failed."""

    def __init__(self, processes: list, error_queues: list):
        self.processes, self.error_queues = processes, error_queues

    def pids(self) -> list:
        return [p.pid for p in self.processes]

    def join(self, timeout=None) -> bool:
        for p in self.processes:
            p.join(timeout)
        if any(p.is_alive() for p in self.processes):
            return False
        for i, (p, q) in enumerate(zip(self.processes, self.error_queues)):
            if not q.empty():
                raise ProcessRaisedException(
                    f"\n\n-- Process {i} terminated with the following error:\n{q.get()}", i, p.pid
                )
            if p.exitcode != 0:
                raise ProcessExitedException(
                    f"process {i} terminated with exit code {p.exitcode}", i, p.pid, p.exitcode
                )
        return True


SpawnContext = ProcessContext


def start_processes(fn, args=(), nprocs: int = 1, join: bool = True, daemon: bool = False, start_method="spawn"):
    """Run fn(i, *args) in nprocs processes (i = 0 .. nprocs - 1); with join, wait and raise on a failure."""
    ctx = get_context(start_method)
    processes, queues = [], []
    for i in range(nprocs):
        q = ctx.SimpleQueue()
        p = ctx.Process(target=_wrap, args=(fn, i, args, q), daemon=daemon)
        p.start()
        processes.append(p)
        queues.append(q)
    context = ProcessContext(processes, queues)
    if not join:
        return context
    while not context.join():
        pass
    return None


def spawn(fn, args=(), nprocs: int = 1, join: bool = True, daemon: bool = False, start_method="spawn"):
    return start_processes(fn, args, nprocs, join, daemon, start_method)


register_reductions()
