"""Sparse logistic regression on hashed categorical features: FTRL's home (click-through prediction)."""

from __future__ import annotations

from collections.abc import Iterator

import torch
import torch.nn.functional as F

from descentlab.problems.base import (
    Problem,
    check_batch_size,
    check_positive_ints,
    check_split,
    example_batches,
    first,
    mean_over_chunks,
    split_seed,
)

_KNUTH = 2654435761  # multiplicative hashing constant (2^32 / golden ratio)


class HashedLogisticRegression(torch.nn.Module):
    """logit = bias + Σ_fields w[hash(field, value)]: a sparse embedding bag of width 1, zero-initialized."""

    def __init__(self, buckets: int) -> None:
        super().__init__()
        self.weights = torch.nn.EmbeddingBag(buckets, 1, mode="sum", sparse=True)
        torch.nn.init.zeros_(self.weights.weight)
        self.bias = torch.nn.Parameter(torch.zeros(1))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.weights(features).squeeze(1) + self.bias


def _examples(true_weights: torch.Tensor, n: int, buckets: int, gen: torch.Generator
              ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``n`` examples drawn with ``gen``: each field's value from the Zipf law, the label from the
    true logit; returns the hashed features, the labels and the true logits."""
    fields, cardinality = true_weights.shape
    zipf = 1.0 / torch.arange(1, cardinality + 1, dtype=torch.float64) ** 1.1
    values = torch.multinomial(zipf, n * fields, replacement=True, generator=gen).view(n, fields)
    logits = -1.5 + true_weights[torch.arange(fields), values].sum(dim=1)
    labels = (torch.rand(n, generator=gen, dtype=torch.float64) < torch.sigmoid(logits)).float()
    pairs = torch.arange(fields) * cardinality + values
    features = (pairs * _KNUTH) % (2**32) % buckets
    return features, labels, logits.float()


class SparseLogisticRegression(Problem[HashedLogisticRegression]):
    """A synthetic click-through-rate task with a known, sparse ground truth.

    Generator (fixed by ``data_seed``): each example has ``fields`` categorical fields whose
    values follow a Zipf law (exponent 1.1) over ``cardinality`` values; each (field, value) pair
    has a true weight that is exactly zero with probability ``1 − density`` and N(0, 1) otherwise;
    the label is Bernoulli(σ(−1.5 + Σ true weights)) (≈25% positives). The model sees the pairs
    hashed into ``buckets`` (multiplicative hashing, collisions included) and learns one weight per
    bucket, zero-initialized, through a sparse ``EmbeddingBag``: FTRL-Proximal with L1 can zero
    weights exactly. Metrics: log loss, accuracy, the fraction of exactly-zero bucket weights,
    and the Bayes log loss (the true model's) for reference.
    """

    name = "sparse_logreg"
    metric = "loss"
    default_steps = 300
    default_batch_size = 256
    curve_limit = 4096

    def __init__(self, fields: int = 8, cardinality: int = 1000, buckets: int = 2**15, density: float = 0.1,
                 n_train: int = 100_000, n_eval: int = 20_000, data_seed: int = 0) -> None:
        check_positive_ints(fields=fields, cardinality=cardinality, buckets=buckets, n_train=n_train, n_eval=n_eval)
        if not 0 <= density <= 1:
            raise ValueError(f"`density` must be in [0, 1]. Received: density={density!r}")
        self.options = {"fields": fields, "cardinality": cardinality, "buckets": buckets, "density": density,
                        "n_train": n_train, "n_eval": n_eval, "data_seed": data_seed}
        self.buckets = buckets
        self.description = (
            f"hashed sparse logistic regression (synthetic CTR): {fields} fields x {cardinality} values "
            f"-> {buckets} buckets, {density:.0%} of true weights nonzero"
        )
        gen = torch.Generator().manual_seed(data_seed)
        true_weights = torch.randn(fields, cardinality, generator=gen, dtype=torch.float64)
        true_weights *= torch.rand(fields, cardinality, generator=gen, dtype=torch.float64) < density
        self.splits = {split: _examples(true_weights, n, buckets, gen)
                       for split, n in (("train", n_train), ("valid", n_eval), ("test", n_eval))}

    @property
    def provenance(self) -> str:
        rate = self.splits["train"][1].mean().item()
        sizes = ", ".join(f"{s} {len(y)}" for s, (_, y, _) in self.splits.items())
        return f"synthetic CTR generator (data_seed={self.options['data_seed']}): {sizes} examples, {rate:.1%} positive"

    def model(self, seed: int) -> HashedLogisticRegression:
        return HashedLogisticRegression(self.buckets)  # zeros: the run seed only orders the batches

    @property
    def train_examples(self) -> int:
        return len(self.splits["train"][1])

    def batches(self, split: str, batch_size: int | None, seed: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        features, labels, _ = self.splits[check_split(split)]
        return example_batches(
            len(labels), lambda i: (features[i], labels[i]), check_batch_size(batch_size), split_seed(seed, split)
        )

    def loss(self, model: HashedLogisticRegression, batch) -> torch.Tensor:
        features, labels = batch
        return F.binary_cross_entropy_with_logits(model(features), labels)

    def evaluate(self, model: HashedLogisticRegression, split: str, limit: int | None = None) -> dict[str, float]:
        features, labels, true_logits = self.splits[check_split(split)]
        count = first(limit, len(labels))
        features, labels, true_logits = features[:count], labels[:count], true_logits[:count]

        def chunk(indices):
            logits = model(features[indices])
            y = labels[indices]
            return {
                "loss": F.binary_cross_entropy_with_logits(logits, y).item(),
                "accuracy": ((logits > 0).float() == y).float().mean().item(),
                "bayes_loss": F.binary_cross_entropy_with_logits(true_logits[indices], y).item(),
            }

        with torch.no_grad():
            result = mean_over_chunks(len(labels), 8192, chunk)
            result["zero_fraction"] = (model.weights.weight == 0).float().mean().item()
        return result
