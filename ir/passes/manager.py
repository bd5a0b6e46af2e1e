"""Running passes: named, repeated to a fixpoint, and observable (print the IR after a pass, time each pass,
verify after each pass), in the manner of MLIR's -print-ir-after-all and TVM's pass instruments.

Settings (graphnn.ir.config): GRAPHNN_PRINT_IR_AFTER=all or pass names, GRAPHNN_PASS_TIMES=1,
GRAPHNN_VERIFY_PASSES=1 (the test suite sets it); `PassManager(..., verify=True)` forces verification.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field

from .. import config
from ..graph import Graph
from ..verify import VerifyError, verify


def _fingerprint(graph: Graph) -> tuple:
    """What a round of passes may change, by identity: the nodes, each node's inputs, attribute dict and outputs,
    and the graph's outputs (passes replace nodes and attribute dicts; they never edit an attribute dict in place).
    Equal fingerprints mean an unchanged graph, at a fraction of the cost of its structural hash."""
    nodes = tuple((id(n), id(n.attrs), len(n.outputs), *map(id, n.inputs)) for n in graph.nodes)
    return nodes, tuple(map(id, graph.outputs)), tuple(map(id, graph.inputs))


@dataclass
class PassManager:
    """Runs `passes` ((name, function) pairs; a function rewrites a Graph in place) in order, again and again until
    a round leaves the graph unchanged (its fingerprint), at most `max_rounds` times."""

    passes: tuple
    max_rounds: int = 8
    verify: bool = False
    times: dict = field(default_factory=dict)  # pass name -> seconds, summed over runs

    def run(self, graph: Graph) -> Graph:
        print_after = config.get("GRAPHNN_PRINT_IR_AFTER")
        check = self.verify or config.get("GRAPHNN_VERIFY_PASSES")
        before = _fingerprint(graph)
        for rnd in range(self.max_rounds):
            for name, fn in self.passes:
                t0 = time.perf_counter()
                fn(graph)
                self.times[name] = self.times.get(name, 0.0) + time.perf_counter() - t0
                if check:
                    try:
                        verify(graph)
                    except VerifyError as e:
                        raise VerifyError(f"after pass {name} (round {rnd + 1}): {e}") from None
                if "all" in print_after or name in print_after:
                    print(f"; IR after {name} (round {rnd + 1})\n{graph.to_text()}", file=sys.stderr)
            after = _fingerprint(graph)
            if after == before:
                break
            before = after
        if config.get("GRAPHNN_PASS_TIMES"):
            total = sum(self.times.values())
            rows = "\n".join(f";   {n:24s} {t * 1e3:8.2f} ms" for n, t in self.times.items())
            print(f"; pass times for {graph.name} ({total * 1e3:.2f} ms, {rnd + 1} rounds)\n{rows}", file=sys.stderr)
            self.times.clear()
        return graph
