"""Without PyTorch, a user's test run skips the parity tests, and a CI run (CI=true) fails at once."""

import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _pytest_without_torch(tmp_path, ci: str):
    blocker = tmp_path / "block"
    blocker.mkdir()
    (blocker / "torch.py").write_text("raise ImportError('torch is blocked for this test')\n")
    env = dict(os.environ, CI=ci, PYTHONPATH=str(blocker) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-n",
            "0",
            "-p",
            "no:cacheprovider",
            "tests/test_ops_reference.py",
            "-k",
            "conv_ops_match_torch and 1d",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_missing_oracle_skips_for_users(tmp_path):
    proc = _pytest_without_torch(tmp_path, "")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "skipped" in proc.stdout and "passed" not in proc.stdout


def test_missing_oracle_fails_under_ci(tmp_path):
    proc = _pytest_without_torch(tmp_path, "true")
    assert proc.returncode != 0
    assert "parity oracle" in proc.stdout + proc.stderr
