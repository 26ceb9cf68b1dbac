"""``descentlab.compare``: the lab's protocol on your own model, and a verdict.

Your model, loss and data become a problem (train and validation splits; the same
initialization and data order for every optimizer at a given seed); each optimizer's learning
rate is tuned on a log grid around its default on seed 0, the best is re-run on every seed, and
the verdict compares the optimizers' final validation losses seed by seed.
"""

from __future__ import annotations

import hashlib
import importlib
import math
import os
import random
import statistics
import sys
from collections.abc import Callable

import torch

from descentlab.lab import runner, stats
from descentlab.lab.protocol import run_study
from descentlab.lab.spec import check_optimizers
from descentlab.lab.study import Study
from descentlab.problems.base import Problem, check_split, example_batches, first, mean_over_chunks, seeded

DEFAULT_OPTIMIZERS = ("nadam", "rmsprop", "momentum")  # the talk's advice: test these three


class UserProblem(Problem):
    """A problem made of user code: ``model_fn()``, ``loss_fn(output, target)``, (inputs, targets) tensors."""

    metric = "loss"
    metric_goal = "min"

    def __init__(self, name: str, model_fn: Callable, loss_fn: Callable, train_data, val_data,
                 batch_size: int | None = 32, steps: int = 200) -> None:
        for argument, data in (("train_data", train_data), ("val_data", val_data)):
            if not (isinstance(data, (tuple, list)) and len(data) == 2 and all(torch.is_tensor(t) for t in data)
                    and len(data[0]) == len(data[1]) and len(data[0]) > 0):
                raise ValueError(f"`{argument}` must be a pair (inputs, targets) of tensors with the same, non-zero "
                                 f"length. Received: {argument} of type {type(data).__name__}")
        self.name = name
        self.options = {"data": fingerprint(train_data, val_data)}
        self.description = f"user model {name}"
        self.model_fn, self.loss_fn = model_fn, loss_fn
        self.data = {"train": tuple(train_data), "valid": tuple(val_data), "test": tuple(val_data)}
        self.default_batch_size, self.default_steps = batch_size, steps

    @property
    def provenance(self) -> str:
        return f"user data: {len(self.data['train'][0])} training and {len(self.data['valid'][0])} validation examples"

    @property
    def train_examples(self) -> int:
        return len(self.data["train"][0])

    def model(self, seed: int) -> torch.nn.Module:
        with seeded(seed):
            return self.model_fn()

    def batches(self, split, batch_size, seed):
        inputs, targets = self.data[check_split(split)]
        return example_batches(len(inputs), lambda i: (inputs[i], targets[i]), batch_size, seed)

    def loss(self, model, batch):
        inputs, targets = batch
        return self.loss_fn(model(inputs), targets)

    def evaluate(self, model, split, limit=None):
        inputs, targets = self.data[check_split(split)]
        inputs, targets = inputs[: first(limit, len(inputs))], targets[: first(limit, len(inputs))]
        with torch.no_grad():
            def chunk(indices):
                return {"loss": self.loss_fn(model(inputs[indices]), targets[indices]).item()}
            result = mean_over_chunks(len(inputs), 1024, chunk)
        return {"loss": result["loss"] if math.isfinite(result["loss"]) else math.inf}


def compare(model_fn: Callable, loss_fn: Callable, train_data, val_data, optimizers=DEFAULT_OPTIMIZERS,
            budget: int = 200, batch_size: int | None = 32, grid: int = 5, span: float = 2.0, seeds: int = 5,
            db: str = ":memory:", name: str = "user", bootstrap: int = 2000, progress_stream=None) -> dict:
    """Race ``optimizers`` on your model; return the verdict (and print nothing).

    ``model_fn()`` builds the model (called under a fixed seed per run), ``loss_fn(output,
    target)`` gives a scalar, ``train_data`` and ``val_data`` are ``(inputs, targets)`` tensors;
    ``budget`` is the number of steps of ``batch_size`` examples. The verdict:
    ``winner`` (best mean final validation loss over seeds), ``runner_up``, ``margin`` (their
    difference in mean validation loss, and relative to the runner-up), ``wins`` (seeds where
    the winner beat the runner-up, paired by seed: same init and data order), ``confidence``
    (the fraction of bootstrap resamples of the seeds in which the winner's mean stays lower),
    and the per-optimizer table. Losses on the validation split select the lr and decide the
    winner alike: hold out a test split yourself for an unbiased final number.
    """
    optimizers = list(optimizers)
    check_optimizers(optimizers)
    if len(optimizers) < 2:
        raise ValueError(f"`optimizers` must name at least two optimizers. Received: optimizers={optimizers!r}")
    problem = UserProblem(name, model_fn, loss_fn, train_data, val_data, batch_size, budget)
    # The key of a user problem is its name and data (never the object's identity), so a study
    # in a file store resumes in a later process. It does not cover the code of model_fn or
    # loss_fn: after changing them, use another name or store.
    key = "user:" + name.replace("@", "_")
    runner.register(key, problem)
    try:
        study = Study(problems=[key], optimizers=optimizers, grid=grid, span=span, seeds=seeds, steps=budget,
                      batch_size=batch_size, problem_options={key: problem.options}, name=f"compare {name}")
        summary = run_study(study, db=db, workers=1, progress_stream=progress_stream, population=False,
                            command=[f"descentlab.compare(name={name!r})"])
    finally:
        runner.unregister(key)
    # per optimizer, the final validation loss of each seed of its chosen lr (inf if diverged)
    losses = {row["optimizer"]: row["seed_valids"] for row in summary["problems"][key]["rows"]}
    return verdict(summary, losses, bootstrap)


def fingerprint(*pairs) -> str:
    """A short hash of the data tensors: their shapes, dtypes and bytes."""
    digest = hashlib.sha256()
    for tensor in (t for pair in pairs for t in pair):
        tensor = tensor.detach().cpu().contiguous()
        digest.update(f"{tuple(tensor.shape)}{tensor.dtype}".encode())
        digest.update(tensor.view(-1).view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
    return digest.hexdigest()[:16]


def verdict(summary: dict, losses: dict[str, dict[int, float]], bootstrap: int = 2000) -> dict:
    means = {name: statistics.fmean(values.values()) for name, values in losses.items()}
    ranked = sorted(means, key=lambda name: (math.isnan(means[name]), means[name]))
    winner, runner_up = ranked[0], ranked[1]
    differences = stats.paired_differences(losses[winner], losses[runner_up], "min")
    wins, seeds = stats.wins(losses[winner], losses[runner_up], "min")
    rng = random.Random(0)
    held = sum(stats.mean(rng.choices(differences, k=len(differences))) > 0 for _ in range(bootstrap)
               ) if differences else 0
    margin = means[runner_up] - means[winner]
    return {
        "winner": winner,
        "runner_up": runner_up,
        "margin": margin,
        "relative_margin": margin / abs(means[runner_up]) if means[runner_up] not in (0, math.inf) else math.nan,
        "wins": wins,
        "seeds": seeds,
        "confidence": held / bootstrap if bootstrap else math.nan,
        "mean_valid_loss": means,
        "summary": summary,
    }


def format_verdict(result: dict) -> str:
    lines = [f"{'optimizer':<10} {'best lr':>10} {'valid loss mean ± std':>24}"]
    (table,) = result["summary"]["problems"].values()
    for row in table["rows"]:
        values = list(row["seed_valids"].values())
        finite = [v for v in values if math.isfinite(v)]
        spread = statistics.stdev(finite) if len(finite) > 1 else 0.0
        mean = result["mean_valid_loss"][row["optimizer"]]
        lines.append(f"{row['optimizer']:<10} {row['lr']:>10.3g} {f'{mean:.4g} ± {spread:.2g}':>24}")
    lines.append(
        f"\nverdict: {result['winner']} wins on validation, by {result['margin']:.4g} "
        f"({100 * result['relative_margin']:.1f}%) over {result['runner_up']}; it beat {result['runner_up']} in "
        f"{result['wins']}/{result['seeds']} seeds (same init and data order), bootstrap confidence "
        f"{100 * result['confidence']:.0f}%"
    )
    return "\n".join(lines)


def load_entry(entry: str) -> dict:
    """``module:function`` → the keyword arguments of :func:`compare` that the function returns."""
    module_name, _, function_name = entry.partition(":")
    if not module_name or not function_name:
        raise ValueError(f"`entry` must be 'module:function'. Received: entry={entry!r}")
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())  # as `python -m` does: a module beside you is found
    try:
        module = importlib.import_module(module_name)
    except SyntaxError as error:
        raise ValueError(f"`entry`: {error.filename}, line {error.lineno}: {error.msg}. Received: entry={entry!r}") \
            from None
    except ModuleNotFoundError as error:
        raise ValueError(f"`entry`: no module named {error.name!r} (looked in the current folder and "
                         f"sys.path). Received: entry={entry!r}") from None
    function = getattr(module, function_name, None)
    if function is None:
        raise ValueError(f"`entry` names no function: module {module_name!r} has no {function_name!r}. "
                         f"Received: entry={entry!r}")
    arguments = function()
    required = {"model_fn", "loss_fn", "train_data", "val_data"}
    if not isinstance(arguments, dict) or not required <= set(arguments):
        raise ValueError(f"`entry` {entry!r} must return a dict with {sorted(required)}. "
                         f"Received: {type(arguments).__name__}")
    return arguments
