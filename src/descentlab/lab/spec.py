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
from descentlab.optim._checks import CLIP_OPTIONS, resolve

# The lab's optimizer vocabulary: a name is a class plus fixed hyperparameters. Every named
# optimizer under its lowercase name, each followed by the variants the talk races.
VARIANTS: dict[str, dict[str, dict]] = {
    "sgd": {"momentum": {"momentum": 0.9}, "nesterov": {"momentum": 0.9, "nesterov": True}},
    "adam": {"amsgrad": {"amsgrad": True}},
}
OPTIMIZERS: dict[str, tuple[type, dict]] = {
    name: (cls, fixed)
    for cls in optim.NAMED.values()
    for name, fixed in {cls.__name__.lower(): {}, **VARIANTS.get(cls.__name__.lower(), {})}.items()
}


def check_names(kind: str, names: list[str], valid: list[str]) -> None:
    unknown = [n for n in names if n not in valid]
    if unknown:
        raise ValueError(f"Unknown {kind} {unknown[0]!r}. Valid {kind}s: {', '.join(valid)}")


def parse_optimizer(name: str, kind: str = "optimizer") -> tuple[str, dict]:
    """A lab name and its clipping: ``"momentum+clipnorm=1"`` → ``("momentum", {"clipnorm": 1.0})``.

    A clipped variant is a name of :data:`OPTIMIZERS`, ``+``, and one of Keras's clipping options
    (``clipnorm``, ``global_clipnorm``, ``clipvalue``) with a positive value. It is a contestant of
    its own, tuned like any other, whose lr grid is its base optimizer's (so both try the same lrs).
    """
    base, plus, variant = name.partition("+")
    check_names(kind, [base], list(OPTIMIZERS))
    if not plus:
        return base, {}
    option, equals, value = variant.partition("=")
    if option not in CLIP_OPTIONS or not equals:
        raise ValueError(f"A clipped variant is NAME+OPTION=VALUE with OPTION one of {', '.join(CLIP_OPTIONS)}. "
                         f"Received: {name!r}")
    try:
        number = float(value)
    except ValueError:
        raise ValueError(f"`{option}` must be a number. Received: {option}={value!r} in {name!r}") from None
    if not (math.isfinite(number) and number > 0):
        raise ValueError(f"`{option}` must be > 0 in a clipped variant. Received: {option}={value} in {name!r}")
    return base, {option: number}


def optimizer_of(name: str) -> tuple[type, dict]:
    """The class and fixed hyperparameters behind a lab name, a clipped variant's clipping included."""
    base, clipping = parse_optimizer(name)
    cls, fixed = OPTIMIZERS[base]
    return cls, {**fixed, **clipping}


def check_optimizers(names: list[str], kind: str = "optimizer") -> None:
    """Every name is a lab optimizer or a clipped variant of one (the first bad name is the error)."""
    for name in names:
        parse_optimizer(name, kind)


def default_lr(optimizer: str, flavor: str = "torch") -> float:
    """The optimizer's default learning rate: the centre of its grid (a clipped variant's is its base's)."""
    cls, fixed = optimizer_of(optimizer)
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

    @property
    def settings(self) -> dict:
        """Every hyperparameter the trial sets: the lab name's fixed ones (clipping included), then its own."""
        return {**optimizer_of(self.optimizer)[1], **self.hyperparameters}

    def make_optimizer(self, params):
        return optimizer_of(self.optimizer)[0](params, **self.settings)


def worst(goal: str) -> float:
    return math.inf if goal == "min" else -math.inf
