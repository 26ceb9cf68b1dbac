"""The main command runs end to end and prints every optimizer; bad arguments exit with a message."""

from __future__ import annotations

import os
import subprocess
import sys

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
