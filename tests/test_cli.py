"""The main command runs end to end and prints every optimizer; bad arguments exit with a message."""

from __future__ import annotations

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
    assert len(lines) == 2 + len(results)


def test_cli_rejects_bad_steps():
    done = subprocess.run(
        [sys.executable, "-m", "descentlab", "demo", "--steps", "0"], capture_output=True, text=True
    )
    assert done.returncode == 2
    assert "--steps: must be a positive integer, got 0" in done.stderr
