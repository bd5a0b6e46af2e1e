"""Thread count of NumPy's BLAS for the reference kernels (eager ops, backward(), scan bodies, the oracle).

Matmuls and convolutions run NumPy, whose OpenBLAS splits even a (100 x 50) @ (50 x 200) product over every core,
and its worker threads wait for work by polling. On a machine whose cores are also busy with anything else (a
compile thread, another program, PyTorch's OpenMP pool in the same process) a product then stalls for scheduler
time slices. Measured on a two-core machine: a small LSTM-step product 80 us on one thread against 1 ms on two; a
(16 x 3200) @ (3200 x 150) convolution-gradient product 165 ms against under 1 ms; switching the thread count
around each product was as bad, as it wakes and parks the workers every time. So before a heavy op (one with a
schedule) runs, NumPy's BLAS is set once to THREADS[0] threads: 1 by default, n after graphnn.set_num_threads(n)
(or with GRAPHNN_NUM_THREADS set). This is OpenBLAS's process-wide setting, so NumPy code of the same program
follows it; with another BLAS this does nothing. Results do not depend on it (GEMM splits rows and columns, not
sums).
"""

from __future__ import annotations

import ctypes

THREADS = [1]  # NumPy BLAS threads: 1 unless graphnn.set_num_threads / GRAPHNN_NUM_THREADS asked for more

_api = None  # (set_num_threads, get_num_threads) of the loaded OpenBLAS, or False when there is none

_NAMES = [  # NumPy's wheels export OpenBLAS with a scipy_ prefix and a 64 suffix (64-bit integers)
    ("scipy_openblas_set_num_threads64_", "scipy_openblas_get_num_threads64_"),
    ("openblas_set_num_threads64_", "openblas_get_num_threads64_"),
    ("openblas_set_num_threads", "openblas_get_num_threads"),
]


def _find():
    global _api
    api = False
    try:
        import numpy  # noqa: F401  (loads NumPy's BLAS)

        with open("/proc/self/maps") as f:
            paths = {line.split()[-1] for line in f if "openblas" in line.lower() and line.rstrip().endswith(".so")}
        for path in sorted(paths):
            lib = ctypes.CDLL(path)
            for set_name, get_name in _NAMES:
                if hasattr(lib, set_name) and hasattr(lib, get_name):
                    setter, getter = getattr(lib, set_name), getattr(lib, get_name)
                    setter.argtypes, setter.restype = [ctypes.c_int], None
                    getter.argtypes, getter.restype = [], ctypes.c_int
                    api = (setter, getter)
                    break
            if api:
                break
    except (OSError, AttributeError):
        api = False
    _api = api
    return api


def use_blas_threads() -> None:
    """Before a heavy reference kernel: NumPy's BLAS on THREADS[0] threads (set only when it differs)."""
    api = _api if _api is not None else _find()
    if api and api[1]() != THREADS[0]:
        api[0](THREADS[0])
