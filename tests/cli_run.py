"""`graphnn ARGS` run inside the test process, as `python -m graphnn.tools.cli ARGS` runs it: its exit code,
standard output and standard error. The program's contract is those three; a subprocess per call only adds a
second start-up (and a second compile of the same kernels) to every test. Tests of what only a real process
shows (a closed pipe, a full disk on stdout, the environment) still start one."""

from __future__ import annotations

import contextlib
import io
import os
import subprocess

import graphnn
from graphnn.tools import cli


def run_cli(*args: str, cwd: str | None = None) -> subprocess.CompletedProcess:
    """Exit code, stdout and stderr of `graphnn ARGS` (in `cwd`), leaving this process as it was: working
    directory and thread count restored."""
    out, err = io.StringIO(), io.StringIO()
    here, threads = os.getcwd(), graphnn.get_num_threads()
    try:
        if cwd is not None:
            os.chdir(cwd)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = cli.main(list(args))
            except SystemExit as e:  # argparse's --help, --version and usage errors, as the interpreter ends them
                code = e.code if isinstance(e.code, int) else 0 if e.code is None else 1
                if not isinstance(e.code, (int, type(None))):
                    print(e.code, file=err)
    finally:
        os.chdir(here)
        graphnn.set_num_threads(threads)
    return subprocess.CompletedProcess(["graphnn", *args], code, out.getvalue(), err.getvalue())
