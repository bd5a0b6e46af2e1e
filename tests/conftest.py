"""Shared test set-up: one on-disk compile cache for the whole suite, and the tutorial's Net."""

import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("GRAPHNN_CACHE_DIR", os.path.join(ROOT, ".graphnn_cache"))
os.environ.setdefault("GRAPHNN_VERIFY_PASSES", "1")  # the IR verifier runs after every pass in the tests


def _usable_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


# When the test workers already keep every core busy (pytest-xdist sets the count before this file is imported), a
# forked compile helper and the oracle's OpenMP threads only compete with them: the program tests ran 12-18% faster
# without the helper (57.6 vs 65-70 s here), the parity tests 4-15% faster with PyTorch on one thread (44-49 vs
# 51-53 s). tests/test_parallel_compile.py turns the helper on for its own tests.
if int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "0")) >= _usable_cores():
    os.environ.setdefault("GRAPHNN_PARALLEL_COMPILE", "0")
    os.environ.setdefault("OMP_NUM_THREADS", "1")  # (read by PyTorch when it is imported, after this file)
sys.path.insert(0, os.path.join(ROOT, "tests"))


def pytest_configure(config):
    """Under CI=true the run stops at once when the oracle is missing, instead of skipping a quarter of the tests."""
    from oracle import INSTALL, ci

    if ci():
        try:
            import torch  # noqa: F401
        except ImportError as e:
            raise pytest.UsageError(f"CI=true but PyTorch, the parity oracle, cannot be imported ({e}): {INSTALL}")


@pytest.fixture
def torch():
    """PyTorch as a test oracle: tests using it skip without it, and fail under CI=true (see oracle.py)."""
    from oracle import torch_or_skip

    return torch_or_skip()


def pytest_xdist_auto_num_workers(config):
    """`-n auto`: one worker per core, at most 4 (each holds PyTorch and its own compiled kernels; beyond a few
    workers the shared on-disk compile cache and the MPI tests' own processes gain nothing)."""
    return max(1, min(_usable_cores(), 4))
