"""The `graphnn` command-line program: demo (net, gpt), viz, summary, export, bench."""

from __future__ import annotations

import argparse
import contextlib
import errno
import os
import sys

from .argtypes import non_negative_int, positive_float, positive_int

MODEL_HELP = "path/to/file.py:Name or package.module:Name (a Module class, a factory function or a Module instance)"
SHAPE_HELP = (
    "shape of a random float32 input: positive sizes separated by commas, e.g. 1,1,32,32 (repeat for a "
    "model with several inputs)"
)


def _model_args(p: argparse.ArgumentParser, viz: bool = False) -> None:
    export_dir = ", or a directory written by graphnn export" if viz else ""
    p.add_argument("model", metavar="MODEL", help=MODEL_HELP + export_dir)
    p.add_argument(
        "--input-shape",
        action="append",
        metavar="SHAPE",
        help=SHAPE_HELP + ("; not given for an export directory" if viz else "; required"),
    )


def version() -> str:
    """The installed distribution's version, else the package's own (graphnn.version.graphnn_version)."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as dist_version

    try:
        return dist_version("graphnn")
    except PackageNotFoundError:
        from graphnn.version import graphnn_version

        return graphnn_version


class _Version(argparse.Action):
    """--version: print `graphnn <version>` and exit 0 (the version is looked up only then)."""

    def __init__(self, option_strings, dest, help=None):
        super().__init__(option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS, nargs=0, help=help)

    def __call__(self, parser, namespace, values, option_string=None):
        print(f"graphnn {version()}")
        parser.exit(0)


def _load(args, command: str):
    from .load_model import example_inputs, input_shapes, load_model

    shapes = input_shapes(args, command)
    model = load_model(args.model)
    return model, example_inputs(shapes)


def _check_viz_args(args, ext: str) -> None:
    from .load_model import ModelError, parse_shape
    from graphnn.viz.outfile import check_writable, describe
    from graphnn.viz.stages import is_export
    from graphnn.viz.files import EXTENSIONS

    if args.output and ext not in EXTENSIONS:
        raise ModelError(f"unknown output type {ext or '(none)'} for {args.output}: use one of {' '.join(EXTENSIONS)}")
    if args.depth is not None and ext not in (".svg", ".png", ".dot", ".html"):
        raise ModelError("--depth applies to pictures (-o with .svg .png .dot or .html), not to the IR text")
    if args.profile is not None and ext != ".html":
        raise ModelError("--profile colors the explorer's kernels by their time: it needs -o with .html")
    if is_export(args.model):
        if args.profile is not None:
            raise ModelError("--profile runs the model: give a model, not an export directory")
        if args.input_shape:
            for s in args.input_shape:
                parse_shape(s)  # a malformed shape is named as such first
            raise ModelError("--input-shape does not apply to an export directory: its input shapes are fixed")
        if args.train:
            raise ModelError(
                "--train does not apply to an export directory: it holds one compiled graph "
                "(export with --mode train_step to draw a training step)"
            )
    if args.output:
        try:
            check_writable(args.output, make_dirs=True)
        except OSError as e:
            raise ModelError(describe(e)) from None


def _viz(args) -> int:
    from graphnn.viz import render
    from graphnn.viz.stages import STAGES, export_stages, is_export, trace_stages
    from graphnn.viz.summary import output_shapes, summarize
    from graphnn.viz.files import all_text
    from graphnn.viz.profile import kernel_cycles, profiling

    ext = os.path.splitext(args.output)[1].lower() if args.output else ""
    _check_viz_args(args, ext)
    if ext in (".svg", ".png"):
        render.find_dot()  # fail before tracing when no renderer is installed
    if is_export(args.model):
        stages = export_stages(args.model, args.stage)
        model = None
    else:
        model, inputs = _load(args, "viz")
    names = list(STAGES) if args.stage == "all" else [args.stage]
    if model is None:
        pass
    elif args.stage == "all" and not args.train and not any(p.requires_grad for p in model.parameters()):
        print(
            f"graphnn viz: note: {type(model).__name__} has no trainable parameters, so no backward stage",
            file=sys.stderr,
        )
        names.remove("backward")
    shapes: dict = {}
    if model is not None:
        if args.profile is not None and "fused" not in names:
            names.append("fused")  # the profile is of the compiled code
        with output_shapes(model) as shapes, profiling() if args.profile is not None else contextlib.nullcontext():
            stages = trace_stages(model, inputs, names, train=args.train)
    if not args.output:
        sys.stdout.write(all_text(stages))
        return 0
    summary = None
    if ext == ".html" and model is not None:
        if "traced" in stages and not args.train:
            forward = stages
        else:
            with output_shapes(model) as shapes:
                forward = trace_stages(model, inputs, ["traced"])
        summary = str(summarize(model, forward["traced"].graph, shapes=shapes))
    cycles = None
    if args.profile is not None:
        cycles = {k: kernel_cycles(st, args.profile) for k, st in stages.items() if st.rerun is not None}
    for path in _write_viz(stages, args, summary, cycles):
        print(f"wrote {path}")
    return 0


def _write_viz(stages: dict, args, summary, cycles=None) -> list:
    from .load_model import ModelError
    from graphnn.viz.outfile import describe
    from graphnn.viz.files import write_stages

    try:
        return write_stages(
            stages, args.output, depth=args.depth, summary=summary, title=f"graphnn viz {args.model}", cycles=cycles
        )
    except OSError as e:
        raise ModelError(describe(e)) from None


def _summary(args) -> int:
    from graphnn.viz.stages import trace_stages
    from graphnn.viz.summary import output_shapes, summarize

    model, inputs = _load(args, "summary")
    with output_shapes(model) as shapes:
        traced = trace_stages(model, inputs, ["traced"])["traced"].graph
    train = trace_stages(model, inputs, ["backward"])["backward"].graph if args.train else None
    sys.stdout.write(str(summarize(model, traced, train, shapes)))
    return 0


def _export(args) -> int:
    from .export_cmd import run

    return run(args)


DEMO_DEFAULTS = {"net": {"steps": 300, "batch": 64, "lr": 0.02}, "gpt": {"steps": 1000, "batch": 12, "lr": 2e-3}}


def _demo(args) -> int:
    from .load_model import ModelError

    opts = {k: v if getattr(args, k) is None else getattr(args, k) for k, v in DEMO_DEFAULTS[args.which].items()}
    if args.which == "gpt":
        if args.distributed:
            raise ModelError("--distributed applies to `graphnn demo` (the tutorial's Net) only")
        from .demo_gpt import run as run_gpt

        res = run_gpt(seed=args.seed, tokens=300 if args.tokens is None else args.tokens, text=args.text, **opts)
        return 0 if res["final_loss"] < res["uniform_loss"] else 1
    for flag in ("tokens", "text"):
        if getattr(args, flag) is not None:
            raise ModelError(f"--{flag} applies to `graphnn demo gpt` only")
    from .demo import run, run_distributed

    if args.distributed:
        _need_mpi()
        res = run_distributed(seed=args.seed, **opts)
        return 0 if res["train_accuracy"] > 0.9 and res["identical"] else 1
    res = run(seed=args.seed, **opts)
    return 0 if res["train_accuracy"] > 0.9 else 1


def _need_mpi() -> None:
    """--distributed without mpi4py: the one-line error of a command (not a traceback per rank)."""
    import importlib.util

    from .load_model import ModelError

    if importlib.util.find_spec("mpi4py") is None:
        from graphnn.distributed._mpi import INSTALL

        raise ModelError(f"--distributed needs MPI: the mpi4py package is not installed; {INSTALL}")


def _bench(args) -> int:
    if args.distributed:
        _need_mpi()
        from .bench_dist import main as bench_dist_main

        return bench_dist_main(args)
    from .bench import main as bench_main
    import graphnn

    graphnn.set_num_threads(args.threads)
    return bench_main(args)


def _fail(command: str, message: str, code: int) -> int:
    print(f"graphnn{' ' + command if command else ''}: error: {message}", file=sys.stderr)
    return code


class _StdoutError(Exception):
    """An OSError while writing to standard output (a closed pipe, a full disk)."""

    def __init__(self, error: OSError):
        super().__init__(error.strerror or str(error))
        self.errno = error.errno


class _CheckedStdout:
    """Wraps sys.stdout so that a failing write or flush raises _StdoutError, told apart from other OSErrors."""

    def __init__(self, stream):
        self._stream = stream

    def _call(self, name: str, *args):
        try:
            return getattr(self._stream, name)(*args)
        except OSError as e:
            raise _StdoutError(e) from None

    def write(self, text: str) -> int:
        return self._call("write", text)

    def flush(self) -> None:
        self._call("flush")

    def __getattr__(self, name: str):
        return getattr(self._stream, name)


def _discard_stdout(stream) -> None:
    """Point a failed stdout at /dev/null, so flushing it at exit raises no second error."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, stream.fileno())
        os.close(devnull)
    except (OSError, AttributeError, ValueError):  # no file descriptor (e.g. captured in a test)
        pass


def _guarded(command: str, fn, args) -> int:
    """Run a command. User errors and unwritable outputs (ModelError) are one line on stderr with exit code 2;
    a missing renderer or running out of memory is one line with exit code 1, Ctrl-C with 130."""
    from .load_model import ModelError, one_line
    from graphnn.viz.render import RenderError, RendererNotFound

    try:
        return fn(args)
    except ModelError as e:
        return _fail(command, str(e), 2)
    except (RendererNotFound, RenderError) as e:
        return _fail(command, str(e), 1)
    except MemoryError as e:
        return _fail(command, f"out of memory: {one_line(e)}", 1)
    except KeyboardInterrupt:
        return _fail(command, "interrupted", 130)


def _add_demo(sub) -> None:
    demo = sub.add_parser(
        "demo",
        help="train a model, compiled: the tutorial's Net on generated images, or a character-level GPT",
        description="graphnn demo [net]: train the tutorial's Net, compiled, on generated 32x32 images; exit code 0 "
        "when the training accuracy passes 90%, else 1. graphnn demo gpt: train a character-level GPT, compiled, on "
        "the PyTorch tutorial's text shipped with graphnn (about a minute), then print a sample it generates; exit "
        "code 0 when the training loss ends below a uniform guess's, else 1.",
    )
    demo.add_argument(
        "which",
        nargs="?",
        choices=tuple(DEMO_DEFAULTS),
        default="net",
        help="net: the tutorial's Net; gpt: a character-level GPT (default: net)",
    )
    d = DEMO_DEFAULTS
    demo.add_argument(
        "--steps",
        type=positive_int,
        metavar="N",
        help=f"training steps (default: {d['net']['steps']} for net, {d['gpt']['steps']} for gpt)",
    )
    demo.add_argument(
        "--batch",
        type=positive_int,
        metavar="N",
        help=f"examples per step: images (net; the data set holds 40 batches) or windows of 64 characters (gpt) "
        f"(default: {d['net']['batch']} for net, {d['gpt']['batch']} for gpt)",
    )
    demo.add_argument(
        "--lr",
        type=positive_float,
        help=f"learning rate: of SGD with momentum 0.9 (net), the peak of AdamW's warm-up and cosine schedule (gpt) "
        f"(default: {d['net']['lr']} for net, {d['gpt']['lr']} for gpt)",
    )
    demo.add_argument(
        "--seed", type=non_negative_int, default=0, metavar="N", help="seed of the weights and the data (default: 0)"
    )
    demo.add_argument(
        "--distributed",
        action="store_true",
        help="train data-parallel on the processes of `mpirun -np N graphnn demo --distributed` (each rank a share "
        "of every batch, gradients averaged in the compiled step; progress on rank 0) (default: False: one process)",
    )
    demo.add_argument(
        "--tokens", type=non_negative_int, metavar="N", help="gpt: characters to generate after training (default: 300)"
    )
    demo.add_argument(
        "--text",
        metavar="FILE",
        help="gpt: a UTF-8 text file to train on (default: the PyTorch neural networks tutorial shipped with graphnn)",
    )


def _add_viz(sub) -> None:
    viz = sub.add_parser(
        "viz",
        help="draw the graph a model becomes, at every stage",
        description="Draw a model's graph. Output by the extension of -o: .svg .png .dot (one file per "
        "stage), .txt (IR text), .html (one page); without -o the IR text is printed.",
    )
    _model_args(viz, viz=True)
    viz.add_argument(
        "--stage",
        choices=["traced", "optimized", "backward", "fused", "all"],
        default="fused",
        help="traced: as traced; optimized: after passes; backward: the training step (forward, "
        "CrossEntropyLoss, backward, SGD update) as one graph; fused: kernels as boxes (default)",
    )
    viz.add_argument("--train", action="store_true", help="draw the training step at every stage, not the forward")
    viz.add_argument(
        "--depth",
        type=non_negative_int,
        metavar="N",
        help="collapse modules N levels below the model into one node (pictures only; default: none)",
    )
    viz.add_argument(
        "-o",
        "--output",
        metavar="FILE",
        help="output file: .svg .png .dot .html or .txt; missing folders are created (default: print the IR text)",
    )
    viz.add_argument(
        "--profile",
        type=positive_int,
        nargs="?",
        const=20,
        metavar="RUNS",
        help="run the compiled model RUNS times (default 20) counting cycles per kernel, and show each kernel's "
        "share of the time in the explorer (-o .html)",
    )


def _add_summary(sub) -> None:
    summary = sub.add_parser("summary", help="table per layer: output shape, parameters, FLOPs, memory")
    _model_args(summary)
    summary.add_argument("--train", action="store_true", help="also count the FLOPs of a whole training step")


def _add_export(sub) -> None:
    export = sub.add_parser(
        "export",
        help="write the compiled model as a native library, C header and weights",
        description="Write an export directory: shared library (or object file), C header, "
        "weights.bin and manifest.json; graphnn.load(DIR) runs it without the model's "
        "source. --mode train_step exports forward + CrossEntropyLoss + backward + SGD.",
    )
    _model_args(export)
    export.add_argument(
        "-o",
        "--output",
        metavar="DIR",
        required=True,
        help="export directory (created; an earlier export in it is replaced, other files are kept)",
    )
    export.add_argument(
        "--force",
        action="store_true",
        help="replace files in DIR that the export writes (manifest.json, weights.bin, the header...) also when they "
        "are not an earlier export's",
    )
    export.add_argument(
        "--mode",
        choices=["inference", "train_step"],
        default="inference",
        help="inference: the forward under no_grad (default); train_step: one SGD training step "
        "taking the inputs and int64 class targets, returning the loss",
    )
    export.add_argument(
        "--target",
        choices=["generic", "host"],
        default="generic",
        help="generic: any x86-64 CPU (default); host: this CPU's full instruction set",
    )
    export.add_argument("--name", help="C prefix of the entry points (default: the model class name, lower case)")
    export.add_argument(
        "--lr", type=positive_float, default=None, help="SGD learning rate of --mode train_step (default: 0.01)"
    )


def _add_bench(sub) -> None:
    from .bench import add_arguments

    bench = sub.add_parser(
        "bench",
        help="time graphnn against PyTorch (and torch.compile, ONNX Runtime) in one run",
        description="Runs each workload on graphnn (compiled) and on every installed peer in the "
        "same process; prints median/min times and ratios (peer time / graphnn time).",
    )
    add_arguments(bench)


def build_parser() -> argparse.ArgumentParser:
    """The `graphnn` argument parser with every subcommand."""
    parser = argparse.ArgumentParser(prog="graphnn", description="graphnn: a neural-network graph compiler for the CPU")
    parser.add_argument("--version", action=_Version, help="print graphnn's version and exit")
    sub = parser.add_subparsers(dest="command")
    for add in (_add_demo, _add_viz, _add_summary, _add_export, _add_bench):
        add(sub)
    return parser


COMMANDS = {"demo": _demo, "viz": _viz, "summary": _summary, "export": _export, "bench": _bench}


def _dispatch(argv: list | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    return _guarded(args.command, COMMANDS[args.command], args)


def main(argv: list | None = None) -> int:
    """Run `graphnn ARGV`; returns the exit code. A failing stdout (also for --help and --version) is one line
    with exit code 2; a closed pipe ends the program quietly with exit code 1."""
    words = sys.argv[1:] if argv is None else argv
    command = words[0] if words and words[0] in COMMANDS else ""
    stdout = sys.stdout
    sys.stdout = _CheckedStdout(stdout)
    try:
        try:
            return _dispatch(argv)
        finally:
            sys.stdout.flush()  # --help and --version leave by SystemExit through here
    except _StdoutError as e:
        _discard_stdout(stdout)
        if e.errno == errno.EPIPE:
            return 1
        return _fail(command, f"cannot write to standard output: {e}", 2)
    finally:
        sys.stdout = stdout


if __name__ == "__main__":
    sys.exit(main())
