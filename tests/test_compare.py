"""descentlab.compare: every input form, the same data order for every optimizer, the lab's
verdict rule, resume after SIGKILL, devices, and errors that name the argument and value."""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys

import pytest
import torch
from torch.nn import functional as F

from descentlab import data, optim
from descentlab.lab import Store
from descentlab.lab.compare import UserProblem, compare, format_result, load_entry
from descentlab.lab.spec import OPTIMIZERS
from lab_problems import FINISHED_TRIALS, wait_for

QUIET = open(os.devnull, "w")  # noqa: SIM115 - one sink for every progress bar of the module
FAST = {"steps": 8, "seeds": 2, "grid": 2, "extend": 0, "progress_stream": QUIET, "batch_size": 16}


def regression(n=120, seed=0, scales=None):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 4, generator=gen)
    y = x @ torch.randn(4, 1, generator=gen) + 0.05 * torch.randn(n, 1, generator=gen)
    if scales is not None:
        x = x * torch.tensor(scales)
    a, b = n // 2, 3 * n // 4
    return (x[:a], y[:a]), (x[a:b], y[a:b]), (x[b:], y[b:])


def linear():
    return torch.nn.Linear(4, 1)


class Pairs(torch.utils.data.Dataset):
    def __init__(self, tensors, dicts=False):
        self.x, self.y = tensors
        self.dicts = dicts

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return {"x": self.x[i], "labels": self.y[i]} if self.dicts else (self.x[i], self.y[i])


class Keyword(torch.nn.Module):
    """A model called with keyword inputs, as dict batches feed it."""

    def __init__(self):
        super().__init__()
        self.layer = linear()

    def forward(self, x):
        return self.layer(x)


class OwnLoss(torch.nn.Module):
    """A model that returns its own loss (the step_fn form)."""

    def __init__(self):
        super().__init__()
        self.layer = linear()

    def forward(self, rows):
        return F.mse_loss(self.layer(rows[:, :4]), rows[:, 4:])


def loader_factory(tensors):
    def batches(seed):
        generator = torch.Generator().manual_seed(seed)
        return torch.utils.data.DataLoader(torch.utils.data.TensorDataset(*tensors), batch_size=16, shuffle=True,
                                           generator=generator)
    return batches


def forms():
    train, valid, test = regression()
    joined = [torch.cat(split, 1) for split in (train, valid, test)]
    return {
        "tensors": dict(model_fn=linear, loss_fn=F.mse_loss, train=train, valid=valid, test=test),
        "dataset": dict(model_fn=linear, loss_fn=F.mse_loss, train=Pairs(train), valid=Pairs(valid), test=Pairs(test)),
        "dict batches": dict(model_fn=Keyword, loss_fn=F.mse_loss, train=Pairs(train, True), valid=Pairs(valid, True),
                             test=Pairs(test, True)),
        "factory": dict(model_fn=linear, loss_fn=F.mse_loss, train=loader_factory(train), valid=loader_factory(valid),
                        test=loader_factory(test)),
        "step_fn on tensor batches": dict(
            model_fn=OwnLoss, step_fn=lambda model, rows: model(rows),
            train=lambda seed: torch.split(joined[0][torch.randperm(60, generator=torch.Generator().manual_seed(seed))],
                                           15),
            valid=lambda seed: [joined[1]], test=lambda seed: [joined[2]]),
    }


@pytest.mark.parametrize("form", list(forms()))
def test_every_input_form_runs_the_whole_protocol(form, tmp_path):
    result = compare(**forms()[form], optimizers=["sgd", "adam"], db=str(tmp_path / "c.sqlite"), **FAST)
    (table,) = result["summary"]["problems"].values()
    assert result["summary"]["complete"] and {r["optimizer"] for r in table["rows"]} == {"sgd", "adam"}
    assert all(r["seeds"] == 2 and r["test_mean"] is not None for r in table["rows"])
    assert len(result["verdict"]) == 1 and ("beats" in result["verdict"][0] or "no significant" in result["verdict"][0])


@pytest.mark.parametrize("form", list(forms()))
def test_the_data_order_is_fixed_by_the_seed_alone(form):
    arguments = forms()[form]
    problem = UserProblem("p", arguments["model_fn"], arguments.get("loss_fn"), arguments.get("step_fn"),
                          arguments["train"], arguments["valid"], arguments["test"])

    def flat(batch):
        parts = batch.values() if isinstance(batch, dict) else batch if isinstance(batch, (list, tuple)) else [batch]
        return torch.cat([t.flatten() for t in parts])

    def first_batches(seed, count=6):
        return [flat(b) for b in itertools.islice(problem.batches("train", 16, seed), count)]

    same, again, other = first_batches(0), first_batches(0), first_batches(1)
    assert all(torch.equal(a, b) for a, b in zip(same, again, strict=True))  # epochs included (6 batches > one epoch)
    assert not all(torch.equal(a, b) for a, b in zip(same, other, strict=True))


def test_every_optimizer_sees_the_same_batches_at_a_seed(tmp_path):
    seen = []  # (model id, training input sums) for every model the trials build

    def model_fn():
        model = linear()
        inputs = []
        model.register_forward_pre_hook(lambda module, args: inputs.append(args[0].sum().item()) if module.training
                                        else None)
        seen.append(inputs)
        return model

    train, valid, test = regression()
    compare(model_fn, F.mse_loss, train, valid, test, optimizers=["sgd", "adam", "rmsprop"],
            db=str(tmp_path / "c.sqlite"), **{**FAST, "seeds": 1})
    runs = [inputs for inputs in seen if len(inputs) > 1]  # the trials (the probe runs one batch)
    assert len(runs) == 6 and all(run[:8] == runs[0][:8] for run in runs)  # 3 optimizers × 2 lrs, one order


def test_an_optimizer_against_its_own_copy_is_no_significant_difference(tmp_path):
    train, valid, test = regression()
    result = compare(linear, F.mse_loss, train, valid, test, optimizers={"sgd": None, "my_sgd": optim.SGD},
                     db=str(tmp_path / "c.sqlite"), **{**FAST, "seeds": 3})
    (duel,) = result["duels"]
    assert duel["difference_ci"] == (0.0, 0.0)
    assert result["verdict"][0].startswith("no significant difference between")


def test_a_torch_optimizer_class_races_as_a_baseline(tmp_path):
    train, valid, test = regression()
    result = compare(linear, F.mse_loss, train, valid, test, optimizers=["nadam", torch.optim.AdamW],
                     search_space={"torch.optim.adamw.AdamW": {"weight_decay": [0.0, 0.1]}},
                     db=str(tmp_path / "c.sqlite"), **FAST)
    (table,) = result["summary"]["problems"].values()
    (row,) = [r for r in table["rows"] if r["optimizer"] == "torch.optim.adamw.AdamW"]
    assert row["lr"] in (1e-4, 1e-2) and row["hyperparameters"]["weight_decay"] in (0.0, 0.1)  # grid around 1e-3
    assert "torch.optim.adamw.AdamW" not in OPTIMIZERS  # registered for the study only


def test_a_planted_effect_is_a_win_with_an_interval_that_excludes_zero(tmp_path):
    # features scaled over 4 decades: one lr cannot suit every coordinate of plain SGD; Adam rescales them
    train, valid, test = regression(n=400, scales=[100.0, 1.0, 0.1, 0.01])
    result = compare(linear, F.mse_loss, train, valid, test, optimizers=["sgd", "adam"], steps=150, seeds=3, grid=3,
                     batch_size=32, db=str(tmp_path / "c.sqlite"), progress_stream=QUIET)
    (duel,) = result["duels"]
    assert (duel["ours"], duel["theirs"]) == ("adam", "sgd")
    assert duel["difference_ci"][0] > 0 and result["verdict"][0].startswith("adam beats sgd")


def test_named_metrics_select_by_name_and_no_test_split_is_said_to_be_optimistic(tmp_path):
    train, valid, _ = regression()

    def close(output, target):
        return ((output - target).abs() < 0.5).float().mean()

    result = compare(linear, F.mse_loss, train, valid, metrics={"close": (close, "max")}, select="close",
                     optimizers=["sgd", "adam"], db=str(tmp_path / "c.sqlite"), **FAST)
    (table,) = result["summary"]["problems"].values()
    assert (table["metric"], table["goal"]) == ("close", "max")
    assert all(0 <= r["test_mean"] <= 1 for r in table["rows"])
    assert "test figures are on the validation split that also chose the lr: they are optimistic" in \
        format_result(result)


def test_old_keyword_names_still_work_and_bootstrap_is_refused(tmp_path):
    train, valid, _ = regression()
    result = compare(linear, F.mse_loss, train_data=train, val_data=valid, budget=8, optimizers=["sgd", "adam"],
                     db=str(tmp_path / "c.sqlite"), **{k: v for k, v in FAST.items() if k != "steps"})
    assert result["summary"]["complete"]
    with pytest.raises(TypeError, match="no longer takes `bootstrap`"):
        compare(linear, F.mse_loss, train, valid, bootstrap=100)


@pytest.mark.parametrize("change, message", [
    ({"train": 5}, "`train` must be a Dataset with a length, a pair (inputs, targets) of tensors, or a callable "
                   "seed -> iterable of batches. Received: train=5"),
    ({"select": "accuracy"}, "`select` must be 'loss' or a name in `metrics` (loss). Received: select='accuracy'"),
    ({"metrics": {"acc": (len, "up")}}, "`metrics['acc']` must be a pair (function, 'min' or 'max')"),
    ({"step_fn": lambda m, b: 0.0}, "Give one of `loss_fn(output, target)` or `step_fn(model, batch)`"),
    ({"loss_fn": lambda o, t: (o - t) ** 2}, "`loss_fn` must return a scalar floating-point tensor (the loss). "
                                             "Received: it returned tensor of shape (16, 1)"),
    ({"optimizers": ["sgd", "lion"]}, "Unknown optimizer 'lion'. Valid optimizers: sgd,"),
    ({"optimizers": ["sgd"]}, "`optimizers` must be at least two optimizers. Received: optimizers=['sgd']"),
    ({"device": "tpu"}, "`device` must be 'auto', 'cpu', 'cuda' or 'cuda:N'. Received: device='tpu'"),
    ({"amp": "fp8"}, "`amp` must be None, 'bf16' or 'fp16'. Received: amp='fp8'"),
    ({"workers": 2}, "`workers` > 1 and executor='ray' run trials in other processes"),
])
def test_bad_input_is_refused_naming_the_argument_and_value(change, message, tmp_path):
    train, valid, _ = regression()
    arguments = {"model_fn": linear, "loss_fn": F.mse_loss, "train": train, "valid": valid, "batch_size": 16,
                 "db": str(tmp_path / "c.sqlite"), **change}
    with pytest.raises(ValueError) as raised:
        compare(**arguments)
    assert message in str(raised.value)
    assert not os.path.exists(tmp_path / "c.sqlite")  # refused before any work


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a machine without a GPU")
def test_a_missing_gpu_is_one_line_and_exit_2(tmp_path):
    done = subprocess.run([sys.executable, "-m", "descentlab", "run", "--problems", "quadratic", "--optimizers",
                           "sgd,adam", "--device", "cuda", "--db", str(tmp_path / "x.sqlite")],
                          capture_output=True, text=True)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "--device: `device` is 'cuda' but this machine has no CUDA device visible to torch" in done.stderr


@pytest.mark.parametrize("amp", ["bf16", "fp16"])
def test_mixed_precision_trains_and_is_part_of_the_key(amp, tmp_path):
    train, valid, test = regression()
    result = compare(linear, F.mse_loss, train, valid, test, optimizers=["sgd", "adam"], amp=amp, device="cpu",
                     db=str(tmp_path / "c.sqlite"), **FAST)
    store = Store(str(tmp_path / "c.sqlite"))
    trials = store.study_trials(result["study"])
    assert trials and all(t["status"] == "done" and t["versions"]["amp"] == amp for t in trials)
    full = compare(linear, F.mse_loss, train, valid, test, optimizers=["sgd", "adam"], device="cpu",
                   db=str(tmp_path / "c.sqlite"), **FAST)
    assert not {t["key"] for t in trials} & {t["key"] for t in store.study_trials(full["study"])}


def test_the_device_path_gives_the_cpu_result_on_cpu_0():
    """No GPU here: "cpu:0" takes every branch a GPU trial takes (the model and batches moved, a
    built-in problem's evaluation through the hooks that move its inputs in and outputs back,
    compare's own evaluation moving its batches) and must give the very same result as "cpu"."""
    from descentlab.lab import TrialSpec, runner

    results = {}
    for device in ("cpu", "cpu:0"):
        spec = TrialSpec("sparse_logreg", {}, "adagrad", {"lr": 0.1}, 0, 20, 64, 10, 10.0, device)
        results[device] = runner.run_trial(spec)
        assert results[device]["status"] == "done", results[device].get("error")
    assert results["cpu"]["valid"] == results["cpu:0"]["valid"] and results["cpu"]["test"] == results["cpu:0"]["test"]
    assert results["cpu:0"]["versions"]["device"] == "cpu:0 (cpu)"

    train, valid, test = regression()
    runner.register("user:dev", UserProblem("dev", Keyword, F.mse_loss, None, Pairs(train, True), Pairs(valid, True),
                                            Pairs(test, True)))
    try:
        outcomes = [runner.run_trial(TrialSpec("user:dev", {}, "adam", {"lr": 0.01}, 0, 10, 16, 5, 10.0, device))
                    for device in ("cpu", "cpu:0")]
    finally:
        runner.unregister("user:dev")
    assert outcomes[0]["test"] == outcomes[1]["test"] and outcomes[0]["status"] == "done"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")
@pytest.mark.parametrize("form", ["tensors", "dict batches", "step_fn on tensor batches"])
def test_compare_on_the_gpu_matches_the_protocol(form, tmp_path):
    result = compare(**forms()[form], optimizers=["sgd", "adam"], device="cuda", amp="bf16",
                     db=str(tmp_path / "c.sqlite"), **FAST)
    trials = Store(str(tmp_path / "c.sqlite")).study_trials(result["study"])
    assert result["summary"]["complete"] and all(t["versions"]["device"].startswith("cuda") for t in trials)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")
def test_a_built_in_problem_trains_on_the_gpu_as_on_the_cpu():
    from descentlab.lab import TrialSpec, runner

    results = [runner.run_trial(TrialSpec("sparse_logreg", {}, "adagrad", {"lr": 0.1}, 0, 50, 64, 25, 10.0, device))
               for device in ("cpu", "cuda")]
    assert results[1]["status"] == "done" and results[1]["versions"]["device"].startswith("cuda")
    assert results[1]["test"]["loss"] == pytest.approx(results[0]["test"]["loss"], rel=1e-3)


SETUP = """
import time
import torch

def setup():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(96, 3, generator=g); y = x.sum(1, keepdim=True)

    def slow_loss(output, target):
        time.sleep(0.002)
        return torch.nn.functional.mse_loss(output, target)

    return dict(model_fn=lambda: torch.nn.Linear(3, 1), loss_fn=slow_loss, train=(x[:48], y[:48]),
                valid=(x[48:72], y[48:72]), test=(x[72:], y[72:]))
"""


def test_a_killed_compare_resumes_without_rerunning_finished_trials(tmp_path):
    (tmp_path / "mine.py").write_text(SETUP)
    db = str(tmp_path / "mine.sqlite")
    command = [sys.executable, "-m", "descentlab", "compare", "--entry", "mine:setup", "--optimizers", "sgd,adam",
               "--steps", "100", "--grid", "3", "--extend", "0", "--seeds", "2", "--device", "cpu", "--db", db]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])}
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, cwd=tmp_path)
    wait_for(db, FINISHED_TRIALS, 2, process)
    process.send_signal(signal.SIGKILL)
    process.wait()
    store = Store(db)
    before = {t["key"]: t["finished"] for t in store.study_trials(1) if t["status"] != "running"}
    store.close()
    assert 2 <= len(before) < 8
    done = subprocess.run([*command, "--report"], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert done.returncode == 0, done.stderr
    heading = "the champion on validation against each other optimizer, on test"
    assert heading in done.stdout and heading in (tmp_path / "report.html").read_text()
    store = Store(db)
    after = {t["key"]: t["finished"] for t in store.study_trials(1)}
    assert len(after) == 3 * 2 + 2  # 2 optimizers × 3 lrs, then one more seed each: nothing twice
    assert all(after[key] == stamp for key, stamp in before.items())  # kept, not rerun


@pytest.mark.parametrize("entry", ["examples.char_transformer:setup", "examples.mnist_cnn:setup"])
def test_the_examples_run_at_a_tiny_budget(entry, tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    try:
        arguments = load_entry(entry)
    except data.DataUnavailable as missing:
        pytest.skip(f"the example's data are not here: {missing}")
    arguments.update(optimizers=arguments["optimizers"][:2], eval_examples=32)
    for split in ("valid", "test"):  # a tiny budget needs no whole split to judge it
        if isinstance(arguments[split], torch.utils.data.Dataset):
            arguments[split] = torch.utils.data.Subset(arguments[split], range(64))
    result = compare(**arguments, db=str(tmp_path / "c.sqlite"), **{**FAST, "steps": 3})
    assert result["summary"]["complete"] and len(result["verdict"]) == 1
