"""The main command runs end to end and prints every optimizer; bad arguments exit with a message."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

from descentlab import optim
from descentlab.demo import run_demo


def test_demo_trains_every_named_optimizer_and_ranks_them():
    lines = []
    results = run_demo(steps=30, out=lines.append)
    names = {name for name, _ in results}
    assert {"SGD", "Adagrad", "Adadelta", "RMSprop", "Adam", "Adamax", "Nadam", "Nadamax", "FTRL"} <= names
    assert set(optim.NAMED) <= names
    losses = [r["valid_loss"] for _, r in results]
    assert losses == sorted(losses)
    assert len(lines) == 3 + len(results)
    assert all(r["lr"] > 0 and isinstance(r["grid_edge"], bool) for _, r in results)


def test_cli_rejects_bad_steps():
    done = subprocess.run(
        [sys.executable, "-m", "descentlab", "demo", "--steps", "0"], capture_output=True, text=True
    )
    assert done.returncode == 2
    assert "--steps: must be a positive integer, got 0" in done.stderr


def test_list_shows_every_problem_with_its_provenance(shared_data):
    from descentlab import problems
    from descentlab.cli import list_problems

    lines = []
    assert list_problems(out=lines.append) == 0
    text = "\n".join(lines)
    for name in problems.names():
        assert f"\n{name}: " in "\n" + text
    assert text.count("    data: ") == len(problems.names())
    assert "MNIST test split only" in text and "PTB valid+test only" in text


def test_list_reports_missing_data_instead_of_failing(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "descentlab", "--data-dir", str(tmp_path), "list", "problems"],
        capture_output=True, text=True, env={**os.environ, "DESCENTLAB_DATA": ""},
    )
    assert done.returncode == 0
    assert "mnist_logreg\n    UNAVAILABLE: Dataset 'mnist' is missing" in done.stdout
    assert "sparse_logreg: hashed sparse logistic regression" in done.stdout


def test_bench_step_measures_every_path_and_writes_json(tmp_path):
    import json

    out = tmp_path / "bench.json"
    done = subprocess.run(
        [sys.executable, "-m", "descentlab", "bench", "step", "--cases", "b", "--optimizers", "sgd,nadamax",
         "--rounds", "2", "--json", str(out)],
        capture_output=True, text=True, env={**os.environ, "DESCENTLAB_CACHE": str(tmp_path / "cache")},
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(out.read_text())
    assert result["first_fused_step_s"]["cold cache"] > 0
    case = result["cases"]["b"]
    assert (case["params"], case["tensors"]) == (1_000_000, 1000)
    assert case["bandwidth_gb_s"] > 0
    sgd, nadamax = case["rows"]
    assert set(sgd["ms"]) == {"reference", "foreach", "fused", "torch for-loop", "torch foreach", "torch fused"}
    assert set(nadamax["ms"]) == {"reference", "foreach", "fused"}  # torch has no Nadamax
    assert sgd["bytes_per_step"] == 1_000_000 * 4 * 3  # read p, g; write p
    assert nadamax["bytes_per_step"] == 1_000_000 * 4 * 7  # and read + write exp_avg, exp_inf
    assert all(ms > 0 for ms in sgd["ms"].values())
    assert "sgd" in done.stdout and "nadamax" in done.stdout


def test_bench_step_rejects_unknown_names():
    done = subprocess.run([sys.executable, "-m", "descentlab", "bench", "step", "--optimizers", "adamw"],
                          capture_output=True, text=True)
    assert done.returncode == 2
    assert "--optimizers: unknown optimizer 'adamw'; choose from sgd," in done.stderr
    done = subprocess.run([sys.executable, "-m", "descentlab", "bench", "step", "--cases", "z"],
                          capture_output=True, text=True)
    assert done.returncode == 2
    assert "--cases: unknown case 'z'; choose from ['a', 'b', 'c', 'd']" in done.stderr
    done = subprocess.run([sys.executable, "-m", "descentlab", "bench", "step", "--device", "tpu"],
                          capture_output=True, text=True)
    assert done.returncode == 2
    assert "--device: expected cpu or cuda, got 'tpu'" in done.stderr


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message of a machine without CUDA")
def test_bench_step_on_cuda_without_a_gpu_says_so_in_one_line():
    done = subprocess.run([sys.executable, "-m", "descentlab", "bench", "step", "--device", "cuda"],
                          capture_output=True, text=True)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [f"descentlab bench step: no CUDA device here: torch "
                                                f"{torch.__version__} sees none"]
