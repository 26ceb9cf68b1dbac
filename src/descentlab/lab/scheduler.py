"""Scheduling trials: claim what no other process runs, group surface trials into populations,
hand them to an executor, write each result the moment it arrives, and wait for the trials that
another process runs on the same store (taking them over if that process dies)."""

from __future__ import annotations

import collections
import time

from descentlab.lab import runner
from descentlab.lab.progress import Progress
from descentlab.lab.records import Result
from descentlab.lab.spec import TrialSpec
from descentlab.lab.store import FINISHED, Store

POLL_SECONDS = 1.0  # how often trials running elsewhere are looked at


def run_specs(store: Store, study_id: int, specs: list[tuple[str, TrialSpec]], phase: str, pool,
              progress: Progress, owner: str, population: bool = True) -> None:
    """Make every trial of ``specs`` (``(label, spec)`` pairs) finished in the store, linked to the study.

    Tasks (one trial, or a surface population) are claimed only when the executor can start
    them, so that several processes on one store share the work rather than one claiming it all.
    """
    run = _Run(store, study_id, phase, pool, progress, owner)
    run.queue.extend(_tasks(run.unfinished(specs), population))
    while run.queue or run.pending or run.taken:
        run.start_tasks()
        run.store_results()
        run.look_at_taken()


class _Run:
    """One call of :func:`run_specs`: the tasks still to start, those running here, and the
    trials that other processes run; each method does one step of the loop."""

    def __init__(self, store: Store, study_id: int, phase: str, pool, progress: Progress, owner: str) -> None:
        self.store, self.study_id, self.phase, self.pool, self.progress, self.owner = (
            store, study_id, phase, pool, progress, owner)
        self.labels: dict[str, str] = {}  # trial key -> problem label
        self.queue: collections.deque[tuple[str, list[TrialSpec]]] = collections.deque()
        self.pending: dict = {}  # executor future -> the specs it runs
        self.taken: dict[str, TrialSpec] = {}  # trials another live process runs
        self.looked = time.monotonic()

    def unfinished(self, specs: list[tuple[str, TrialSpec]]) -> list[TrialSpec]:
        """The specs to run: each once, finished ones only linked to the study and counted as skipped."""
        todo = []
        for label, spec in specs:
            if spec.key in self.labels:  # asked twice: run once
                self.progress.skip(label)
                continue
            self.labels[spec.key] = label
            if self.store.status(spec.key) in FINISHED:
                self.store.claim(spec, self.study_id, self.phase, label, self.owner)  # links it to the study
                self.progress.skip(label)
            else:
                todo.append(spec)
        return todo

    def start_tasks(self) -> None:
        """Claim and submit queued tasks while the executor has room."""
        while self.queue and len(self.pending) < self.pool.capacity:
            kind, specs = self.queue.popleft()
            claimed = self._claim(specs)
            if claimed:
                self.progress.submit(len(claimed))
                self.pending[self.pool.submit(kind if len(claimed) > 1 else "trial", claimed)] = claimed

    def _claim(self, specs: list[TrialSpec]) -> list[TrialSpec]:
        """The specs this process now holds; finished ones are skipped, running ones set aside."""
        claimed = []
        for spec in specs:
            state = self.store.claim(spec, self.study_id, self.phase, self.labels[spec.key], self.owner)
            if state == "finished":
                self.progress.skip(self.labels[spec.key])
            elif state == "taken":
                self.taken[spec.key] = spec
            else:
                claimed.append(spec)
        return claimed

    def store_results(self) -> None:
        """Wait a little for running tasks; write each finished trial in its own transaction."""
        done = self.pool.wait(self.pending)[0] if self.pending else []
        for future in done:
            specs = self.pending.pop(future)
            for spec, result in zip(specs, _results(future, len(specs)), strict=True):
                self.store.finish(spec.key, result, self.owner)
                self.progress.finish(result["status"], self.labels[spec.key], result["seconds"])

    def look_at_taken(self) -> None:
        """Every ``POLL_SECONDS``, queue the trials that other processes run for another claim:
        finished ones are then skipped, those whose owner is gone are taken over."""
        if not self.taken:
            return
        wait = self.looked + POLL_SECONDS - time.monotonic()
        if wait > 0:
            if not self.pending and not self.queue:  # nothing else to do meanwhile
                time.sleep(wait)
            return
        self.looked = time.monotonic()
        self.queue.extendleft(("trial", [spec]) for spec in self.taken.values())
        self.taken.clear()


def _results(future, count: int) -> list[Result]:
    """A task's results; a task whose worker died fails each of its trials (the study goes on)."""
    try:
        return future.result()
    except Exception as error:
        return [runner.record("failed", 0.0, error=RuntimeError(f"worker lost: {error!r}"))] * count


def _tasks(specs: list[TrialSpec], population: bool) -> list[tuple[str, list[TrialSpec]]]:
    """The specs as executor tasks: a population per group of surface trials, else one trial each."""
    groups = runner.population_groups(specs) if population else []
    grouped = {spec.key for group in groups for spec in group}
    return [("population", group) for group in groups] + [("trial", [s]) for s in specs if s.key not in grouped]
