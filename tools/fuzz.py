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


def _results(seeds: list, jobs: int):
    """(seed, report or None) for every seed, checked in `jobs` worker processes. A worker that dies (a signal in
    compiled code, say) breaks the pool: the seeds without a result are then replayed one per interpreter, so the
    crash is reported against its seed instead of hanging the run."""
    if jobs <= 1:
        yield from map(_worker, seeds)
        return
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor, as_completed
    from concurrent.futures.process import BrokenProcessPool

    # workers are replaced now and then: every compiled module stays loaded for the life of a process
    extra = {"max_tasks_per_child": 400} if sys.version_info >= (3, 11) else {}
    ctx = mp.get_context("spawn" if extra or sys.platform == "win32" else "fork")
    pending = {}
    with ProcessPoolExecutor(jobs, mp_context=ctx, **extra) as ex:
        futures = {ex.submit(_worker, s): s for s in seeds}
        for fut in as_completed(futures):
            try:
                yield fut.result()
            except BrokenProcessPool:
                pending[futures[fut][0]] = futures[fut]
    for seed, max_ops in sorted(pending.values()):
        yield seed, _replay_alone(seed, max_ops)


def _replay_alone(seed: int, max_ops: int) -> str | None:
    """Check one seed in its own interpreter: a crash (signal) is a report, not a lost worker."""
    import subprocess

    cmd = [sys.executable, "-m", "graphnn.tools.fuzz", "--replay", str(seed), "--max-ops", str(max_ops)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode == 0:
        return None
    if proc.returncode < 0:
        return (
            f"graph seed {seed}: the checking process died with signal {-proc.returncode}\n"
            f"{proc.stderr[-2000:]}replay: python -m graphnn.tools.fuzz --replay {seed}"
        )
    return proc.stdout[-4000:] + proc.stderr[-2000:]


def main(argv: list | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m graphnn.tools.fuzz", description=__doc__.split("\n")[0])
    p.add_argument("--count", type=int, default=500, help="number of graphs (default 500)")
    p.add_argument("--seed", type=int, default=0, help="seed of the first graph (graph i uses seed + i)")
    p.add_argument("--jobs", type=int, default=1, help="worker processes")
    p.add_argument("--max-ops", type=int, default=12, help="ops per graph at most")
    p.add_argument("--replay", type=int, metavar="SEED", help="check one graph, print it and its (shrunk) failure")
    args = p.parse_args(argv)
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
