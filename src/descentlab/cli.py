"""The ``descentlab`` command line."""

from __future__ import annotations

import argparse
import sys


def _positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="descentlab", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="train a tiny model with every optimizer and print a table")
    demo.add_argument("--steps", type=_positive_int, default=300, help="full-batch steps per run (default 300)")
    demo.add_argument("--seed", type=int, default=0, help="seed of data and initialization (default 0)")
    args = parser.parse_args(argv)
    if args.command == "demo":
        from descentlab.demo import run_demo

        run_demo(steps=args.steps, seed=args.seed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
