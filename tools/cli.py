"""The `graphnn` command-line program."""
from __future__ import annotations

import argparse
import sys


def main(argv: list | None = None) -> int:
    parser = argparse.ArgumentParser(prog="graphnn", description="graphnn: a neural-network graph compiler for the CPU")
    sub = parser.add_subparsers(dest="command")
    demo = sub.add_parser("demo", help="train the tutorial's Net, compiled, on generated data")
    demo.add_argument("--steps", type=int, default=300)
    demo.add_argument("--batch", type=int, default=64)
    demo.add_argument("--lr", type=float, default=0.02)
    demo.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.command == "demo":
        from .demo import run

        res = run(steps=args.steps, batch=args.batch, lr=args.lr, seed=args.seed)
        return 0 if res["train_accuracy"] > 0.9 else 1
    parser.print_help()
    return 2


if __name__ == "__main__":
    sys.exit(main())
