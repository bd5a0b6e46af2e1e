"""`graphnn bench --distributed`: data-parallel training steps on N ranks x 1 thread against 1 rank x 1 thread.

Two workloads, at the same batch per rank: the MLP training step of `graphnn bench` (784-512-512-10, batch 128) and
a small GPT (token and position embeddings, 2 pre-norm causal transformer layers of width 128, 4 heads, a linear
head; 8 sequences of 64 tokens), both SGD with momentum, compiled. The one-rank step runs in its own process without
a process group; the N-rank step runs under `mpirun -np N` with DistributedDataParallel. Reported per workload:
throughput (samples/s over all ranks), scaling efficiency (one rank's step time / the N-rank step time: 1 means the
gradient exchange costs nothing), the allreduce time of the step's buckets on their own (MPI_Allreduce of the same
sizes), and how much of it the backward hides: the step with each bucket awaited right after its start
(GRAPHNN_DIST_OVERLAP=0) minus the step as compiled by default, over the allreduce time. From the allreduce of one
byte (latency) and of the largest bucket (bandwidth), a ring-allreduce model gives what N hosts would take, and the
scaling efficiency that leaves: the fastest one-rank step over itself plus the allreduce's unhidden part.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

WARMUP, REPS = 3, 30


# -- workloads ---------------------------------------------------------------------------------------------------
def _mlp(rng):
    import graphnn
    import graphnn.nn as nn

    model = nn.Sequential(nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 512), nn.ReLU(), nn.Linear(512, 10))
    x = graphnn.from_numpy(rng.standard_normal((128, 784)).astype(np.float32))
    y = graphnn.from_numpy(rng.integers(0, 10, 128))
    return model, (x, y), lambda out, y: nn.functional.cross_entropy(out, y), 128


def _gpt(rng, vocab: int = 256, block: int = 64, width: int = 128, heads: int = 4, layers: int = 2, batch: int = 8):
    import graphnn
    import graphnn.nn as nn

    class GPT(nn.Module):
        def __init__(self):
            super().__init__()
            self.tok, self.pos = nn.Embedding(vocab, width), nn.Embedding(block, width)
            self.blocks = nn.ModuleList(
                nn.TransformerEncoderLayer(width, heads, 4 * width, 0.0, "gelu", batch_first=True, norm_first=True)
                for _ in range(layers)
            )
            self.norm, self.head = nn.LayerNorm(width), nn.Linear(width, vocab, bias=False)
            self.register_buffer("mask", nn.Transformer.generate_square_subsequent_mask(block), persistent=False)

        def forward(self, idx):
            x = self.tok(idx) + self.pos(graphnn.arange(idx.shape[1]))
            for b in self.blocks:
                x = b(x, src_mask=self.mask, is_causal=True)
            return self.head(self.norm(x))

    idx = graphnn.from_numpy(rng.integers(0, vocab, (batch, block)))
    target = graphnn.from_numpy(rng.integers(0, vocab, (batch, block)))
    loss = lambda out, y: nn.functional.cross_entropy(out.reshape(-1, vocab), y.reshape(-1))
    return GPT(), (idx, target), loss, batch


WORKLOADS = {"mlp": ("MLP 784-512-512-10, batch 128/rank", _mlp), "gpt": ("GPT 2x128, 8x64 tokens/rank", _gpt)}


def _median_steps(runs: dict, barrier=None) -> dict:
    """Median seconds per call of each compiled step in `runs` ({name: (step, batch)}), timed in turns (one call of
    each per round, the ranks lined up by a barrier before each call) so that a change in the machine's load
    touches every variant alike."""
    for step, batch in runs.values():
        for _ in range(WARMUP):
            step(*batch)
    times: dict = {k: [] for k in runs}
    for _ in range(REPS):
        for k, (step, batch) in runs.items():
            if barrier is not None:
                barrier()
            t0 = time.perf_counter()
            step(*batch)
            times[k].append(time.perf_counter() - t0)
    out = {k: float(np.median(v)) for k, v in times.items()}
    out.update({k.replace("step_s", "min_s"): float(np.min(v)) for k, v in times.items()})
    return out


def _compiled_step(make, wrap):
    import graphnn

    graphnn.manual_seed(0)
    model, batch, loss_fn, n = make(np.random.default_rng(0))
    model = wrap(model)
    opt = graphnn.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

    def step(*b):
        opt.zero_grad()
        loss = loss_fn(model(b[0]), b[1])
        loss.backward()
        opt.step()
        return loss

    return graphnn.compile(step), batch, n, model


# -- the processes ------------------------------------------------------------------------------------------------
def _single(names: list) -> dict:
    out = {}
    for name in names:
        step, batch, n, _ = _compiled_step(WORKLOADS[name][1], lambda m: m)
        t = _median_steps({"step_s": (step, batch)})
        out[name] = {"step_s": t["step_s"], "min_s": t["min_s"], "batch": n}
    return out


def _allreduce_s(pg, nbytes: int) -> float:
    """Median time of MPI_Allreduce (sum) of nbytes of float32 over the process group."""
    from mpi4py import MPI

    buf = np.ones(max(1, nbytes // 4), np.float32)
    times = []
    for i in range(WARMUP + REPS):
        pg.comm.Barrier()
        t0 = time.perf_counter()
        pg.comm.Allreduce(MPI.IN_PLACE, buf, MPI.SUM)
        if i >= WARMUP:
            times.append(time.perf_counter() - t0)
    return float(np.median(times))


def _distributed(names: list) -> dict:
    """Per workload, on every rank: the DDP step as compiled by default, the DDP step awaiting each bucket at once
    (GRAPHNN_DIST_OVERLAP=0), and the step without DDP (every rank computing, nothing exchanged: the machine's own
    slowdown from running N processes), timed in turns; then MPI_Allreduce of the buckets' sizes alone."""
    import graphnn.distributed as dist
    from graphnn.nn.parallel import DistributedDataParallel

    dist.init_process_group("mpi")
    pg = dist._default()
    ddp = lambda m: DistributedDataParallel(m, broadcast_buffers=False)  # (the GPT's one buffer, its mask, is fixed)
    out = {"world": pg.size, "latency_s": _allreduce_s(pg, 4)}
    for name in names:
        make, runs = WORKLOADS[name][1], {}
        for key, overlap, wrap in (
            ("step_s", "1", ddp),
            ("blocking_step_s", "0", ddp),
            ("no_exchange_step_s", "1", lambda m: m),
        ):
            os.environ["GRAPHNN_DIST_OVERLAP"] = overlap
            step, batch, n, model = _compiled_step(make, wrap)
            step(*batch)  # traced and compiled now, with this setting
            runs[key] = (step, batch)
            if key == "step_s":
                sizes = [sum(p.numel() * p.element_size() for _, p in b) for b in model._buckets]
        del os.environ["GRAPHNN_DIST_OVERLAP"]
        row = _median_steps(runs, dist.barrier)
        row.update(batch=n, buckets=sizes, allreduce_s=sum(_allreduce_s(pg, s) for s in sizes))
        row["largest_bucket_s"] = _allreduce_s(pg, max(sizes))
        out[name] = row
    dist.destroy_process_group()
    return out


def worker(argv: list) -> int:
    """`python -m graphnn.tools.bench_dist single|distributed OUT.json NAME...` (one process / every rank)."""
    mode, path, names = argv[0], argv[1], argv[2:]
    import graphnn

    graphnn.set_num_threads(1)
    res = _single(names) if mode == "single" else _distributed(names)
    rank = int(os.environ.get("OMPI_COMM_WORLD_RANK", os.environ.get("PMI_RANK", "0")))
    if rank == 0:
        with open(path, "w") as f:
            json.dump(res, f)
    return 0


# -- the report ---------------------------------------------------------------------------------------------------
def ring_allreduce_s(nbytes: float, hosts: int, bandwidth: float, latency: float) -> float:
    """A ring allreduce of nbytes over `hosts`: 2 (N - 1) steps, each a message of nbytes / N and its latency."""
    if hosts < 2:
        return 0.0
    return 2 * (hosts - 1) * (latency + nbytes / hosts / bandwidth)


def report(single: dict, dist: dict, out=sys.stdout) -> dict:
    world = dist["world"]
    rows = {}
    out.write(
        f"data-parallel training steps, {world} ranks x 1 thread against 1 rank x 1 thread (same batch per rank)\n"
    )
    for name, d in ((k, v) for k, v in dist.items() if isinstance(v, dict)):
        s = single[name]
        eff = s["step_s"] / d["step_s"]
        hidden = min(max((d["blocking_step_s"] - d["step_s"]) / d["allreduce_s"], 0.0), 1.0)
        nbytes = sum(d["buckets"])
        bw = max(d["buckets"]) / max(d["largest_bucket_s"] - 2 * dist["latency_s"], 1e-9)  # two ranks: S / BW + 2a
        rows[name] = dict(
            one_rank_step_s=s["step_s"],
            step_s=d["step_s"],
            blocking_step_s=d["blocking_step_s"],
            no_exchange_step_s=d["no_exchange_step_s"],
            throughput_1=s["batch"] / s["step_s"],
            throughput_n=world * d["batch"] / d["step_s"],
            efficiency=eff,
            allreduce_s=d["allreduce_s"],
            hidden=hidden,
            bucket_bytes=d["buckets"],
            bandwidth=bw,
        )
        r = rows[name]
        out.write(
            f"{WORKLOADS[name][0]}\n"
            f"  1 rank : {s['step_s'] * 1e3:8.2f} ms/step (min {s['min_s'] * 1e3:.2f}) "
            f"{r['throughput_1']:8.0f} samples/s\n"
            f"  {world} ranks: {d['step_s'] * 1e3:8.2f} ms/step (min {d['min_s'] * 1e3:.2f}) "
            f"{r['throughput_n']:8.0f} samples/s   scaling efficiency {eff:.0%} (from the minimums: "
            f"{s['min_s'] / d['min_s']:.0%})\n"
            f"  {world} ranks without DDP (each computing alone, nothing exchanged): "
            f"{d['no_exchange_step_s'] * 1e3:.2f} ms/step (min {d['no_exchange_min_s'] * 1e3:.2f}): the exchange "
            f"costs {(d['step_s'] - d['no_exchange_step_s']) * 1e3:+.2f} ms/step\n"
            f"  allreduce of the gradients ({len(d['buckets'])} bucket(s), {nbytes / 2**20:.2f} MiB): "
            f"{d['allreduce_s'] * 1e3:.3f} ms alone; step with each bucket awaited at once "
            f"{d['blocking_step_s'] * 1e3:.2f} ms (min {d['blocking_min_s'] * 1e3:.2f}): {hidden:.0%} of the allreduce "
            "hidden by the backward\n"
            f"  measured: latency {dist['latency_s'] * 1e6:.1f} us, bandwidth {bw / 1e9:.2f} GB/s\n"
        )
        for label, bwn, lat in (("these links", bw, dist["latency_s"]), ("10 Gb/s Ethernet", 1.25e9, 20e-6)):
            cells = []
            for hosts in (2, 4, 8, 16, 64):
                t = ring_allreduce_s(nbytes, hosts, bwn, lat)
                step = s["min_s"] + (1 - hidden) * t  # the fastest one-rank step: the machine's speed
                cells.append(f"{hosts} hosts {t * 1e3:.2f} ms ({s['min_s'] / step:.0%})")
            out.write(f"  ring model, {label}: " + ", ".join(cells) + "\n")
    return {"world": world, "workloads": rows}


def main(args) -> int:
    """Run both sides as subprocesses (1 rank; N ranks under mpirun) and print the comparison."""
    names = args.only or list(WORKLOADS)
    bad = [n for n in names if n not in WORKLOADS]
    if bad:
        print(f"graphnn bench --distributed: unknown workloads {bad} (known: {list(WORKLOADS)})", file=sys.stderr)
        return 2
    if shutil.which("mpirun") is None:
        print("graphnn bench --distributed needs mpirun: apt-get install openmpi-bin libopenmpi-dev", file=sys.stderr)
        return 2
    env = dict(os.environ, GRAPHNN_NUM_THREADS="1", OMP_NUM_THREADS="1")
    here = [sys.executable, "-m", "graphnn.tools.bench_dist"]
    with tempfile.TemporaryDirectory() as tmp:
        paths = [os.path.join(tmp, f"{m}.json") for m in ("single", "distributed")]
        mpirun = ["mpirun", "-np", str(args.ranks), "--oversubscribe"]
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            mpirun.append("--allow-run-as-root")
        for cmd in (here + ["single", paths[0]] + names, mpirun + here + ["distributed", paths[1]] + names):
            proc = subprocess.run(cmd, env=env)
            if proc.returncode:
                print(f"graphnn bench --distributed: {' '.join(cmd[:4])} ... failed", file=sys.stderr)
                return 1
        single, dist = (json.load(open(p)) for p in paths)
    results = report(single, dist)
    if args.json:
        from .bench import _write_json

        _write_json(args.json, results)
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(worker(sys.argv[1:]))
