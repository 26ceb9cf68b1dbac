"""A small convolutional network on MNIST, fed by your own DataLoader, raced with descentlab.compare.

    descentlab compare --entry examples.mnist_cnn:setup --optimizers adamw,nadam,rmsprop,momentum \
        --steps 300 --seeds 3 --report

The data are MNIST's (descentlab's reader: the full set where it is cached or downloadable,
else the 10,000 test images split 8,000 / 1,000 / 1,000, as `descentlab list problems` says).
The train split is a DataLoader factory ``seed -> DataLoader`` whose shuffling is seeded from its
argument, so every optimizer sees the same batches at a seed.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from descentlab.problems import mnist


def model() -> nn.Module:
    return nn.Sequential(
        nn.Unflatten(1, (1, 28, 28)),
        nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(16 * 7 * 7, 10),
    )


def accuracy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    return (logits.argmax(1) == labels).float().mean()


def setup(batch_size: int = 64) -> dict:
    splits, _ = mnist.load()
    datasets = {name: torch.utils.data.TensorDataset(*tensors) for name, tensors in splits.items()}

    def loader(name: str, shuffle: bool):
        def batches(seed: int):
            generator = torch.Generator().manual_seed(seed)
            return torch.utils.data.DataLoader(datasets[name], batch_size=batch_size if shuffle else 1000,
                                               shuffle=shuffle, generator=generator, drop_last=shuffle)
        batches.__qualname__ = f"mnist_{name}_loader"
        return batches

    return {"model_fn": model, "loss_fn": F.cross_entropy, "train": loader("train", True),
            "valid": loader("valid", False), "test": loader("test", False),
            "metrics": {"accuracy": (accuracy, "max")}, "optimizers": ["adamw", "nadam", "rmsprop", "momentum"]}
