"""`graphnn export`: write a model's compiled forward (in eval mode), or one SGD training step, as a native export
directory.

`--mode train_step` exports the training step `graphnn viz --train` draws: forward, CrossEntropyLoss against
class indices (the mean of the output when it is not `(batch, classes)`), backward and a plain SGD update with
`--lr`; its entry takes the inputs and the int64 targets and returns the loss.
"""

from __future__ import annotations

import re

import graphnn
from graphnn.artifact.export import _arg_names, _unique

from .load_model import ModelError, example_inputs, input_shapes, load_model, one_line
from graphnn.viz.stages import _check_arity, _run, make_train_step


DEFAULT_LR = 0.01


def run(args) -> int:
    """`graphnn export`: check the arguments, export, and print what was written."""
    if args.name is not None and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", args.name):
        raise ModelError(f"--name must be a C identifier, got {args.name!r}")
    if args.lr is not None and args.mode != "train_step":
        raise ModelError("--lr applies to --mode train_step only (an inference export does no update)")
    lr = DEFAULT_LR if args.lr is None else args.lr
    shapes = input_shapes(args, "export")
    model = load_model(args.model)
    inputs = example_inputs(shapes)
    name = args.name or re.sub(r"\W", "_", type(model).__name__).lower()
    arg_names = _arg_names(model.forward, len(inputs))
    if args.mode == "inference":
        model.eval()  # dropout off, batch norm on its running statistics
        _check_arity(model, inputs)
        what, fn, feeds = "the forward", model, inputs
    else:
        step, target, _names = make_train_step(model, inputs, lr)
        what, fn, feeds = "the training step", step, inputs + [target]
        arg_names.append(_unique("target", set(arg_names)))

    def go():
        try:
            return graphnn.export(
                fn,
                feeds,
                args.output,
                mode=args.mode,
                target=args.target,
                name=name,
                input_names=arg_names,
                overwrite=args.force,
            )
        except OSError as e:
            if e.strerror is None:  # (graphnn.export's own refusal: a file in the way, a user's files)
                text = one_line(e).replace("overwrite=True (graphnn export --force)", "--force")
                raise ModelError(text.removeprefix("graphnn.export: ")) from None
            where = f" ({e.filename})" if e.filename and e.filename != args.output else ""
            raise ModelError(f"cannot write the export to {args.output}: {e.strerror}{where}") from None
        except graphnn.ExportError as e:
            raise ModelError(f"cannot export {type(model).__name__}: {one_line(e)}") from None

    path = _run(what, model, inputs, go)
    m = graphnn.load(path).manifest
    sig = lambda ps: ", ".join(f"{p['name']} {p['dtype']}{p['shape']}" for p in ps)  # noqa: E731
    print(f"wrote {path}: {', '.join(sorted(m['files']))}, manifest.json")
    print(f"  {m['entry_points'][m['entry']]['c']}")
    print(
        f"  inputs: {sig(m['inputs'])}; outputs: {sig(m['outputs'])}; weights: "
        f"{len(m['weights']['tensors'])} tensors, {m['weights']['nbytes']:,} bytes"
    )
    print(
        f"  target: {m['target']['description']}" + ("" if m["library"] else "; no C compiler found: object file only")
    )
    print(f"  load it with graphnn.load({path!r}), or from C with {m['header']}")
    return 0
