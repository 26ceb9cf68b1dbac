"""The results store: one SQLite file (WAL) of studies, trials and their curves.

Crash safety comes from SQLite's transactions: a trial is marked ``running`` in one transaction
when it starts, and its outcome, metrics and whole curve are written in one transaction when it
ends. A process killed at any moment (SIGKILL included) therefore leaves each trial either
finished with its complete curve, or ``running`` with no curve rows; re-running the same
command skips the finished trials (by key) and redoes the others.
"""

from __future__ import annotations

import json
import math
import os
import socket
import sqlite3
import time

SCHEMA = """
CREATE TABLE IF NOT EXISTS studies (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    created REAL NOT NULL,
    spec TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS trials (
    key TEXT PRIMARY KEY,
    problem TEXT NOT NULL,
    problem_options TEXT NOT NULL,
    optimizer TEXT NOT NULL,
    hyperparameters TEXT NOT NULL,
    optimizer_config TEXT,
    seed INTEGER NOT NULL,
    steps INTEGER NOT NULL,
    batch_size INTEGER,
    eval_every INTEGER NOT NULL,
    divergence_factor REAL NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('running', 'done', 'diverged', 'failed')),
    started REAL,
    finished REAL,
    seconds REAL,
    steps_done INTEGER,
    diverged_at INTEGER,
    valid TEXT,
    test TEXT,
    versions TEXT,
    provenance TEXT,
    host TEXT,
    error TEXT
);
CREATE TABLE IF NOT EXISTS study_trials (
    study_id INTEGER NOT NULL REFERENCES studies(id),
    trial_key TEXT NOT NULL REFERENCES trials(key),
    phase TEXT NOT NULL,
    PRIMARY KEY (study_id, trial_key)
);
CREATE TABLE IF NOT EXISTS curves (
    trial_key TEXT NOT NULL REFERENCES trials(key),
    step INTEGER NOT NULL,
    wall REAL NOT NULL,
    train_loss REAL,
    valid TEXT,
    PRIMARY KEY (trial_key, step)
);
"""
FINISHED = ("done", "diverged", "failed")
SCHEMA_VERSION = 1


def _dumps(value) -> str:
    return json.dumps(value, sort_keys=True, default=_nonfinite)


def _nonfinite(value):
    raise TypeError(f"not JSON serializable: {value!r}")


def _number(value):
    """Floats as SQLite keeps them; NaN becomes NULL (SQLite has no NaN)."""
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else value


class Store:
    """A results file. Safe to open from several processes (WAL, busy timeout)."""

    def __init__(self, path: str) -> None:
        self.path = str(path)
        if self.path != ":memory:":
            os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
        try:
            self.db = sqlite3.connect(self.path, timeout=60, isolation_level=None)
        except sqlite3.OperationalError as error:
            raise RuntimeError(f"cannot open the results store {self.path}: {error}") from error
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute("PRAGMA foreign_keys=ON")
        version = self.db.execute("PRAGMA user_version").fetchone()[0]
        empty = not self.db.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
        if not empty and version != SCHEMA_VERSION:
            self.db.close()
            raise RuntimeError(f"the results store {self.path} has schema version {version}; this descentlab "
                               f"writes version {SCHEMA_VERSION}: use another --db")
        self.db.executescript(SCHEMA)
        self.db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def close(self) -> None:
        self.db.close()

    def transaction(self):
        return _Transaction(self.db)

    # studies
    def add_study(self, name: str, spec: dict) -> int:
        with self.transaction():
            cursor = self.db.execute("INSERT INTO studies (name, created, spec) VALUES (?, ?, ?)",
                                     (name, time.time(), _dumps(spec)))
        return cursor.lastrowid

    def find_study(self, name: str, spec: dict) -> int | None:
        """The latest study with this name and spec (re-running a command resumes it)."""
        row = self.db.execute("SELECT id FROM studies WHERE name = ? AND spec = ? ORDER BY id DESC LIMIT 1",
                              (name, _dumps(spec))).fetchone()
        return row[0] if row else None

    def studies(self) -> list[dict]:
        rows = self.db.execute("SELECT id, name, created, spec FROM studies ORDER BY id").fetchall()
        return [{"id": r[0], "name": r[1], "created": r[2], "spec": json.loads(r[3])} for r in rows]

    def study(self, study_id: int) -> dict | None:
        row = self.db.execute("SELECT id, name, created, spec FROM studies WHERE id = ?", (study_id,)).fetchone()
        return {"id": row[0], "name": row[1], "created": row[2], "spec": json.loads(row[3])} if row else None

    # trials
    def status(self, key: str) -> str | None:
        row = self.db.execute("SELECT status FROM trials WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def link(self, study_id: int, key: str, phase: str) -> None:
        self.db.execute("INSERT OR IGNORE INTO study_trials (study_id, trial_key, phase) VALUES (?, ?, ?)",
                        (study_id, key, phase))

    def start(self, spec, study_id: int, phase: str) -> None:
        """Mark a trial running (a rerun of an unfinished trial drops its partial curve first)."""
        with self.transaction():
            self.db.execute("DELETE FROM curves WHERE trial_key = ?", (spec.key,))
            self.db.execute(
                "INSERT OR REPLACE INTO trials (key, problem, problem_options, optimizer, hyperparameters, seed, "
                "steps, batch_size, eval_every, divergence_factor, status, started, host) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'running', ?, ?)",
                (spec.key, spec.problem, _dumps(spec.problem_options), spec.optimizer, _dumps(spec.hyperparameters),
                 spec.seed, spec.steps, spec.batch_size, spec.eval_every, spec.divergence_factor, time.time(),
                 socket.gethostname()),
            )
            self.link(study_id, spec.key, phase)

    def finish(self, key: str, result: dict) -> None:
        """Write a trial's outcome and its whole curve in one transaction."""
        with self.transaction():
            self.db.execute(
                "UPDATE trials SET status = ?, finished = ?, seconds = ?, steps_done = ?, diverged_at = ?, "
                "valid = ?, test = ?, versions = ?, provenance = ?, host = ?, error = ?, optimizer_config = ? "
                "WHERE key = ?",
                (result["status"], time.time(), result["seconds"], result["steps_done"], result.get("diverged_at"),
                 _dumps(result.get("valid")), _dumps(result.get("test")), _dumps(result["versions"]),
                 result.get("provenance"), result.get("host") or socket.gethostname(), result.get("error"),
                 _dumps(result.get("optimizer_config")), key),
            )
            self.db.executemany(
                "INSERT INTO curves (trial_key, step, wall, train_loss, valid) VALUES (?, ?, ?, ?, ?)",
                [(key, point["step"], point["wall"], _number(point["train_loss"]), _dumps(point.get("valid")))
                 for point in result["curve"]],
            )

    def trial(self, key: str) -> dict | None:
        cursor = self.db.execute("SELECT * FROM trials WHERE key = ?", (key,))
        row = cursor.fetchone()
        if row is None:
            return None
        record = dict(zip([c[0] for c in cursor.description], row))
        for column in ("problem_options", "hyperparameters", "optimizer_config", "valid", "test", "versions"):
            if record[column] is not None:
                record[column] = json.loads(record[column])
        return record

    def curve(self, key: str) -> list[dict]:
        rows = self.db.execute(
            "SELECT step, wall, train_loss, valid FROM curves WHERE trial_key = ? ORDER BY step", (key,)
        ).fetchall()
        return [{"step": s, "wall": w, "train_loss": loss, "valid": json.loads(v) if v else None}
                for s, w, loss, v in rows]

    def study_trials(self, study_id: int) -> list[dict]:
        keys = self.db.execute(
            "SELECT trial_key, phase FROM study_trials WHERE study_id = ? ORDER BY rowid", (study_id,)
        ).fetchall()
        records = []
        for key, phase in keys:
            record = self.trial(key)
            if record is not None:
                record["phase"] = phase
                records.append(record)
        return records

    def count(self, status: str | None = None) -> int:
        if status is None:
            return self.db.execute("SELECT COUNT(*) FROM trials").fetchone()[0]
        return self.db.execute("SELECT COUNT(*) FROM trials WHERE status = ?", (status,)).fetchone()[0]


class _Transaction:
    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __enter__(self):
        self.db.execute("BEGIN IMMEDIATE")
        return self.db

    def __exit__(self, kind, value, traceback) -> None:
        self.db.execute("COMMIT" if kind is None else "ROLLBACK")
