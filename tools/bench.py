"""`graphnn bench`: graphnn (compiled) against PyTorch eager, torch.compile and ONNX Runtime, in one process.

Each workload runs a warm-up, then repetitions; the table gives the median and minimum per call and graphnn's
speed as a ratio to each peer (peer time / graphnn time: above 1 means graphnn is faster).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np


def timeit(fn, reps: int, warmup_s: float = 0.05, min_s: float = 0.3, budget_s: float = 3.0) -> dict:
    """Median and minimum per call: after a short pause (other runtimes' spinning threads go idle) and a warm-up,
    at least `reps` calls and at least `min_s` seconds of calls (so microsecond workloads get thousands),
    stopping after `budget_s` once 5 calls are in; also the first call's time (tracing and compiling, if any)."""
    time.sleep(0.2)
    start = time.perf_counter()
    fn()
    first = time.perf_counter() - start
    while time.perf_counter() - start < warmup_s:
        fn()
    times = []
    start = time.perf_counter()
    while True:
        t0 = time.perf_counter()
        fn()
        t1 = time.perf_counter()
        times.append(t1 - t0)
        elapsed = t1 - start
        if (len(times) >= reps and elapsed >= min_s) or (elapsed > budget_s and len(times) >= 5):
            break
    return {"median_s": float(np.median(times)), "min_s": float(np.min(times)), "reps": len(times), "first_s": first}


# -- graphnn workloads -----------------------------------------------------------------------------------------
def _g_lenet_inference(batch: int):
    import graphnn
    from graphnn.tools.tutorial_net import Net

    graphnn.manual_seed(0)
    net = Net().eval()
    c = graphnn.compile(net)
    x = graphnn.randn(batch, 1, 32, 32)

    def run():
        with graphnn.no_grad():
            c(x)

    return run, net


def _g_train(model, x, y, lr=0.01, step_only: bool = False):
    """A call of the compiled SGD training step on (x, y); with step_only, the compiled step itself."""
    import graphnn
    import graphnn.nn as nn
    import graphnn.optim as optim

    crit = nn.CrossEntropyLoss()
    opt = optim.SGD(model.parameters(), lr=lr)

    @graphnn.compile
    def step(x, y):
        opt.zero_grad()
        loss = crit(model(x), y)
        loss.backward()
        opt.step()
        return loss

    return step if step_only else (lambda: step(x, y))


def _mlp_graphnn():
    import graphnn.nn as nn

    return nn.Sequential(nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 512), nn.ReLU(), nn.Linear(512, 10))


def _g_gemm(n: int):
    import graphnn

    a, b = graphnn.randn(n, n), graphnn.randn(n, n)
    f = graphnn.compile(lambda a, b: a @ b)
    return lambda: f(a, b)


def _g_chain(n: int):
    import graphnn

    x, a, b = graphnn.randn(n), graphnn.randn(n), graphnn.randn(n)
    f = graphnn.compile(lambda x, a, b: (x * a + b).relu() * x.sigmoid())
    return lambda: f(x, a, b)


# -- torch workloads -------------------------------------------------------------------------------------------
def _t_net(torch, gnet=None):
    tnn, F = torch.nn, torch.nn.functional

    class TNet(tnn.Module):
        def __init__(self):
            super().__init__()
            self.conv1, self.conv2 = tnn.Conv2d(1, 6, 5), tnn.Conv2d(6, 16, 5)
            self.fc1, self.fc2, self.fc3 = tnn.Linear(400, 120), tnn.Linear(120, 84), tnn.Linear(84, 10)

        def forward(self, x):
            x = F.max_pool2d(F.relu(self.conv1(x)), (2, 2))
            x = F.max_pool2d(F.relu(self.conv2(x)), 2)
            x = x.view(-1, 400)
            return self.fc3(F.relu(self.fc2(F.relu(self.fc1(x)))))

    return TNet()


def _t_train(torch, model, x, y, compiled=False):
    crit = torch.nn.CrossEntropyLoss()
    opt = torch.optim.SGD(model.parameters(), lr=0.01)

    def step(x, y):
        opt.zero_grad()
        loss = crit(model(x), y)
        loss.backward()
        opt.step()
        return loss

    f = torch.compile(step) if compiled else step
    return lambda: f(x, y)


def _ort_session(torch, model, example):
    """An ONNX Runtime session of `model` (exported by torch.onnx, which needs the onnx package too)."""
    import onnx  # noqa: F401  (torch.onnx.export needs it: without it the peer is skipped, not a crash)
    import onnxruntime as ort

    path = os.path.join(tempfile.mkdtemp(), "model.onnx")
    torch.onnx.export(model, (example,), path, input_names=["x"], output_names=["y"], dynamo=False)
    so = ort.SessionOptions()
    so.intra_op_num_threads = torch.get_num_threads()
    sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    feed = {"x": example.numpy()}
    return lambda: sess.run(None, feed)


# -- GPT workloads: the model of graphnn.tools.gpt, built by each library -----------------------------------------
GPT_BATCH = 12


def _gpt_data(lib, spec, batch: int = GPT_BATCH, seed: int = 0) -> tuple:
    """A batch of random token windows and their targets, as lib tensors."""
    r = np.random.default_rng(seed)
    x, y = (r.integers(0, spec.vocab_size, (batch, spec.block_size)) for _ in range(2))
    return lib.tensor(x), lib.tensor(y)


def gpt_train(lib, mode: str):
    """A call running one full training step of the bench GPT (forward, loss, backward, clipping, AdamW) in lib:
    mode 'eager', 'step' (the whole step compiled, as graphnn.compile does best) or 'model' (the model compiled and
    the step eager, as torch.compile is used)."""
    from .gpt import GPTSpec, gpt_class, make_optimizer, train_step

    lib.manual_seed(0)
    spec = GPTSpec()
    model = gpt_class(lib)(spec)
    step = train_step(lib, lib.compile(model) if mode == "model" else model, make_optimizer(lib, model))
    step = lib.compile(step) if mode == "step" else step
    x, y = _gpt_data(lib, spec)
    return lambda: step(x, y)


LSTM_SHAPE = (100, 16, 32, 64)  # time steps, batch, input features, hidden features


def lstm_train(lib, mode: str):
    """A call running forward + backward of one LSTM layer over a time-major batch (input requiring grad, loss = sum
    of the outputs) in lib, the same weights in every lib: mode 'eager', or 'model' (the layer compiled)."""
    T, B, n_in, hidden = LSTM_SHAPE
    r = np.random.default_rng(0)
    lstm = lib.nn.LSTM(n_in, hidden)
    bound = 1 / np.sqrt(hidden)
    with lib.no_grad():
        for p in lstm.parameters():
            p.copy_(lib.tensor(r.uniform(-bound, bound, tuple(p.shape)).astype(np.float32)))
    model = lib.compile(lstm) if mode == "model" else lstm
    xs = r.standard_normal((T, B, n_in)).astype(np.float32)

    def run():
        x = lib.tensor(xs, requires_grad=True)
        out, _ = model(x)
        out.sum().backward()

    return run


def gpt_generate(lib, mode: str):
    """A call generating one token (batch 1, no_grad) after a context of the last block_size tokens: mode 'eager',
    'step' (the next-token function compiled: model, softmax and sampling) or 'model' (the model compiled)."""
    from .gpt import GPTSpec, gpt_class, next_token

    lib.manual_seed(0)
    spec = GPTSpec()
    model = gpt_class(lib)(spec).eval()
    sample = next_token(lib, lib.compile(model) if mode == "model" else model)
    sample = lib.compile(sample) if mode == "step" else sample
    ctx = [_gpt_data(lib, spec, batch=1)[0]]

    def run():
        with lib.no_grad():
            ctx[0] = lib.cat((ctx[0], sample(ctx[0])), dim=1)[:, -spec.block_size :]

    return run


def _lstm_flops() -> int:
    """Multiply-adds x 2 of lstm_train: the input and recurrent products forward, and twice each backward (the
    gradients of the inputs and of the weights)."""
    T, B, n_in, hidden = LSTM_SHAPE
    return 3 * 2 * T * B * (n_in + hidden) * 4 * hidden


def gpt_first_call() -> float:
    """Seconds graphnn's first call of the compiled GPT training step takes beyond a warm call: tracing, passes,
    code generation and LLVM (cold when the compile cache is empty)."""
    import graphnn

    step = gpt_train(graphnn, "step")
    times = []
    for _ in range(4):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    return times[0] - float(np.median(times[1:]))


def _fresh_process(code: str, cache_dir: str) -> float:
    """The number the last line of `python -c code` prints, run with its own compile cache folder."""
    env = dict(os.environ, GRAPHNN_CACHE_DIR=cache_dir)
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return float(proc.stdout.strip().splitlines()[-1])


def gpt_cold_first_call() -> dict:
    """gpt_first_call in a new process with an empty compile cache."""
    code = "from graphnn.tools.bench import gpt_first_call\nprint(gpt_first_call())\n"
    with tempfile.TemporaryDirectory() as d:
        return {"first_call_cold_s": _fresh_process(code, d)}


# -- one program for every batch size ----------------------------------------------------------------------------
DYNAMIC_SIZES = (128, 64)  # batch sizes the step sees first: the second makes graphnn compile one dynamic program
DYNAMIC_BATCH = 100  # the batch size timed: served by that program, never compiled for


def _with_dynamic(on: bool, fn):
    """fn() with GRAPHNN_DYNAMIC set to on (compiles happen on first calls, so they are made here)."""
    old = os.environ.get("GRAPHNN_DYNAMIC")
    os.environ["GRAPHNN_DYNAMIC"] = "1" if on else "0"
    try:
        return fn()
    finally:
        if old is None:
            del os.environ["GRAPHNN_DYNAMIC"]
        else:
            os.environ["GRAPHNN_DYNAMIC"] = old


def _dynamic_case(make, batch_data):
    """(graphnn fn at DYNAMIC_BATCH through the dynamic program, the same compiled for that size alone, extra):
    make() builds a fresh compiled callable, batch_data(n) its arguments for batch n."""
    from graphnn.codegen import STATS, dynamic

    def build_dynamic():
        f = make()
        for n in DYNAMIC_SIZES:
            f(*batch_data(n))
            f(*batch_data(n))
        compiled = dict(dynamic.STATS), STATS["compiled"]
        args = batch_data(DYNAMIC_BATCH)
        t0 = time.perf_counter()
        f(*args)
        first = time.perf_counter() - t0
        served = dynamic.STATS["dynamic_reused"] > compiled[0]["dynamic_reused"]
        info = {
            "dynamic_first_call_s": first,
            "dynamic_served": served,
            "dynamic_llvm_compiles": STATS["compiled"] - compiled[1],
            "dynamic_sizes": list(DYNAMIC_SIZES) + [DYNAMIC_BATCH],
        }
        return (lambda: f(*args)), info

    def build_specialized():
        f = make()
        args = batch_data(DYNAMIC_BATCH)
        f(*args)
        return lambda: f(*args)

    dyn, info = _with_dynamic(True, build_dynamic)
    return dyn, _with_dynamic(False, build_specialized), lambda: info


def _dynamic_mlp():
    """The MLP training step (batch data of each size fixed up front)."""
    import graphnn

    data = {n: (graphnn.randn(n, 784), graphnn.randint(0, 10, (n,))) for n in DYNAMIC_SIZES + (DYNAMIC_BATCH,)}

    def make():
        graphnn.manual_seed(0)
        step = _g_train(_mlp_graphnn(), None, None, step_only=True)
        return step

    return _dynamic_case(make, lambda n: data[n])


def _dynamic_lenet():
    """LeNet inference (no_grad)."""
    import graphnn
    from graphnn.tools.tutorial_net import Net

    data = {n: (graphnn.randn(n, 1, 32, 32),) for n in DYNAMIC_SIZES + (DYNAMIC_BATCH,)}

    def make():
        graphnn.manual_seed(0)
        c = graphnn.compile(Net().eval())

        def run(x):
            with graphnn.no_grad():
                return c(x)

        return run

    return _dynamic_case(make, lambda n: data[n])


# -- the run ---------------------------------------------------------------------------------------------------
LENET_BATCHES = (1, 64)
DEFAULT_GEMM = 1024
DEFAULT_CHAIN = 1 << 24


def chain_name(m: int) -> str:
    """chain_16M for 16 Mi elements; chain_1000 for a size that is not a whole number of Mi."""
    return f"chain_{m >> 20}M" if m % (1 << 20) == 0 else f"chain_{m}"


def workload_names(gemm: int = DEFAULT_GEMM, chain: int = DEFAULT_CHAIN) -> list:
    """The names --only accepts, in run order: the workloads (gemm and chain named by their sizes), then 'compile'."""
    return (
        [f"lenet_infer_b{b}" for b in LENET_BATCHES]
        + [f"lenet_train_b{b}" for b in LENET_BATCHES]
        + ["mlp_train_b128", f"gemm_{gemm}", chain_name(chain), "gpt_train", "gpt_generate", "lstm_train"]
        + [f"mlp_train_dynamic_b{DYNAMIC_BATCH}", f"lenet_infer_dynamic_b{DYNAMIC_BATCH}", "compile"]
    )


def check_args(args) -> None:
    """Refuse unknown --only names and an unwritable --json path before any work (a ModelError, one line)."""
    from .load_model import ModelError
    from graphnn.viz.outfile import check_writable, describe

    valid = workload_names(args.gemm, args.chain)
    unknown = [n for n in args.only or [] if n not in valid]
    if unknown:
        names = ", ".join(repr(n) for n in unknown)
        raise ModelError(f"--only: unknown workload {names}; valid names: {', '.join(valid)}")
    if args.json:
        try:
            check_writable(args.json)
        except OSError as e:
            raise ModelError(f"--json: {describe(e)}") from None


def workloads(args, torch):
    """[(name, graphnn fn, {peer: fn}, flops or None, extra)]: extra() measures more of the row (or None)."""
    import graphnn

    out = []
    peers_wanted = set(args.peers)

    def add(name, gfn, peer_fns, flops=None, extra=None):
        out.append((name, gfn, peer_fns, flops, extra))

    for batch in LENET_BATCHES:
        gfn, gnet = _g_lenet_inference(batch)
        peers = {}
        if torch is not None:
            tnet = _t_net(torch).eval()
            tnet.load_state_dict({k: torch.from_numpy(v.numpy().copy()) for k, v in gnet.state_dict().items()})
            tx = torch.randn(batch, 1, 32, 32)

            def eager(tnet=tnet, tx=tx):
                with torch.no_grad():
                    tnet(tx)

            peers["torch"] = eager
            if "compile" in peers_wanted:
                ct = torch.compile(tnet)

                def comp(ct=ct, tx=tx):
                    with torch.no_grad():
                        ct(tx)

                peers["torch.compile"] = comp
            if "ort" in peers_wanted:
                try:
                    peers["onnxruntime"] = _ort_session(torch, tnet, tx)
                except ImportError as e:
                    print(f"(peer onnxruntime skipped: {e})", file=sys.stderr)
        add(f"lenet_infer_b{batch}", gfn, peers)
    for batch in LENET_BATCHES:
        graphnn.manual_seed(0)
        from graphnn.tools.tutorial_net import Net

        gnet = Net()
        x, y = graphnn.randn(batch, 1, 32, 32), graphnn.randint(0, 10, (batch,))
        peers = {}
        if torch is not None:
            tx, ty = torch.randn(batch, 1, 32, 32), torch.randint(0, 10, (batch,))
            peers["torch"] = _t_train(torch, _t_net(torch), tx, ty)
            if "compile" in peers_wanted:
                peers["torch.compile"] = _t_train(torch, _t_net(torch), tx, ty, compiled=True)
        add(f"lenet_train_b{batch}", _g_train(gnet, x, y), peers)
    mlp = _mlp_graphnn()
    x, y = graphnn.randn(128, 784), graphnn.randint(0, 10, (128,))
    peers = {}
    if torch is not None:
        tm = torch.nn.Sequential(
            torch.nn.Linear(784, 512),
            torch.nn.ReLU(),
            torch.nn.Linear(512, 512),
            torch.nn.ReLU(),
            torch.nn.Linear(512, 10),
        )
        tx, ty = torch.randn(128, 784), torch.randint(0, 10, (128,))
        peers["torch"] = _t_train(torch, tm, tx, ty)
        if "compile" in peers_wanted:
            peers["torch.compile"] = _t_train(torch, tm, tx, ty, compiled=True)
    add("mlp_train_b128", _g_train(mlp, x, y), peers, flops=3 * 2 * 128 * (784 * 512 + 512 * 512 + 512 * 10))
    n = args.gemm
    peers = {}
    if torch is not None:
        ta, tb = torch.randn(n, n), torch.randn(n, n)
        peers["torch"] = lambda: ta @ tb
    add(f"gemm_{n}", _g_gemm(n), peers, flops=2 * n**3)
    m = args.chain
    peers = {}
    if torch is not None:
        tx_, ta_, tb_ = torch.randn(m), torch.randn(m), torch.randn(m)
        chain = lambda x, a, b: torch.relu(x * a + b) * torch.sigmoid(x)  # noqa: E731
        peers["torch"] = lambda: chain(tx_, ta_, tb_)
        if "compile" in peers_wanted:
            cc = torch.compile(chain)
            peers["torch.compile"] = lambda: cc(tx_, ta_, tb_)
    add(chain_name(m), _g_chain(m), peers)
    add(
        "gpt_train", gpt_train(graphnn, "step"), _torch_peers(torch, gpt_train, peers_wanted), extra=gpt_cold_first_call
    )
    add("gpt_generate", gpt_generate(graphnn, "step"), _torch_peers(torch, gpt_generate, peers_wanted))
    add("lstm_train", lstm_train(graphnn, "model"), _torch_peers(torch, lstm_train, peers_wanted), flops=_lstm_flops())
    for name, case in (("mlp_train", _dynamic_mlp), ("lenet_infer", _dynamic_lenet)):
        dyn, specialized, info = case()
        add(f"{name}_dynamic_b{DYNAMIC_BATCH}", dyn, {"graphnn for this size": specialized}, extra=info)
    return out


def _torch_peers(torch, make, peers_wanted) -> dict:
    """PyTorch eager, and torch.compile of the model when asked."""
    if torch is None:
        return {}
    peers = {"torch": make(torch, "eager")}
    if "compile" in peers_wanted:
        peers["torch.compile"] = make(torch, "model")
    return peers


def compile_times() -> dict:
    """Cold (empty disk cache, new process) and warm (disk cache, new process) compile of the LeNet step."""
    code = (
        "import time, graphnn, graphnn.nn as nn, graphnn.optim as optim\n"
        "from graphnn.tools.tutorial_net import Net\n"
        "net = Net(); crit = nn.CrossEntropyLoss(); opt = optim.SGD(net.parameters(), lr=0.01)\n"
        "x = graphnn.randn(64, 1, 32, 32); y = graphnn.randint(0, 10, (64,))\n"
        "def step(x, y):\n    opt.zero_grad(); l = crit(net(x), y); l.backward(); opt.step(); return l\n"
        "c = graphnn.compile(step)\n"
        "t0 = time.perf_counter(); c(x, y); t1 = time.perf_counter(); c(x, y); t2 = time.perf_counter()\n"
        "print((t1 - t0) - (t2 - t1))\n"
    )
    with tempfile.TemporaryDirectory() as d:
        env = dict(os.environ, GRAPHNN_CACHE_DIR=d)
        run = lambda: float(
            subprocess.run(
                [sys.executable, "-c", code],
                env=env,
                capture_output=True,
                text=True,  # noqa: E731
                check=True,
            )
            .stdout.strip()
            .splitlines()[-1]
        )
        cold = run()
        warm = run()
    return {"compile_cold_s": cold, "compile_warm_s": warm}


def machine() -> dict:
    """What a figure was measured on: the CPU, the JIT's target, and its measured float32 FMA peak (one core, and
    the bench's threads times that)."""
    from graphnn.codegen import get_num_threads
    from graphnn.codegen.peak import cpu_model, fma_peak_gflops
    from graphnn.codegen.target import jit_cpu, vector_width_bits

    per_core = fma_peak_gflops()
    threads = get_num_threads()
    return {
        "cpu": cpu_model(),
        "jit_cpu": jit_cpu()[0],
        "vector_bits": vector_width_bits(),
        "fma_peak_gflops_per_core": per_core,
        "fma_peak_gflops": per_core * threads,
    }


def main(args) -> int:
    check_args(args)
    try:
        import torch
    except ImportError:
        torch = None
    if torch is not None:
        torch.set_num_threads(args.threads)
    import graphnn

    graphnn.set_num_threads(args.threads)
    results = {"threads": args.threads, "workloads": {}, **machine()}
    print(
        f"CPU: {results['cpu']} (JIT target {results['jit_cpu']}, {results['vector_bits']}-bit vectors), "
        f"{args.threads} thread{'s' if args.threads > 1 else ''} | measured fp32 FMA peak "
        f"{results['fma_peak_gflops_per_core']:.0f} GFLOP/s per core, {results['fma_peak_gflops']:.0f} for "
        f"{args.threads} | torch {torch.__version__ if torch is not None else 'not installed'}",
        flush=True,
    )
    names = []
    for name, gfn, peers, flops, extra in workloads(args, torch):
        if args.only and name not in args.only:
            continue
        row = {"graphnn": timeit(gfn, args.reps)}
        if extra is not None:
            row.update(extra())
        for peer, fn in peers.items():
            try:
                row[peer] = timeit(fn, args.reps)
            except Exception as e:  # a peer that cannot run this workload is reported, not fatal
                row[peer] = {"error": f"{type(e).__name__}: {e}"[:200]}
        if flops:
            row["flops"] = flops
            row["fma_peak_gflops"] = results["fma_peak_gflops"]
        results["workloads"][name] = row
        names.append(name)
        _print_row(name, row)
    if not args.only or "compile" in args.only:
        results.update(compile_times())
        print(
            f"{'compile (LeNet train step)':28s} cold {results['compile_cold_s']:.3f} s   warm {results['compile_warm_s'] * 1000:.1f} ms"
        )
    if args.json:
        _write_json(args.json, results)
        print(f"wrote {args.json}")
    return 0


def _write_json(path: str, results: dict) -> None:
    from .load_model import ModelError
    from graphnn.viz.outfile import describe, write_atomic

    try:
        write_atomic(path, json.dumps(results, indent=2))
    except OSError as e:
        raise ModelError(f"--json: {describe(e)}") from None


def _fmt(s: float) -> str:
    return f"{s * 1e6:9.1f} us" if s < 1e-3 else f"{s * 1e3:9.2f} ms"


def _print_row(name: str, row: dict) -> None:
    g = row["graphnn"]["median_s"]
    line = f"{name:28s} graphnn {_fmt(g)} (min {_fmt(row['graphnn']['min_s']).strip()})"
    if "flops" in row:
        rate = row["flops"] / g / 1e9
        line += f" {rate:6.1f} GFLOP/s ({rate / row['fma_peak_gflops']:.0%} of peak)"
    for peer, r in row.items():
        if not isinstance(r, dict) or peer == "graphnn":
            continue
        line += f" | {peer} " + (
            f"{_fmt(r['median_s']).strip()} x{r['median_s'] / g:.2f}" if "median_s" in r else "error"
        )
        if peer == "torch.compile" and "first_call_cold_s" in row and "first_s" in r:
            line += f" (first call {r['first_s']:.1f} s)"
    if "first_call_cold_s" in row:
        line += f" | graphnn compile, cold cache: {row['first_call_cold_s']:.2f} s"
    if "dynamic_served" in row:  # one program compiled at the first two sizes, run at the third
        sizes = ", ".join(map(str, row["dynamic_sizes"]))
        line += (
            f" | batches {sizes}: "
            + ("one program" if row["dynamic_served"] else "NOT served by the dynamic program")
            + f", first call at {row['dynamic_sizes'][-1]} {row['dynamic_first_call_s'] * 1e3:.0f} ms"
            + f" ({row['dynamic_llvm_compiles']} LLVM compiles)"
        )
    print(line, flush=True)


def add_arguments(p) -> None:
    """The options of `graphnn bench`, each with its default in the help."""
    from .argtypes import positive_int

    names = workload_names()
    p.add_argument(
        "--threads",
        type=int,
        default=1,
        choices=(1, 2),
        help="threads for graphnn and for every peer: 1 or 2 (default: 1)",
    )
    p.add_argument(
        "--peers",
        nargs="*",
        default=[],
        choices=("compile", "ort"),
        metavar="PEER",
        help="also time torch.compile (compile) and ONNX Runtime (ort), when installed "
        "(default: only PyTorch eager, when installed)",
    )
    p.add_argument(
        "--reps",
        type=positive_int,
        default=50,
        metavar="N",
        help="at least N timed calls per workload and runtime; timing also lasts at least 0.3 s and "
        "stops after 3 s once 5 calls are in (default: 50)",
    )
    p.add_argument(
        "--gemm",
        type=positive_int,
        default=DEFAULT_GEMM,
        metavar="N",
        help=f"size of the square float32 matrix product of workload gemm_N, N x N times N x N "
        f"(default: {DEFAULT_GEMM})",
    )
    p.add_argument(
        "--chain",
        type=positive_int,
        default=DEFAULT_CHAIN,
        metavar="N",
        help=f"elements of each float32 vector of the element-wise workload relu(x * a + b) * sigmoid(x), "
        f"named chain_<N/2^20>M, or chain_N when N is not a multiple of 2^20 "
        f"(default: {DEFAULT_CHAIN}, {chain_name(DEFAULT_CHAIN)})",
    )
    p.add_argument(
        "--only",
        nargs="+",
        default=None,
        metavar="NAME",
        help=f"run only these workloads; gpt_train is one training step of a small GPT (vocab 65, context 64, "
        f"batch {GPT_BATCH}, 4 layers, 4 heads, width 128, AdamW, clipping at 1.0) with graphnn's cold first call, "
        f"gpt_generate the time per generated token (batch 1, context 64), lstm_train forward + backward of one "
        f"LSTM layer (hidden 64, batch 16, T=100); 'compile' is the cold and warm compile "
        f"time of the LeNet training step. Names with the default --gemm and --chain: {', '.join(names)} "
        f"(default: all of them)",
    )
    p.add_argument(
        "--json", default=None, metavar="FILE", help="also write the results as JSON to FILE (default: no file)"
    )
    p.add_argument(
        "--distributed",
        action="store_true",
        help="data-parallel training steps (workloads mlp, gpt) on --ranks ranks x 1 thread under mpirun against "
        "1 rank x 1 thread: throughput, scaling efficiency, allreduce time and how much of it the backward hides "
        "(default: False: the one-process workloads above)",
    )
    p.add_argument("--ranks", type=positive_int, default=2, metavar="N", help="ranks of --distributed (default: 2)")


if __name__ == "__main__":
    from .cli import main as cli_main

    sys.exit(cli_main(["bench", *sys.argv[1:]]))
