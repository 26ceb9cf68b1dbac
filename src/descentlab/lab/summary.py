"""A study's summary, read from the store alone (no dataset, no problem is rebuilt).

Per problem and optimizer: the chosen lr and whether it is bracketed, the test metric over seeds
with a 95% bootstrap interval, the selection (validation) metric beside it, paired wins, steps
and seconds to the problem's target, divergences, and the lr-sensitivity curve (the DeepOBS
triple). Across problems: performance profiles, and the verdict on the talk's claims.
"""

from __future__ import annotations

import itertools
import math
import statistics
from typing import Literal

from descentlab.lab import stats, verdict
from descentlab.lab.records import (
    Choice,
    CurvePoint,
    ProblemInfo,
    ProblemTable,
    Progress,
    Row,
    StudyRecord,
    Summary,
    Trial,
)
from descentlab.lab.selection import metric_value, score
from descentlab.lab.spec import worst
from descentlab.lab.store import FINISHED, Store, alive


def summarize(store: Store, study_id: int) -> Summary:
    """The summary of study ``study_id``: ``{"study", "problems": {label: table}, "profile", "verdict"}``."""
    study = store.study(study_id)
    if study is None:
        raise ValueError(f"No study with id {study_id} in {store.path}")
    tables = _tables(store, study_id, study)
    missing = [label for label in study["spec"]["problems"] if label not in tables]
    complete = {label: t for label, t in tables.items() if _complete(t)}
    for table in tables.values():
        if not _complete(table):
            for row in table["rows"]:
                row["rank"] = None  # an incomplete problem ranks nothing
    summary: Summary = {"study": study, "problems": tables, "complete": not missing and len(complete) == len(tables),
               "missing": missing, "profile": _profiles(complete)}
    summary["verdict"] = verdict.judge({**summary, "problems": complete})
    return summary


def _tables(store: Store, study_id: int, study: StudyRecord) -> dict[str, ProblemTable]:
    """Each described problem's table, with how far it got, by label."""
    infos = store.problems(study_id)
    trials = store.study_trials(study_id)
    choices = store.choices(study_id)
    seeds = study["spec"]["seeds"]
    keys = [t["key"] for t in trials if t["status"] in ("done", "diverged")]
    curves = store.curves(keys)
    tables: dict[str, ProblemTable] = {}
    for label, info in infos.items():
        mine = [t for t in trials if t["label"] == label]
        table = _problem(info, mine, [c for c in choices if c["label"] == label], seeds, curves)
        table["progress"] = _progress(mine, study["spec"]["optimizers"], table["rows"], seeds)
        tables[label] = table
    return tables


def _complete(table: ProblemTable) -> bool:
    return "progress" in table and table["progress"]["complete"]


def _progress(trials: list[Trial], optimizers: list[str], rows: list[Row], seeds: int) -> Progress:
    """How far a problem got: finished trials, trials running now, trials whose process is gone,
    and whether every optimizer is tuned and confirmed on every seed."""
    running = [t for t in trials if t["status"] == "running"]
    abandoned = sum(not alive(t["owner"], t["lease_until"]) for t in running)
    confirmed = {r["optimizer"] for r in rows if r["seeds_finished"] == seeds}
    return {"finished": len(trials) - len(running), "running": len(running) - abandoned, "abandoned": abandoned,
            "complete": set(optimizers) <= confirmed}


def _problem(info: ProblemInfo, trials: list[Trial], choices: list[Choice], seeds: int,
             curves: dict[str, list[CurvePoint]]) -> ProblemTable:
    """One problem's table: a row per chosen optimizer, each timed to the problem's target and
    ranked, and every pair's paired wins."""
    goal = info["goal"]
    by_key = {t["key"]: t for t in trials}
    rows = [_row(info, choice, by_key[choice["trial_key"]], trials, seeds, curves) for choice in choices]
    target = stats.target_of([row["curve"][-1][2] for row in rows if row["curve"]] +
                             [worst(goal) for row in rows if not row["curve"]])
    for row in rows:
        steps, seconds = stats.time_to_target(row["curve"], target, goal) if target is not None else (None, None)
        row["steps_to_target"], row["seconds_to_target"] = steps, seconds
    _rank(rows, goal)
    return {**info, "target": target, "rows": rows,
            "wins": {a["optimizer"]: {b["optimizer"]: stats.wins(a["seed_tests"], b["seed_tests"], goal)
                                      for b in rows if b is not a} for a in rows}}


def _row(info: ProblemInfo, choice: Choice, chosen: Trial, trials: list[Trial], seeds: int,
         curves: dict[str, list[CurvePoint]]) -> Row:
    """One optimizer's row: its chosen configuration's runs on every seed (test and validation
    metrics, losses, median curve) and its lr sensitivity; not yet timed or ranked."""
    metric, goal = info["metric"], info["goal"]
    optimizer = choice["optimizer"]
    runs = {t["seed"]: t for t in trials if t["optimizer"] == optimizer and t["seed"] < seeds
            and t["hyperparameters"] == chosen["hyperparameters"]}
    tests = {seed: score(t, metric, goal, "test") for seed, t in runs.items()}
    valids = {seed: score(t, metric, goal) for seed, t in runs.items()}
    finite = [v for v in tests.values() if math.isfinite(v)]
    lost = len(runs) - len(finite)
    tuning = sorted((t for t in trials if t["optimizer"] == optimizer and t["phase"] in ("tune", "extend")),
                    key=lambda t: t["hyperparameters"]["lr"])
    curve = stats.median_curve([[(p["step"], p["wall"], metric_value(p["valid"], metric, goal))
                                 for p in curves.get(t["key"], [])] for t in runs.values()], goal)
    return {
        "optimizer": optimizer,
        "lr": choice["lr"],
        "bracket": choice["bracket"],
        "extended": choice["extended"],
        "grid": choice["grid"],
        "hyperparameters": chosen["hyperparameters"],
        "seeds": len(runs),
        "seeds_finished": sum(t["status"] in FINISHED for t in runs.values()),
        "seeds_lost": lost,
        "test_mean": statistics.fmean(finite) if finite else None,
        "test_std": statistics.stdev(finite) if len(finite) > 1 else 0.0 if finite else None,
        "test_ci": stats.bootstrap_ci(finite) if finite and not lost else None,
        "valid_mean": statistics.fmean(valids.values()) if valids else None,
        "seed_tests": tests,
        "seed_valids": valids,
        "diverged": sum(t["status"] == "diverged" for t in trials if t["optimizer"] == optimizer),
        "failed": sum(t["status"] == "failed" for t in trials if t["optimizer"] == optimizer),
        "sensitivity": [{"lr": t["hyperparameters"]["lr"], "score": score(t, metric, goal), "status": t["status"],
                         "phase": t["phase"], "hyperparameters": t["hyperparameters"]} for t in tuning],
        "curve": curve,
        "steps_to_target": None,
        "seconds_to_target": None,
        "rank": None,
    }


def _rank(rows: list[Row], goal: str) -> None:
    """Rank the rows in place by mean test metric (fewest lost seeds first); each row's paired wins
    over the next."""
    rows.sort(key=lambda r: (r["seeds_lost"], -stats.oriented(r["test_mean"], goal) if r["test_mean"] is not None
                             else math.inf))
    for rank, row in enumerate(rows, 1):
        row["rank"] = rank
    for row, following in itertools.pairwise(rows):
        row["beats_next"] = stats.wins(row["seed_tests"], following["seed_tests"], goal)


def _profiles(tables: dict[str, ProblemTable]) -> dict[str, dict]:
    """Performance profiles from steps and from seconds to each problem's target. Seconds leave
    out problems run as populations, whose trials share one clock."""
    profiles = {}
    keys: dict[str, Literal["steps_to_target", "seconds_to_target"]] = {"steps": "steps_to_target",
                                                                         "seconds": "seconds_to_target"}
    for unit, key in keys.items():
        times: dict[str, dict[str, float]] = {}
        for label, table in tables.items():
            if table["target"] is None or (unit == "seconds" and table["population"]):
                continue
            for row in table["rows"]:
                value = row[key]
                assert value is not None  # set for every row of a table with a target
                times.setdefault(row["optimizer"], {})[label] = value
        profiles[unit] = stats.performance_profile(times)
    return profiles
