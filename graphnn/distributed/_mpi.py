"""The MPI process group behind graphnn.distributed: mpi4py sets it up and runs the eager collectives; compiled code
calls the entry points of the same MPI library (codegen/collective.py), with the handles mpi4py gives.

Safety: the group's communicators return errors instead of aborting (MPI's errors-return handler), so a failing call
is a Python exception; every wait for the other ranks is watched (a rank that waits longer than the timeout aborts
the job with a message naming the wait), and an uncaught exception on any rank prints its traceback and aborts the
job (MPI_Abort: mpirun then ends every rank), so no rank is left waiting for one that is gone.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import re
import sys

import numpy as np

from ._watchdog import Watchdog

INSTALL = (
    "it needs an MPI library and mpi4py: apt-get install openmpi-bin libopenmpi-dev, then "
    "pip install 'graphnn[distributed]' (or pip install mpi4py); run the program with mpirun -np N python train.py"
)


def load_mpi():
    """mpi4py's MPI module (initializing MPI), or a RuntimeError saying what to install."""
    try:
        from mpi4py import MPI
    except ImportError as e:
        raise RuntimeError(f"graphnn.distributed: backend 'mpi' is not available ({e}); {INSTALL}") from None
    except Exception as e:  # mpi4py present, but its MPI library cannot be loaded or started
        raise RuntimeError(
            f"graphnn.distributed: MPI could not be started ({type(e).__name__}: {e}); {INSTALL}"
        ) from None
    return MPI


def _libmpi_path() -> str | None:
    """The MPI library this process loaded (mpi4py's), else the system's libmpi."""
    try:
        with open("/proc/self/maps") as f:
            for line in f:
                path = line.split()[-1]
                if re.search(r"/lib(mpi|mpich)\.so[.\d]*$", path):
                    return path
    except OSError:
        pass
    return ctypes.util.find_library("mpi")


def _entry_points() -> dict:
    """Addresses of the MPI calls compiled code makes."""
    path = _libmpi_path()
    if path is None:
        raise RuntimeError("graphnn.distributed: cannot find the MPI library mpi4py uses (libmpi.so)")
    lib = ctypes.CDLL(path)
    names = {"iallreduce": "MPI_Iallreduce", "test": "MPI_Test", "wait": "MPI_Wait"}
    return {k: ctypes.cast(getattr(lib, n), ctypes.c_void_p).value for k, n in names.items()}


class ProcessGroup:
    """All the processes MPI started (MPI_COMM_WORLD), through communicators of their own: `comm` for the data,
    `meta` for the checks that ranks agree (so a rank that checks while another exchanges data waits, and the
    watchdog reports it, instead of mixing the two up)."""

    def __init__(self, MPI, timeout: float):
        self.MPI = MPI
        self.comm = MPI.COMM_WORLD.Dup()
        self.meta = MPI.COMM_WORLD.Dup()
        for c in (self.comm, self.meta):
            c.Set_errhandler(MPI.ERRORS_RETURN)
        self.rank, self.size = self.comm.Get_rank(), self.comm.Get_size()
        self.watchdog = Watchdog(timeout, self._expired)
        self._ops = {"sum": MPI.SUM, "max": MPI.MAX, "min": MPI.MIN}
        self.label = None  # what the collective in progress is for (watchdog messages)

    # -- the ir.collective protocol ----------------------------------------------------------------------------
    def allreduce(self, array: np.ndarray, op: str) -> None:
        req = self.comm.Iallreduce(self.MPI.IN_PLACE, array, self._ops[op])
        self.wait(req, self.label or f"all_reduce of {_describe(array)}")

    # -- waits ----------------------------------------------------------------------------------------------------
    def wait(self, request, what: str) -> None:
        """Complete an MPI request, aborting the job if it takes longer than the timeout."""
        with self.watchdog.watching(what):
            request.Wait()

    def watching(self, what: str):
        """A context manager watching a wait (a call of compiled code that communicates)."""
        return self.watchdog.watching(what)

    def gather(self, obj, what: str) -> list:
        """obj from every rank (small Python objects, on the check communicator)."""
        with self.watchdog.watching(what):
            return self.meta.allgather(obj)

    def _expired(self, what: str, timeout: float) -> None:
        sys.stderr.write(
            f"graphnn.distributed: rank {self.rank} of {self.size} waited {timeout:g} s in {what} for the other "
            f"ranks (GRAPHNN_DIST_TIMEOUT, or init_process_group(timeout=...)): a rank has died, hangs, or runs a "
            "different collective; aborting the job (MPI_Abort)\n"
        )
        sys.stderr.flush()
        try:
            self.MPI.COMM_WORLD.Abort(1)
        finally:
            os._exit(1)

    # -- compiled code ----------------------------------------------------------------------------------------
    def native_handles(self) -> dict:
        """What compiled code needs to call MPI (codegen.collective.FIELDS)."""
        MPI, h = self.MPI, self.MPI._handleof
        out = _entry_points()
        out.update(world_size=self.size, comm=h(self.comm), in_place=int(MPI.IN_PLACE))
        out.update(float32=h(MPI.FLOAT), float64=h(MPI.DOUBLE), int64=h(MPI.INT64_T))
        out.update(sum=h(MPI.SUM), max=h(MPI.MAX), min=h(MPI.MIN))
        return out

    def error_text(self, code: int) -> str:
        try:
            return self.MPI.Get_error_string(code)
        except Exception:
            return f"MPI error {code}"

    def abort(self, code: int = 1) -> None:
        self.MPI.COMM_WORLD.Abort(code)

    def free(self) -> None:
        self.watchdog.stop()
        for c in (self.comm, self.meta):
            try:
                c.Free()
            except Exception:
                pass


def _describe(a: np.ndarray) -> str:
    short = {"float32": "f32", "float64": "f64", "int64": "i64", "bool": "bool"}
    return f"{short.get(a.dtype.name, a.dtype.name)}{list(a.shape)}"


def install_excepthook(group: ProcessGroup):
    """An uncaught exception prints its traceback, then aborts the job (the other ranks would wait for this one), and
    so does sys.exit with a nonzero code; returns the previous hook."""
    previous = sys.excepthook

    def hook(tp, value, tb):
        previous(tp, value, tb)
        sys.stderr.write(
            f"graphnn.distributed: rank {group.rank} of {group.size} stopped with {tp.__name__}; aborting the job "
            "(MPI_Abort)\n"
        )
        sys.stderr.flush()
        group.abort(1)

    sys.excepthook = hook
    exit_ = sys.exit

    def exit(code=None):  # noqa: A001  (sys.exit(1) on one rank: the others would wait for it, as above)
        if code not in (None, 0):
            sys.stderr.write(
                f"graphnn.distributed: rank {group.rank} of {group.size} exits with {code!r}; aborting the job "
                "(MPI_Abort)\n"
            )
            sys.stderr.flush()
            group.abort(code if isinstance(code, int) else 1)
        exit_(code)

    sys.exit = exit
    return previous
