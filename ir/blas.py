"""Thread count of NumPy's BLAS for the reference kernels (eager ops, backward(), scan bodies, the oracle).

Matmuls and convolutions run NumPy, whose OpenBLAS splits even a (100 x 50) @ (50 x 200) product over every
core. Waking threads costs more than such a product, and far more when the cores are busy with other work (a
tenfold slowdown was measured on a shared two-core machine). So a heavy op (one with a schedule) with a small
result runs on one BLAS thread, and a large one on `THREADS[0]` threads (graphnn.set_num_threads sets it, as it
sets compiled code's). OpenBLAS's thread-local setting (0.3.27 and later, what NumPy's wheels ship) is used;
with another BLAS this does nothing. Results do not depend on it (GEMM splits rows and columns, not sums).
"""

from __future__ import annotations

import contextlib
import ctypes

# A result smaller than this many elements is computed on one thread (PyTorch's intra-op grain size is 32768).
SERIAL_ELEMENTS = 1 << 15

THREADS = [1]  # BLAS threads for large results (graphnn.set_num_threads)

_set_local = None  # openblas_set_num_threads_local(n) -> previous, or False when unavailable


def _find() -> object:
    global _set_local
    fn = False
    try:
        import numpy  # noqa: F401  (loads NumPy's BLAS)

        with open("/proc/self/maps") as f:
            paths = {line.split()[-1] for line in f if "openblas" in line.lower() and line.rstrip().endswith(".so")}
        for path in sorted(paths):
            lib = ctypes.CDLL(path)
            if hasattr(lib, "openblas_set_num_threads_local"):
                fn = lib.openblas_set_num_threads_local
                fn.argtypes, fn.restype = [ctypes.c_int], ctypes.c_int
                break
    except (OSError, AttributeError):
        fn = False
    _set_local = fn
    return fn


@contextlib.contextmanager
def blas_threads(n: int):
    """Run the block with NumPy's BLAS on `n` threads (in this thread only)."""
    fn = _set_local if _set_local is not None else _find()
    if not fn:
        yield
        return
    previous = fn(n)
    try:
        yield
    finally:
        fn(previous)


def threads_for(elements: int) -> int:
    """BLAS threads for a heavy op whose result has `elements` elements."""
    return 1 if elements < SERIAL_ELEMENTS else THREADS[0]
