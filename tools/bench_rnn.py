"""Recurrent benchmark: compile time against sequence length, and compiled LSTM speed against PyTorch eager.

    python -m graphnn.tools.bench_rnn [--threads N] [--json FILE]

Compile time is measured with the disk cache off, for a training step (forward + backward) of a one-layer
LSTM at sequence lengths 10 and 1000: scans keep time as a loop, so the two should cost the same.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np


def _median_time(fn, reps: int) -> float:
    fn()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    os.environ["GRAPHNN_CACHE_DIR"] = "off"
    import graphnn
    import graphnn.nn as nn

    result = {"threads": args.threads, "hidden": args.hidden, "batch": args.batch}
    lstm = nn.LSTM(32, args.hidden)

    def compile_time(T: int) -> float:
        """First call (trace + compile forward and backward + run) minus a steady-state call (run)."""
        x = graphnn.randn(T, args.batch, 32)
        c = graphnn.compile(lstm)
        times = []
        for _ in range(2):
            t0 = time.perf_counter()
            out, _ = c(x)
            out.sum().backward()
            times.append(time.perf_counter() - t0)
        return times[0] - times[1]

    compile_time(5)  # warm up Python and LLVM themselves
    for T in (10, 1000):
        result[f"compile_s_T{T}"] = compile_time(T)
    result["compile_ratio_1000_vs_10"] = result["compile_s_T1000"] / result["compile_s_T10"]

    T = 100
    xs = np.random.default_rng(0).standard_normal((T, args.batch, 32)).astype(np.float32)
    c = graphnn.compile(lstm)

    def g_step():
        x = graphnn.tensor(xs, requires_grad=True)
        out, _ = c(x)
        out.sum().backward()

    result["graphnn_fwd_bwd_ms_T100"] = _median_time(g_step, 10) * 1000
    try:
        import torch
    except ImportError:
        torch = None
    if torch is not None:
        torch.set_num_threads(args.threads)
        t = torch.nn.LSTM(32, args.hidden)
        t.load_state_dict({k: torch.from_numpy(v.numpy().copy()) for k, v in lstm.state_dict().items()})

        def t_step():
            x = torch.tensor(xs, requires_grad=True)
            out, _ = t(x)
            out.sum().backward()

        result["torch_eager_fwd_bwd_ms_T100"] = _median_time(t_step, 10) * 1000
        result["graphnn_vs_torch"] = result["torch_eager_fwd_bwd_ms_T100"] / result["graphnn_fwd_bwd_ms_T100"]
    for k, v in result.items():
        print(f"{k:32s} {v:.4g}" if isinstance(v, float) else f"{k:32s} {v}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
    return result


if __name__ == "__main__":
    main()
