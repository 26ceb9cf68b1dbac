"""Running a study through the protocol, resumably, and summarizing it.

``run_study`` tunes (every grid point on seed 0), selects on validation, confirms (the chosen
configuration on every seed), and returns the per-problem summary. Finished trials found in the
store are never rerun; a study killed at any point resumes where it stopped.
"""

from __future__ import annotations

import math
import statistics
import sys
import time
from dataclasses import dataclass, field

from descentlab.lab import executors, runner
from descentlab.lab.spec import Study, TrialSpec, worst
from descentlab.lab.store import FINISHED, Store


@dataclass
class Progress:
    """Trials done / running / diverged and an ETA, on one terminal line."""

    total: int = 0
    done: int = 0
    running: int = 0  # submitted and not finished
    capacity: int = 1  # trials the executor runs at once; the rest of ``running`` are queued
    diverged: int = 0
    failed: int = 0
    started: float = field(default_factory=time.perf_counter)
    ran: int = 0  # finished by this process (the ETA's evidence)
    stream: object = None
    last_draw: float = 0.0

    def draw(self, force: bool = False) -> None:
        stream = self.stream if self.stream is not None else sys.stderr
        now = time.perf_counter()
        tty = getattr(stream, "isatty", lambda: False)()
        if not force and now - self.last_draw < (0.2 if tty else 10.0):
            return
        self.last_draw = now
        width = 24
        filled = int(width * self.done / self.total) if self.total else width
        remaining = self.total - self.done
        eta = "?"
        if self.ran:
            eta_s = (now - self.started) / self.ran * remaining
            eta = f"{int(eta_s // 60)}:{int(eta_s % 60):02d}"
        running = min(self.running, self.capacity)
        line = (f"[{'#' * filled}{'.' * (width - filled)}] {self.done}/{self.total} done, {running} running, "
                f"{self.running - running} queued, {self.diverged} diverged, {self.failed} failed, ETA {eta}")
        stream.write(("\r" + line) if tty else (line + "\n"))
        stream.flush()

    def close(self) -> None:
        self.draw(force=True)
        stream = self.stream if self.stream is not None else sys.stderr
        if getattr(stream, "isatty", lambda: False)():
            stream.write("\n")


def score(record: dict, metric: str, goal: str) -> float:
    """The validation metric of a finished trial; diverged or failed runs score worst."""
    if record is None or record["status"] != "done" or not record.get("valid"):
        return worst(goal)
    value = record["valid"].get(metric)
    return value if value is not None and math.isfinite(value) else worst(goal)


def _better(goal: str):
    return (lambda a, b: a < b) if goal == "min" else (lambda a, b: a > b)


def run_specs(store: Store, study_id: int, specs: list[TrialSpec], phase: str, pool, progress: Progress,
              population: bool = True) -> None:
    """Run the unfinished ``specs``; link every one to the study."""
    todo = []
    with store.transaction():
        for spec in specs:
            status = store.status(spec.key)
            if status in FINISHED:
                store.link(study_id, spec.key, phase)
            else:
                todo.append(spec)
    unique = list({spec.key: spec for spec in todo}.values())
    groups = runner.population_groups(unique) if population else []
    grouped = {spec.key for group in groups for spec in group}
    tasks = [("population", group) for group in groups]
    tasks += [("trial", [spec]) for spec in unique if spec.key not in grouped]
    pending = {}
    for kind, task_specs in tasks:
        for spec in task_specs:
            store.start(spec, study_id, phase)
        progress.running += len(task_specs)
        pending[pool.submit(kind, task_specs)] = task_specs
        progress.draw()
    while pending:
        done, _ = pool.wait(pending)
        for future in done:
            task_specs = pending.pop(future)
            try:
                results = future.result()
            except Exception as error:  # a worker died: record it, the study goes on
                results = [{"status": "failed", "seconds": 0.0, "steps_done": 0, "curve": [],
                            "versions": runner.versions(), "error": f"worker lost: {error!r}"}] * len(task_specs)
            for spec, result in zip(task_specs, results):
                store.finish(spec.key, result)
                progress.running -= 1
                progress.done += 1
                progress.ran += 1
                progress.diverged += result["status"] == "diverged"
                progress.failed += result["status"] == "failed"
        progress.draw()


def best(candidates, goal: str):
    """The selection rule: the best score, ties to the smaller lr. ``candidates``: (score, lr, item)."""
    better = _better(goal)
    chosen = None
    for value, lr, item in candidates:
        if chosen is None or better(value, chosen[0]) or (value == chosen[0] and lr < chosen[1]):
            chosen = (value, lr, item)
    return chosen


def select(store: Store, problem, tuning: list[TrialSpec]) -> list[TrialSpec]:
    """The chosen configuration of each optimizer among its tuning trials."""
    by_optimizer: dict[str, list[TrialSpec]] = {}
    for spec in tuning:
        by_optimizer.setdefault(spec.optimizer, []).append(spec)
    return [best([(score(store.trial(s.key), problem.metric, problem.metric_goal), s.lr, s) for s in specs],
                 problem.metric_goal)[2] for specs in by_optimizer.values()]


def run_study(study: Study, db: str = "descentlab.sqlite", workers: int = 1, executor: str = "local",
              address: str | None = None, progress_stream=None, population: bool = True) -> dict:
    """Run (or resume) ``study`` into the store at ``db``; return its summary (see :func:`summarize`)."""
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"`workers` must be a positive integer. Received: workers={workers!r}")
    store = Store(db)
    name = study.name or "study"
    study_id = store.find_study(name, study.to_json()) or store.add_study(name, study.to_json())
    built = {name: runner.get_problem(name, study.problem_options.get(name, {})) for name in study.problems}
    tuning = {name: study.tuning_trials(name, problem) for name, problem in built.items()}
    confirm_count = len(study.problems) * len(study.optimizers) * max(0, study.seeds - 1)
    progress = Progress(total=sum(map(len, tuning.values())) + confirm_count, capacity=workers, stream=progress_stream)
    pool = executors.make(executor, workers, address)
    try:
        run_specs(store, study_id, [s for specs in tuning.values() for s in specs], "tune", pool, progress, population)
        confirmations = []
        for name, problem in built.items():
            for chosen in select(store, problem, tuning[name]):
                confirmations += chosen_seeds(study, chosen)
        run_specs(store, study_id, confirmations, "confirm", pool, progress, population)
    finally:
        pool.close()
        progress.close()
    summary = summarize(store, study_id)
    store.close()
    return summary


def chosen_seeds(study: Study, chosen: TrialSpec) -> list[TrialSpec]:
    return study.confirmation_trials(chosen)[1:]


def summarize(store: Store, study_id: int) -> dict:
    """Per problem and optimizer: best lr, test metric mean ± std over seeds, steps to target,
    diverged count and rank (the DeepOBS triple, with the lr sensitivity as the tuning curve)."""
    study_record = store.study(study_id)
    if study_record is None:
        raise ValueError(f"No study with id {study_id} in {store.path}")
    records = store.study_trials(study_id)
    summary = {"study": study_record, "problems": {}}
    by_problem: dict[str, list[dict]] = {}
    for record in records:
        by_problem.setdefault(record["problem"], []).append(record)
    for problem_name, rows in by_problem.items():
        problem = runner.get_problem(problem_name, rows[0]["problem_options"])
        metric, goal = problem.metric, problem.metric_goal
        optimizers = {}
        for record in rows:
            optimizers.setdefault(record["optimizer"], []).append(record)
        entries = []
        for optimizer, trials in optimizers.items():
            tuning = [t for t in trials if t["phase"] == "tune"]
            if not tuning:
                continue
            chosen = best([(score(t, metric, goal), t["hyperparameters"]["lr"], t) for t in tuning], goal)[2]
            seeds = [t for t in trials if t["hyperparameters"] == chosen["hyperparameters"]]
            finished = [t for t in seeds if t["status"] == "done" and t.get("test")]
            tests = [t["test"].get(metric) for t in finished]
            tests = [v for v in tests if v is not None and math.isfinite(v)]
            lrs = sorted({t["hyperparameters"]["lr"] for t in tuning})
            entries.append({
                "optimizer": optimizer,
                "lr": chosen["hyperparameters"]["lr"],
                "lr_at_grid_edge": len(lrs) > 1 and chosen["hyperparameters"]["lr"] in (lrs[0], lrs[-1]),
                "hyperparameters": chosen["hyperparameters"],
                "seeds": len(seeds),
                "test_mean": statistics.fmean(tests) if tests else None,
                "test_std": statistics.stdev(tests) if len(tests) > 1 else 0.0 if tests else None,
                "diverged": sum(t["status"] == "diverged" for t in trials),
                "failed": sum(t["status"] == "failed" for t in trials),
                "seeds_lost": len(seeds) - len(tests),
                "seed_scores": sorted((t["seed"], score(t, metric, goal)) for t in seeds),
                "sensitivity": [(t["hyperparameters"]["lr"], score(t, metric, goal)) for t in sorted(tuning, key=lambda t: t["hyperparameters"]["lr"])],
                "_confirm": [t["key"] for t in finished],
            })
        _steps_to_target(store, entries, metric, goal)
        ranked = sorted(entries, key=lambda e: (e["seeds_lost"], _orderable(e["test_mean"], goal)))
        for rank, entry in enumerate(ranked, 1):
            entry["rank"] = rank
            entry.pop("_confirm")
        summary["problems"][problem_name] = {"metric": metric, "goal": goal, "rows": ranked,
                                             "target": entries[0].get("target") if entries else None}
    return summary


def _orderable(value, goal: str) -> float:
    if value is None:
        return math.inf
    return value if goal == "min" else -value


def _steps_to_target(store: Store, entries: list[dict], metric: str, goal: str) -> None:
    """Target: the final validation level every optimizer reached (the worst of their medians);
    each optimizer's steps to it is the median over its seeds of the first curve point there."""
    medians = []
    curves = {}
    for entry in entries:
        finals = []
        for key in entry["_confirm"]:
            curve = [p for p in store.curve(key) if p["valid"] and p["valid"].get(metric) is not None]
            curves.setdefault(entry["optimizer"], []).append(curve)
            if curve:
                finals.append(curve[-1]["valid"][metric])
        if finals:
            medians.append(statistics.median(finals))
    if not medians:
        return
    target = max(medians) if goal == "min" else min(medians)
    reached = (lambda v: v <= target) if goal == "min" else (lambda v: v >= target)
    for entry in entries:
        steps = []
        for curve in curves.get(entry["optimizer"], []):
            hit = next((p["step"] for p in curve if reached(p["valid"][metric])), None)
            steps.append(hit if hit is not None else math.inf)
        entry["target"] = target
        entry["steps_to_target"] = statistics.median(steps) if steps else None


def format_summary(summary: dict) -> str:
    """The per-problem tables the CLI prints."""
    lines = [f"study {summary['study']['id']} ({summary['study']['name']})"]
    for problem_name, table in summary["problems"].items():
        target = table.get("target")
        target_text = f", target {table['metric']} {'≤' if table['goal'] == 'min' else '≥'} {target:.4g}" if target is not None else ""
        lines.append(f"\n{problem_name}: test {table['metric']} ({table['goal']}){target_text}")
        lines.append(f"{'rank':>4}  {'optimizer':<10} {'best lr':>10}  {'test mean ± std':>24} {'steps→target':>13} {'diverged':>9}")
        for row in table["rows"]:
            mean = "—" if row["test_mean"] is None else f"{row['test_mean']:.4g} ± {row['test_std']:.2g}"
            if row["seeds_lost"]:
                mean += f" ({row['seeds'] - row['seeds_lost']}/{row['seeds']} seeds)"
            steps = row.get("steps_to_target")
            steps_text = "—" if steps is None else ("never" if steps == math.inf else f"{steps:g}")
            edge = "*" if row["lr_at_grid_edge"] else " "
            lines.append(f"{row['rank']:>4}  {row['optimizer']:<10} {row['lr']:>10.3g}{edge} {mean:>24} {steps_text:>13} {row['diverged']:>9}")
    if any(r["lr_at_grid_edge"] for t in summary["problems"].values() for r in t["rows"]):
        lines.append("\n* best lr at the edge of the grid: widen --span to be sure of it")
    return "\n".join(lines)
