"""What a study is: problems × optimizers × learning-rate grid × seeds × budget, and its trials.

A trial is fully described by a :class:`TrialSpec`; its key is a hash of exactly the fields that
determine its result, so the same trial requested by two commands (or two studies) is run once.
"""

from __future__ import annotations

import hashlib
import inspect
import itertools
import json
import math
from dataclasses import asdict, dataclass, field

from descentlab import __version__, optim, problems
from descentlab.optim._checks import resolve

# The lab's optimizer vocabulary: a name is a class plus fixed hyperparameters.
OPTIMIZERS: dict[str, tuple[type, dict]] = {
    "sgd": (optim.SGD, {}),
    "momentum": (optim.SGD, {"momentum": 0.9}),
    "nesterov": (optim.SGD, {"momentum": 0.9, "nesterov": True}),
    "adagrad": (optim.Adagrad, {}),
    "adadelta": (optim.Adadelta, {}),
    "rmsprop": (optim.RMSprop, {}),
    "adam": (optim.Adam, {}),
    "amsgrad": (optim.Adam, {"amsgrad": True}),
    "adamw": (optim.AdamW, {}),
    "adamax": (optim.Adamax, {}),
    "nadam": (optim.Nadam, {}),
    "nadamax": (optim.Nadamax, {}),
    "ftrl": (optim.FTRL, {}),
}


def check_names(kind: str, names: list[str], valid: list[str]) -> None:
    unknown = [n for n in names if n not in valid]
    if unknown:
        raise ValueError(f"Unknown {kind} {unknown[0]!r}. Valid {kind}s: {', '.join(valid)}")


def default_lr(optimizer: str, flavor: str = "torch") -> float:
    """The optimizer's default learning rate: the centre of its grid."""
    cls, fixed = OPTIMIZERS[optimizer]
    return float(fixed.get("lr", resolve(inspect.signature(cls).parameters["lr"].default, flavor)))


def lr_grid(center: float, size: int, span: float) -> list[float]:
    """``size`` learning rates evenly spaced in log10 over ``span`` decades, centred on ``center``."""
    if size == 1:
        return [center]
    return [center * 10 ** (span * (i / (size - 1) - 0.5)) for i in range(size)]


def _canonical(value):
    return json.loads(json.dumps(value, sort_keys=True, default=list))


@dataclass(frozen=True)
class TrialSpec:
    """One training run; everything that determines its result."""

    problem: str
    problem_options: dict
    optimizer: str
    hyperparameters: dict  # lr included
    seed: int
    steps: int
    batch_size: int | None
    eval_every: int
    divergence_factor: float

    @property
    def key(self) -> str:
        payload = json.dumps({**_canonical(asdict(self)), "version": __version__}, sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()[:24]

    @property
    def lr(self) -> float:
        return self.hyperparameters["lr"]

    def make_optimizer(self, params):
        cls, fixed = OPTIMIZERS[self.optimizer]
        return cls(params, **{**fixed, **self.hyperparameters})

    def config(self) -> tuple:
        """The trial without its seed: what the protocol tunes and selects."""
        return (self.problem, json.dumps(self.problem_options, sort_keys=True), self.optimizer,
                json.dumps(_canonical(self.hyperparameters), sort_keys=True))


@dataclass
class Study:
    """A study: the protocol of DeepOBS / Crowded Valley (DESIGN.md §5) as data.

    The learning rate is tuned on a log grid of ``grid`` points over ``span`` decades centred on
    each optimizer's default, on seed ``seeds[0]``; other hyperparameters stay at their defaults
    unless ``search_space`` gives values (``{"adam": {"betas": [(0.9, 0.999), (0.8, 0.99)]}}``),
    whose product joins the grid. The configuration with the best final validation metric is
    re-run on every seed; test metrics are reported. The budget is ``steps`` or ``epochs`` (passes
    over the training split) of ``batch_size`` examples, each defaulting to the problem's own. A run whose loss is NaN/inf or exceeds ``divergence_factor`` × its first
    loss is stopped and recorded as diverged: the worst score.
    """

    problems: list[str]
    optimizers: list[str]
    grid: int = 5
    span: float = 2.0
    seeds: int = 3
    steps: int | None = None
    epochs: float | None = None
    batch_size: int | None | str = "default"
    eval_every: int | None = None
    divergence_factor: float = 10.0
    search_space: dict = field(default_factory=dict)
    problem_options: dict = field(default_factory=dict)
    name: str = ""

    def __post_init__(self) -> None:
        from descentlab.lab.runner import USER_PROBLEMS

        check_names("problem", self.problems, problems.names() + list(USER_PROBLEMS))
        check_names("optimizer", self.optimizers, list(OPTIMIZERS))
        for option, value, low in (("grid", self.grid, 1), ("seeds", self.seeds, 1)):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"`{option}` must be an integer >= {low}. Received: {option}={value!r}")
        for option in ("steps", "eval_every"):
            value = getattr(self, option)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise ValueError(f"`{option}` must be a positive integer. Received: {option}={value!r}")
        if self.epochs is not None:
            if self.steps is not None:
                raise ValueError(f"Give `steps` or `epochs`, not both. Received: steps={self.steps!r}, epochs={self.epochs!r}")
            if isinstance(self.epochs, bool) or not isinstance(self.epochs, (int, float)) or not self.epochs > 0:
                raise ValueError(f"`epochs` must be > 0. Received: epochs={self.epochs!r}")
        if not (isinstance(self.span, (int, float)) and self.span >= 0):
            raise ValueError(f"`span` must be >= 0 decades. Received: span={self.span!r}")
        if not (isinstance(self.divergence_factor, (int, float)) and self.divergence_factor > 1):
            raise ValueError(f"`divergence_factor` must be > 1. Received: divergence_factor={self.divergence_factor!r}")
        check_names("optimizer in search_space", list(self.search_space), list(OPTIMIZERS))

    def budget(self, problem) -> tuple[int, int | None, int]:
        batch_size = problem.default_batch_size if self.batch_size == "default" else self.batch_size
        steps = self.steps or problem.default_steps
        if self.epochs is not None:
            if batch_size is None:
                steps = math.ceil(self.epochs)  # a full-batch step is an epoch
            elif problem.train_examples is None:
                raise ValueError(f"Problem {problem.name!r} has no fixed epoch: give `steps` instead of "
                                 f"`epochs`. Received: epochs={self.epochs!r}")
            else:
                steps = max(1, math.ceil(self.epochs * problem.train_examples / batch_size))
        eval_every = self.eval_every or max(1, steps // 20)
        return steps, batch_size, eval_every

    def tuning_trials(self, problem_name: str, problem) -> list[TrialSpec]:
        steps, batch_size, eval_every = self.budget(problem)
        trials = []
        for optimizer in self.optimizers:
            space = self.search_space.get(optimizer, {})
            names = list(space)
            for values in itertools.product(*(space[n] for n in names)):
                for lr in lr_grid(default_lr(optimizer), self.grid, self.span):
                    hyper = {"lr": lr, **dict(zip(names, values))}
                    trials.append(TrialSpec(problem_name, self.problem_options.get(problem_name, {}), optimizer,
                                            _canonical(hyper), 0, steps, batch_size, eval_every,
                                            float(self.divergence_factor)))
        return trials

    def confirmation_trials(self, chosen: TrialSpec) -> list[TrialSpec]:
        """The chosen configuration on every seed (seed 0 is the tuning run itself)."""
        return [TrialSpec(**{**asdict(chosen), "seed": seed}) for seed in range(self.seeds)]

    def to_json(self) -> dict:
        return _canonical(asdict(self))


def worst(goal: str) -> float:
    return math.inf if goal == "min" else -math.inf
