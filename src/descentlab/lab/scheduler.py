"""Scheduling trials: skip what the store has, group surface trials into populations, hand the
rest to an executor, and write each result the moment it arrives."""

from __future__ import annotations

from descentlab.lab import runner
from descentlab.lab.progress import Progress
from descentlab.lab.spec import TrialSpec
from descentlab.lab.store import FINISHED, Store


def run_specs(store: Store, study_id: int, specs: list[tuple[str, TrialSpec]], phase: str, pool,
              progress: Progress, population: bool = True) -> None:
    """Run the unfinished trials of ``specs`` (``(label, spec)`` pairs); link every one to the study."""
    todo: dict[str, tuple[str, TrialSpec]] = {}
    with store.transaction():
        for label, spec in specs:
            if store.status(spec.key) in FINISHED:
                store.link(study_id, spec.key, phase, label)
                progress.skip(label)
            elif spec.key in todo:  # asked twice: run once
                progress.skip(label)
            else:
                todo[spec.key] = (label, spec)
    labels = {key: label for key, (label, _) in todo.items()}
    unique = [spec for _, spec in todo.values()]
    groups = runner.population_groups(unique) if population else []
    grouped = {spec.key for group in groups for spec in group}
    tasks = [("population", group) for group in groups]
    tasks += [("trial", [spec]) for spec in unique if spec.key not in grouped]
    pending = {}
    for kind, task_specs in tasks:
        for spec in task_specs:
            store.start(spec, study_id, phase, labels[spec.key])
        progress.submit(len(task_specs))
        pending[pool.submit(kind, task_specs)] = task_specs
    while pending:
        done, _ = pool.wait(pending)
        for future in done:
            task_specs = pending.pop(future)
            try:
                results = future.result()
            except Exception as error:  # a worker died: record it, the study goes on
                results = [runner.record("failed", 0.0, error=RuntimeError(f"worker lost: {error!r}"))] * len(task_specs)
            for spec, result in zip(task_specs, results):
                store.finish(spec.key, result)
                progress.finish(result["status"], labels[spec.key], result["seconds"])
