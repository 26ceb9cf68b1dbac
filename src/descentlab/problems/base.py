"""The Problem contract and the batching shared by problems whose data is a set of examples."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

import torch

SPLITS = ("train", "valid", "test")


def check_split(split: object) -> str:
    if split not in SPLITS:
        raise ValueError(f"`split` must be one of {SPLITS}. Received: split={split!r}")
    return split


def check_batch_size(batch_size: object) -> int | None:
    if batch_size is not None and (isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1):
        raise ValueError(
            "`batch_size` must be a positive integer, or None for the full batch. "
            f"Received: batch_size={batch_size!r}"
        )
    return batch_size


def check_positive_ints(minimum: int = 1, optional: tuple[str, ...] = (), **values: object) -> None:
    """Each option an integer >= ``minimum`` (or None when named in ``optional``), else a ValueError naming it."""
    for name, value in values.items():
        if value is None and name in optional:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            qualifier = " or None" if name in optional else ""
            raise ValueError(f"`{name}` must be an integer >= {minimum}{qualifier}. Received: {name}={value!r}")


@contextlib.contextmanager
def seeded(seed: int):
    """Run a block (a model's construction) on torch's global RNG seeded with ``seed``, then restore it."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def split_seed(seed: int, split: str) -> int:
    """Independent, stable generator seeds per (seed, split)."""
    return seed * 1000 + SPLITS.index(split) * 7919 + 17


Model = TypeVar("Model", bound=torch.nn.Module)


class Problem(Generic[Model]):
    """A workload to race optimizers on.

    ``model(seed)`` builds the model with a deterministic initialization; ``batches(split,
    batch_size, seed)`` is an endless iterator over ``split`` ("train", "valid", "test"),
    reshuffled each epoch deterministically from ``seed`` (``batch_size=None``: the full split
    every step, classical gradient descent; 1: pure SGD); ``loss(model, batch)`` is a scalar
    tensor; ``evaluate(model, split)`` returns at least ``{"loss": ...}`` plus the task metric
    named by ``metric`` (``limit=n``: on the split's first ``n`` examples only, a fixed subset).
    ``default_steps`` and ``default_batch_size`` are a budget that trains in seconds to a minute on
    two cores; ``provenance`` says which data (files, split) is used.

    Capabilities a problem declares: ``population`` (its trials can run many at once as one
    tensor: :meth:`population_loss`, :meth:`population_grad`, :meth:`population_metrics`), and
    ``curve_limit`` (how many examples the lab evaluates at each curve point during training;
    the final validation and test metrics always use the whole split), and ``handles_device``
    (``evaluate`` moves its batches to the model's device; otherwise the lab moves the model's
    inputs and outputs across, see :mod:`descentlab.lab.devices`).
    """

    name: str = ""
    description: str = ""
    metric: str = "loss"
    metric_goal: str = "min"  # or "max": how the lab ranks the task metric
    default_steps: int = 200
    default_batch_size: int | None = 64
    options: dict[str, Any] = {}
    population: bool = False
    curve_limit: int | None = None
    handles_device: bool = False  # evaluate() moves its batches to the model's device itself

    @property
    def provenance(self) -> str:
        raise NotImplementedError

    @property
    def train_examples(self) -> int | None:
        """How many examples one epoch of the training split holds (None: no fixed epoch)."""
        return None

    def model(self, seed: int) -> Model:
        raise NotImplementedError

    def batches(self, split: str, batch_size: int | None, seed: int) -> Iterator[Any]:
        raise NotImplementedError

    def loss(self, model: Model, batch: Any) -> torch.Tensor:
        raise NotImplementedError

    def evaluate(self, model: Model, split: str, limit: int | None = None) -> dict[str, float]:
        raise NotImplementedError

    def info(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "metric": self.metric,
            "metric_goal": self.metric_goal,
            "default_steps": self.default_steps,
            "default_batch_size": self.default_batch_size,
            "options": dict(self.options),
            "provenance": self.provenance,
        }

    def __repr__(self) -> str:
        options = ", ".join(f"{k}={v!r}" for k, v in self.options.items())
        return f"{type(self).__name__}({options})"


def example_batches(
    count: int, take: Callable[[torch.Tensor], Any], batch_size: int | None, seed: int
) -> Iterator[Any]:
    """Endless batches of ``count`` examples: a fresh seeded permutation per epoch, remainder dropped.

    ``take(indices)`` turns example indices into a batch. With ``batch_size=None`` every batch is
    the whole set, in order (full-batch gradient descent).
    """
    if batch_size is None:
        everything = torch.arange(count)
        while True:
            yield take(everything)
    size = min(batch_size, count)
    generator = torch.Generator().manual_seed(seed)
    while True:
        order = torch.randperm(count, generator=generator)
        for start in range(0, count - size + 1, size):
            yield take(order[start : start + size])


def mean_over_chunks(count: int, chunk: int, evaluate_chunk: Callable[[torch.Tensor], dict[str, float]]) -> dict:
    """Average per-example metrics over a split evaluated ``chunk`` examples at a time."""
    totals: dict[str, float] = {}
    for start in range(0, count, chunk):
        indices = torch.arange(start, min(start + chunk, count))
        for key, value in evaluate_chunk(indices).items():
            totals[key] = totals.get(key, 0.0) + value * len(indices)
    return {key: value / count for key, value in totals.items()}


def first(limit: int | None, count: int) -> int:
    """How many examples an evaluation with ``limit`` reads from a split of ``count``."""
    return count if limit is None else min(limit, count)
