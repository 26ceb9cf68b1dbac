"""What a study is: problems × optimizers × learning-rate grid × seeds × budget, as data."""

from __future__ import annotations

import itertools
import math
from dataclasses import asdict, dataclass, field

from descentlab import problems
from descentlab.lab import devices
from descentlab.lab.spec import TrialSpec, _canonical, check_names, check_optimizers, default_lr, grid_point


@dataclass
class Study:
    """A study: the protocol of DeepOBS / Crowded Valley (docs/design.md, "A fair comparison") as data.

    The learning rate is tuned on a log grid of ``grid`` points over ``span`` decades centred on
    each optimizer's default, on seed 0; other hyperparameters stay at their defaults unless
    ``search_space`` gives values (``{"adam": {"betas": [(0.9, 0.999), (0.8, 0.99)]}}``), whose
    product joins the grid. While the best learning rate of a configuration sits at an edge of
    its grid, the grid grows on that side by the same log step, up to ``extend`` extra points:
    an edge is accepted only once the point beyond it did worse or diverged. The configuration
    with the best final validation metric is re-run on every seed; test metrics are reported.
    The budget is ``steps`` or ``epochs`` (passes over the training split) of ``batch_size``
    examples, each defaulting to the problem's own; ``problem_steps`` sets a problem's steps
    apart (``{"lstm_lm": 300}``). A run whose loss is NaN/inf or exceeds
    ``divergence_factor`` × its first loss is stopped and recorded as diverged: the worst score.

    An optimizer is a lab name (``"momentum"``) or a clipped variant of one
    (``"momentum+clipnorm=1"``, see :func:`descentlab.lab.spec.parse_optimizer`).

    A problem is named by a label: a registered problem (``"beale"``), or ``"name@tag"`` for a
    second instance of it, whose options ``problem_options["name@tag"]`` give
    (``{"beale@far": {"start": 1}}``).
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
    extend: int = 8
    problem_steps: dict = field(default_factory=dict)
    search_space: dict = field(default_factory=dict)
    problem_options: dict = field(default_factory=dict)
    name: str = ""
    device: str = "cpu"
    amp: str | None = None

    def __post_init__(self) -> None:
        """Every argument checked: a bad one is an error naming it and its value."""
        self._check_problems()
        check_optimizers(self.optimizers)
        self.device = devices.resolve(self.device)
        devices.check_amp(self.amp)
        self._check_integers()
        self._check_epochs()
        self._check_span()
        if not (isinstance(self.divergence_factor, (int, float)) and self.divergence_factor > 1):
            raise ValueError(f"`divergence_factor` must be > 1. Received: divergence_factor={self.divergence_factor!r}")
        check_optimizers(list(self.search_space), "optimizer in search_space")
        self._check_per_problem()

    def _check_problems(self) -> None:
        from descentlab.lab.runner import USER_PROBLEMS

        check_names("problem", [self.problem_name(label) for label in self.problems],
                    problems.names() + list(USER_PROBLEMS))
        if len(set(self.problems)) != len(self.problems):
            raise ValueError(f"`problems` names a problem twice. Received: problems={self.problems!r}")

    def _check_integers(self) -> None:
        """``grid``, ``seeds``, ``extend``, and ``steps`` and ``eval_every`` where given."""
        for option, value, low in (("grid", self.grid, 1), ("seeds", self.seeds, 1), ("extend", self.extend, 0)):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"`{option}` must be an integer >= {low}. Received: {option}={value!r}")
        for option in ("steps", "eval_every"):
            value = getattr(self, option)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise ValueError(f"`{option}` must be a positive integer. Received: {option}={value!r}")

    def _check_epochs(self) -> None:
        if self.epochs is None:
            return
        if self.steps is not None:
            raise ValueError(f"Give `steps` or `epochs`, not both. Received: steps={self.steps!r}, "
                             f"epochs={self.epochs!r}")
        if isinstance(self.epochs, bool) or not isinstance(self.epochs, (int, float)) or not self.epochs > 0:
            raise ValueError(f"`epochs` must be > 0. Received: epochs={self.epochs!r}")

    def _check_span(self) -> None:
        if not (isinstance(self.span, (int, float)) and math.isfinite(self.span) and self.span >= 0):
            raise ValueError(f"`span` must be >= 0 decades. Received: span={self.span!r}")
        if self.grid > 1 and self.span == 0:
            raise ValueError(f"`span` must be > 0 for a grid of {self.grid} points. Received: span={self.span!r}")

    def _check_per_problem(self) -> None:
        """``problem_options`` and ``problem_steps`` name problems of the study; steps are positive integers."""
        for option in ("problem_options", "problem_steps"):
            unknown = [label for label in getattr(self, option) if label not in self.problems]
            if unknown:
                raise ValueError(f"`{option}` names a problem the study does not have: {unknown[0]!r}. "
                                 f"Received: problems={self.problems!r}")
        for label, steps in self.problem_steps.items():
            if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
                raise ValueError(f"`problem_steps` must map problems to positive integers. "
                                 f"Received: problem_steps[{label!r}]={steps!r}")

    @staticmethod
    def problem_name(label: str) -> str:
        """The registered problem a label stands for: ``"beale@far"`` → ``"beale"``."""
        return label.partition("@")[0]

    def options(self, label: str) -> dict:
        return self.problem_options.get(label, {})

    def budget(self, problem, label: str | None = None) -> tuple[int, int | None, int]:
        """(steps, batch_size, eval_every) of every trial on ``problem`` (the study's ``label``)."""
        batch_size = problem.default_batch_size if isinstance(self.batch_size, str) else self.batch_size  # "default"
        steps = self.problem_steps.get(label) or self.steps or problem.default_steps
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

    def configurations(self, optimizer: str) -> list[dict]:
        """The optimizer's hyperparameters besides the lr: one dict per point of its search space."""
        space = self.search_space.get(optimizer, {})
        names = list(space)
        return [_canonical(dict(zip(names, values, strict=True)))
                for values in itertools.product(*(space[n] for n in names))]

    def trial(self, label: str, problem, optimizer: str, configuration: dict, index: int, seed: int = 0) -> TrialSpec:
        """The trial at point ``index`` of the optimizer's lr grid (outside 0..grid-1: an extension)."""
        steps, batch_size, eval_every = self.budget(problem, label)
        lr = grid_point(default_lr(optimizer), self.grid, self.span, index)
        return TrialSpec(self.problem_name(label), self.options(label), optimizer,
                         _canonical({"lr": lr, **configuration}), seed, steps, batch_size, eval_every,
                         float(self.divergence_factor), self.device, self.amp)

    def confirmation_trials(self, chosen: TrialSpec) -> list[TrialSpec]:
        """The chosen configuration on the other seeds (seed 0 is the tuning run itself)."""
        return [TrialSpec(**{**asdict(chosen), "seed": seed}) for seed in range(1, self.seeds)]

    def to_json(self) -> dict:
        spec = _canonical(asdict(self))
        for name, default in (("device", "cpu"), ("amp", None)):  # CPU float32 studies keep their old spec
            if spec[name] == default:
                del spec[name]
        return spec
