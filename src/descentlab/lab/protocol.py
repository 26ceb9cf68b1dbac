"""The protocol: tune (extending each lr grid until the best point is bracketed), select on
validation, confirm on every seed; resumable at any point.

Every step is a pure function of what the store holds, so re-running the command that started a
study replays the same decisions, skips every finished trial (extensions included), and goes on
where it stopped.
"""

from __future__ import annotations

import functools
import json
import platform
import shlex
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from descentlab.lab import executors, runner
from descentlab.lab.progress import Progress
from descentlab.lab.records import ProblemInfo, Summary
from descentlab.lab.scheduler import run_specs
from descentlab.lab.selection import LrAxis, best, score, ties
from descentlab.lab.spec import TrialSpec
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
        study_id = _open(store, study, built, functools.partial(_meta, command, workers, executor))
        session = _Session(store, study_id, study, built, executors.make(executor, workers, address, study.device),
                           Progress(progress_stream, capacity=workers), owner, population)
        _run_protocol(session)
        return summarize(store, study_id)
    finally:
        store.close()


@dataclass
class _Session:
    """One run of a study: its store and id there, its built problems, the executor's pool, the
    progress display, this process's owner id, and whether surface trials run as populations."""

    store: Store
    study_id: int
    study: Study
    built: dict
    pool: Any
    progress: Progress
    owner: str
    population: bool

    def run(self, specs: list[tuple[str, TrialSpec]], phase: str) -> None:
        """Make every ``(label, trial)`` of ``specs`` finished in the store, as trials of ``phase``."""
        run_specs(self.store, self.study_id, specs, phase, self.pool, self.progress, self.owner, self.population)


def _open(store: Store, study: Study, built: dict, meta: Callable[[], dict]) -> int:
    """The study's id in the store (added with ``meta()`` unless it is there: a resumption), its
    problems described."""
    name = study.name or "study"
    study_id = store.find_study(name, study.to_json()) or store.add_study(name, study.to_json(), meta())
    with store.transaction():
        for label, problem in built.items():
            store.describe(study_id, label, describe(problem, study, label))
    return study_id


def _run_protocol(session: _Session) -> None:
    """Tune and confirm under this process's lease, then close the pool; on Ctrl-C, stop the pool
    at once, hand this process's unfinished trials back and raise :class:`Interrupted`."""
    try:
        with Lease(session.store.path, session.owner), session.progress:
            _tune_and_confirm(session)
    except KeyboardInterrupt:
        session.pool.close(now=True)
        session.store.release(session.owner)
        raise Interrupted(session.store.finished(session.study_id), session.progress.total) from None
    except BaseException:
        session.pool.close(now=True)
        raise
    session.pool.close()


def _tune_and_confirm(session: _Session) -> None:
    """The protocol: tune every optimizer on seed 0, then run each chosen trial on every other seed."""
    study = session.study
    for label in session.built:
        session.progress.plan(len(study.optimizers) * (study.seeds - 1), label)
    chosen = tune(session)
    confirmations = [(label, spec) for (label, _), trial in chosen.items() for spec in study.confirmation_trials(trial)]
    session.run(confirmations, "confirm")


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


Axes = dict[tuple[str, str, str], tuple[LrAxis, dict]]  # (label, optimizer, configuration JSON) -> its lr axis


def tune(session: _Session) -> dict[tuple[str, str], TrialSpec]:
    """Tune every optimizer on every problem on seed 0; record and return each one's chosen trial.

    Round 0 runs the initial grids; each further round adds, for every configuration whose best
    lr is still at an edge of its grid, the next point beyond that edge ("extend" trials), until
    no configuration needs one (bracketed, or out of extensions).
    """
    axes = _axes(session.study, session.built)
    batch = [(label, session.study.trial(label, session.built[label], optimizer, configuration, i))
             for (label, optimizer, _), (axis, configuration) in axes.items() for i in axis.indices]
    phase = "tune"
    while batch:
        for label in session.built:
            session.progress.plan(sum(label == other for other, _ in batch), label)
        session.run(batch, phase)
        batch = _extensions(session, axes)
        phase = "extend"
    return _choose(session, axes)


def _axes(study: Study, built: dict) -> Axes:
    """The initial lr axis of every configuration of every optimizer on every problem."""
    axes: Axes = {}
    for label in built:
        for optimizer in study.optimizers:
            for configuration in study.configurations(optimizer):
                axes[label, optimizer, json.dumps(configuration, sort_keys=True)] = (LrAxis(study.grid, study.extend),
                                                                                     configuration)
    return axes


def _extensions(session: _Session, axes: Axes) -> list[tuple[str, TrialSpec]]:
    """The next round's trials: for every configuration whose best lr is at an edge of its axis,
    the point beyond that edge (added to the axis), if it may still grow."""
    batch = []
    for (label, optimizer, _), (axis, configuration) in axes.items():
        problem = session.built[label]
        outward = axis.outward(_best_point(session.store, session.study, label, problem, optimizer, configuration,
                                           axis)[3])
        if outward is not None:
            axis.add(outward)
            batch.append((label, session.study.trial(label, problem, optimizer, configuration, outward)))
    return batch


def _choose(session: _Session, axes: Axes) -> dict[tuple[str, str], TrialSpec]:
    """Choose and record every optimizer's trial on every problem, in one transaction."""
    chosen = {}
    with session.store.transaction():
        for label in session.built:
            for optimizer in session.study.optimizers:
                chosen[label, optimizer] = _choice(session, axes, label, optimizer)
    return chosen


def _choice(session: _Session, axes: Axes, label: str, optimizer: str) -> TrialSpec:
    """One optimizer's chosen trial on one problem, recorded: the best of its configurations' best
    points, with its lr's bracket and grid."""
    study, problem = session.study, session.built[label]
    candidates = []
    for configuration in study.configurations(optimizer):
        axis, _ = axes[label, optimizer, json.dumps(configuration, sort_keys=True)]
        _, value, spec, as_good = _best_point(session.store, study, label, problem, optimizer, configuration, axis)
        candidates.append((value, spec.lr, (spec, axis, as_good, configuration)))
    spec, axis, as_good, configuration = best(candidates, problem.metric_goal)[2]
    grid = sorted(study.trial(label, problem, optimizer, configuration, i).lr for i in axis.indices)
    session.store.choose(session.study_id, label, optimizer, spec.key, spec.lr, axis.bracket(as_good), grid,
                         axis.extended)
    return spec


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
