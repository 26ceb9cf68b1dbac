"""What a trial is, and the lab's vocabulary: optimizer names, default learning rates, lr grids.

A trial is fully described by a :class:`TrialSpec`; its key is a hash of exactly the fields that
determine its result, so the same trial requested by two commands (or two studies) is run once.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import math
from dataclasses import asdict, dataclass

from descentlab import __version__, optim
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
    return [grid_point(center, size, span, i) for i in range(size)]


def grid_point(center: float, size: int, span: float, index: int) -> float:
    """Point ``index`` of :func:`lr_grid` (any integer: below 0 and from ``size`` on, the grid
    extended by the same log step). Computed from the index, so a resumed study asks for the
    very same floats (and trial keys) as the run it resumes."""
    if size == 1:
        return center
    return center * 10 ** (span * (index / (size - 1) - 0.5))


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
    device: str = "cpu"
    amp: str | None = None  # mixed precision: "bf16" or "fp16"

    @property
    def key(self) -> str:
        fields = _canonical(asdict(self))
        for name, default in (("device", "cpu"), ("amp", None)):  # CPU float32 trials keep their old keys
            if fields[name] == default:
                del fields[name]
        payload = json.dumps({**fields, "version": __version__}, sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()[:24]

    @property
    def lr(self) -> float:
        return self.hyperparameters["lr"]

    def make_optimizer(self, params):
        cls, fixed = OPTIMIZERS[self.optimizer]
        return cls(params, **{**fixed, **self.hyperparameters})


def worst(goal: str) -> float:
    return math.inf if goal == "min" else -math.inf
