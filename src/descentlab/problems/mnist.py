"""MNIST classification: multinomial logistic regression and a 784-H-10 MLP."""

from __future__ import annotations

import functools
from collections.abc import Iterator

import torch
import torch.nn.functional as F

from descentlab import data
from descentlab.problems.base import (
    Problem,
    check_batch_size,
    check_positive_ints,
    check_split,
    example_batches,
    first,
    mean_over_chunks,
    seeded,
    split_seed,
)

TRAIN_FILES = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte"]
TEST_FILES = ["t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]
MEAN, STD = 0.1307, 0.3081  # of the MNIST training pixels, the usual normalization


def _images(path) -> torch.Tensor:
    return ((data.read_idx(path).reshape(-1, 784).float() / 255.0) - MEAN) / STD


@functools.lru_cache(maxsize=4)
def load(data_dir: str | None = None) -> tuple[dict[str, tuple[torch.Tensor, torch.Tensor]], str]:
    """Splits {train, valid, test} of (images (N, 784) normalized, labels (N,)) and their provenance.

    With the full set (found or downloaded): train = the first 55,000 training images, valid =
    the last 5,000, test = the 10,000 test images. With only the test files (offline), the test
    set is split in order 8,000 / 1,000 / 1,000, and the provenance says so.
    """
    test = data.try_fetch("mnist", TEST_FILES, data_dir)
    if test is None:
        raise data.DataUnavailable(data.missing_message("mnist", TEST_FILES + TRAIN_FILES, data_dir))
    x_test, y_test = _images(test[0]), data.read_idx(test[1]).long()
    train = data.try_fetch("mnist", TRAIN_FILES, data_dir)
    if train is not None:
        x_train, y_train = _images(train[0]), data.read_idx(train[1]).long()
        splits = {
            "train": (x_train[:55000], y_train[:55000]),
            "valid": (x_train[55000:], y_train[55000:]),
            "test": (x_test, y_test),
        }
        provenance = (
            f"MNIST {train[0].name} + {train[1].name}: train = images 0-54999, valid = 55000-59999; "
            f"test = {test[0].name} (10,000), from {train[0].parent}"
        )
    else:
        splits = {
            "train": (x_test[:8000], y_test[:8000]),
            "valid": (x_test[8000:9000], y_test[8000:9000]),
            "test": (x_test[9000:], y_test[9000:]),
        }
        provenance = (
            f"MNIST test split only ({test[0].name}, {test[1].name} in {test[0].parent}; training files "
            "unavailable): train = test images 0-7999, valid = 8000-8999, test = 9000-9999"
        )
    return splits, provenance


class MNISTClassifier(Problem):
    """Classify MNIST digits: ``hidden=None`` is logistic regression, else a 784-H-10 ReLU MLP."""

    metric = "accuracy"
    metric_goal = "max"
    default_steps = 300
    default_batch_size = 128
    curve_limit = 1000

    def __init__(self, hidden: int | None = None, train_size: int | None = None, data_dir: str | None = None) -> None:
        check_positive_ints(optional=("hidden", "train_size"), hidden=hidden, train_size=train_size)
        self.hidden = hidden
        self.name = "mnist_logreg" if hidden is None else "mnist_mlp"
        self.options = {"hidden": hidden, "train_size": train_size, "data_dir": data_dir}
        self.description = (
            "MNIST, multinomial logistic regression (784-10)"
            if hidden is None
            else f"MNIST, MLP 784-{hidden}-10 (ReLU)"
        )
        self.splits, self._provenance = load(str(data_dir) if data_dir else None)
        if train_size is not None:
            x, y = self.splits["train"]
            self.splits = {**self.splits, "train": (x[:train_size], y[:train_size])}

    @property
    def provenance(self) -> str:
        sizes = ", ".join(f"{split} {len(y)}" for split, (_, y) in self.splits.items())
        return f"{self._provenance} ({sizes})"

    def model(self, seed: int) -> torch.nn.Module:
        with seeded(seed):
            if self.hidden is None:
                return torch.nn.Linear(784, 10)
            return torch.nn.Sequential(
                torch.nn.Linear(784, self.hidden), torch.nn.ReLU(), torch.nn.Linear(self.hidden, 10)
            )

    @property
    def train_examples(self) -> int:
        return len(self.splits["train"][1])

    def batches(self, split: str, batch_size: int | None, seed: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        x, y = self.splits[check_split(split)]
        return example_batches(len(y), lambda i: (x[i], y[i]), check_batch_size(batch_size), split_seed(seed, split))

    def loss(self, model: torch.nn.Module, batch) -> torch.Tensor:
        images, labels = batch
        return F.cross_entropy(model(images), labels)

    def evaluate(self, model: torch.nn.Module, split: str, limit: int | None = None) -> dict[str, float]:
        x, y = self.splits[check_split(split)]
        x, y = x[: first(limit, len(y))], y[: first(limit, len(y))]

        def chunk(indices):
            logits = model(x[indices])
            return {
                "loss": F.cross_entropy(logits, y[indices]).item(),
                "accuracy": (logits.argmax(dim=1) == y[indices]).float().mean().item(),
            }

        with torch.no_grad():
            return mean_over_chunks(len(y), 4096, chunk)
