"""The ``descentlab`` command line: ``demo`` (the main job for now), ``list`` and ``bench step``."""

from __future__ import annotations

import argparse
import os
import sys


def _positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def list_problems(out=print) -> int:
    """Print every problem with its defaults and data provenance; return how many are unavailable."""
    from descentlab import data, problems

    unavailable = 0
    for name in problems.names():
        try:
            problem = problems.get(name)
        except (data.DataUnavailable, data.ChecksumMismatch) as error:
            unavailable += 1
            out(f"{name}\n    UNAVAILABLE: " + str(error).replace("\n", "\n    "))
            continue
        batch = problem.default_batch_size or "full"
        out(f"{name}: {problem.description}")
        out(f"    metric {problem.metric} ({problem.metric_goal}); default {problem.default_steps} steps, batch {batch}")
        out(f"    data: {problem.provenance}")
    return unavailable


def list_optimizers(out=print) -> None:
    from descentlab import optim

    for name, cls in optim.NAMED.items():
        summary = cls.__doc__.strip().splitlines()[0]
        out(f"{name}: {summary.removeprefix(name + ': ')}")
    out(f"Composed: momentum_rule {optim.MOMENTUM_RULES} x adaptation_rule {optim.ADAPTATION_RULES}, order {optim.ORDERS}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="descentlab", description="The classic optimizers, exact, and a lab to compare them.")
    parser.add_argument("--data-dir", help="folder holding datasets (mnist/, ptb/, ...); searched before DESCENTLAB_DATA")
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="train a tiny model with every optimizer and print a table")
    demo.add_argument("--steps", type=_positive_int, default=300, help="full-batch steps per run (default 300)")
    demo.add_argument("--seed", type=int, default=0, help="seed of data and initialization (default 0)")
    listing = commands.add_parser("list", help="list problems (with their data provenance) and optimizers")
    listing.add_argument("what", nargs="?", choices=("all", "problems", "optimizers"), default="all")
    bench = commands.add_parser("bench", help="benchmarks")
    bench_kinds = bench.add_subparsers(dest="bench", required=True)
    bench_step = bench_kinds.add_parser(
        "step", help="optimizer step time of every path vs the memory-bandwidth bound and torch.optim"
    )
    bench_step.add_argument("--cases", default="a,b", help="a: 10M params in 100 tensors, b: 1M in 1000 (default a,b)")
    bench_step.add_argument("--optimizers", help="comma-separated subset (default: all)")
    bench_step.add_argument("--rounds", type=_positive_int, default=15, help="timed steps per contender (default 15)")
    bench_step.add_argument("--json", default="bench-step.json", help="where to write the results (default bench-step.json)")
    bench_step.add_argument("--markdown", action="store_true", help="also print the results as a Markdown table")
    args = parser.parse_args(argv)
    if args.data_dir:
        if not os.path.isdir(args.data_dir):
            parser.error(f"--data-dir: {args.data_dir} is not a directory")
        os.environ["DESCENTLAB_DATA"] = os.pathsep.join(filter(None, [args.data_dir, os.environ.get("DESCENTLAB_DATA")]))
    if args.command == "demo":
        from descentlab.demo import run_demo

        run_demo(steps=args.steps, seed=args.seed)
    elif args.command == "bench":
        from descentlab import bench as benchmarks

        cases = [c for c in args.cases.split(",") if c]
        bad = [c for c in cases if c not in benchmarks.CASES]
        if bad:
            parser.error(f"--cases: unknown case {bad[0]!r}; choose from {sorted(benchmarks.CASES)}")
        names = [n for n in args.optimizers.split(",") if n] if args.optimizers else None
        known = [c.name for c in benchmarks.CONTESTANTS]
        if names and any(n not in known for n in names):
            unknown = next(n for n in names if n not in known)
            parser.error(f"--optimizers: unknown optimizer {unknown!r}; choose from {', '.join(known)}")
        result = benchmarks.run(cases, names, args.rounds)
        benchmarks.write_json(result, args.json)
        if args.markdown:
            print("\n" + benchmarks.markdown(result))
        print(f"\nwrote {args.json}")
    elif args.command == "list":
        if args.what in ("all", "optimizers"):
            list_optimizers()
        if args.what in ("all", "problems"):
            list_problems()
    return 0


if __name__ == "__main__":
    sys.exit(main())
