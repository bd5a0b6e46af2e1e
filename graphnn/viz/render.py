"""Graphviz lookup and rendering: the one place that finds a `dot` program and runs it.

Order: $GRAPHNN_DOT (a path or command name), then `graphviz-pure` (a pip dependency of graphnn: a
self-contained Rust port of Graphviz's `dot`), then a system Graphviz `dot`.
"""

from __future__ import annotations

from graphnn.ir import config

import os
import shutil
import subprocess
import sys
import sysconfig

INSTALL_HINT = (
    "install it with `pip install graphviz-pure` (a dependency of graphnn: `pip install -e .`), "
    "or install Graphviz (`apt-get install graphviz`, `brew install graphviz`), "
    "or set GRAPHNN_DOT to a dot program"
)
FORMATS = ("svg", "png")


class RendererNotFound(RuntimeError):
    """No Graphviz `dot` program was found; the message says how to get one."""


class RenderError(RuntimeError):
    """The `dot` program failed on a graph."""


def _candidates() -> list:
    env = config.get("GRAPHNN_DOT")
    if env:
        return [env]
    scripts = [sysconfig.get_path("scripts"), os.path.dirname(sys.executable)]
    found = []
    for name in ("graphviz-pure", "dot"):
        found.append(shutil.which(name))
        found += [shutil.which(name, path=d) for d in scripts if d]
    return [p for p in found if p]


def find_dot() -> str:
    """Path of the Graphviz program to run; raises RendererNotFound naming how to install one."""
    env = config.get("GRAPHNN_DOT")
    for cand in _candidates():
        path = shutil.which(cand) or (cand if os.path.isfile(cand) and os.access(cand, os.X_OK) else None)
        if path:
            return path
    where = f"GRAPHNN_DOT={env!r} is not an executable program" if env else "no Graphviz `dot` program found"
    raise RendererNotFound(f"{where}: {INSTALL_HINT}")


def available() -> bool:
    """Is a Graphviz renderer available?"""
    try:
        find_dot()
    except RendererNotFound:
        return False
    return True


def render(dot_source: str, fmt: str, timeout: float = 120.0) -> bytes:
    """Lay out and render DOT text to 'svg' or 'png' bytes."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown image format {fmt!r}; expected one of {', '.join(FORMATS)}")
    dot = find_dot()
    try:
        proc = subprocess.run([dot, f"-T{fmt}"], input=dot_source.encode(), capture_output=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise RenderError(f"{dot} failed: {e}") from None
    if proc.returncode != 0 or not proc.stdout:
        err = proc.stderr.decode(errors="replace").strip().splitlines()
        raise RenderError(f"{dot} exited with {proc.returncode}: {err[-1] if err else 'no output'}")
    return proc.stdout
