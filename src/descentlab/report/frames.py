"""What the report draws, read from the store: the only module of the report that queries it.

Bulk queries, tidy records: the study's summary (:func:`descentlab.lab.summarize`), every trial
the study asked for, each optimizer's chosen trial, the curves of the chosen configuration on
every seed, and on a surface where clipped variants ran, every seed-0 run of the lr grid (for
the picture at one common lr). No problem is rebuilt and no dataset is read.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from descentlab import data
from descentlab.lab.records import CurvedTrial, CurvePoint, ProblemTable, StudyRecord, Summary, Trial
from descentlab.lab.spec import worst
from descentlab.lab.store import Store
from descentlab.lab.summary import summarize
from descentlab.lab.verdict import base


@dataclass
class SeedCurve:
    """One seed's validation curve: ``points`` are (step, seconds, value); ``diverged`` at a step or None."""

    seed: int
    points: list[tuple[int, float, float]]
    diverged: int | None


@dataclass
class Frames:
    """A study as the report sees it."""

    path: str
    summary: Summary
    trials: list[Trial]
    chosen: dict[str, dict[str, CurvedTrial]]  # label → optimizer → its chosen (seed-0, tuned) trial, with its curve
    seed_curves: dict[str, dict[str, list[SeedCurve]]]  # label → optimizer → chosen configuration's seeds
    grid_runs: dict[str, dict[str, list[CurvedTrial]]]  # surface label → optimizer → its seed-0 lr grid, with curves

    @property
    def study(self) -> StudyRecord:
        return self.summary["study"]

    @property
    def problems(self) -> dict[str, ProblemTable]:
        return self.summary["problems"]


def load(path: str, study_id: int | None = None) -> Frames:
    """Study ``study_id`` (default: the latest) of the store at ``path``, opened read-only."""
    store = Store(path, readonly=True)
    try:
        study_id = _study_id(store, path, study_id)
        summary = summarize(store, study_id)
        trials = store.study_trials(study_id)
        picked = _picked(store, study_id, trials)
        runs = _seed_runs(summary, trials)
        grid = _grid_trials(summary, trials)
        curves = store.curves(sorted({t["key"] for group in runs.values() for t in group}
                                     | {t["key"] for mine in picked.values() for t in mine.values()}
                                     | {t["key"] for t in grid}))
    finally:
        store.close()
    chosen = {label: {optimizer: _curved(t, curves) for optimizer, t in mine.items()} for label, mine in picked.items()}
    return Frames(path, summary, trials, chosen, _seed_curves(summary, runs, curves), _grid_runs(grid, curves))


def _study_id(store: Store, path: str, study_id: int | None) -> int:
    """``study_id``, or the latest study's id when None."""
    if study_id is not None:
        return study_id
    studies = store.studies()
    if not studies:
        raise ValueError(f"no study in {path}")
    return studies[-1]["id"]


def _picked(store: Store, study_id: int, trials: list[Trial]) -> dict[str, dict[str, Trial]]:
    """label → optimizer → the trial the study chose (its seed-0 run at the tuned lr)."""
    by_key = {t["key"]: t for t in trials}
    picked: dict[str, dict[str, Trial]] = {}
    for choice in store.choices(study_id):
        picked.setdefault(choice["label"], {})[choice["optimizer"]] = by_key[choice["trial_key"]]
    return picked


def _seed_runs(summary: Summary, trials: list[Trial]) -> dict[tuple[str, str], list[Trial]]:
    """(label, optimizer) → the runs of its chosen configuration on the study's seeds."""
    seeds = summary["study"]["spec"]["seeds"]
    return {(label, row["optimizer"]): [t for t in trials if t["label"] == label
                                        and t["optimizer"] == row["optimizer"] and t["seed"] < seeds
                                        and t["hyperparameters"] == row["hyperparameters"]]
            for label, table in summary["problems"].items() for row in table["rows"]}


def _grid_trials(summary: Summary, trials: list[Trial]) -> list[Trial]:
    """Every seed-0 run of the lr grid (tuning and its extensions) on a surface where clipped variants ran."""
    clipped = {label for label, table in summary["problems"].items()
               if table["population"] and any(base(r["optimizer"]) != r["optimizer"] for r in table["rows"])}
    return [t for t in trials if t["label"] in clipped and t["seed"] == 0 and t["phase"] in ("tune", "extend")]


def _seed_curves(summary: Summary, runs: dict[tuple[str, str], list[Trial]],
                 curves: dict[str, list[CurvePoint]]) -> dict[str, dict[str, list[SeedCurve]]]:
    """label → optimizer → the validation curve of each seed of its chosen configuration, by seed."""
    seed_curves: dict[str, dict[str, list[SeedCurve]]] = {}
    for (label, optimizer), group in runs.items():
        info = summary["problems"][label]
        seed_curves.setdefault(label, {})[optimizer] = [
            SeedCurve(t["seed"], [(p["step"], p["wall"], _value(p, info["metric"], info["goal"]))
                                  for p in curves[t["key"]]], t["diverged_at"])
            for t in sorted(group, key=lambda t: t["seed"])]
    return seed_curves


def _grid_runs(grid: list[Trial], curves: dict[str, list[CurvePoint]]) -> dict[str, dict[str, list[CurvedTrial]]]:
    """label → optimizer → its seed-0 lr grid runs, with their curves."""
    grid_runs: dict[str, dict[str, list[CurvedTrial]]] = {}
    for t in grid:
        grid_runs.setdefault(t["label"], {}).setdefault(t["optimizer"], []).append(_curved(t, curves))
    return grid_runs


def _curved(trial: Trial, curves: dict[str, list[CurvePoint]]) -> CurvedTrial:
    return {**trial, "curve": curves[trial["key"]]}


def _value(point: CurvePoint, metric: str, goal: str) -> float:
    value = (point["valid"] or {}).get(metric)
    return value if value is not None and math.isfinite(value) else worst(goal)


def data_files(provenance: str) -> list[dict]:
    """The dataset files a problem's provenance names as read, with the sha256 they were checked
    against before use (:func:`descentlab.data.find`), or None for a raw copy no trusted checksum
    is known for. A file the provenance calls unavailable was not read and is left out."""
    files = []
    for remote in data.FILES.values():
        for name, sha256 in ((remote.name, remote.sha256), (remote.raw_name, remote.raw_sha256)):
            if re.search(rf"(?<![\w.-]){re.escape(name)}(?![\w.-])(?! unavailable)", provenance):
                files.append({"dataset": remote.dataset, "file": name, "sha256": sha256})
                break
    return files
