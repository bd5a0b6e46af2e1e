"""Shared test set-up: one on-disk compile cache for the whole suite, and the tutorial's Net."""
import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("GRAPHNN_CACHE_DIR", os.path.join(ROOT, ".graphnn_cache"))
sys.path.insert(0, os.path.join(ROOT, "tests"))


@pytest.fixture
def torch():
    """PyTorch as a test oracle; tests using it skip cleanly when it is not installed."""
    return pytest.importorskip("torch")
