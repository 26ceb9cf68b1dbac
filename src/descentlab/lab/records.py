"""The records that cross the lab's seams, typed: a trial's result (runner → store), a trial row
(store → summary), a problem's summary table and its rows (summary → tables, verdict, report,
compare), the verdict's rows and ``compare``'s result.

They are :class:`~typing.TypedDict` s: the store writes them as JSON and SQLite rows, and every
reader keeps its ``record["key"]`` access, now checked by the type checker.
"""

from __future__ import annotations

from typing import Any, TypedDict

from typing_extensions import NotRequired

Metrics = dict[str, float]  # a split's metrics by name, e.g. {"loss": 0.31, "accuracy": 0.91}
CurveTriple = tuple[int, float, float]  # (step, wall seconds, selection metric)


class CurvePoint(TypedDict):
    """One evaluation of a trial: its step, wall seconds since the start, training loss, and the
    validation metrics (None where the loss was not finite)."""

    step: int
    wall: float
    train_loss: float | None
    valid: Metrics | None


class Result(TypedDict):
    """A trial's outcome as :func:`descentlab.lab.runner.record` builds it and
    :meth:`descentlab.lab.store.Store.finish` writes it."""

    status: str  # "done", "diverged" or "failed"
    seconds: float
    steps_done: int
    diverged_at: int | None
    curve: list[CurvePoint]
    valid: Metrics | None
    test: Metrics | None
    versions: dict[str, str]
    threads: int
    host: str
    provenance: str | None
    optimizer_config: dict[str, Any] | None
    error: NotRequired[str]


class Trial(TypedDict):
    """A row of the store's ``trials`` table, JSON columns decoded; ``phase`` and ``label`` come
    with the rows of :meth:`~descentlab.lab.store.Store.study_trials`."""

    key: str
    problem: str
    problem_options: dict[str, Any]
    optimizer: str
    hyperparameters: dict[str, Any]
    optimizer_config: dict[str, Any] | None
    seed: int
    steps: int
    batch_size: int | None
    eval_every: int
    divergence_factor: float
    status: str  # "running" or one of store.FINISHED
    started: float | None
    finished: float | None
    seconds: float | None
    steps_done: int | None
    diverged_at: int | None
    valid: Metrics | None
    test: Metrics | None
    versions: dict[str, str] | None
    provenance: str | None
    host: str | None
    error: str | None
    owner: str | None
    lease_until: float | None
    threads: int | None
    phase: NotRequired[str]
    label: NotRequired[str]


class CurvedTrial(Trial):
    """A trial row with its curve, as the report draws it."""

    curve: list[CurvePoint]


class Choice(TypedDict):
    """An optimizer's chosen configuration on one problem, and how its lr was bracketed."""

    label: str
    optimizer: str
    trial_key: str
    lr: float
    bracket: str  # "interior", "edge" or "single"
    grid: list[float]
    extended: int


class ProblemInfo(TypedDict):
    """What readers of the store know of a study's problem without rebuilding it."""

    problem: str
    options: dict[str, Any]
    metric: str
    goal: str  # "min" or "max"
    description: str
    provenance: str
    population: bool
    curve_limit: float | None
    steps: int
    batch_size: int | None
    eval_every: int
    train_examples: int | None
    migrated_from: NotRequired[int]  # the schema version a migrated store's study was described from


class SensitivityPoint(TypedDict):
    lr: float
    score: float
    status: str
    phase: str
    hyperparameters: dict[str, Any]


class Row(TypedDict):
    """One optimizer on one problem in a summary: its chosen lr, test metric over seeds, paired
    wins over the next row, time to the target, divergences and lr-sensitivity."""

    optimizer: str
    lr: float
    bracket: str
    extended: int
    grid: list[float]
    hyperparameters: dict[str, Any]
    seeds: int
    seeds_finished: int
    seeds_lost: int
    test_mean: float | None
    test_std: float | None
    test_ci: tuple[float, float] | None
    valid_mean: float | None
    seed_tests: dict[int, float]
    seed_valids: dict[int, float]
    diverged: int
    failed: int
    sensitivity: list[SensitivityPoint]
    curve: list[CurveTriple]
    steps_to_target: float | None
    seconds_to_target: float | None
    rank: int | None  # None while the problem is incomplete
    beats_next: NotRequired[tuple[int, int]]  # paired wins over the next row, which the last row lacks


class Progress(TypedDict):
    finished: int
    running: int
    abandoned: int  # left running by a process that is gone
    complete: bool


class ProblemTable(ProblemInfo):
    """A problem's summary: its info, target, ranked rows and paired wins."""

    target: float | None
    rows: list[Row]
    wins: dict[str, dict[str, tuple[int, int]]]
    progress: NotRequired[Progress]


class StudyRecord(TypedDict):
    id: int
    name: str
    created: float
    spec: dict[str, Any]
    meta: dict[str, Any]


class Duel(TypedDict):
    """Two optimizers met on one problem's test metric, seed by seed, and the rule's outcome."""

    problem: str
    metric: str
    goal: str
    ours: str
    theirs: str
    ours_mean: float | None
    ours_ci: tuple[float, float] | None
    theirs_mean: float | None
    theirs_ci: tuple[float, float] | None
    difference: float
    difference_ci: tuple[float, float]
    wins: int
    seeds: int
    outcome: str


class VerdictRow(TypedDict):
    """One claim tested; "no optimizer wins everywhere" adds who won everywhere, who was never
    significantly beaten, and on which problems."""

    claim: str
    outcome: str
    evidence: list[Duel]
    everywhere: NotRequired[list[str]]
    unbeaten: NotRequired[list[str]]
    problems: NotRequired[list[str]]


class Summary(TypedDict):
    """A study's summary as :func:`descentlab.lab.summary.summarize` reads it from the store."""

    study: StudyRecord
    problems: dict[str, ProblemTable]
    complete: bool
    missing: list[str]
    profile: dict[str, Any]
    verdict: NotRequired[list[VerdictRow]]


class CompareResult(TypedDict):
    """What :func:`descentlab.compare` returns."""

    summary: Summary
    duels: list[Duel]
    verdict: list[str]
    champion: str | None
    has_test: bool
    db: str
    study: int
    report: str | None
