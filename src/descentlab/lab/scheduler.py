"""Scheduling trials: claim what no other process runs, group surface trials into populations,
hand them to an executor, write each result the moment it arrives, and wait for the trials that
another process runs on the same store (taking them over if that process dies)."""

from __future__ import annotations

import collections
import time

from descentlab.lab import runner
from descentlab.lab.progress import Progress
from descentlab.lab.spec import TrialSpec
from descentlab.lab.store import FINISHED, Store

POLL_SECONDS = 1.0  # how often trials running elsewhere are looked at


def run_specs(store: Store, study_id: int, specs: list[tuple[str, TrialSpec]], phase: str, pool,
              progress: Progress, owner: str, population: bool = True) -> None:
    """Make every trial of ``specs`` (``(label, spec)`` pairs) finished in the store, linked to the study.

    Tasks (one trial, or a surface population) are claimed only when the executor can start
    them, so that several processes on one store share the work rather than one claiming it all.
    """
    labels, todo = {}, []
    for label, spec in specs:
        if spec.key in labels:  # asked twice: run once
            progress.skip(label)
            continue
        labels[spec.key] = label
        if store.status(spec.key) in FINISHED:
            store.claim(spec, study_id, phase, label, owner)  # links it to the study
            progress.skip(label)
        else:
            todo.append(spec)
    queue = collections.deque(_tasks(todo, population))
    taken: dict[str, TrialSpec] = {}
    pending: dict = {}
    polled = time.monotonic()
    while queue or pending or taken:
        while queue and len(pending) < pool.capacity:
            kind, task_specs = queue.popleft()
            claimed = []
            for spec in task_specs:
                state = store.claim(spec, study_id, phase, labels[spec.key], owner)
                if state == "finished":
                    progress.skip(labels[spec.key])
                elif state == "taken":
                    taken[spec.key] = spec
                else:
                    claimed.append(spec)
            if claimed:
                progress.submit(len(claimed))
                pending[pool.submit(kind if len(claimed) > 1 else "trial", claimed)] = claimed
        done = pool.wait(pending)[0] if pending else []
        for future in done:
            task_specs = pending.pop(future)
            try:
                results = future.result()
            except Exception as error:  # a worker died: record it, the study goes on
                results = [runner.record("failed", 0.0, error=RuntimeError(f"worker lost: {error!r}"))] * len(task_specs)
            for spec, result in zip(task_specs, results):
                store.finish(spec.key, result, owner)
                progress.finish(result["status"], labels[spec.key], result["seconds"])
        if taken and time.monotonic() - polled >= POLL_SECONDS:
            polled = time.monotonic()
            for key, spec in list(taken.items()):
                if store.status(key) in FINISHED:
                    progress.skip(labels[key])
                    del taken[key]
                elif store.claim(spec, study_id, phase, labels[key], owner) == "claimed":  # its owner is gone
                    del taken[key]
                    progress.submit(1)
                    pending[pool.submit("trial", [spec])] = [spec]
        elif taken and not pending and not queue:
            time.sleep(POLL_SECONDS / 4)


def _tasks(specs: list[TrialSpec], population: bool) -> list[tuple[str, list[TrialSpec]]]:
    """The specs as executor tasks: a population per group of surface trials, else one trial each."""
    groups = runner.population_groups(specs) if population else []
    grouped = {spec.key for group in groups for spec in group}
    return [("population", group) for group in groups] + [("trial", [s]) for s in specs if s.key not in grouped]
