"""Test problems with a known best learning rate, and a study script the kill tests run in a subprocess."""

from __future__ import annotations

import sys
import time

import torch

from descentlab.problems.base import Problem


class Bowl(Problem):
    """½h(w − 3)²: plain gradient descent with lr = 1/h lands on the minimum in one step, and
    lr > 2/h diverges; smaller lrs do worse the smaller they are.

    It logs every model it builds and every batch it serves, to check what each trial saw."""

    name = "bowl"
    metric = "loss"
    default_steps = 5
    default_batch_size = None

    def __init__(self, curvature: float = 1.0, pause: float = 0.0):
        self.curvature, self.pause = curvature, pause
        self.log = []

    @property
    def provenance(self):
        return f"a test bowl of curvature {self.curvature:g}"

    def model(self, seed):
        time.sleep(self.pause)
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
        return 0.5 * self.curvature * (model.weight.sum() - 3.0 - batch.sum()) ** 2

    def evaluate(self, model, split, limit=None):
        return {"loss": 0.5 * self.curvature * (model.weight.item() - 3.0) ** 2}


FINISHED_TRIALS = "SELECT COUNT(*) FROM trials WHERE status != 'running'"


def wait_for(db: str, query: str, count: int, process, limit: float = 120.0) -> None:
    """Poll the store ``db`` until ``query`` (a COUNT) reaches ``count`` while ``process`` runs."""
    import sqlite3

    deadline = time.time() + limit
    while time.time() < deadline and process.poll() is None:
        time.sleep(0.05)
        try:
            connection = sqlite3.connect(db, timeout=30)
            try:
                if connection.execute(query).fetchone()[0] >= count:
                    return
            finally:
                connection.close()
        except sqlite3.OperationalError:
            continue  # not created yet, or busy
    raise AssertionError(f"{query!r} did not reach {count} within {limit} s")


def study_far_from_its_grid(db: str, pause: float = 0.0) -> dict:
    """SGD on a bowl whose best lr (1) lies 2.5 decades above its first grid (10^-3.5 … 10^-2.5)."""
    from descentlab.lab import Study, run_study, runner

    runner.register("bowl", Bowl(curvature=1.0, pause=pause))
    study = Study(problems=["bowl"], optimizers=["sgd"], grid=3, span=1.0, seeds=3, steps=5, extend=8)
    return run_study(study, db=db)


def small_study():
    """Plain SGD on the quadratic, two lrs, one seed: a study of two short trials."""
    from descentlab.lab import Study

    return Study(problems=["quadratic"], optimizers=["sgd"], grid=2, span=1.0, seeds=1, steps=20, extend=0)


def first_trial(study):
    """The study's first trial: sgd at the lowest lr of its grid, seed 0."""
    from descentlab import problems

    return study.trial("quadratic", problems.get("quadratic"), "sgd", {}, 0)


def hold_a_claim(db: str, study_id: str) -> None:
    """Claim the small study's first trial as this process, say so, and wait (to be killed)."""
    from descentlab.lab import Store
    from descentlab.lab.store import owner_id

    Store(db).claim(first_trial(small_study()), int(study_id), "tune", "quadratic", owner_id())
    print("holding", flush=True)
    time.sleep(600)


if __name__ == "__main__":
    if sys.argv[1] == "hold":
        hold_a_claim(*sys.argv[2:])
    else:
        study_far_from_its_grid(sys.argv[1], float(sys.argv[2]))
