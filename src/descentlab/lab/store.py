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
import tempfile
import time
import urllib.parse
import uuid
from typing import Any, cast

from descentlab.lab.records import Choice, CurvePoint, ProblemInfo, Result, StudyRecord, Trial

SCHEMA = """
CREATE TABLE IF NOT EXISTS studies (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    created REAL NOT NULL,
    spec TEXT NOT NULL,
    meta TEXT
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
    error TEXT,
    owner TEXT,
    lease_until REAL,
    threads INTEGER
);
CREATE TABLE IF NOT EXISTS study_trials (
    study_id INTEGER NOT NULL REFERENCES studies(id),
    trial_key TEXT NOT NULL REFERENCES trials(key),
    phase TEXT NOT NULL,
    label TEXT,
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
CREATE TABLE IF NOT EXISTS study_problems (
    study_id INTEGER NOT NULL REFERENCES studies(id),
    label TEXT NOT NULL,
    info TEXT NOT NULL,
    PRIMARY KEY (study_id, label)
);
CREATE TABLE IF NOT EXISTS choices (
    study_id INTEGER NOT NULL REFERENCES studies(id),
    label TEXT NOT NULL,
    optimizer TEXT NOT NULL,
    trial_key TEXT NOT NULL REFERENCES trials(key),
    lr REAL NOT NULL,
    bracket TEXT NOT NULL,
    grid TEXT NOT NULL,
    extended INTEGER NOT NULL,
    PRIMARY KEY (study_id, label, optimizer)
);
"""
FINISHED = ("done", "diverged", "failed")
SCHEMA_VERSION = 3
LEASE_SECONDS = 60.0  # a running trial whose owner stopped renewing it this long ago was abandoned
# What each version added, for the migration of older stores (``descentlab migrate``).
MIGRATIONS = {
    1: """
ALTER TABLE studies ADD COLUMN meta TEXT;
ALTER TABLE study_trials ADD COLUMN label TEXT;
UPDATE study_trials SET label = (SELECT problem FROM trials WHERE trials.key = study_trials.trial_key);
""",
    2: """
ALTER TABLE trials ADD COLUMN owner TEXT;
ALTER TABLE trials ADD COLUMN lease_until REAL;
ALTER TABLE trials ADD COLUMN threads INTEGER;
""",
}


def _dumps(value) -> str:
    return json.dumps(value, sort_keys=True, default=_nonfinite)


def _nonfinite(value):
    raise TypeError(f"not JSON serializable: {value!r}")


def _number(value):
    """Floats as SQLite keeps them; NaN becomes NULL (SQLite has no NaN)."""
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else value


class StoreError(RuntimeError):
    """A results file that cannot be opened or used as asked; the message names the file."""


class Store:
    """A results file. Safe to open from several processes (WAL, busy timeout).

    ``readonly=True`` opens it for reading only (``show``, reports): nothing is written, and a
    file on a read-only disk or without write permission opens too. ``clock`` tells the time
    leases start and expire by (seconds since the epoch; tests move it to expire a lease).
    """

    def __init__(self, path: str, readonly: bool = False, clock=time.time) -> None:
        self.path = str(path)
        self.readonly = readonly
        self.clock = clock
        if readonly:
            self.db = self._open_readonly()
        else:
            self.db = self._open_writable()
        self._check_version()
        if not readonly:
            self.db.executescript(SCHEMA)
            self.db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def _open_writable(self) -> sqlite3.Connection:
        """The file opened for writing (created with its folder if need be) in WAL mode, once SQLite
        finds it whole."""
        if self.path != ":memory:":
            os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
        try:
            db = sqlite3.connect(self.path, timeout=60, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            check = db.execute("PRAGMA quick_check").fetchall()
        except sqlite3.Error as error:
            raise StoreError(_unusable(self.path, error)) from error
        if check != [("ok",)]:
            db.close()
            raise StoreError(damaged(self.path, check[0][0]))
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute("PRAGMA foreign_keys=ON")
        return db

    def _check_version(self) -> None:
        """Refuse (closing the file) a store of another schema version, saying how to upgrade an older one."""
        version = self.db.execute("PRAGMA user_version").fetchone()[0]
        empty = not self.db.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
        if not empty and version != SCHEMA_VERSION:
            self.db.close()
            if version in MIGRATIONS:
                raise StoreError(f"the results store {self.path} has schema version {version}, written by an older "
                                 f"descentlab; `descentlab migrate --db {self.path}` upgrades it to version "
                                 f"{SCHEMA_VERSION} (keeping a copy of the original)")
            raise StoreError(f"the results store {self.path} has schema version {version}; this descentlab "
                             f"writes version {SCHEMA_VERSION}: use another --db")

    def _open_readonly(self) -> sqlite3.Connection:
        if not os.path.isfile(self.path):
            raise StoreError(f"no results store at {self.path}")
        uri = "file:" + urllib.parse.quote(os.path.abspath(self.path))
        # mode=ro still needs the WAL index (-shm); where it cannot be created (a read-only
        # folder), the file is read as immutable, which is what it is to us.
        for suffix in ("?mode=ro", "?mode=ro&immutable=1"):
            try:
                db = sqlite3.connect(uri + suffix, uri=True, isolation_level=None)
                db.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
                return db
            except sqlite3.Error as error:
                failure = error
        raise StoreError(_unusable(self.path, failure))

    def close(self) -> None:
        self.db.close()

    def transaction(self):
        return _Transaction(self.db)

    # studies
    def add_study(self, name: str, spec: dict, meta: dict | None = None) -> int:
        with self.transaction():
            cursor = self.db.execute("INSERT INTO studies (name, created, spec, meta) VALUES (?, ?, ?, ?)",
                                     (name, time.time(), _dumps(spec), _dumps(meta)))
        assert cursor.lastrowid is not None  # an INSERT sets it
        return cursor.lastrowid

    def find_study(self, name: str, spec: dict) -> int | None:
        """The latest study with this name and spec (re-running a command resumes it)."""
        row = self.db.execute("SELECT id FROM studies WHERE name = ? AND spec = ? ORDER BY id DESC LIMIT 1",
                              (name, _dumps(spec))).fetchone()
        return row[0] if row else None

    def studies(self) -> list[StudyRecord]:
        rows = self.db.execute("SELECT id, name, created, spec, meta FROM studies ORDER BY id").fetchall()
        return [_study(row) for row in rows]

    def study(self, study_id: int) -> StudyRecord | None:
        row = self.db.execute("SELECT id, name, created, spec, meta FROM studies WHERE id = ?", (study_id,)).fetchone()
        return _study(row) if row else None

    def describe(self, study_id: int, label: str, info: ProblemInfo) -> None:
        """Record what a study's problem is (metric, goal, provenance, budget…), for readers of the store."""
        self.db.execute("INSERT OR REPLACE INTO study_problems (study_id, label, info) VALUES (?, ?, ?)",
                        (study_id, label, _dumps(info)))

    def problems(self, study_id: int) -> dict[str, ProblemInfo]:
        rows = self.db.execute("SELECT label, info FROM study_problems WHERE study_id = ? ORDER BY rowid",
                               (study_id,)).fetchall()
        return {label: json.loads(info) for label, info in rows}

    def choose(self, study_id: int, label: str, optimizer: str, trial_key: str, lr: float, bracket: str,
               grid: list[float], extended: int) -> None:
        """Record an optimizer's chosen configuration (its seed-0 trial) and how its lr was bracketed."""
        self.db.execute(
            "INSERT OR REPLACE INTO choices (study_id, label, optimizer, trial_key, lr, bracket, grid, extended) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (study_id, label, optimizer, trial_key, lr, bracket, _dumps(grid), extended))

    def choices(self, study_id: int) -> list[Choice]:
        cursor = self.db.execute("SELECT label, optimizer, trial_key, lr, bracket, grid, extended FROM choices "
                                 "WHERE study_id = ? ORDER BY rowid", (study_id,))
        return [cast(Choice, {**dict(zip([c[0] for c in cursor.description], row, strict=True)),
                              "grid": json.loads(row[5])}) for row in cursor.fetchall()]

    # trials
    def status(self, key: str) -> str | None:
        row = self.db.execute("SELECT status FROM trials WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def link(self, study_id: int, key: str, phase: str, label: str) -> None:
        self.db.execute("INSERT OR IGNORE INTO study_trials (study_id, trial_key, phase, label) VALUES (?, ?, ?, ?)",
                        (study_id, key, phase, label))

    def claim(self, spec, study_id: int, phase: str, label: str, owner: str) -> str:
        """Link a trial to the study and, unless it is finished or another live process runs it,
        take it: mark it running under ``owner`` with a lease (its partial curve, if any, is
        dropped). Returns ``"finished"``, ``"taken"`` (running elsewhere) or ``"claimed"``.

        Several processes may run the same study on one store: each trial is run by the one
        that claims it, and a trial whose owner died is claimed again once its lease expired
        (at once, when the owner was a process of this host that no longer exists)."""
        with self.transaction():
            row = self.db.execute("SELECT status, owner, lease_until FROM trials WHERE key = ?", (spec.key,)).fetchone()
            if row is not None and row[0] in FINISHED:
                self.link(study_id, spec.key, phase, label)
                return "finished"
            if row is not None and row[1] != owner and alive(row[1], row[2], self.clock()):
                self.link(study_id, spec.key, phase, label)
                return "taken"
            self.db.execute("DELETE FROM curves WHERE trial_key = ?", (spec.key,))
            self.db.execute(
                "INSERT OR REPLACE INTO trials (key, problem, problem_options, optimizer, hyperparameters, seed, "
                "steps, batch_size, eval_every, divergence_factor, status, started, host, owner, lease_until) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'running', ?, ?, ?, ?)",
                (spec.key, spec.problem, _dumps(spec.problem_options), spec.optimizer, _dumps(spec.hyperparameters),
                 spec.seed, spec.steps, spec.batch_size, spec.eval_every, spec.divergence_factor, time.time(),
                 socket.gethostname(), owner, self.clock() + LEASE_SECONDS),
            )
            self.link(study_id, spec.key, phase, label)
            return "claimed"

    def renew(self, owner: str) -> None:
        """Extend the lease of every trial ``owner`` runs."""
        self.db.execute("UPDATE trials SET lease_until = ? WHERE owner = ? AND status = 'running'",
                        (self.clock() + LEASE_SECONDS, owner))

    def release(self, owner: str) -> int:
        """Give up ``owner``'s running trials (stopped by the user): others may claim them at once."""
        return self.db.execute("UPDATE trials SET lease_until = 0 WHERE owner = ? AND status = 'running'",
                               (owner,)).rowcount

    def finish(self, key: str, result: Result, owner: str) -> bool:
        """Write a trial's outcome and its whole curve in one transaction, if ``owner`` still holds
        it (a result for a trial another process has taken over is dropped: False)."""
        with self.transaction():
            updated = self.db.execute(
                "UPDATE trials SET status = ?, finished = ?, seconds = ?, steps_done = ?, diverged_at = ?, "
                "valid = ?, test = ?, versions = ?, provenance = ?, host = ?, error = ?, optimizer_config = ?, "
                "threads = ?, lease_until = NULL WHERE key = ? AND owner = ? AND status = 'running'",
                (result["status"], time.time(), result["seconds"], result["steps_done"], result.get("diverged_at"),
                 _dumps(result.get("valid")), _dumps(result.get("test")), _dumps(result["versions"]),
                 result.get("provenance"), result.get("host") or socket.gethostname(), result.get("error"),
                 _dumps(result.get("optimizer_config")), result.get("threads"), key, owner),
            ).rowcount
            if not updated:
                return False
            self.db.execute("DELETE FROM curves WHERE trial_key = ?", (key,))
            self.db.executemany(
                "INSERT INTO curves (trial_key, step, wall, train_loss, valid) VALUES (?, ?, ?, ?, ?)",
                [(key, point["step"], point["wall"], _number(point["train_loss"]), _dumps(point.get("valid")))
                 for point in result["curve"]],
            )
        return True

    def trial(self, key: str) -> Trial | None:
        cursor = self.db.execute("SELECT * FROM trials WHERE key = ?", (key,))
        row = cursor.fetchone()
        return None if row is None else _trial(cursor.description, row)

    def curve(self, key: str) -> list[CurvePoint]:
        return self.curves([key])[key]

    def curves(self, keys: list[str]) -> dict[str, list[CurvePoint]]:
        """The curves of many trials in one query: {key: [points by step]}."""
        result: dict[str, list[CurvePoint]] = {key: [] for key in keys}
        for start in range(0, len(keys), 500):  # SQLite's limit on bound parameters
            chunk = keys[start : start + 500]
            rows = self.db.execute(
                f"SELECT trial_key, step, wall, train_loss, valid FROM curves WHERE trial_key IN "
                f"({','.join('?' * len(chunk))}) ORDER BY trial_key, step", chunk).fetchall()
            for key, step, wall, loss, valid in rows:
                result[key].append({"step": step, "wall": wall, "train_loss": loss,
                                    "valid": json.loads(valid) if valid else None})
        return result

    def study_trials(self, study_id: int) -> list[Trial]:
        """Every trial the study asked for, with the ``phase`` and problem ``label`` it asked in."""
        cursor = self.db.execute(
            "SELECT trials.*, study_trials.phase, study_trials.label FROM study_trials "
            "JOIN trials ON trials.key = study_trials.trial_key WHERE study_id = ? ORDER BY study_trials.rowid",
            (study_id,))
        return [_trial(cursor.description, row) for row in cursor.fetchall()]

    def finished(self, study_id: int) -> int:
        """How many of the study's trials are finished (done, diverged or failed)."""
        return self.db.execute(
            f"SELECT COUNT(*) FROM study_trials JOIN trials ON key = trial_key WHERE study_id = ? AND status IN "
            f"({','.join('?' * len(FINISHED))})", (study_id, *FINISHED)).fetchone()[0]

    def count(self, status: str | None = None) -> int:
        if status is None:
            return self.db.execute("SELECT COUNT(*) FROM trials").fetchone()[0]
        return self.db.execute("SELECT COUNT(*) FROM trials WHERE status = ?", (status,)).fetchone()[0]


_JSON_COLUMNS = ("problem_options", "hyperparameters", "optimizer_config", "valid", "test", "versions")


def _trial(description, row) -> Trial:
    record: dict[str, Any] = dict(zip([c[0] for c in description], row, strict=True))
    for column in _JSON_COLUMNS:
        if record[column] is not None:
            record[column] = json.loads(record[column])
    return cast(Trial, record)  # the trials table's columns, as records.Trial lists them


def _study(row) -> StudyRecord:
    return {"id": row[0], "name": row[1], "created": row[2], "spec": json.loads(row[3]),
            "meta": (json.loads(row[4]) if row[4] else None) or {}}


def _unusable(path: str, error: sqlite3.Error) -> str:
    """What to say of a file that SQLite cannot use as a store, and what to do about it."""
    reason = str(error)
    if "readonly" in reason or "read-only" in reason or ("unable to open" in reason and not _writable(path)):
        return (f"the results store {path} cannot be written ({reason}): give --db a writable place "
                f"(`descentlab show` and `report` read it where it is)")
    if "not a database" in reason:
        return f"{path} is not a usable results store ({reason}): give another --db, or move the file away"
    if "malformed" in reason or "corrupt" in reason:
        return damaged(path, reason)
    return f"cannot open the results store {path}: {reason}"


def damaged(path: str, reason: str) -> str:
    return (f"the results store {path} is damaged ({reason}): restore it from a copy, or save what can be read "
            f"with `sqlite3 {path} .recover | sqlite3 recovered.sqlite` and use --db recovered.sqlite")


def _writable(path: str) -> bool:
    """Whether ``path`` and its folder (where SQLite keeps its WAL) can be written."""
    folder = os.path.dirname(os.path.abspath(path))
    try:
        with open(path, "r+b"):
            pass
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError:
        return False
    return True


def owner_id() -> str:
    """This process, as the owner of the trials it runs: host, pid and a random token."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def alive(owner: str | None, lease_until: float | None, now: float | None = None) -> bool:
    """Whether a running trial's owner may still be running it: its lease has not expired by
    ``now`` (default: the time now), and (for a process of this host) the process exists."""
    if owner is None or lease_until is None or lease_until < (time.time() if now is None else now):
        return False
    host, _, rest = owner.partition(":")
    if host == socket.gethostname():
        try:
            os.kill(int(rest.partition(":")[0]), 0)
        except ProcessLookupError:
            return False
        except (PermissionError, ValueError):
            pass
    return True


class _Transaction:
    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __enter__(self):
        self.db.execute("BEGIN IMMEDIATE")
        return self.db

    def __exit__(self, kind, value, traceback) -> None:
        self.db.execute("COMMIT" if kind is None else "ROLLBACK")
