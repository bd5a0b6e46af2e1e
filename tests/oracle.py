"""PyTorch as the test oracle: CI (CI=true) must have it; a user's plain test run may skip what needs it."""

from __future__ import annotations

import os

import pytest

INSTALL = "pip install torch==2.13.0"


def ci() -> bool:
    """Is this a CI run? (CI=true, as set by .ci/run and by CI services)"""
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def torch_or_skip():
    """The torch module; without it the test is skipped, or fails under CI=true (a missing oracle is an error)."""
    try:
        import torch
    except ImportError as e:
        if ci():
            pytest.fail(f"PyTorch, the parity oracle, cannot be imported under CI=true ({e}): {INSTALL}", pytrace=False)
        pytest.skip(f"PyTorch is not installed ({INSTALL} runs the parity tests)")
    return torch
