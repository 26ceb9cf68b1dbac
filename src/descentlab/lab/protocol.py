"""The protocol: tune (extending each lr grid until the best point is bracketed), select on
validation, confirm on every seed; resumable at any point.

Every step is a pure function of what the store holds, so re-running the command that started a
study replays the same decisions, skips every finished trial (extensions included), and goes on
where it stopped.
"""

from __future__ import annotations

import json
import platform
import shlex
import socket
import threading

from descentlab.lab import executors, runner
from descentlab.lab.progress import Progress
from descentlab.lab.records import ProblemInfo, Summary
from descentlab.lab.scheduler import run_specs
from descentlab.lab.selection import LrAxis, best, score, ties
from descentlab.lab.store import LEASE_SECONDS, Store, owner_id
from descentlab.lab.study import Study
from descentlab.lab.summary import summarize


class Interrupted(Exception):
    """The user stopped a study (Ctrl-C); ``saved`` trials of it are finished in the store."""

    def __init__(self, saved: int, planned: int) -> None:
        super().__init__(f"{saved} of {planned} trials saved")
        self.saved, self.planned = saved, planned


def run_study(study: Study, db: str = "descentlab.sqlite", workers: int = 1, executor: str = "local",
              address: str | None = None, progress_stream=None, population: bool = True,
              command: list[str] | None = None) -> Summary:
    """Run (or resume) ``study`` into the store at ``db``; return its summary (see :func:`summarize`).

    ``command``: the command line to record with the study (the CLI passes its own). Ctrl-C
    stops the workers at once, hands this process's unfinished trials back, and raises
    :class:`Interrupted`; every finished trial stays in the store.
    """
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"`workers` must be a positive integer. Received: workers={workers!r}")
    built = {label: runner.get_problem(study.problem_name(label), study.options(label)) for label in study.problems}
    store = Store(db)
    owner = owner_id()
    try:
        name = study.name or "study"
        study_id = store.find_study(name, study.to_json()) or store.add_study(
            name, study.to_json(), _meta(command, workers, executor))
        with store.transaction():
            for label, problem in built.items():
                store.describe(study_id, label, describe(problem, study, label))
        pool = executors.make(executor, workers, address, study.device)
        progress = Progress(progress_stream, capacity=workers)
        try:
            with Lease(db, owner), progress:
                for label in built:
                    progress.plan(len(study.optimizers) * (study.seeds - 1), label)
                chosen = tune(store, study_id, study, built, pool, progress, owner, population)
                confirmations = [(label, spec) for (label, _), trial in chosen.items()
                                 for spec in study.confirmation_trials(trial)]
                run_specs(store, study_id, confirmations, "confirm", pool, progress, owner, population)
        except KeyboardInterrupt:
            pool.close(now=True)
            store.release(owner)
            raise Interrupted(store.finished(study_id), progress.total) from None
        except BaseException:
            pool.close(now=True)
            raise
        pool.close()
        return summarize(store, study_id)
    finally:
        store.close()


class Lease(threading.Thread):
    """Renews this process's claims on its running trials while a study runs (a thread with its
    own connection, so a long trial in this very process keeps its claim)."""

    def __init__(self, db: str, owner: str) -> None:
        super().__init__(daemon=True, name="descentlab-lease")
        self.db, self.owner, self.stop = db, owner, threading.Event()

    def __enter__(self) -> Lease:
        if self.db != ":memory:":  # no other process can share a store in memory
            self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        if self.is_alive():
            self.join()  # its connection closed: the file is whole once run_study returns

    def run(self) -> None:
        store = Store(self.db)
        try:
            while not self.stop.wait(LEASE_SECONDS / 6):
                store.renew(self.owner)
        finally:
            store.close()


def tune(store: Store, study_id: int, study: Study, built: dict, pool, progress: Progress, owner: str,
         population: bool) -> dict:
    """Tune every optimizer on every problem on seed 0; record and return each one's chosen trial.

    Round 0 runs the initial grids; each further round adds, for every configuration whose best
    lr is still at an edge of its grid, the next point beyond that edge ("extend" trials), until
    no configuration needs one (bracketed, or out of extensions).
    """
    axes = {}
    batch = []
    for label, problem in built.items():
        for optimizer in study.optimizers:
            for configuration in study.configurations(optimizer):
                axis = LrAxis(study.grid, study.extend)
                axes[label, optimizer, json.dumps(configuration, sort_keys=True)] = axis, configuration
                batch += [(label, study.trial(label, problem, optimizer, configuration, i)) for i in axis.indices]
    phase = "tune"
    while batch:
        for label in built:
            progress.plan(sum(label == other for other, _ in batch), label)
        run_specs(store, study_id, batch, phase, pool, progress, owner, population)
        batch = []
        for (label, optimizer, _), (axis, configuration) in axes.items():
            outward = axis.outward(_best_point(store, study, label, built[label], optimizer, configuration, axis)[3])
            if outward is not None:
                axis.add(outward)
                batch.append((label, study.trial(label, built[label], optimizer, configuration, outward)))
        phase = "extend"

    chosen = {}
    with store.transaction():
        for label, problem in built.items():
            for optimizer in study.optimizers:
                candidates = []
                for configuration in study.configurations(optimizer):
                    axis, _ = axes[label, optimizer, json.dumps(configuration, sort_keys=True)]
                    _, value, spec, as_good = _best_point(store, study, label, problem, optimizer, configuration, axis)
                    candidates.append((value, spec.lr, (spec, axis, as_good, configuration)))
                spec, axis, as_good, configuration = best(candidates, problem.metric_goal)[2]
                grid = sorted(study.trial(label, problem, optimizer, configuration, i).lr for i in axis.indices)
                store.choose(study_id, label, optimizer, spec.key, spec.lr, axis.bracket(as_good), grid, axis.extended)
                chosen[label, optimizer] = spec
    return chosen


def _best_point(store: Store, study: Study, label: str, problem, optimizer: str, configuration: dict, axis: LrAxis):
    """(grid index, score, trial, indices scoring as well) of the best point of one configuration's
    lr axis, on seed 0."""
    candidates = []
    for index in axis.indices:
        spec = study.trial(label, problem, optimizer, configuration, index)
        candidates.append((score(store.trial(spec.key), problem.metric, problem.metric_goal), spec.lr, (index, spec)))
    value, _, (index, spec) = best(candidates, problem.metric_goal)
    return index, value, spec, {index} | {i for v, _, (i, _) in candidates if ties(v, value)}


def describe(problem, study: Study, label: str) -> ProblemInfo:
    """What readers of the store need to know of a study's problem, without rebuilding it."""
    steps, batch_size, eval_every = study.budget(problem, label)
    return {"problem": problem.name, "options": dict(problem.options), "metric": problem.metric,
            "goal": problem.metric_goal, "description": problem.description, "provenance": problem.provenance,
            "population": problem.population, "curve_limit": problem.curve_limit, "steps": steps,
            "batch_size": batch_size, "eval_every": eval_every, "train_examples": problem.train_examples}


def _meta(command: list[str] | None, workers: int, executor: str) -> dict:
    """How the study was started: the command line, the host and the versions."""
    return {"command": shlex.join(command) if command is not None else "run_study() from Python",
            "host": socket.gethostname(), "platform": platform.platform(), "versions": runner.versions(),
            "workers": workers, "executor": executor}
