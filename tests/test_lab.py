"""The lab: protocol, divergence, store, resume after SIGKILL, populations, executors, CLI."""

from __future__ import annotations

import json
import math
import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest
import torch

from descentlab.lab import Store, Study, TrialSpec, lr_grid, run_study, runner
from lab_problems import FINISHED_TRIALS, Bowl, wait_for


@pytest.fixture
def bowl():
    problem = Bowl()
    runner.register("bowl", problem)
    yield problem
    runner.unregister("bowl")


def test_lr_grid_is_log_spaced_around_the_default():
    grid = lr_grid(1e-3, 5, 2.0)
    assert grid == pytest.approx([1e-4, 10 ** -3.5, 1e-3, 10 ** -2.5, 1e-2])
    assert lr_grid(0.5, 1, 3.0) == [0.5]


def test_protocol_selects_the_known_best_lr_and_records_divergence(bowl, tmp_path):
    # SGD's default lr is 1e-3; 9 points over 8 decades: 1e-7 … 10. lr = 1 solves the bowl in one
    # step; lr = 10 overshoots ninefold each step and must be recorded as diverged, not crash.
    study = Study(problems=["bowl"], optimizers=["sgd", "momentum"], grid=9, span=8.0, seeds=3, steps=5)
    summary = run_study(study, db=str(tmp_path / "s.sqlite"), progress_stream=open(os.devnull, "w"))
    rows = {row["optimizer"]: row for row in summary["problems"]["bowl"]["rows"]}
    assert rows["sgd"]["lr"] == pytest.approx(1.0)
    assert rows["sgd"]["test_mean"] == pytest.approx(0.0, abs=1e-12)
    assert rows["sgd"]["diverged"] >= 1
    assert rows["sgd"]["rank"] == 1
    store = Store(str(tmp_path / "s.sqlite"))
    diverged = [t for t in store.study_trials(summary["study"]["id"]) if t["status"] == "diverged"]
    assert [t["hyperparameters"]["lr"] for t in diverged if t["optimizer"] == "sgd"] == [pytest.approx(10.0)]
    momentum = next(t for t in store.study_trials(summary["study"]["id"]) if t["optimizer"] == "momentum")
    assert momentum["optimizer_config"]["class"] == "SGD"  # every hyperparameter the run used is recorded
    assert momentum["threads"] == torch.get_num_threads()  # float32 reductions depend on it: recorded
    assert momentum["optimizer_config"]["momentum"] == 0.9 and momentum["optimizer_config"]["dampening"] == 0.0
    assert all(t["diverged_at"] >= 2 and t["test"] is None for t in diverged)
    # the chosen lr was re-run on seeds 0, 1, 2; tuning used seed 0 only
    chosen = [t for t in store.study_trials(summary["study"]["id"])
              if t["optimizer"] == "sgd" and t["hyperparameters"]["lr"] == pytest.approx(1.0)]
    assert sorted(t["seed"] for t in chosen) == [0, 1, 2]


def test_every_optimizer_sees_the_same_init_and_data_for_a_seed(bowl, tmp_path):
    study = Study(problems=["bowl"], optimizers=["sgd", "adam", "rmsprop"], grid=2, span=1.0, seeds=2, steps=3,
                  extend=0)
    run_study(study, db=str(tmp_path / "s.sqlite"), progress_stream=open(os.devnull, "w"))
    models = [entry for entry in bowl.log if entry[0] == "model"]
    batches = [entry for entry in bowl.log if entry[0] == "batch"]
    assert len(models) == 3 * 2 + 3 * 1  # tuning: 3 optimizers × 2 lrs on seed 0; then seed 1 each
    for seed in (0, 1):
        assert len({value for _, s, value in models if s == seed}) == 1
        served = [value for _, s, value in batches if s == seed]
        first_batches = {tuple(served[i : i + 3]) for i in range(0, len(served), 3)}
        assert len(first_batches) == 1  # every trial of this seed got the same three batches


def test_store_round_trip(tmp_path):
    store = Store(str(tmp_path / "r.sqlite"))
    study_id = store.add_study("s", {"a": 1})
    spec = TrialSpec("quadratic", {"dim": 3}, "adam", {"lr": 0.01}, 2, 10, 4, 5, 10.0)
    assert store.claim(spec, study_id, "tune", "quadratic", "me") == "claimed"
    assert store.status(spec.key) == "running"
    curve = [{"step": 5, "wall": 0.5, "train_loss": 1.5, "valid": {"loss": 1.0}},
             {"step": 10, "wall": 1.0, "train_loss": float("nan"), "valid": {"loss": float("inf")}}]
    result = {"status": "done", "seconds": 1.0, "steps_done": 10, "curve": curve, "valid": {"loss": 0.25},
              "test": {"loss": 0.5, "excess_loss": 0.1}, "versions": {"torch": "x"}, "provenance": "p"}
    assert not store.finish(spec.key, result, "someone else")  # only the owner writes a result
    assert store.finish(spec.key, result, "me")
    store.close()
    store = Store(str(tmp_path / "r.sqlite"))
    record = store.trial(spec.key)
    assert (record["status"], record["seed"], record["steps"], record["batch_size"]) == ("done", 2, 10, 4)
    assert record["hyperparameters"] == {"lr": 0.01} and record["problem_options"] == {"dim": 3}
    assert record["test"] == {"loss": 0.5, "excess_loss": 0.1} and record["versions"] == {"torch": "x"}
    back = store.curve(spec.key)
    assert [p["step"] for p in back] == [5, 10]
    assert back[0]["train_loss"] == 1.5 and back[1]["train_loss"] is None  # NaN is stored as NULL
    assert back[1]["valid"]["loss"] == math.inf
    assert store.study_trials(study_id)[0]["phase"] == "tune"
    assert store.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_trial_key_covers_what_determines_the_result():
    base = TrialSpec("quadratic", {}, "adam", {"lr": 0.01}, 0, 10, 4, 5, 10.0)
    changed = [TrialSpec("quadratic", {}, "adam", {"lr": 0.02}, 0, 10, 4, 5, 10.0),
               TrialSpec("quadratic", {}, "adam", {"lr": 0.01}, 1, 10, 4, 5, 10.0),
               TrialSpec("quadratic", {}, "nadam", {"lr": 0.01}, 0, 10, 4, 5, 10.0),
               TrialSpec("quadratic", {"dim": 5}, "adam", {"lr": 0.01}, 0, 10, 4, 5, 10.0),
               TrialSpec("quadratic", {}, "adam", {"lr": 0.01}, 0, 10, 8, 5, 10.0)]
    assert len({base.key, *(c.key for c in changed)}) == 6
    assert base.key == TrialSpec("quadratic", {}, "adam", {"lr": 0.01}, 0, 10, 4, 5, 10.0).key


def test_surface_population_matches_one_trial_at_a_time(tmp_path):
    study = Study(problems=["valley", "beale"], optimizers=["momentum", "adam", "adadelta"], grid=3, span=2.0,
                  seeds=2, steps=60, problem_options={"valley": {"jitter": 0.5, "noise": 0.1}})
    quiet = open(os.devnull, "w")
    together = run_study(study, db=str(tmp_path / "p.sqlite"), progress_stream=quiet, population=True)
    alone = run_study(study, db=str(tmp_path / "a.sqlite"), progress_stream=quiet, population=False)
    stores = Store(str(tmp_path / "p.sqlite")), Store(str(tmp_path / "a.sqlite"))
    records = [{t["key"]: t for t in s.study_trials(1)} for s in stores]
    assert records[0].keys() == records[1].keys()
    for key, a in records[0].items():
        b = records[1][key]
        assert a["status"] == b["status"]
        if a["status"] == "done":
            for metric in ("x", "y", "loss"):
                assert a["test"][metric] == pytest.approx(b["test"][metric], rel=1e-3, abs=1e-4)
            assert [p["step"] for p in stores[0].curve(key)] == [p["step"] for p in stores[1].curve(key)]
        assert a["optimizer_config"] == b["optimizer_config"]
    for name in ("valley", "beale"):
        lrs = [[r["lr"] for r in summary["problems"][name]["rows"]] for summary in (together, alone)]
        assert lrs[0] == lrs[1]


def test_population_rows_with_their_own_momentum_and_beta1_match_trials_alone():
    seconds = {"momentum": [{"momentum": m} for m in (0.0, 0.5, 0.9)],
               "nesterov": [{"momentum": m} for m in (0.3, 0.9)],
               "rmsprop": [{"momentum": m} for m in (0.0, 0.9)],
               "adam": [{"betas": [b, 0.999]} for b in (0.0, 0.5, 0.9)],
               "nadam": [{"betas": [b, 0.999]} for b in (0.5, 0.9)]}
    specs = [TrialSpec("beale", {}, name, {"lr": lr, **second}, 0, 30, None, 30, 10.0)
             for name, settings in seconds.items() for second in settings for lr in (1e-3, 3e-3)]
    (group,) = runner.population_groups(specs)
    assert len({runner._configuration(spec) for spec in group}) == len(seconds)  # one optimizer steps each
    for spec, together in zip(group, runner.run_population(group), strict=True):
        alone = runner.run_trial(spec)
        assert together["status"] == alone["status"] == "done"
        assert together["optimizer_config"] == alone["optimizer_config"]
        for metric in ("x", "y"):
            assert together["test"][metric] == pytest.approx(alone["test"][metric], rel=1e-3, abs=1e-4), spec


def test_worker_processes_give_the_same_results(tmp_path):
    study = Study(problems=["quadratic"], optimizers=["momentum", "adam"], grid=2, span=1.0, seeds=2, steps=40)
    quiet = open(os.devnull, "w")
    one = run_study(study, db=str(tmp_path / "1.sqlite"), progress_stream=quiet)
    two = run_study(study, db=str(tmp_path / "2.sqlite"), workers=2, progress_stream=quiet)
    # a worker has one thread here, the parent two: float32 reductions may round differently
    for a, b in zip(one["problems"]["quadratic"]["rows"], two["problems"]["quadratic"]["rows"], strict=True):
        assert (a["optimizer"], a["lr"]) == (b["optimizer"], b["lr"])
        assert a["test_mean"] == pytest.approx(b["test_mean"], rel=1e-5)


def _counts(db):
    connection = sqlite3.connect(db, timeout=30)
    try:
        rows = connection.execute("SELECT status, COUNT(*) FROM trials GROUP BY status").fetchall()
        finished = connection.execute("SELECT key, finished FROM trials WHERE status != 'running'").fetchall()
        return dict(rows), dict(finished)
    finally:
        connection.close()


def test_resume_after_sigkill_loses_no_finished_trial(tmp_path):
    db = str(tmp_path / "kill.sqlite")
    command = [sys.executable, "-m", "descentlab", "run", "--problems", "quadratic", "--optimizers",
               "sgd,momentum,adam", "--grid", "4", "--seeds", "3", "--steps", "1500", "--extend", "0", "--db", db]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for(db, FINISHED_TRIALS, 3, process)
    process.send_signal(signal.SIGKILL)
    process.wait()
    counts, finished_before = _counts(db)
    assert 3 <= len(finished_before) < 12, counts  # killed while tuning: each trial was committed alone

    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    counts, finished_after = _counts(db)
    assert counts.get("running", 0) == 0
    assert sum(counts.values()) == 12 + 6  # 3 optimizers × 4 lrs, then 2 more seeds each: no duplicates
    for key, stamp in finished_before.items():
        assert finished_after[key] == stamp  # kept, not rerun
    store = Store(db)
    for key in finished_after:
        curve = store.curve(key)
        assert [p["step"] for p in curve] == list(range(75, 1501, 75))  # whole curves only


def test_cli_runs_the_quick_suite_end_to_end_and_a_rerun_runs_no_trial_again(tmp_path):
    db, out = str(tmp_path / "q.sqlite"), str(tmp_path / "out")
    command = [sys.executable, "-m", "descentlab", "run", "--suite", "quick", "--db", db, "--out", out]
    first = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert first.returncode == 0, first.stderr
    for problem in ("rosenbrock", "beale", "quadratic"):
        assert f"\n{problem}: " in first.stdout
    assert "optimizer" in first.stdout and "bracketed" in first.stdout and "steps→target" in first.stdout
    assert "done" in first.stderr and "ETA" in first.stderr
    summary = json.loads(open(os.path.join(out, "summary.json")).read())
    assert set(summary["problems"]) == {"rosenbrock", "beale", "quadratic"}
    assert all(len(t["rows"]) == 3 for t in summary["problems"].values())
    counts, finished = _counts(db)
    again = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr
    assert _counts(db) == (counts, finished)  # the same trials, each finished when it first was: none reran
    assert again.stdout.split("\nresults:")[0] == first.stdout.split("\nresults:")[0]
    shown = subprocess.run([sys.executable, "-m", "descentlab", "show", "1", "--db", db], capture_output=True,
                           text=True)
    assert shown.returncode == 0 and shown.stdout.strip() == first.stdout.split("\nresults:")[0].strip()


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["run", "--problems", "rosenbrok", "--optimizers", "adam"],
         "Unknown problem 'rosenbrok'. Valid problems: beale,"),
        (["run", "--problems", "beale", "--optimizers", "lion"], "Unknown optimizer 'lion'. Valid optimizers: sgd,"),
        (["run", "--suite", "slow"], "--suite: unknown suite 'slow'. Valid suites: quick"),
        (["run", "--problems", "beale"], "--optimizers: give a comma-separated list, or a --suite"),
        (["run", "--suite", "quick", "--grid", "0"], "--grid: must be a positive integer, got 0"),
        (["compare", "--entry", "nomodule"], "--entry: `entry` must be 'module:function'"),
        (["show", "--db", "/nonexistent/x.sqlite"], "--db: no results store at /nonexistent/x.sqlite"),
    ],
)
def test_cli_bad_arguments_exit_2_with_a_message(arguments, message):
    done = subprocess.run([sys.executable, "-m", "descentlab", *arguments], capture_output=True, text=True)
    assert done.returncode == 2
    assert message in done.stderr


def _ray_tasks(ray, function: str) -> set[str]:
    """The ids of the Ray tasks that ran ``function``, from Ray's own task records."""
    return {event["args"]["task_id"] for event in ray.timeline()
            if event.get("cat", "").startswith("task::") and event.get("args", {}).get("name") == function}


def test_ray_executor_runs_every_trial_as_a_ray_task_into_the_same_store(tmp_path, monkeypatch):
    ray = pytest.importorskip("ray", reason="Ray is an optional extra and could not be imported")
    from descentlab.lab import executors

    study = Study(problems=["quadratic", "valley"], optimizers=["momentum", "adam"], grid=2, span=1.0, seeds=2,
                  steps=30)
    quiet = open(os.devnull, "w")
    local = run_study(study, db=str(tmp_path / "local.sqlite"), progress_stream=quiet)
    submitted = []  # (kind, number of trials) of each task handed to Ray
    submit = executors.RayExecutor.submit

    def spy(self, kind, specs):
        submitted.append((kind, len(specs)))
        return submit(self, kind, specs)

    monkeypatch.setattr(executors.RayExecutor, "submit", spy)
    try:
        remote = run_study(study, db=str(tmp_path / "ray.sqlite"), executor="ray", workers=2, progress_stream=quiet)
        deadline = time.monotonic() + 30
        tasks = _ray_tasks(ray, "descentlab.lab.executors.execute")
        while len(tasks) < len(submitted) and time.monotonic() < deadline:  # task events reach Ray's records in ~1 s
            time.sleep(0.5)
            tasks = _ray_tasks(ray, "descentlab.lab.executors.execute")
    finally:
        ray.shutdown()
    trials = Store(str(tmp_path / "ray.sqlite")).count()
    assert sum(count for _, count in submitted) == trials  # every trial went to Ray…
    assert len(tasks) == len(submitted)  # …and ran there, one Ray task per task submitted
    assert {kind for kind, _ in submitted} == {"trial", "population"}  # the valley's trials as populations
    for name, table in local["problems"].items():
        for a, b in zip(table["rows"], remote["problems"][name]["rows"], strict=True):
            assert (a["optimizer"], a["lr"]) == (b["optimizer"], b["lr"])
            assert a["test_mean"] == pytest.approx(b["test_mean"], rel=1e-5)
    assert Store(str(tmp_path / "ray.sqlite")).count("done") == Store(str(tmp_path / "local.sqlite")).count("done")


def test_budget_in_epochs():
    from descentlab import problems

    quadratic = problems.get("quadratic")
    assert Study(problems=["quadratic"], optimizers=["sgd"], epochs=2, batch_size=100).budget(quadratic)[0] == 20
    assert Study(problems=["quadratic"], optimizers=["sgd"], epochs=0.5).budget(quadratic)[0] == math.ceil(500 / 32)
    beale = problems.get("beale")
    assert Study(problems=["beale"], optimizers=["sgd"], epochs=30).budget(beale)[0] == 30  # full batch
    with pytest.raises(ValueError, match="has no fixed epoch"):
        Study(problems=["beale"], optimizers=["sgd"], epochs=3, batch_size=8).budget(beale)
    with pytest.raises(ValueError, match="Give `steps` or `epochs`, not both"):
        Study(problems=["beale"], optimizers=["sgd"], epochs=3, steps=10)


def test_a_store_of_another_schema_is_refused(tmp_path):
    path = tmp_path / "old.sqlite"
    connection = sqlite3.connect(path)
    connection.execute("CREATE TABLE trials (key TEXT)")
    connection.commit()
    connection.close()
    with pytest.raises(RuntimeError, match="has schema version 0; this descentlab writes version 3"):
        Store(str(path))


# --- grids that bracket the optimum --------------------------------------------------------


def test_grid_extends_upwards_until_the_best_lr_is_interior(tmp_path):
    from lab_problems import study_far_from_its_grid

    summary = study_far_from_its_grid(str(tmp_path / "far.sqlite"))
    (row,) = summary["problems"]["bowl"]["rows"]
    assert row["lr"] == pytest.approx(1.0)  # 2.5 decades above the first grid's top
    assert row["bracket"] == "interior" and row["extended"] == 6  # 10^-2 … 10^0.5, by the same half decade
    assert row["grid"] == pytest.approx([10 ** (-3.5 + 0.5 * i) for i in range(9)])
    lrs = {round(math.log10(s["lr"]), 6): s["status"] for s in row["sensitivity"]}
    assert lrs[0.5] == "diverged"  # the point beyond the best: the edge is accepted because it diverged
    phases = [t["phase"] for t in Store(str(tmp_path / "far.sqlite")).study_trials(1)]
    assert phases.count("tune") == 3 and phases.count("extend") == 6 and phases.count("confirm") == 2


def test_grid_extends_downwards_and_flags_an_edge_at_the_cap(tmp_path):
    runner.register("steep", Bowl(curvature=1e5))  # best SGD lr 1e-5: 1.5 decades below the grid
    try:
        quiet = open(os.devnull, "w")
        study = Study(problems=["steep"], optimizers=["sgd"], grid=3, span=1.0, seeds=2, steps=5)
        (row,) = run_study(study, db=str(tmp_path / "a.sqlite"), progress_stream=quiet)["problems"]["steep"]["rows"]
        assert row["lr"] == pytest.approx(1e-5) and row["bracket"] == "interior" and row["extended"] == 4
        capped = Study(problems=["steep"], optimizers=["sgd"], grid=3, span=1.0, seeds=2, steps=5, extend=2)
        summary = run_study(capped, db=str(tmp_path / "b.sqlite"), progress_stream=quiet)
        (row,) = summary["problems"]["steep"]["rows"]
        assert row["lr"] == pytest.approx(10 ** -4.5) and row["bracket"] == "edge" and row["extended"] == 2
        from descentlab.lab.tables import format_summary

        assert "EDGE (+2)" in format_summary(summary)
    finally:
        runner.unregister("steep")


def test_a_study_killed_during_an_extension_resumes_it(tmp_path):
    db = str(tmp_path / "kill.sqlite")
    tests = os.path.dirname(__file__)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([tests, os.environ.get("PYTHONPATH", "")])}
    command = [sys.executable, os.path.join(tests, "lab_problems.py"), db]
    process = subprocess.Popen([*command, "0.3"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    extended = ("SELECT COUNT(*) FROM study_trials JOIN trials ON key = trial_key WHERE phase = 'extend' "
                "AND status != 'running'")
    wait_for(db, extended, 2, process, limit=60)
    process.send_signal(signal.SIGKILL)
    process.wait()
    counts, finished_before = _counts(db)
    connection = sqlite3.connect(db)
    assert 2 <= connection.execute(extended).fetchone()[0] < 6, counts  # killed in the middle of the extension
    connection.close()

    done = subprocess.run([*command, "0"], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    counts, finished_after = _counts(db)
    assert counts.get("running", 0) == 0 and sum(counts.values()) == 3 + 6 + 2
    for key, stamp in finished_before.items():
        assert finished_after[key] == stamp  # kept, not rerun
    from descentlab.lab import summarize

    (row,) = summarize(Store(db, readonly=True), 1)["problems"]["bowl"]["rows"]
    assert row["lr"] == pytest.approx(1.0) and row["bracket"] == "interior" and row["seeds"] == 3


# --- a self-describing store ---------------------------------------------------------------


def _quick_store(tmp_path) -> str:
    db = str(tmp_path / "q.sqlite")
    study = Study(problems=["beale", "quadratic"], optimizers=["momentum", "adam"], grid=3, span=2.0, seeds=2,
                  steps=40, name="tiny")
    run_study(study, db=db, progress_stream=open(os.devnull, "w"))
    return db


def test_show_reads_only_the_store(tmp_path):
    db = _quick_store(tmp_path)
    empty = tmp_path / "no-data"
    empty.mkdir()
    env = {**os.environ, "DESCENTLAB_DATA": str(empty), "DESCENTLAB_CACHE": str(empty)}
    shown = subprocess.run([sys.executable, "-m", "descentlab", "show", "1", "--db", db], capture_output=True,
                           text=True, env=env)
    assert shown.returncode == 0, shown.stderr
    assert "quadratic: noisy quadratic" in shown.stdout and "beale: 2-D surface" in shown.stdout
    assert "performance profile" in shown.stdout


def test_show_works_on_a_read_only_store(tmp_path):
    import shutil
    import stat

    db = _quick_store(tmp_path)
    folder = tmp_path / "readonly"
    folder.mkdir()
    copy = folder / "q.sqlite"
    shutil.copy(db, copy)
    before = copy.read_bytes()
    # root writes through permission bits: make the file and its folder immutable instead
    lock = ["chattr", "+i", str(copy), str(folder)] if os.geteuid() == 0 else None
    if lock and (shutil.which("chattr") is None or subprocess.run(lock, capture_output=True).returncode != 0):
        pytest.skip("running as root where chattr +i is unavailable: cannot make the store unwritable")
    if not lock:
        copy.chmod(stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)
        folder.chmod(stat.S_IRUSR | stat.S_IXUSR)
    try:
        with pytest.raises(OSError):
            open(folder / "probe", "w")  # the location really is read-only
        shown = subprocess.run([sys.executable, "-m", "descentlab", "show", "1", "--db", str(copy)],
                               capture_output=True, text=True)
        assert shown.returncode == 0, shown.stderr
        assert "quadratic: noisy quadratic" in shown.stdout
        assert copy.read_bytes() == before and sorted(os.listdir(folder)) == ["q.sqlite"]
    finally:
        if lock:
            subprocess.run(["chattr", "-i", str(copy), str(folder)], check=True)
        folder.chmod(0o755)


def test_a_version_1_store_is_refused_with_the_way_out_and_migrated(tmp_path):
    db = str(tmp_path / "v1.sqlite")
    connection = sqlite3.connect(db)
    connection.executescript(V1_STORE)
    connection.close()
    with pytest.raises(RuntimeError, match=r"schema version 1, written by an older descentlab; `descentlab migrate"):
        Store(db, readonly=True)
    done = subprocess.run([sys.executable, "-m", "descentlab", "migrate", "--db", db], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "upgraded" in done.stdout and os.path.exists(db + ".v1.bak")
    from descentlab.lab import summarize

    summary = summarize(Store(db, readonly=True), 1)
    (row,) = summary["problems"]["quadratic"]["rows"]
    assert row["optimizer"] == "adam" and row["lr"] == 0.01 and row["seeds"] == 2
    assert row["test_mean"] == pytest.approx(0.3) and row["bracket"] == "interior"


V1_STORE = """
CREATE TABLE studies (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL, created REAL NOT NULL,
  spec TEXT NOT NULL);
CREATE TABLE trials (key TEXT PRIMARY KEY, problem TEXT NOT NULL, problem_options TEXT NOT NULL,
  optimizer TEXT NOT NULL, hyperparameters TEXT NOT NULL, optimizer_config TEXT, seed INTEGER NOT NULL,
  steps INTEGER NOT NULL, batch_size INTEGER,
  eval_every INTEGER NOT NULL, divergence_factor REAL NOT NULL, status TEXT NOT NULL, started REAL, finished REAL,
  seconds REAL, steps_done INTEGER, diverged_at INTEGER, valid TEXT, test TEXT, versions TEXT, provenance TEXT,
  host TEXT, error TEXT);
CREATE TABLE study_trials (study_id INTEGER NOT NULL, trial_key TEXT NOT NULL, phase TEXT NOT NULL,
  PRIMARY KEY (study_id, trial_key));
CREATE TABLE curves (trial_key TEXT NOT NULL, step INTEGER NOT NULL, wall REAL NOT NULL, train_loss REAL, valid TEXT,
  PRIMARY KEY (trial_key, step));
INSERT INTO studies VALUES (1, 'old', 0, '{"problems": ["quadratic"], "optimizers": ["adam"], "seeds": 2}');
INSERT INTO trials VALUES ('a', 'quadratic', '{}', 'adam', '{"lr": 0.001}', NULL, 0, 10, 32, 5, 10.0, 'done', 0, 1, 1,
  10, NULL, '{"excess_loss": 0.9}', '{"excess_loss": 1.0}', '{}', 'p', 'h', NULL);
INSERT INTO trials VALUES ('b', 'quadratic', '{}', 'adam', '{"lr": 0.01}', NULL, 0, 10, 32, 5, 10.0, 'done', 0, 1, 1,
  10, NULL, '{"excess_loss": 0.1}', '{"excess_loss": 0.2}', '{}', 'p', 'h', NULL);
INSERT INTO trials VALUES ('c', 'quadratic', '{}', 'adam', '{"lr": 0.1}', NULL, 0, 10, 32, 5, 10.0, 'diverged', 0, 1, 1,
  3, 4, NULL, NULL, '{}', 'p', 'h', NULL);
INSERT INTO trials VALUES ('d', 'quadratic', '{}', 'adam', '{"lr": 0.01}', NULL, 1, 10, 32, 5, 10.0, 'done', 0, 1, 1,
  10, NULL, '{"excess_loss": 0.3}', '{"excess_loss": 0.4}', '{}', 'p', 'h', NULL);
INSERT INTO study_trials VALUES (1, 'a', 'tune'), (1, 'b', 'tune'), (1, 'c', 'tune'), (1, 'd', 'confirm');
INSERT INTO curves VALUES ('b', 5, 0.1, 1.0, '{"excess_loss": 0.5}'), ('b', 10, 0.2, 0.5, '{"excess_loss": 0.1}');
PRAGMA user_version = 1;
"""


def test_the_eta_counts_down_while_a_trial_runs(monkeypatch):
    from descentlab.lab import progress as progress_module

    clock = [100.0]
    monkeypatch.setattr(progress_module.time, "perf_counter", lambda: clock[0])
    progress = progress_module.Progress(stream=open(os.devnull, "w"), capacity=2)
    progress.plan(10, "surface")
    progress.plan(4, "lstm")
    progress.submit(14)
    assert progress.eta() is None
    clock[0] = 101.0
    progress.finish("done", "surface", 0.1)
    progress.finish("done", "lstm", 20.0)  # left: 9 surface × 0.1 s + 3 lstm × 20 s, on 2 workers
    assert progress.eta() == pytest.approx((9 * 0.1 + 3 * 20.0) / 2)
    seen = []
    for now in (105.0, 120.0, 131.0, 200.0):  # one long trial: the ETA never grows
        clock[0] = now
        seen.append(progress.eta())
    assert seen == sorted(seen, reverse=True) and seen[-1] == 0.0
