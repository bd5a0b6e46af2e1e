"""Graph-to-graph passes. Each takes a Graph, rewrites it in place and returns it."""

from __future__ import annotations

from ..graph import Graph
from .manager import PassManager
from .conv_gemm import CONVOLUTIONS, conv_to_gemm
from .cse import cse
from .dce import dce
from .fold import fold_constants
from .scan_licm import hoist_scan_invariants
from .scan_merge import merge_scans
from .scan_outputs import simplify_scan_outputs
from .schedule import start_collectives_early
from .simplify import simplify

PIPELINE = (
    ("merge_scans", merge_scans),  # first: before other passes rewrite the scans' bodies differently
    ("simplify", simplify),
    ("fold_constants", fold_constants),
    ("cse", cse),
    ("hoist_scan_invariants", hoist_scan_invariants),
    ("simplify_scan_outputs", simplify_scan_outputs),
    ("dce", dce),
)


def optimize(graph: Graph, check: bool = False) -> Graph:
    """Run the standard pipeline to a fixpoint (passes expose work for each other); verify after each pass if
    `check` (or GRAPHNN_VERIFY_PASSES=1)."""
    return PassManager(PIPELINE, verify=check).run(graph)


def lower_for_codegen(graph: Graph, check: bool = False, optimized: bool = False) -> Graph:
    """Rewrites that only the compiled path wants (convolutions as GEMMs), then the standard pipeline, and
    collectives scheduled as early as their operands allow. `optimized`: the graph already is optimize()'s
    fixpoint, so without convolutions the pipeline would change nothing and only the schedule runs (a graph
    traced at each new batch size or sequence length skips a round of every pass)."""
    schedule = (("start_collectives_early", start_collectives_early),)
    if optimized and not any(n.op in CONVOLUTIONS for n in graph.nodes):
        return PassManager(schedule, verify=check).run(graph)
    passes = (("conv_to_gemm", conv_to_gemm),) + PIPELINE + schedule
    return PassManager(passes, verify=check).run(graph)


__all__ = [
    "lower_for_codegen",
    "conv_to_gemm",
    "cse",
    "dce",
    "fold_constants",
    "hoist_scan_invariants",
    "merge_scans",
    "simplify",
    "simplify_scan_outputs",
    "start_collectives_early",
    "optimize",
    "PIPELINE",
    "PassManager",
]
