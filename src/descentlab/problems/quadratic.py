"""A noisy, ill-conditioned quadratic with a known optimum (DeepOBS's ``quadratic_deep`` shape)."""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import Tensor

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


class Parameters(torch.nn.Module):
    def __init__(self, theta: Tensor) -> None:
        super().__init__()
        self.theta = torch.nn.Parameter(theta)


class NoisyQuadratic(Problem[Parameters]):
    """``ℓ(θ; x) = ½(θ − x)ᵀ H (θ − x)`` with examples ``x ~ N(θ*, σ²I)``.

    ``H = Q diag(λ) Qᵀ``: 90% of the eigenvalues uniform in [0, 1], 10% in [30, 60] (DeepOBS), Q a
    random rotation. The expected loss is ``½(θ − θ*)ᵀH(θ − θ*)`` plus a constant, so the optimum
    θ* is known; the task metric is the excess loss ``½(θ − θ*)ᵀH(θ − θ*)``. All of H, θ* and the
    examples are fixed by ``data_seed``; the run seed only moves the initial point θ₀ ~ N(0, I).
    """

    name = "quadratic"
    metric = "excess_loss"
    default_steps = 300
    default_batch_size = 32

    def __init__(self, dim: int = 100, noise: float = 1.0, n_train: int = 1000, n_eval: int = 500,
                 data_seed: int = 42) -> None:
        check_positive_ints(dim=dim, n_train=n_train, n_eval=n_eval)
        if noise < 0:
            raise ValueError(f"`noise` must be >= 0. Received: noise={noise!r}")
        self.options = {"dim": dim, "noise": noise, "n_train": n_train, "n_eval": n_eval, "data_seed": data_seed}
        self.dim = dim
        self.description = (
            f"noisy quadratic, dim {dim}, Hessian eigenvalues 90% in [0, 1] and 10% in [30, 60], "
            f"example noise σ={noise:g}"
        )
        gen = torch.Generator().manual_seed(data_seed)
        large = max(1, dim // 10)
        eigenvalues = torch.cat([torch.rand(dim - large, generator=gen), 30 + 30 * torch.rand(large, generator=gen)])
        rotation, _ = torch.linalg.qr(torch.randn(dim, dim, generator=gen))
        self.hessian = rotation @ torch.diag(eigenvalues) @ rotation.T
        self.optimum = torch.randn(dim, generator=gen)
        sizes = {"train": n_train, "valid": n_eval, "test": n_eval}
        self.examples = {split: self.optimum + noise * torch.randn(n, dim, generator=gen) for split, n in sizes.items()}

    @property
    def provenance(self) -> str:
        sizes = {split: len(x) for split, x in self.examples.items()}
        return f"synthetic (data_seed={self.options['data_seed']}): examples per split {sizes}"

    def model(self, seed: int) -> Parameters:
        with seeded(seed):
            return Parameters(torch.randn(self.dim))

    @property
    def train_examples(self) -> int:
        return len(self.examples["train"])

    def batches(self, split: str, batch_size: int | None, seed: int) -> Iterator[Tensor]:
        examples = self.examples[check_split(split)]
        return example_batches(
            len(examples), examples.__getitem__, check_batch_size(batch_size), split_seed(seed, split)
        )

    def _per_example(self, theta: Tensor, examples: Tensor) -> Tensor:
        diff = theta - examples
        return 0.5 * ((diff @ self.hessian) * diff).sum(dim=-1)

    def loss(self, model: Parameters, batch: Tensor) -> Tensor:
        return self._per_example(model.theta, batch).mean()

    def excess_loss(self, theta: Tensor) -> Tensor:
        return self._per_example(theta, self.optimum)

    def evaluate(self, model: Parameters, split: str, limit: int | None = None) -> dict[str, float]:
        examples = self.examples[check_split(split)]
        examples = examples[: first(limit, len(examples))]
        theta = model.theta.detach()
        result = mean_over_chunks(
            len(examples), 4096, lambda idx: {"loss": self._per_example(theta, examples[idx]).mean().item()}
        )
        result["excess_loss"] = self.excess_loss(theta).item()
        result["distance_to_optimum"] = torch.linalg.vector_norm(theta - self.optimum).item()
        return result
