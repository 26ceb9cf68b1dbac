"""The ``descentlab`` command line: ``run``, ``show``, ``report``, ``migrate``, ``compare``, ``list``, ``demo``,
``playground`` and ``bench step``.

Exit codes: 0 success, 1 a failure while running (missing data, a store that cannot be opened),
2 bad arguments (with a message naming the argument, and the valid names where there is a list).
"""

from __future__ import annotations

import argparse
import os
import shlex
import sqlite3
import sys
import tempfile


def _integer(text: str, low: int, wanted: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = low - 1
    if value < low:
        raise argparse.ArgumentTypeError(f"must be {wanted}, got {text}")
    return value


def _positive_int(text: str) -> int:
    return _integer(text, 1, "a positive integer")


def _nonnegative_int(text: str) -> int:
    return _integer(text, 0, "an integer >= 0")


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, got {text}") from None


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
        out(f"    metric {problem.metric} ({problem.metric_goal}); "
            f"default {problem.default_steps} steps, batch {batch}")
        out(f"    data: {problem.provenance}")
    return unavailable


def list_optimizers(out=print) -> None:
    from descentlab import optim
    from descentlab.lab import OPTIMIZERS, default_lr

    for name, cls in optim.NAMED.items():
        summary = cls.__doc__.strip().splitlines()[0]
        out(f"{name}: {summary.removeprefix(name + ': ')}")
    out(f"Composed: momentum_rule {optim.MOMENTUM_RULES} x adaptation_rule {optim.ADAPTATION_RULES}, "
        f"order {optim.ORDERS}")
    out("lab names (--optimizers): " + ", ".join(
        f"{name} ({cls.__name__}{''.join(f' {k}={v}' for k, v in fixed.items())}, lr {default_lr(name):g})"
        for name, (cls, fixed) in OPTIMIZERS.items()))
    out("clipped variants: NAME+clipnorm=C, NAME+global_clipnorm=C or NAME+clipvalue=V "
        "(e.g. momentum+clipnorm=1), each a contestant of its own on its base's lr grid")


def list_suites(out=print) -> None:
    from descentlab.lab import SUITES

    for name, spec in SUITES.items():
        out(f"{name}: problems {','.join(spec['problems'])}; optimizers {','.join(spec['optimizers'])}; "
            f"grid {spec['grid']} over {spec['span']:g} decades; {spec['seeds']} seeds"
            + (f"; {spec['steps']} steps" if spec.get("steps") else "; each problem's default steps")
            + "".join(f", {label} {steps}" for label, steps in spec.get("problem_steps", {}).items())
            + "".join(f"; {label} {options}" for label, options in spec.get("problem_options", {}).items()))


def _names(text: str) -> list[str]:
    return [name for name in text.split(",") if name]


def _batch_size(text: str):
    """A positive integer, or "full" (every example each step)."""
    return "full" if text == "full" else _positive_int(text)


def _chosen_batch_size(value):
    return None if value == "full" else value


def _add_run_arguments(run) -> None:
    run.add_argument("--suite", help="a predefined study (see `descentlab list suites`); other flags override it")
    run.add_argument("--problems", help="comma-separated problem names")
    run.add_argument("--optimizers", help="comma-separated lab optimizer names")
    run.add_argument("--grid", type=_positive_int, help="learning rates per optimizer (default 5)")
    run.add_argument("--span", type=_number, help="decades the lr grid spans, centred on the default (default 2)")
    run.add_argument("--seeds", type=_positive_int, help="seeds the chosen lr is run on (default 3)")
    run.add_argument("--steps", type=_positive_int, help="steps per trial (default: each problem's budget)")
    run.add_argument("--epochs", type=_number, help="or: passes over the training split per trial")
    run.add_argument("--batch-size", type=_batch_size, help="examples per step, or 'full'")
    run.add_argument("--eval-every", type=_positive_int, help="steps between validation points (default steps/20)")
    run.add_argument("--divergence-factor", type=_number, help="a loss above this × the first loss is divergence (10)")
    run.add_argument("--extend", type=_nonnegative_int,
                     help="extra lr points allowed per optimizer while its best lr is at a grid edge (default 8)")
    _add_trial_arguments(run)
    run.add_argument("--out", help="also write summary.json, .txt and .md into this folder")
    run.add_argument("--name", help="the study's name in the store (default: the suite, or 'study')")
    run.add_argument("--report", action="store_true",
                     help="at the end, write report.html (into --out, or the store's folder)")


def _add_trial_arguments(command) -> None:
    """Where a study's trials run and are kept: the options `run` and `compare` share."""
    command.add_argument("--workers", type=_positive_int, default=1, help="parallel trial processes (default 1)")
    command.add_argument("--executor", choices=("local", "ray"), default="local", help="where trials run")
    command.add_argument("--address", help="Ray cluster address (with --executor ray; default: a local Ray)")
    command.add_argument("--db", default="descentlab.sqlite", help="the results store (default descentlab.sqlite)")
    command.add_argument("--device", default="cpu", help="auto, cpu, cuda or cuda:N (default %(default)s; auto: a "
                                                         "GPU if one is visible)")
    command.add_argument("--amp", choices=("bf16", "fp16"), help="mixed precision (fp16 with a GradScaler)")


def _device(args, parser) -> str:
    """--device checked before any work: a GPU that is not there is one line and exit 2."""
    from descentlab.lab import devices

    try:
        return devices.resolve(args.device)
    except ValueError as error:
        parser.error(f"--device: {error}")


def _study_from(args, parser):
    from descentlab.lab import SUITES, Study

    if args.suite and args.suite not in SUITES:
        parser.error(f"--suite: unknown suite {args.suite!r}. Valid suites: {', '.join(SUITES)}")
    spec = dict(SUITES[args.suite]) if args.suite else {}
    for option in ("grid", "span", "seeds", "steps", "epochs", "eval_every", "divergence_factor", "extend"):
        if getattr(args, option) is not None:
            spec[option] = getattr(args, option)
    if args.batch_size is not None:
        spec["batch_size"] = _chosen_batch_size(args.batch_size)
    if args.problems:
        spec["problems"] = _names(args.problems)
    if args.optimizers:
        spec["optimizers"] = _names(args.optimizers)
    for required in ("problems", "optimizers"):
        if not spec.get(required):
            parser.error(f"--{required}: give a comma-separated list, or a --suite")
    if args.epochs is not None:
        spec.pop("steps", None)  # --epochs replaces a suite's step budget
    spec["name"] = args.name or args.suite or "study"
    spec["device"], spec["amp"] = _device(args, parser), args.amp
    try:
        return Study(**spec)
    except ValueError as error:
        parser.error(str(error))


def _run(args, parser) -> int:
    import json

    from descentlab.lab import format_summary, run_study, runner

    study = _study_from(args, parser)
    if args.out:  # before any work: a study must not run for nothing
        _check_writable(args.out, parser)
    for label in study.problems:  # a budget the problem cannot have (epochs without a fixed epoch)
        try:
            study.budget(runner.get_problem(study.problem_name(label), study.options(label)), label)
        except ValueError as error:
            parser.error(str(error))
    summary = run_study(study, db=args.db, workers=args.workers, executor=args.executor, address=args.address,
                        command=["descentlab", *sys.argv[1:]])
    table = format_summary(summary)
    print(table)
    print(f"\nresults: {args.db} (study {summary['study']['id']}); `descentlab show {summary['study']['id']} "
          f"--db {args.db}` shows them again, and the same command resumes an interrupted study")
    if args.out:
        os.makedirs(args.out, exist_ok=True)
        with open(os.path.join(args.out, "summary.json"), "w") as f:
            json.dump(summary, f, indent=1, default=str)
        with open(os.path.join(args.out, "summary.txt"), "w") as f:
            f.write(table + "\n")
        with open(os.path.join(args.out, "summary.md"), "w") as f:
            f.write(format_summary(summary, style="markdown") + "\n")
        print(f"wrote {args.out}/summary.json, summary.txt and summary.md")
    if args.report:
        from descentlab.report import write_report

        print(f"report: {write_report(args.db, summary['study']['id'], args.out)}")
    return 0


def _check_writable(folder: str, parser) -> None:
    """An output folder is checked before the work that fills it (created if missing)."""
    try:
        os.makedirs(folder, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as error:
        parser.error(f"--out: cannot write into {folder} ({error.strerror or error}); give --out a writable folder")


def _report(args, parser) -> int:
    import time

    from descentlab.report import write_report

    if not os.path.exists(args.db):
        parser.error(f"--db: no results store at {args.db}")
    _check_writable(args.out or os.path.dirname(os.path.abspath(args.db)), parser)
    started = time.perf_counter()
    try:
        path = write_report(args.db, args.study, args.out)
    except ValueError as error:
        parser.error(f"--study: {error}")
    print(f"report: {path} ({os.path.getsize(path) / 1e6:.2f} MB, written in {time.perf_counter() - started:.1f} s)")
    return 0


def _show(args, parser) -> int:
    from descentlab.lab import Store, format_summary, summarize

    if not os.path.exists(args.db):
        parser.error(f"--db: no results store at {args.db}")
    store = Store(args.db, readonly=True)
    if args.study is None:
        for study in store.studies():
            spec = study["spec"]
            print(f"{study['id']:>4}  {study['name']:<12} problems {','.join(spec['problems'])}; "
                  f"optimizers {','.join(spec['optimizers'])}")
        return 0
    try:
        print(format_summary(summarize(store, args.study), style=args.format))
    except ValueError as error:
        parser.error(f"study: {error}")
    return 0


def _migrate(args, parser) -> int:
    from descentlab.lab.migrate import migrate

    if not os.path.exists(args.db):
        parser.error(f"--db: no results store at {args.db}")
    print(migrate(args.db))
    return 0


def _compare(args, parser) -> int:
    from descentlab.lab.compare import compare, format_result, load_entry, load_function
    from descentlab.lab.spec import check_optimizers

    try:
        arguments = load_entry(args.entry)
    except (ValueError, ImportError) as error:
        parser.error(f"--entry: {error}")
    options = {"device": _device(args, parser), "amp": args.amp, "workers": args.workers, "executor": args.executor,
               "address": args.address, "report": args.report, "out": args.out, "db": args.db, "entry": args.entry,
               "name": args.name or args.entry}
    for option in ("steps", "epochs", "seeds", "grid", "span", "extend", "eval_every", "eval_examples", "select"):
        if getattr(args, option) is not None:
            options[option] = getattr(args, option)
    if args.batch_size is not None:
        options["batch_size"] = _chosen_batch_size(args.batch_size)
    if args.optimizers:
        try:
            check_optimizers(_names(args.optimizers))
        except ValueError as error:
            parser.error(f"--optimizers: {error}")
        options["optimizers"] = _names(args.optimizers)
    if args.test is not None:
        try:
            options["test"] = load_function(args.test, "test")()
        except (ValueError, ImportError) as error:
            parser.error(f"--test: {error}")
    if args.epochs is not None:
        arguments.pop("steps", None)
    if args.out:
        _check_writable(args.out, parser)
    try:
        result = compare(**{**arguments, **options})
    except (ValueError, TypeError) as error:
        parser.error(str(error))
    print(format_result(result))
    return 0


def main(argv: list[str] | None = None) -> int:
    """The command line; Ctrl-C ends it with one line and exit status 130, never a traceback."""
    from descentlab.lab.protocol import Interrupted

    argv = sys.argv[1:] if argv is None else argv
    try:
        return _main(argv)
    except Interrupted as stop:
        print(f"descentlab: interrupted; {stop.saved} finished trials of this study are saved. Resume with: "
              f"{shlex.join(['descentlab', *argv])}", file=sys.stderr)
    except KeyboardInterrupt:
        print("descentlab: interrupted", file=sys.stderr)
    return 130


def _main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="descentlab",
                                     description="The classic optimizers, exact, and a lab to compare them.")
    parser.add_argument("--data-dir",
                        help="folder holding datasets (mnist/, ptb/, ...); searched before DESCENTLAB_DATA")
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="train a tiny model with every optimizer and print a table")
    demo.add_argument("--steps", type=_positive_int, default=300, help="full-batch steps per run (default 300)")
    demo.add_argument("--seed", type=int, default=0, help="seed of data and initialization (default 0)")
    listing = commands.add_parser("list", help="list problems (with their data provenance) and optimizers")
    listing.add_argument("what", nargs="?", choices=("all", "problems", "optimizers", "suites"), default="all")
    bench = commands.add_parser("bench", help="benchmarks")
    bench_kinds = bench.add_subparsers(dest="bench", required=True)
    bench_step = bench_kinds.add_parser(
        "step", help="optimizer step time of every path vs the memory-bandwidth bound and torch.optim"
    )
    bench_step.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    bench_step.add_argument("--cases", help="a: 10M params in 100 tensors, b: 1M in 1000, c: 100M in 100, "
                                            "d: 10M in 1000 (default a,b on the CPU, c,d on CUDA)")
    bench_step.add_argument("--optimizers", help="comma-separated subset (default: all)")
    bench_step.add_argument("--rounds", type=_positive_int, default=15, help="timed steps per contender (default 15)")
    bench_step.add_argument("--json", default="bench-step.json",
                            help="where to write the results (default bench-step.json)")
    bench_step.add_argument("--markdown", action="store_true", help="also print the results as a Markdown table")
    run = commands.add_parser("run", help="run (or resume) a study: tune lr, select on validation, confirm on seeds")
    _add_run_arguments(run)
    show = commands.add_parser("show", help="list the studies in a store, or show one")
    show.add_argument("study", nargs="?", type=int, help="study id (default: list them)")
    show.add_argument("--db", default="descentlab.sqlite", help="the results store (default descentlab.sqlite)")
    show.add_argument("--format", choices=("text", "markdown"), default="text",
                      help="tables for the terminal or Markdown")
    reporting = commands.add_parser("report",
                                    help="write a study's pictures and tables as one self-contained HTML page")
    reporting.add_argument("--db", default="descentlab.sqlite", help="the results store (default descentlab.sqlite)")
    reporting.add_argument("--study", type=int, help="study id (default: the latest in the store)")
    reporting.add_argument("--out", help="folder for report.html (default: the store's folder)")
    migrating = commands.add_parser("migrate", help="upgrade a results store written by an older descentlab")
    migrating.add_argument("--db", default="descentlab.sqlite", help="the results store (default descentlab.sqlite)")
    comparing = commands.add_parser("compare", help="race optimizers on your own model: --entry module:function")
    comparing.add_argument("--entry", required=True,
                           help="module:function returning dict(model_fn=, loss_fn= or step_fn=, train=, valid=, "
                                "test=, metrics=, select=...): the keyword arguments of descentlab.compare")
    comparing.add_argument("--optimizers", help="comma-separated lab names (default nadam,rmsprop,momentum)")
    comparing.add_argument("--steps", "--budget", type=_positive_int, dest="steps", help="steps per run (default 200)")
    comparing.add_argument("--epochs", type=_number, help="or: passes over the training split per run")
    comparing.add_argument("--seeds", type=_positive_int, help="seeds per optimizer (default 5)")
    comparing.add_argument("--grid", type=_positive_int, help="learning rates per optimizer (default 5)")
    comparing.add_argument("--span", type=_number, help="decades the lr grid spans (default 2)")
    comparing.add_argument("--extend", type=_nonnegative_int, help="extra lr points allowed at a grid edge (default 8)")
    comparing.add_argument("--batch-size", type=_batch_size, help="examples per step, or 'full'")
    comparing.add_argument("--eval-every", type=_positive_int, help="steps between curve points (default steps/20)")
    comparing.add_argument("--eval-examples", type=_positive_int,
                           help="validation examples per curve point (default 1024; the end uses the whole split)")
    comparing.add_argument("--select", help="the metric that selects the lr (default loss)")
    comparing.add_argument("--test", help="module:function returning the test split (a Dataset, (inputs, targets) "
                                          "or seed -> batches); default: the entry's own `test`")
    _add_trial_arguments(comparing)
    comparing.add_argument("--name", help="the study's name in the store (default: the entry)")
    comparing.add_argument("--out", help="folder for report.html (default: the store's folder)")
    comparing.add_argument("--report", action="store_true", help="at the end, write report.html")
    comparing.set_defaults(device="auto")
    playing = commands.add_parser("playground", help="write the interactive surface playground (one offline page)")
    playing.add_argument("--out", required=True, help="folder for playground.html")
    playing.add_argument("--steps", type=_positive_int, default=200, help="steps per path (default 200)")
    playing.add_argument("--optimizers", help="comma-separated lab names (default: every one it can run)")
    playing.add_argument("--no-noise", action="store_true", help="leave out the gradient-noise variants")
    playing.add_argument("--workers", type=_positive_int, default=1, help="processes computing paths (default 1)")
    porting = commands.add_parser("port", help="port a Keras training recipe to PyTorch: explain, check")
    from descentlab.port.command import add_arguments as port_arguments

    port_commands = port_arguments(porting)
    # also after the subcommand
    for command in (demo, listing, bench_step, run, show, reporting, migrating, comparing, playing, *port_commands):
        command.add_argument("--data-dir", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    parser = {"run": run, "show": show, "report": reporting, "compare": comparing, "migrate": migrating,
              "bench": bench_step, "playground": playing, "port": porting,
              "demo": demo, "list": listing}[args.command]  # errors print the usage of the command at fault
    if args.data_dir:
        if not os.path.isdir(args.data_dir):
            parser.error(f"--data-dir: {args.data_dir} is not a directory")
        searched = [args.data_dir, os.environ.get("DESCENTLAB_DATA")]
        os.environ["DESCENTLAB_DATA"] = os.pathsep.join(filter(None, searched))
    if args.command in ("run", "show", "report", "compare", "migrate"):
        from descentlab import data

        handler = {"run": _run, "show": _show, "report": _report, "compare": _compare,
                   "migrate": _migrate}[args.command]
        try:
            return handler(args, parser)
        except (data.DataUnavailable, data.ChecksumMismatch, RuntimeError) as error:
            print(f"descentlab {args.command}: {error}", file=sys.stderr)
            return 1
        except sqlite3.DatabaseError as error:  # damage found while reading (writing checks first)
            from descentlab.lab.store import damaged

            print(f"descentlab {args.command}: {damaged(args.db, str(error))}", file=sys.stderr)
            return 1
    if args.command == "playground":
        from descentlab.report.playground import command

        return command(args, parser)
    if args.command == "port":
        from descentlab.port.command import command

        return command(args, parser)
    if args.command == "demo":
        from descentlab.demo import run_demo

        run_demo(steps=args.steps, seed=args.seed)
    elif args.command == "bench":
        from descentlab import bench as benchmarks

        if args.device.split(":")[0] not in ("cpu", "cuda"):
            parser.error(f"--device: expected cpu or cuda, got {args.device!r}")
        cases = [c for c in (args.cases or "").split(",") if c]
        bad = [c for c in cases if c not in benchmarks.CASES]
        if bad:
            parser.error(f"--cases: unknown case {bad[0]!r}; choose from {sorted(benchmarks.CASES)}")
        names = [n for n in args.optimizers.split(",") if n] if args.optimizers else None
        known = [c.name for c in benchmarks.CONTESTANTS]
        if names and any(n not in known for n in names):
            unknown = next(n for n in names if n not in known)
            parser.error(f"--optimizers: unknown optimizer {unknown!r}; choose from {', '.join(known)}")
        try:
            result = benchmarks.run(cases or None, names, args.rounds, device=args.device)
        except RuntimeError as error:  # no such device, or no fused path on it
            print(f"descentlab bench step: {error}", file=sys.stderr)
            return 1
        benchmarks.write_json(result, args.json)
        if args.markdown:
            print("\n" + benchmarks.markdown(result))
        print(f"\nwrote {args.json}")
    elif args.command == "list":
        if args.what in ("all", "optimizers"):
            list_optimizers()
        if args.what in ("all", "problems"):
            list_problems()
        if args.what in ("all", "suites"):
            list_suites()
    return 0


if __name__ == "__main__":
    sys.exit(main())
