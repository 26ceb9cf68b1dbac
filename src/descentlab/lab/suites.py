"""Predefined studies, by name (``descentlab run --suite NAME``)."""

from __future__ import annotations

from descentlab.lab.spec import Study

SUITES = {
    # A sub-minute smoke study: two surfaces (one vectorized population each) and the quadratic.
    # Starts jittered per seed, so that seeds differ on the surfaces too.
    "quick": dict(problems=["rosenbrock", "beale", "quadratic"], optimizers=["momentum", "rmsprop", "nadam"],
                  grid=5, span=3.0, seeds=3, steps=150,
                  problem_options={"rosenbrock": {"jitter": 0.1}, "beale": {"jitter": 0.1}}),
    # The talk's verdict, tested: Nadam, RMSprop and plain momentum against Adam and SGD.
    "talk": dict(problems=["beale", "rosenbrock", "saddle", "valley", "quadratic", "mnist_logreg", "mnist_mlp"],
                 optimizers=["sgd", "momentum", "nesterov", "rmsprop", "adam", "nadam"], grid=5, span=2.0, seeds=3),
    # Every optimizer on every surface: the classic pictures, tuned.
    "surfaces": dict(problems=["beale", "rosenbrock", "saddle", "valley", "rastrigin", "himmelblau"],
                     optimizers=["sgd", "momentum", "nesterov", "adagrad", "adadelta", "rmsprop", "adam",
                                 "amsgrad", "adamax", "nadam", "nadamax", "ftrl"], grid=7, span=3.0, seeds=5),
}


def suite(name: str, **overrides) -> Study:
    if name not in SUITES:
        raise ValueError(f"Unknown suite {name!r}. Valid suites: {', '.join(SUITES)}")
    return Study(**{**SUITES[name], **overrides, "name": overrides.get("name") or name})
