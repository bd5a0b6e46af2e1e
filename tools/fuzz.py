"""Differential fuzzing of the compiler: `python -m graphnn.tools.fuzz --count 10000 [--seed S] [--jobs 2]`.

Graph i is built from seed S + i (see fuzz_gen) and checked by fuzz_check.check_case: pass invariants,
compiled code and gradients against the reference interpreter, finite differences on smooth graphs, and every
MODEL_EVERY-th graph also as a model through graphnn.compile. A failing graph is shrunk (delta debugging:
drop outputs, cut nodes off by turning their results into inputs, drop unused inputs, while the same stage
still fails) and printed in IR text form with the command that replays it: `--replay SEED`.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from graphnn.ir import interpret
from graphnn.ir.passes import dce

from . import fuzz_model  # noqa: F401  (imported by check_case on demand; loaded here before workers fork)
from .fuzz_check import Mismatch, check_case
from .fuzz_gen import FuzzCase, case_from_seed

MODEL_EVERY = 4


def failure(case: FuzzCase, model: bool = False) -> Mismatch | None:
    try:
        check_case(case, model=model)
    except Mismatch as m:
        return m
    return None


def _without_unused_inputs(case: FuzzCase) -> FuzzCase:
    used = {v.id for n in case.graph.nodes for v in n.inputs} | {v.id for v in case.graph.outputs}
    keep = [i for i, v in enumerate(case.graph.inputs) if v.id in used]
    if len(keep) == len(case.graph.inputs):
        return case
    g = case.graph.copy()
    g.inputs = [g.inputs[i] for i in keep]
    return FuzzCase(g, [case.arrays[i] for i in keep], case.profile, case.seed)


def _candidates(case: FuzzCase):
    """Smaller variants of a case: one output only, an intermediate value as the only output (earliest first),
    then each node's result turned into a graph input."""
    g = case.graph
    if len(g.outputs) > 1:
        for j in range(len(g.outputs)):
            c = g.copy()
            c.outputs = [c.outputs[j]]
            yield FuzzCase(c, list(case.arrays), case.profile, case.seed)
    for k, n in enumerate(g.nodes):
        for i, o in enumerate(n.outputs):
            if o in g.outputs and len(g.outputs) == 1:
                continue
            c = g.copy()
            c.outputs = [c.nodes[k].outputs[i]]
            dce(c)
            yield _without_unused_inputs(FuzzCase(c, list(case.arrays), case.profile, case.seed))
    env = None
    for k, n in enumerate(g.nodes):
        if "ref_error" in n.meta:
            continue
        if env is None:
            env = _values(case)
            if env is None:
                return
        c = g.copy()
        node = c.nodes[k]
        arrays = list(case.arrays)
        for o, orig in zip(node.outputs, n.outputs):
            if orig.id not in env:
                break
            v = c.add_input(o.type, f"cut{k}_{o.index}")
            arrays.append(env[orig.id])
            c.replace_uses(o, v)
        else:
            c.nodes.pop(k)
            dce(c)
            yield _without_unused_inputs(FuzzCase(c, arrays, case.profile, case.seed))


def _values(case: FuzzCase) -> dict | None:
    """Every value's reference array (to turn a node's result into an input with the same data)."""
    g = case.graph
    probe = g.copy()
    probe.outputs = [o for n in probe.nodes for o in n.outputs if "ref_error" not in n.meta]
    dce(probe)  # without the node whose kernel fails
    try:
        with np.errstate(all="ignore"):
            vals = interpret(probe, case.arrays)
    except Exception:  # noqa: BLE001
        return None
    orig = [o for n in g.nodes for o in n.outputs if "ref_error" not in n.meta]
    return {o.id: a for o, a in zip(orig, vals)}


def shrink(case: FuzzCase, still_fails, max_steps: int = 200) -> FuzzCase:
    """Greedy delta debugging: keep taking the first smaller variant for which still_fails(variant) holds."""
    case = _without_unused_inputs(case) if still_fails(_without_unused_inputs(case)) else case
    for _ in range(max_steps):
        for cand in _candidates(case):
            if still_fails(cand):
                case = cand
                break
        else:
            return case
    return case


def same_stage(stage: str, model: bool = False):
    key = stage.split(":")[0].split(" step")[0]
    return lambda c: (lambda m: m is not None and m.stage.split(":")[0].split(" step")[0] == key)(failure(c, model))


def run_seed(seed: int, max_ops: int = 12, model: bool | None = None, shrink_failures: bool = True) -> str | None:
    """Check graph `seed`; None when it passes, else a report (shrunk graph, failure, replay command)."""
    case = case_from_seed(seed, max_ops)
    model = seed % MODEL_EVERY == 0 if model is None else model
    m = failure(case, model)
    if m is None:
        return None
    small = shrink(case, same_stage(m.stage, model)) if shrink_failures else case
    m2 = failure(small, model) or m
    return (
        f"graph seed {seed} ({case.profile}, {len(case.graph.nodes)} nodes) fails: {m}\n"
        f"shrunk to {len(small.graph.nodes)} nodes, failing with: {m2}\n{small.text()}\n"
        f"replay: python -m graphnn.tools.fuzz --replay {seed}" + (" --max-ops %d" % max_ops if max_ops != 12 else "")
    )


def _worker(args) -> tuple:
    seed, max_ops = args
    try:
        return seed, run_seed(seed, max_ops)
    except Exception as e:  # noqa: BLE001  (a crash of the checker itself is reported, not fatal)
        return seed, (
            f"graph seed {seed}: checker crashed: {type(e).__name__}: {e}\n"
            f"replay: python -m graphnn.tools.fuzz --replay {seed}"
        )


CHUNK = 200  # seeds per worker process (a fresh process for each chunk: compiled code stays loaded for its life)


def _results(seeds: list, jobs: int):
    """(seed, report or None) for every seed, checked by up to `jobs` worker processes, each running a chunk of
    seeds and reporting each one as a line. A worker that dies (a signal in compiled code, say) is reported against
    the seed it was checking, and the rest of its chunk goes to a new worker: a crash never hangs the run."""
    if jobs <= 1:
        yield from map(_worker, seeds)
        return
    import json
    import select
    import subprocess

    todo = [seeds[i : i + CHUNK] for i in range(0, len(seeds), CHUNK)]
    running = {}  # pipe fd -> (process, chunk, results so far)
    while todo or running:
        while todo and len(running) < jobs:
            chunk = todo.pop(0)
            cmd = [
                sys.executable,
                "-m",
                "graphnn.tools.fuzz",
                "--worker",
                ",".join(str(s) for s, _ in chunk),
                "--max-ops",
                str(chunk[0][1]),
            ]
            proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
            running[proc.stdout.fileno()] = (proc, chunk, [])
        ready, _, _ = select.select(list(running), [], [])
        for fd in ready:
            proc, chunk, got = running[fd]
            line = proc.stdout.readline()
            if line:
                seed, report = json.loads(line)
                got.append(seed)
                yield seed, report
                continue
            code = proc.wait()  # end of output: the worker finished or died
            del running[fd]
            left = chunk[len(got) :]
            if left and code != 0:
                seed = left[0][0]
                yield (
                    seed,
                    (
                        f"graph seed {seed}: the worker checking it died (exit code {code}"
                        + (f", signal {-code}" if code < 0 else "")
                        + ")\n"
                        f"replay: python -m graphnn.tools.fuzz --replay {seed}"
                    ),
                )
                left = left[1:]
            if left:
                todo.insert(0, left)


def _run_worker(seeds: list, max_ops: int) -> int:
    """--worker: check the given seeds, one JSON line [seed, report] per seed on stdout."""
    import json

    for seed in seeds:
        print(json.dumps(_worker((seed, max_ops))), flush=True)
    return 0


def main(argv: list | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m graphnn.tools.fuzz", description=__doc__.split("\n")[0])
    p.add_argument("--count", type=int, default=500, help="number of graphs (default 500)")
    p.add_argument("--seed", type=int, default=0, help="seed of the first graph (graph i uses seed + i)")
    p.add_argument("--jobs", type=int, default=1, help="worker processes")
    p.add_argument("--max-ops", type=int, default=12, help="ops per graph at most")
    p.add_argument("--replay", type=int, metavar="SEED", help="check one graph, print it and its (shrunk) failure")
    p.add_argument("--worker", metavar="SEEDS", help=argparse.SUPPRESS)  # internal: a worker process of --jobs N
    args = p.parse_args(argv)
    if args.worker is not None:
        return _run_worker([int(s) for s in args.worker.split(",")], args.max_ops)
    if args.replay is not None:
        case = case_from_seed(args.replay, args.max_ops)
        print(case.text())
        report = run_seed(args.replay, args.max_ops)
        print(report or f"graph seed {args.replay}: ok")
        return 1 if report else 0
    seeds = [(args.seed + i, args.max_ops) for i in range(args.count)]
    t0, done, failures = time.perf_counter(), 0, []
    for seed, report in _results(seeds, args.jobs):
        done += 1
        if report:
            failures.append(seed)
            print(report, flush=True)
        if done % 250 == 0 or done == args.count:
            el = time.perf_counter() - t0
            print(f"  {done}/{args.count} graphs, {len(failures)} mismatches, {el:.0f} s", file=sys.stderr, flush=True)
    el = time.perf_counter() - t0
    print(
        f"{args.count} graphs, {len(failures)} mismatches ({el:.0f} s, seeds {args.seed}..{args.seed + args.count - 1})"
        + (f"; failing seeds: {' '.join(map(str, sorted(failures)))}" if failures else "")
    )
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
