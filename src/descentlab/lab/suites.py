"""Predefined studies, by name (``descentlab run --suite NAME``): keyword arguments of :class:`Study`."""

from __future__ import annotations

from typing import Any

from descentlab.lab.spec import OPTIMIZERS

TALK_OPTIMIZERS = ["sgd", "momentum", "nesterov", "adagrad", "adadelta", "rmsprop", "adam", "adamax", "nadam"]
# The talk's last slide: SGD(clipnorm=1.) and SGD(clipvalue=0.5), here on momentum, the optimizer
# the LSTM claim is about; each variant a contestant tuned like the others.
CLIPPED = ["momentum+clipnorm=1", "momentum+clipvalue=0.5"]
# The cliff from its canonical start, jittered per seed so that its seeds differ: whether a step
# lands on the wall's face depends on where the path starts.
CLIFF_OPTIONS = {"cliff": {"jitter": 0.1}}
LSTM_OPTIONS, LSTM_STEPS = {"lstm_lm": {"vocab_size": 2000}}, {"lstm_lm": 300}

SUITES: dict[str, dict[str, Any]] = {
    # A sub-minute smoke study: two surfaces (one vectorized population each) and the quadratic.
    # Starts jittered per seed, so that seeds differ on the surfaces too.
    "quick": dict(problems=["rosenbrock", "beale", "quadratic"], optimizers=["momentum", "rmsprop", "nadam"],
                  grid=5, span=3.0, seeds=3, steps=150,
                  problem_options={"rosenbrock": {"jitter": 0.1}, "beale": {"jitter": 0.1}}),
    # The talk, reproduced: its pictures' surfaces from their canonical starts, and its three
    # real tasks (word2vec, MNIST, a word-level LSTM), every classic optimizer tuned by lr with
    # bracketing. Sized to run in about 20 minutes on 2 cores (docs/talk.md).
    "talk": dict(problems=["beale", "beale@far", "saddle", "rosenbrock", "valley", "cliff",
                           "word2vec", "mnist_mlp", "mnist_logreg", "lstm_lm"],
                 optimizers=TALK_OPTIMIZERS + CLIPPED, grid=5, span=2.0, seeds=3, extend=8,
                 problem_options={"beale@far": {"start": 1}, "word2vec": {"corpus": "ptb"},
                                  **CLIFF_OPTIONS, **LSTM_OPTIONS},
                 problem_steps=LSTM_STEPS),
    # The talk's clipping claims alone: the cliff and the LSTM, the talk's optimizers and their
    # clipped momentum variants, as in `talk` (the same trials, so a store shares them).
    "clipping": dict(problems=["cliff", "lstm_lm"], optimizers=TALK_OPTIMIZERS + CLIPPED, grid=5, span=2.0,
                     seeds=3, extend=8, problem_options={**CLIFF_OPTIONS, **LSTM_OPTIONS},
                     problem_steps=LSTM_STEPS),
    # The talk in under three minutes on 2 cores (`make run`): its pictures' surfaces and the two
    # MNIST tasks (the MLP on half its budget), every classic optimizer, with the talk's grid,
    # bracketing and seeds.
    "talk-quick": dict(problems=["beale", "beale@far", "saddle", "rosenbrock", "valley", "mnist_logreg", "mnist_mlp"],
                       optimizers=TALK_OPTIMIZERS, grid=5, span=2.0, seeds=3, extend=8,
                       problem_options={"beale@far": {"start": 1}}, problem_steps={"mnist_mlp": 150}),
    # Every optimizer on every surface: the classic pictures, tuned. AdamW is left out: on a
    # surface it is Adam pulled toward the origin by its default weight decay.
    "surfaces": dict(problems=["beale", "rosenbrock", "saddle", "valley", "rastrigin", "himmelblau"],
                     optimizers=[name for name in OPTIMIZERS if name != "adamw"], grid=7, span=3.0, seeds=5),
}
