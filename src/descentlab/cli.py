"""The ``descentlab`` command line: ``run``, ``show``, ``report``, ``migrate``, ``compare``, ``list``, ``demo``,
``playground``, ``port`` and ``bench step``.

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
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


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
        summary = (cls.__doc__ or name).strip().splitlines()[0]
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


def _given(args: argparse.Namespace, options: tuple[str, ...]) -> dict[str, Any]:
    """The ``options`` and the batch size given on the command line (those left out are None there)."""
    given = {option: getattr(args, option) for option in options if getattr(args, option) is not None}
    if args.batch_size is not None:
        given["batch_size"] = _chosen_batch_size(args.batch_size)
    return given


def _add_run_arguments(run) -> None:
    run.add_argument("--suite", help="a predefined study (see `descentlab list suites`); other flags override it")
    run.add_argument("--problems", help="comma-separated problem names")
    run.add_argument("--optimizers", help="comma-separated lab optimizer names")
    _add_protocol_arguments(run)
    _add_trial_arguments(run)
    run.add_argument("--out", help="also write summary.json, .txt and .md into this folder")
    run.add_argument("--name", help="the study's name in the store (default: the suite, or 'study')")
    run.add_argument("--report", action="store_true",
                     help="at the end, write report.html (into --out, or the store's folder)")


def _add_protocol_arguments(run) -> None:
    """How `run` tunes and budgets each trial: the lr grid, the seeds, the steps, the batches."""
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


def _add_trial_arguments(command) -> None:
    """Where a study's trials run and are kept: the options `run` and `compare` share."""
    command.add_argument("--workers", type=_positive_int, default=1, help="parallel trial processes (default 1)")
    command.add_argument("--executor", choices=("local", "ray"), default="local", help="where trials run")
    command.add_argument("--address", help="Ray cluster address (with --executor ray; default: a local Ray)")
    command.add_argument("--db", default="descentlab.sqlite", help="the results store (default descentlab.sqlite)")
    command.add_argument("--device", default="cpu", help="auto, cpu, cuda or cuda:N (default %(default)s; auto: a "
                                                         "GPU if one is visible)")
    command.add_argument("--amp", choices=("bf16", "fp16"), help="mixed precision (fp16 with a GradScaler)")


def _device(args: argparse.Namespace, parser: argparse.ArgumentParser) -> str:
    """--device checked before any work: a GPU that is not there is one line and exit 2."""
    from descentlab.lab import devices

    try:
        return devices.resolve(args.device)
    except ValueError as error:
        parser.error(f"--device: {error}")


def _study_from(args, parser):
    from descentlab.lab import Study

    spec = _study_spec(args, parser)
    spec["name"] = args.name or args.suite or "study"
    spec["device"], spec["amp"] = _device(args, parser), args.amp
    try:
        return Study(**spec)
    except ValueError as error:
        parser.error(str(error))


def _study_spec(args, parser) -> dict[str, Any]:
    """The study's protocol: the suite's (if any), each option given on the command line over it."""
    from descentlab.lab import SUITES

    if args.suite and args.suite not in SUITES:
        parser.error(f"--suite: unknown suite {args.suite!r}. Valid suites: {', '.join(SUITES)}")
    spec: dict[str, Any] = dict(SUITES[args.suite]) if args.suite else {}
    spec.update(_given(args, ("grid", "span", "seeds", "steps", "epochs", "eval_every", "divergence_factor", "extend")))
    if args.problems:
        spec["problems"] = _names(args.problems)
    if args.optimizers:
        spec["optimizers"] = _names(args.optimizers)
    for required in ("problems", "optimizers"):
        if not spec.get(required):
            parser.error(f"--{required}: give a comma-separated list, or a --suite")
    if args.epochs is not None:
        spec.pop("steps", None)  # --epochs replaces a suite's step budget
    return spec


def _run(args, parser) -> int:
    from descentlab.lab import format_summary, run_study

    study = _study_from(args, parser)
    if args.out:  # before any work: a study must not run for nothing
        _check_writable(args.out, parser)
    _check_budgets(study, parser)
    summary = run_study(study, db=args.db, workers=args.workers, executor=args.executor, address=args.address,
                        command=["descentlab", *sys.argv[1:]])
    table = format_summary(summary)
    print(table)
    print(f"\nresults: {args.db} (study {summary['study']['id']}); `descentlab show {summary['study']['id']} "
          f"--db {args.db}` shows them again, and the same command resumes an interrupted study")
    if args.out:
        _write_summary(summary, table, args.out)
    if args.report:
        from descentlab.report import write_report

        print(f"report: {write_report(args.db, summary['study']['id'], args.out)}")
    return 0


def _check_budgets(study, parser) -> None:
    """Each problem's budget checked before any work: one it cannot have (epochs without a fixed
    epoch) is an argument error."""
    from descentlab.lab import runner

    for label in study.problems:
        try:
            study.budget(runner.get_problem(study.problem_name(label), study.options(label)), label)
        except ValueError as error:
            parser.error(str(error))


def _write_summary(summary, table: str, out: str) -> None:
    """The summary as summary.json, the terminal's ``table`` as summary.txt, and Markdown as summary.md."""
    import json

    from descentlab.lab import format_summary

    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "summary.json"), "w") as f:
        json.dump(summary, f, indent=1, default=str)
    with open(os.path.join(out, "summary.txt"), "w") as f:
        f.write(table + "\n")
    with open(os.path.join(out, "summary.md"), "w") as f:
        f.write(format_summary(summary, style="markdown") + "\n")
    print(f"wrote {out}/summary.json, summary.txt and summary.md")


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
    from descentlab.lab.compare import compare, format_result, load_entry

    try:
        arguments = load_entry(args.entry)
    except (ValueError, ImportError) as error:
        parser.error(f"--entry: {error}")
    options = _compare_options(args, parser)
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


def _compare_options(args: argparse.Namespace, parser: argparse.ArgumentParser) -> dict[str, Any]:
    """``compare``'s keyword arguments from the command line (the entry's own come first, these override)."""
    options = {"device": _device(args, parser), "amp": args.amp, "workers": args.workers, "executor": args.executor,
               "address": args.address, "report": args.report, "out": args.out, "db": args.db, "entry": args.entry,
               "name": args.name or args.entry}
    options.update(_given(args, ("steps", "epochs", "seeds", "grid", "span", "extend", "eval_every", "eval_examples",
                                 "select")))
    if args.optimizers:
        options["optimizers"] = _checked_optimizers(args.optimizers, parser)
    if args.test is not None:
        options["test"] = _test_split(args.test, parser)
    return options


def _checked_optimizers(text: str, parser: argparse.ArgumentParser) -> list[str]:
    """``--optimizers`` of ``compare``: lab names, checked before any work."""
    from descentlab.lab.spec import check_optimizers

    try:
        check_optimizers(_names(text))
    except ValueError as error:
        parser.error(f"--optimizers: {error}")
    return _names(text)


def _test_split(entry: str, parser: argparse.ArgumentParser):
    """``--test``: the test split its function returns."""
    from descentlab.lab.compare import load_function

    try:
        return load_function(entry, "test")()
    except (ValueError, ImportError) as error:
        parser.error(f"--test: {error}")


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


def _demo_arguments(demo: argparse.ArgumentParser) -> argparse.ArgumentParser:
    demo.add_argument("--steps", type=_positive_int, default=300, help="full-batch steps per run (default 300)")
    demo.add_argument("--seed", type=int, default=0, help="seed of data and initialization (default 0)")
    return demo


def _demo(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from descentlab.demo import run_demo

    run_demo(steps=args.steps, seed=args.seed)
    return 0


def _list_arguments(listing: argparse.ArgumentParser) -> argparse.ArgumentParser:
    listing.add_argument("what", nargs="?", choices=("all", "problems", "optimizers", "suites"), default="all")
    return listing


def _list(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    if args.what in ("all", "optimizers"):
        list_optimizers()
    if args.what in ("all", "problems"):
        list_problems()
    if args.what in ("all", "suites"):
        list_suites()
    return 0


def _bench_arguments(bench: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """``bench step``: the one benchmark (its parser is the one whose errors are printed)."""
    step = bench.add_subparsers(dest="bench", required=True).add_parser(
        "step", help="optimizer step time of every path vs the memory-bandwidth bound and torch.optim"
    )
    step.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    step.add_argument("--cases", help="a: 10M params in 100 tensors, b: 1M in 1000, c: 100M in 100, "
                                      "d: 10M in 1000 (default a,b on the CPU, c,d on CUDA)")
    step.add_argument("--optimizers", help="comma-separated subset (default: all)")
    step.add_argument("--rounds", type=_positive_int, default=15, help="timed steps per contender (default 15)")
    step.add_argument("--json", default="bench-step.json", help="where to write the results (default bench-step.json)")
    step.add_argument("--markdown", action="store_true", help="also print the results as a Markdown table")
    return step


def _bench_choices(args: argparse.Namespace, parser: argparse.ArgumentParser) -> tuple[list[str], list[str] | None]:
    """``--device``, ``--cases`` and ``--optimizers`` of ``bench step``, checked: (cases, names or None)."""
    from descentlab import bench as benchmarks

    if args.device.split(":")[0] not in ("cpu", "cuda"):
        parser.error(f"--device: expected cpu or cuda, got {args.device!r}")
    cases = [c for c in (args.cases or "").split(",") if c]
    bad = [c for c in cases if c not in benchmarks.CASES]
    if bad:
        parser.error(f"--cases: unknown case {bad[0]!r}; choose from {sorted(benchmarks.CASES)}")
    names = [n for n in args.optimizers.split(",") if n] if args.optimizers else None
    known = [c.name for c in benchmarks.CONTESTANTS]
    unknown = [n for n in names or () if n not in known]
    if unknown:
        parser.error(f"--optimizers: unknown optimizer {unknown[0]!r}; choose from {', '.join(known)}")
    return cases, names


def _bench(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from descentlab import bench as benchmarks

    cases, names = _bench_choices(args, parser)
    try:
        result = benchmarks.run(cases or None, names, args.rounds, device=args.device)
    except RuntimeError as error:  # no such device, or no fused path on it
        print(f"descentlab bench step: {error}", file=sys.stderr)
        return 1
    benchmarks.write_json(result, args.json)
    if args.markdown:
        print("\n" + benchmarks.markdown(result))
    print(f"\nwrote {args.json}")
    return 0


def _run_arguments(run: argparse.ArgumentParser) -> argparse.ArgumentParser:
    _add_run_arguments(run)
    return run


def _db_argument(command: argparse.ArgumentParser) -> None:
    command.add_argument("--db", default="descentlab.sqlite", help="the results store (default descentlab.sqlite)")


def _show_arguments(show: argparse.ArgumentParser) -> argparse.ArgumentParser:
    show.add_argument("study", nargs="?", type=int, help="study id (default: list them)")
    _db_argument(show)
    show.add_argument("--format", choices=("text", "markdown"), default="text",
                      help="tables for the terminal or Markdown")
    return show


def _report_arguments(reporting: argparse.ArgumentParser) -> argparse.ArgumentParser:
    _db_argument(reporting)
    reporting.add_argument("--study", type=int, help="study id (default: the latest in the store)")
    reporting.add_argument("--out", help="folder for report.html (default: the store's folder)")
    return reporting


def _migrate_arguments(migrating: argparse.ArgumentParser) -> argparse.ArgumentParser:
    _db_argument(migrating)
    return migrating


def _compare_arguments(comparing: argparse.ArgumentParser) -> argparse.ArgumentParser:
    comparing.add_argument("--entry", required=True,
                           help="module:function returning dict(model_fn=, loss_fn= or step_fn=, train=, valid=, "
                                "test=, metrics=, select=...): the keyword arguments of descentlab.compare")
    comparing.add_argument("--optimizers", help="comma-separated lab names (default nadam,rmsprop,momentum)")
    _add_compare_protocol_arguments(comparing)
    comparing.add_argument("--select", help="the metric that selects the lr (default loss)")
    comparing.add_argument("--test", help="module:function returning the test split (a Dataset, (inputs, targets) "
                                          "or seed -> batches); default: the entry's own `test`")
    _add_trial_arguments(comparing)
    comparing.add_argument("--name", help="the study's name in the store (default: the entry)")
    comparing.add_argument("--out", help="folder for report.html (default: the store's folder)")
    comparing.add_argument("--report", action="store_true", help="at the end, write report.html")
    comparing.set_defaults(device="auto")
    return comparing


def _add_compare_protocol_arguments(comparing: argparse.ArgumentParser) -> None:
    """How `compare` tunes and budgets each run: the steps, the seeds, the lr grid, the batches, the curve."""
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


def _playground_arguments(playing: argparse.ArgumentParser) -> argparse.ArgumentParser:
    playing.add_argument("--out", required=True, help="folder for playground.html")
    playing.add_argument("--steps", type=_positive_int, default=200, help="steps per path (default 200)")
    playing.add_argument("--optimizers", help="comma-separated lab names (default: every one it can run)")
    playing.add_argument("--no-noise", action="store_true", help="leave out the gradient-noise variants")
    playing.add_argument("--workers", type=_positive_int, default=1, help="processes computing paths (default 1)")
    return playing


def _playground(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from descentlab.report.playground import command

    return command(args, parser)


def _port_arguments(porting: argparse.ArgumentParser) -> argparse.ArgumentParser:
    from descentlab.port.command import add_arguments

    for command in add_arguments(porting):  # its own subcommands take --data-dir after them too
        command.add_argument("--data-dir", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    return porting


def _port(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from descentlab.port.command import command

    return command(args, parser)


@dataclass(frozen=True)
class Subcommand:
    """One ``descentlab`` subcommand: adding one is one entry of :data:`SUBCOMMANDS`."""

    name: str
    help: str
    arguments: Callable[[argparse.ArgumentParser], argparse.ArgumentParser]  # adds its options; returns the
    # parser whose usage its errors print (``bench``'s is ``bench step``'s)
    handler: Callable[[argparse.Namespace, argparse.ArgumentParser], int]  # runs it; returns the exit status
    store: bool = False  # it reads data or a results store: their faults are one line and exit status 1


SUBCOMMANDS = (
    Subcommand("demo", "train a tiny model with every optimizer and print a table", _demo_arguments, _demo),
    Subcommand("list", "list problems (with their data provenance) and optimizers", _list_arguments, _list),
    Subcommand("bench", "benchmarks", _bench_arguments, _bench),
    Subcommand("run", "run (or resume) a study: tune lr, select on validation, confirm on seeds", _run_arguments,
               _run, store=True),
    Subcommand("show", "list the studies in a store, or show one", _show_arguments, _show, store=True),
    Subcommand("report", "write a study's pictures and tables as one self-contained HTML page", _report_arguments,
               _report, store=True),
    Subcommand("migrate", "upgrade a results store written by an older descentlab", _migrate_arguments, _migrate,
               store=True),
    Subcommand("compare", "race optimizers on your own model: --entry module:function", _compare_arguments,
               _compare, store=True),
    Subcommand("playground", "write the interactive surface playground (one offline page)", _playground_arguments,
               _playground),
    Subcommand("port", "port a Keras training recipe to PyTorch: explain, check", _port_arguments, _port),
)


def _parser() -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    """The command line's parser, and each subcommand's parser (the one its errors print the usage of)."""
    parser = argparse.ArgumentParser(prog="descentlab",
                                     description="The classic optimizers, exact, and a lab to compare them.")
    parser.add_argument("--data-dir",
                        help="folder holding datasets (mnist/, ptb/, ...); searched before DESCENTLAB_DATA")
    commands = parser.add_subparsers(dest="command", required=True)
    leaves = {}
    for subcommand in SUBCOMMANDS:
        leaf = subcommand.arguments(commands.add_parser(subcommand.name, help=subcommand.help))
        leaf.add_argument("--data-dir", default=argparse.SUPPRESS, help=argparse.SUPPRESS)  # also after it
        leaves[subcommand.name] = leaf
    return parser, leaves


def _use_data_dir(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    if args.data_dir:
        if not os.path.isdir(args.data_dir):
            parser.error(f"--data-dir: {args.data_dir} is not a directory")
        searched = [args.data_dir, os.environ.get("DESCENTLAB_DATA")]
        os.environ["DESCENTLAB_DATA"] = os.pathsep.join(filter(None, searched))


def _with_store(subcommand: Subcommand, args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """Run a subcommand that reads data or a store: a missing dataset, a failed run or a damaged
    store is one line on stderr and exit status 1."""
    from descentlab import data

    try:
        return subcommand.handler(args, parser)
    except (data.DataUnavailable, data.ChecksumMismatch, RuntimeError) as error:
        print(f"descentlab {args.command}: {error}", file=sys.stderr)
        return 1
    except sqlite3.DatabaseError as error:  # damage found while reading (writing checks first)
        from descentlab.lab.store import damaged

        print(f"descentlab {args.command}: {damaged(args.db, str(error))}", file=sys.stderr)
        return 1


def _main(argv: list[str]) -> int:
    parser, leaves = _parser()
    args = parser.parse_args(argv)
    subcommand = next(s for s in SUBCOMMANDS if s.name == args.command)
    leaf = leaves[args.command]  # errors print the usage of the subcommand at fault
    _use_data_dir(args, leaf)
    if subcommand.store:
        return _with_store(subcommand, args, leaf)
    return subcommand.handler(args, leaf)


if __name__ == "__main__":
    sys.exit(main())
