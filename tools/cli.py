"""The `graphnn` command-line program: demo, viz, summary, export."""
from __future__ import annotations

import argparse
import os
import sys

MODEL_HELP = ("path/to/file.py:Name or package.module:Name (a Module class, a factory function or a Module "
              "instance), or a directory written by graphnn export (viz only)")
SHAPE_HELP = "shape of a random float32 input, e.g. 1,1,32,32 (repeat for a model with several inputs)"


def _model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", metavar="MODEL", help=MODEL_HELP)
    p.add_argument("--input-shape", action="append", metavar="SHAPE", help=SHAPE_HELP + " (not needed for an export)")


def _load(args):
    from .load_model import ModelError, example_inputs, load_model, parse_shape

    if not args.input_shape:
        raise ModelError("--input-shape is required (the shape of the model's input, e.g. 1,1,32,32)")
    shapes = [parse_shape(s) for s in args.input_shape]
    model = load_model(args.model)
    return model, example_inputs(shapes)


def _viz(args) -> int:
    from . import render
    from .load_model import ModelError
    from .stages import STAGES, export_stages, is_export, trace_stages
    from .summary import summarize
    from .viz_files import EXTENSIONS, all_text, write_stages

    ext = os.path.splitext(args.output)[1].lower() if args.output else ""
    if args.output and ext not in EXTENSIONS:
        raise ModelError(f"unknown output type {ext or '(none)'} for {args.output}: use one of {' '.join(EXTENSIONS)}")
    if args.depth is not None and args.depth < 0:
        raise ModelError("--depth must be 0 or more")
    if ext in (".svg", ".png"):
        render.find_dot()  # fail before tracing when no renderer is installed
    if is_export(args.model):
        stages = export_stages(args.model, args.stage)
        model = None
    else:
        model, inputs = _load(args)
    names = list(STAGES) if args.stage == "all" else [args.stage]
    if model is None:
        pass
    elif args.stage == "all" and not args.train and not any(p.requires_grad for p in model.parameters()):
        print(f"graphnn viz: note: {type(model).__name__} has no trainable parameters, so no backward stage",
              file=sys.stderr)
        names.remove("backward")
    if model is not None:
        stages = trace_stages(model, inputs, names, train=args.train)
    if not args.output:
        sys.stdout.write(all_text(stages))
        return 0
    summary = None
    if ext == ".html" and model is not None:
        forward = stages if "traced" in stages and not args.train else trace_stages(model, inputs, ["traced"])
        summary = str(summarize(model, forward["traced"].graph))
    for path in write_stages(stages, args.output, depth=args.depth, summary=summary, title=f"graphnn viz {args.model}"):
        print(f"wrote {path}")
    return 0


def _summary(args) -> int:
    from .stages import trace_stages
    from .summary import summarize

    model, inputs = _load(args)
    traced = trace_stages(model, inputs, ["traced"])["traced"].graph
    train = trace_stages(model, inputs, ["backward"])["backward"].graph if args.train else None
    sys.stdout.write(str(summarize(model, traced, train)))
    return 0


def _export(args) -> int:
    from .export_cmd import run

    return run(args)


def _guarded(command: str, fn, args) -> int:
    """Run a model command; user errors are one line on stderr with exit code 2, a missing renderer exit code 1."""
    from .load_model import ModelError
    from .render import RenderError, RendererNotFound

    try:
        return fn(args)
    except ModelError as e:
        print(f"graphnn {command}: error: {e}", file=sys.stderr)
        return 2
    except (RendererNotFound, RenderError) as e:
        print(f"graphnn {command}: error: {e}", file=sys.stderr)
        return 1


def main(argv: list | None = None) -> int:
    parser = argparse.ArgumentParser(prog="graphnn", description="graphnn: a neural-network graph compiler for the CPU")
    sub = parser.add_subparsers(dest="command")
    demo = sub.add_parser("demo", help="train the tutorial's Net, compiled, on generated data")
    demo.add_argument("--steps", type=int, default=300)
    demo.add_argument("--batch", type=int, default=64)
    demo.add_argument("--lr", type=float, default=0.02)
    demo.add_argument("--seed", type=int, default=0)
    viz = sub.add_parser("viz", help="draw the graph a model becomes, at every stage",
                         description="Draw a model's graph. Output by the extension of -o: .svg .png .dot (one file per "
                                     "stage), .txt (IR text), .html (one page); without -o the IR text is printed.")
    _model_args(viz)
    viz.add_argument("--stage", choices=["traced", "optimized", "backward", "fused", "all"], default="fused",
                     help="traced: as traced; optimized: after passes; backward: the training step (forward, "
                          "CrossEntropyLoss, backward, SGD update) as one graph; fused: kernels as boxes (default)")
    viz.add_argument("--train", action="store_true", help="draw the training step at every stage, not the forward")
    viz.add_argument("--depth", type=int, metavar="N", help="collapse modules N levels below the model into one node")
    viz.add_argument("-o", "--output", metavar="FILE", help="output file: .svg .png .dot .html or .txt")
    summary = sub.add_parser("summary", help="table per layer: output shape, parameters, FLOPs, memory")
    _model_args(summary)
    summary.add_argument("--train", action="store_true", help="also count the FLOPs of a whole training step")
    export = sub.add_parser("export", help="write the compiled model as a native library, C header and weights",
                            description="Write an export directory: shared library (or object file), C header, "
                                        "weights.bin and manifest.json; graphnn.load(DIR) runs it without the model's "
                                        "source. --mode train_step exports forward + CrossEntropyLoss + backward + SGD.")
    _model_args(export)
    export.add_argument("-o", "--output", metavar="DIR", required=True, help="export directory (created)")
    export.add_argument("--mode", choices=["inference", "train_step"], default="inference",
                        help="inference: the forward under no_grad (default); train_step: one SGD training step "
                             "taking the inputs and int64 class targets, returning the loss")
    export.add_argument("--target", choices=["generic", "host"], default="generic",
                        help="generic: any x86-64 CPU (default); host: this CPU's full instruction set")
    export.add_argument("--name", help="C prefix of the entry points (default: the model class name, lower case)")
    export.add_argument("--lr", type=float, default=0.01, help="SGD learning rate of --mode train_step (0.01)")
    from .bench import add_arguments as bench_arguments

    bench = sub.add_parser("bench", help="time graphnn against PyTorch (and torch.compile, ONNX Runtime) in one run",
                           description="Runs each workload on graphnn (compiled) and on every installed peer in the "
                                       "same process; prints median/min times and ratios (peer time / graphnn time).")
    bench_arguments(bench)
    args = parser.parse_args(argv)
    if args.command == "bench":
        from .bench import main as bench_main

        if args.threads:
            import graphnn

            graphnn.set_num_threads(args.threads)
        return bench_main(args)
    if args.command == "demo":
        from .demo import run

        res = run(steps=args.steps, batch=args.batch, lr=args.lr, seed=args.seed)
        return 0 if res["train_accuracy"] > 0.9 else 1
    if args.command == "viz":
        return _guarded("viz", _viz, args)
    if args.command == "summary":
        return _guarded("summary", _summary, args)
    if args.command == "export":
        return _guarded("export", _export, args)
    parser.print_help()
    return 2


if __name__ == "__main__":
    sys.exit(main())
