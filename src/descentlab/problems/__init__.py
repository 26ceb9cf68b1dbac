"""descentlab.problems: the workloads the lab races optimizers on.

``get(name, **options)`` builds a :class:`Problem`; ``names()`` lists them. The registry is an
explicit table: each name maps to a constructor and its options (see each class's docstring).

- surfaces: ``beale``, ``rosenbrock``, ``saddle``, ``valley``, ``rastrigin``, ``himmelblau``, ``cliff``
- ``quadratic``: a noisy ill-conditioned quadratic with a known optimum
- ``mnist_logreg``, ``mnist_mlp``: MNIST classification
- ``word2vec``: skip-gram negative sampling on text8 or PTB (sparse embeddings)
- ``lstm_lm``: word-level LSTM on PTB; ``char_lstm``: character LSTM on tiny-shakespeare
- ``sparse_logreg``: hashed sparse logistic regression with a known sparse truth (FTRL's home)
"""

from __future__ import annotations

import functools
import inspect

from descentlab.problems.base import SPLITS, Problem
from descentlab.problems.mnist import MNISTClassifier
from descentlab.problems.quadratic import NoisyQuadratic
from descentlab.problems.sparse_logreg import SparseLogisticRegression
from descentlab.problems.surfaces import SURFACES, SurfaceProblem
from descentlab.problems.text import CharLSTM, Word2Vec, WordLSTM

REGISTRY = {
    **{name: functools.partial(SurfaceProblem, name) for name in SURFACES},
    "quadratic": NoisyQuadratic,
    "mnist_logreg": functools.partial(MNISTClassifier, hidden=None),
    "mnist_mlp": functools.partial(MNISTClassifier, hidden=256),
    "word2vec": Word2Vec,
    "lstm_lm": WordLSTM,
    "char_lstm": CharLSTM,
    "sparse_logreg": SparseLogisticRegression,
}


def names() -> list[str]:
    return list(REGISTRY)


def options(name: str) -> dict[str, object]:
    """The options a problem takes, with their defaults."""
    factory = _factory(name)
    return {
        p.name: p.default
        for p in inspect.signature(factory).parameters.values()
        if p.default is not inspect.Parameter.empty or p.kind is p.KEYWORD_ONLY
    }


def _factory(name: str):
    if name not in REGISTRY:
        raise ValueError(f"Unknown problem {name!r}. Valid names: {', '.join(REGISTRY)}")
    return REGISTRY[name]


def get(name: str, **problem_options) -> Problem:
    """Build the problem ``name`` with ``problem_options`` (unknown options are an error)."""
    factory = _factory(name)
    valid = options(name)
    unknown = sorted(set(problem_options) - set(valid))
    if unknown:
        raise ValueError(
            f"Problem {name!r} has no option {', '.join(map(repr, unknown))}. Valid options: {', '.join(valid)}"
        )
    return factory(**problem_options)


__all__ = ["SPLITS", "Problem", "REGISTRY", "get", "names", "options"]
