"""Upgrading a results store written by an older descentlab (``descentlab migrate``).

Version 1 stores did not describe their problems or record their choices: the upgrade adds what
later readers need, from the trials themselves (budgets, provenance, which configuration was
confirmed on every seed) and from the problem registry (metric and goal). Version 2 stores lack
the trial leases (owner, lease, thread count) of version 3. A copy of the original file is kept
beside it.
"""

from __future__ import annotations

import shutil
import sqlite3
from typing import Any

from descentlab import data, problems
from descentlab.lab.records import ProblemInfo, StudyRecord, Trial
from descentlab.lab.store import MIGRATIONS, SCHEMA, SCHEMA_VERSION, Store, StoreError


def migrate(path: str) -> str:
    """Upgrade the store at ``path`` in place; return what was done, in one line."""
    db, version = _connect(path)
    if version == SCHEMA_VERSION:
        db.close()
        return f"{path} is already at schema version {SCHEMA_VERSION}: nothing to do"
    if version not in MIGRATIONS:
        db.close()
        raise StoreError(f"the results store {path} has schema version {version}, which this descentlab cannot "
                         f"upgrade to version {SCHEMA_VERSION}")
    backup = _back_up(db, path, version)
    try:
        studies = _upgrade(db, path, version)
    except Exception:
        db.close()
        shutil.copyfile(backup, path)  # the upgrade is all or nothing
        raise
    return (f"upgraded {path} from schema version {version} to {SCHEMA_VERSION} ({studies} studies); "
            f"the original is kept as {backup}")


def _connect(path: str) -> tuple[sqlite3.Connection, int]:
    """A connection to the store at ``path``, and its schema version."""
    try:
        db = sqlite3.connect(path, isolation_level=None)
        version = db.execute("PRAGMA user_version").fetchone()[0]
    except sqlite3.Error as error:
        raise StoreError(f"cannot open the results store {path}: {error}") from error
    return db, version


def _back_up(db: sqlite3.Connection, path: str, version: int) -> str:
    """Copy the store beside itself, named for its schema version; return the copy's path."""
    backup = f"{path}.v{version}.bak"
    with sqlite3.connect(backup) as copy:
        db.backup(copy)
    return backup


def _upgrade(db: sqlite3.Connection, path: str, version: int) -> int:
    """Bring the schema from ``version`` to the current one in one transaction and close ``db``, then
    describe a version 1 store's problems and choices; return how many studies the store holds."""
    steps = " ".join(MIGRATIONS[v] for v in range(version, SCHEMA_VERSION))
    db.executescript(f"BEGIN IMMEDIATE; {steps} {SCHEMA} PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;")
    db.close()
    store = Store(path)
    try:
        with store.transaction():
            studies = store.studies()
            for study in studies if version == 1 else ():
                _describe_v1(store, study)
    finally:
        store.close()
    return len(studies)


def _describe_v1(store: Store, study: StudyRecord) -> None:
    trials = store.study_trials(study["id"])
    for label in study["spec"]["problems"]:
        mine = [t for t in trials if t["problem"] == label]
        if not mine:
            continue
        info = _info(label, mine[0])
        store.describe(study["id"], label, info)
        for optimizer in dict.fromkeys(t["optimizer"] for t in mine):
            tuning = [t for t in mine if t["optimizer"] == optimizer and t["phase"] == "tune"]
            confirmed = [t for t in mine if t["optimizer"] == optimizer and t["phase"] == "confirm"]
            chosen = next((t for t in tuning if confirmed and t["hyperparameters"] == confirmed[0]["hyperparameters"]),
                          None)
            if chosen is None:  # the study stopped before confirming: nothing was chosen yet
                continue
            grid = sorted(t["hyperparameters"]["lr"] for t in tuning)
            lr = chosen["hyperparameters"]["lr"]
            bracket = "single" if len(grid) < 2 else "edge" if lr in (grid[0], grid[-1]) else "interior"
            store.choose(study["id"], label, optimizer, chosen["key"], lr, bracket, grid, 0)


def _info(name: str, trial: Trial) -> ProblemInfo:
    """A problem's description from one of its trials and the registry (built if its data is here)."""
    try:
        problem = problems.get(name, **trial["problem_options"])
        metric, goal, description = problem.metric, problem.metric_goal, problem.description
        population, curve_limit = problem.population, problem.curve_limit
    except (data.DataUnavailable, data.ChecksumMismatch, ValueError):
        factory = problems.REGISTRY.get(name)
        cls: Any = getattr(factory, "func", factory)  # a Problem class, or a partial of one
        metric, goal, description = cls.metric, cls.metric_goal, cls.description or name
        population, curve_limit = cls.population, cls.curve_limit
    return {"problem": name, "options": trial["problem_options"], "metric": metric, "goal": goal,
            "description": description, "provenance": trial["provenance"] or "", "population": population,
            "curve_limit": curve_limit, "steps": trial["steps"], "batch_size": trial["batch_size"],
            "eval_every": trial["eval_every"], "train_examples": None, "migrated_from": 1}
