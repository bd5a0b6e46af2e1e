"""Recurrent benchmark: compile time against sequence length, and compiled LSTM, GRU and RNN speed against PyTorch eager.

    python -m graphnn.tools.bench_rnn [--threads N] [--reps N] [--json FILE]

Compile time is measured with the disk cache off, for a training step (forward + backward) of a one-layer
LSTM at sequence lengths 10 and 1000: scans keep time as a loop, so the two should cost the same. Speed is a
training step's forward + backward (input requiring grad, loss = sum of the outputs) of one layer at T=100, with
--threads for graphnn and PyTorch alike.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np


MODES = ("LSTM", "GRU", "RNN")


def _speed(mode: str, g_model, xs: np.ndarray, torch, reps: int) -> dict:
    """Forward + backward time (ms) of one layer, compiled by graphnn and in PyTorch eager (same weights), with
    the two runtimes' steps interleaved so that both see the same machine load."""
    import graphnn

    c = graphnn.compile(g_model)

    def g_step():
        x = graphnn.tensor(xs, requires_grad=True)
        out, _ = c(x)
        out.sum().backward()

    steps = {"graphnn": g_step}
    if torch is not None:
        t = getattr(torch.nn, mode)(xs.shape[-1], g_model.hidden_size)
        t.load_state_dict({k: torch.from_numpy(v.numpy().copy()) for k, v in g_model.state_dict().items()})

        def t_step():
            x = torch.tensor(xs, requires_grad=True)
            out, _ = t(x)
            out.sum().backward()

        steps["torch_eager"] = t_step
    times = {name: [] for name in steps}
    for fn in steps.values():
        fn()  # (compiles, warms up)
    for _ in range(reps):
        for name, fn in steps.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    out = {f"{mode}_{name}_fwd_bwd_ms_T{len(xs)}": float(np.median(v)) * 1000 for name, v in times.items()}
    if torch is not None:
        out[f"{mode}_graphnn_vs_torch"] = float(np.median(times["torch_eager"]) / np.median(times["graphnn"]))
    return out


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--reps", type=int, default=30, help="timed steps per runtime and layer (median)")
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    os.environ["GRAPHNN_CACHE_DIR"] = "off"
    import graphnn
    import graphnn.nn as nn

    graphnn.set_num_threads(args.threads)
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

    try:
        import torch
    except ImportError:
        torch = None
    if torch is not None:
        torch.set_num_threads(args.threads)
    T = 100
    xs = np.random.default_rng(0).standard_normal((T, args.batch, 32)).astype(np.float32)
    for mode in MODES:
        g_model = lstm if mode == "LSTM" else getattr(nn, mode)(32, args.hidden)
        result.update(_speed(mode, g_model, xs, torch, args.reps))
    for k, v in result.items():
        print(f"{k:32s} {v:.4g}" if isinstance(v, float) else f"{k:32s} {v}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
    return result


if __name__ == "__main__":
    main()
