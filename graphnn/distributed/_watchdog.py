"""A watchdog on waits for other processes: a rank that waits too long in one collective aborts the whole job.

A rank that died, hangs, or calls another collective than the others would otherwise leave them blocked forever
inside MPI. Every wait (an eager collective, a call of compiled code that communicates) is armed with a deadline;
a daemon thread fires `on_expire(what, seconds)` when one passes. MPI's blocking calls and ctypes calls release the
GIL, so the thread runs while the main thread waits.
"""

from __future__ import annotations

import contextlib
import threading
import time


class Watchdog:
    def __init__(self, timeout: float, on_expire):
        self.timeout = float(timeout)
        self._on_expire = on_expire
        self._cond = threading.Condition()
        self._armed: list = []  # stack of (deadline, what) for the waits in progress
        self._thread = None
        self._stopped = False

    @contextlib.contextmanager
    def watching(self, what: str):
        """Arm the watchdog for the body: `what` names the wait in the message if it expires."""
        if self.timeout == float("inf"):
            yield
            return
        entry = (time.monotonic() + self.timeout, what)
        with self._cond:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="graphnn-dist-watchdog", daemon=True)
                self._thread.start()
            self._armed.append(entry)
            self._cond.notify()
        try:
            yield
        finally:
            with self._cond:
                self._armed.remove(entry)
                self._cond.notify()

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify()

    def _run(self) -> None:
        with self._cond:
            while not self._stopped:
                if not self._armed:
                    self._cond.wait()
                    continue
                deadline, what = min(self._armed)
                left = deadline - time.monotonic()
                if left > 0:
                    self._cond.wait(left)
                    continue
                break
            else:
                return
        self._on_expire(what, self.timeout)
