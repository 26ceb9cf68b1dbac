"""The lab: protocol, divergence, store, resume after SIGKILL, populations, executors, CLI, compare."""

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

from descentlab.lab import Store, Study, TrialSpec, lr_grid, run_study
from descentlab.lab import runner
from descentlab.lab.compare import compare, format_verdict
from descentlab.problems.base import Problem


class Bowl(Problem):
    """½(w − 3)²: plain gradient descent with lr = 1 lands on the minimum in one step, lr > 2 diverges.

    It logs every model it builds and every batch it serves, to check what each trial saw."""

    name = "bowl"
    metric = "loss"
    default_steps = 5
    default_batch_size = None

    def __init__(self):
        self.log = []

    @property
    def provenance(self):
        return "a test bowl"

    def model(self, seed):
        module = torch.nn.Linear(1, 1, bias=False).double()
        with torch.no_grad():
            module.weight.fill_(float(seed) - 5.0)
        self.log.append(("model", seed, module.weight.item()))
        return module

    def batches(self, split, batch_size, seed):
        generator = torch.Generator().manual_seed(seed)
        while True:
            batch = torch.randn(1, generator=generator, dtype=torch.float64) * 1e-9
            self.log.append(("batch", seed, batch.item()))
            yield batch

    def loss(self, model, batch):
        return 0.5 * (model.weight.sum() - 3.0 - batch.sum()) ** 2

    def evaluate(self, model, split):
        return {"loss": 0.5 * (model.weight.item() - 3.0) ** 2}


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
    assert momentum["optimizer_config"]["momentum"] == 0.9 and momentum["optimizer_config"]["dampening"] == 0.0
    assert all(t["diverged_at"] >= 2 and t["test"] is None for t in diverged)
    # the chosen lr was re-run on seeds 0, 1, 2; tuning used seed 0 only
    chosen = [t for t in store.study_trials(summary["study"]["id"])
              if t["optimizer"] == "sgd" and t["hyperparameters"]["lr"] == pytest.approx(1.0)]
    assert sorted(t["seed"] for t in chosen) == [0, 1, 2]


def test_every_optimizer_sees_the_same_init_and_data_for_a_seed(bowl, tmp_path):
    study = Study(problems=["bowl"], optimizers=["sgd", "adam", "rmsprop"], grid=2, span=1.0, seeds=2, steps=3)
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
    store.start(spec, study_id, "tune")
    assert store.status(spec.key) == "running"
    curve = [{"step": 5, "wall": 0.5, "train_loss": 1.5, "valid": {"loss": 1.0}},
             {"step": 10, "wall": 1.0, "train_loss": float("nan"), "valid": {"loss": float("inf")}}]
    result = {"status": "done", "seconds": 1.0, "steps_done": 10, "curve": curve, "valid": {"loss": 0.25},
              "test": {"loss": 0.5, "excess_loss": 0.1}, "versions": {"torch": "x"}, "provenance": "p"}
    store.finish(spec.key, result)
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
        assert [r["lr"] for r in together["problems"][name]["rows"]] == [r["lr"] for r in alone["problems"][name]["rows"]]


def test_worker_processes_give_the_same_results(tmp_path):
    study = Study(problems=["quadratic"], optimizers=["momentum", "adam"], grid=2, span=1.0, seeds=2, steps=40)
    quiet = open(os.devnull, "w")
    one = run_study(study, db=str(tmp_path / "1.sqlite"), progress_stream=quiet)
    two = run_study(study, db=str(tmp_path / "2.sqlite"), workers=2, progress_stream=quiet)
    # a worker has one thread here, the parent two: float32 reductions may round differently
    for a, b in zip(one["problems"]["quadratic"]["rows"], two["problems"]["quadratic"]["rows"]):
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
               "sgd,momentum,adam", "--grid", "4", "--seeds", "3", "--steps", "1500", "--db", db]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    finished_before = {}
    while time.time() < deadline and process.poll() is None:
        time.sleep(0.2)
        if os.path.exists(db):
            try:
                counts, finished_before = _counts(db)
            except sqlite3.OperationalError:
                continue
            if len(finished_before) >= 3:
                break
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


def test_cli_runs_the_quick_suite_end_to_end_and_resumes_instantly(tmp_path):
    db, out = str(tmp_path / "q.sqlite"), str(tmp_path / "out")
    command = [sys.executable, "-m", "descentlab", "run", "--suite", "quick", "--db", db, "--out", out]
    started = time.time()
    first = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert first.returncode == 0, first.stderr
    assert time.time() - started < 60
    for problem in ("rosenbrock", "beale", "quadratic"):
        assert f"\n{problem}: test" in first.stdout
    assert "rank  optimizer" in first.stdout and "steps→target" in first.stdout
    assert "done" in first.stderr and "ETA" in first.stderr
    summary = json.loads(open(os.path.join(out, "summary.json")).read())
    assert set(summary["problems"]) == {"rosenbrock", "beale", "quadratic"}
    assert all(len(t["rows"]) == 3 for t in summary["problems"].values())
    trials = Store(db).count()
    again = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0 and Store(db).count() == trials
    assert again.stdout.split("\nresults:")[0] == first.stdout.split("\nresults:")[0]
    shown = subprocess.run([sys.executable, "-m", "descentlab", "show", "1", "--db", db], capture_output=True, text=True)
    assert shown.returncode == 0 and shown.stdout.strip() == first.stdout.split("\nresults:")[0].strip()


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["run", "--problems", "rosenbrok", "--optimizers", "adam"], "Unknown problem 'rosenbrok'. Valid problems: beale,"),
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


def _regression(seed=0):
    gen = torch.Generator().manual_seed(seed)
    inputs = torch.randn(300, 6, generator=gen)
    targets = inputs @ torch.randn(6, 1, generator=gen) + 0.1 * torch.randn(300, 1, generator=gen)
    return (inputs[:240], targets[:240]), (inputs[240:], targets[240:])


def tiny_user_model():
    """The entry point `descentlab compare --entry test_lab:tiny_user_model` loads."""
    train, val = _regression()
    return {"model_fn": lambda: torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1)),
            "loss_fn": torch.nn.functional.mse_loss, "train_data": train, "val_data": val}


def test_compare_gives_a_verdict_on_a_user_model():
    result = compare(**tiny_user_model(), optimizers=["sgd", "adam", "momentum"], budget=60, seeds=4, grid=3,
                     progress_stream=open(os.devnull, "w"))
    means = result["mean_valid_loss"]
    assert result["winner"] == min(means, key=means.get)
    assert result["runner_up"] == sorted(means, key=means.get)[1]
    assert result["margin"] == pytest.approx(means[result["runner_up"]] - means[result["winner"]])
    assert result["seeds"] == 4 and 0 <= result["wins"] <= 4
    assert 0.0 <= result["confidence"] <= 1.0
    text = format_verdict(result)
    assert f"verdict: {result['winner']} wins on validation" in text and "/4 seeds" in text


def test_compare_command_loads_an_entry_point(tmp_path):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([os.path.dirname(__file__), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-m", "descentlab", "compare", "--entry", "test_lab:tiny_user_model",
                           "--budget", "30", "--seeds", "3", "--grid", "2"], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    assert "verdict:" in done.stdout and "/3 seeds" in done.stdout


def test_compare_rejects_bad_data():
    with pytest.raises(ValueError, match="`train_data` must be a pair"):
        compare(lambda: torch.nn.Linear(2, 1), torch.nn.functional.mse_loss, [torch.ones(3, 2)], (torch.ones(3, 2), torch.ones(3, 1)))
    with pytest.raises(ValueError, match="Unknown optimizer 'lion'"):
        compare(**tiny_user_model(), optimizers=["lion", "sgd"])


def test_ray_executor_writes_into_the_same_store(tmp_path):
    ray = pytest.importorskip("ray", reason="Ray is an optional extra and could not be imported")
    study = Study(problems=["quadratic", "valley"], optimizers=["momentum", "adam"], grid=2, span=1.0, seeds=2, steps=30)
    quiet = open(os.devnull, "w")
    local = run_study(study, db=str(tmp_path / "local.sqlite"), progress_stream=quiet)
    try:
        remote = run_study(study, db=str(tmp_path / "ray.sqlite"), executor="ray", workers=2, progress_stream=quiet)
    finally:
        ray.shutdown()
    for name, table in local["problems"].items():
        for a, b in zip(table["rows"], remote["problems"][name]["rows"]):
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
    with pytest.raises(RuntimeError, match="has schema version 0; this descentlab writes version 1"):
        Store(str(path))
