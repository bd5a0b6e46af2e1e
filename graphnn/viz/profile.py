"""`graphnn viz --profile`: per-kernel cycles of a fused stage, from the compiled code's cycle counters.

The stages are traced and compiled inside `profiling()` (GRAPHNN_PROFILE=1: the code counts the cycles of each
kernel call); `kernel_cycles` then runs the compiled model a number of times and maps the counters, which are
named `<entry>_k<i>_<op>` after the i-th non-constant kernel, back to the fusion plan's groups.
"""

from __future__ import annotations

import contextlib
import os
import re

from graphnn.ir.registry import family

from graphnn.viz.stages import Stage

_LABEL = re.compile(r"_(?:k(\d+)_\w+|scan(\d+) \(with its body\))")


@contextlib.contextmanager
def profiling():
    """Within: graphs compiled now count cycles per kernel (GRAPHNN_PROFILE=1)."""
    before = os.environ.get("GRAPHNN_PROFILE")
    os.environ["GRAPHNN_PROFILE"] = "1"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("GRAPHNN_PROFILE", None)
        else:
            os.environ["GRAPHNN_PROFILE"] = before


def kernel_cycles(st: Stage, runs: int) -> dict:
    """{plan group index: cycles} over `runs` calls of the stage's compiled code (compiled under `profiling()`)."""
    if st.plan is None or st.rerun is None or st.compiled is None:
        raise ValueError(f"stage {st.name} has no compiled code to profile")
    with profiling():
        st.rerun()  # warm up; a call that traces again (e.g. forward hooks were removed since) compiles here
        native = st.compiled.last.native
        native.profile(reset=True)
        for _ in range(runs):
            st.rerun()
    kernels = [i for i, g in enumerate(st.plan.groups) if family(g.root.producer) != "constant"]
    out: dict = {}
    for label, cycles, _calls in native.profile():
        m = _LABEL.fullmatch(label[len(native.name) :]) if label.startswith(native.name) else None
        if m is None:
            continue  # a collective's wait, a scan body's own kernels (counted in their scan)
        gi = int(m.group(1) or m.group(2))
        if gi < len(kernels):
            out[kernels[gi]] = out.get(kernels[gi], 0) + cycles
    return out
