"""The lattice as data: every momentum and adaptation rule, and what an optimizer needs to know of it.

One :class:`Entry` per rule declares its name (the ``Composed`` choice), its factory, the state
keys it creates, where ε may go and where each flavor puts it, what it needs of the rest of the
chain, the switches it implements, the checks of the hyperparameters that are its own, and (on the
rule class) the norm of past gradients it divides by. The chain builder, ``Composed``'s choices,
checks and docstring, the default ε placement, and through the rules' ``norm`` the lab verdict's
groups are read from here; the lab's names and the report's palette follow the named optimizers.
Adding a rule is its class in :mod:`descentlab.rules`, one entry here, and a named optimizer if it
deserves a name (docs/lattice.md walks through AdaBelief).
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from dataclasses import dataclass, field

from descentlab.optim import _checks
from descentlab.rules.adaptation import DeltaRatio, EMABelief, EMAMaxAbs, EMASquares, SumSquares
from descentlab.rules.momentum import EMA, HeavyBall, ScheduledNesterovEMA

ORDERS = ("momentum_first", "adaptation_first")
EMA_MOMENTUM = ("ema", "nesterov_ema")  # the momentum rules that keep Adam's m in ``exp_avg``


@dataclass(frozen=True)
class Point:
    """Where a rule is built: what its factory may depend on besides the hyperparameters."""

    momentum_rule: str
    eps_placement: str | None
    flavor: str

    @property
    def eps(self) -> str:
        """Where ε enters, for a rule that has an ε (``check_point`` gave it a placement)."""
        assert self.eps_placement is not None
        return self.eps_placement


@dataclass(frozen=True)
class Entry:
    """One rule of the lattice (see the module docstring); ``rule`` None is the "none" choice."""

    name: str
    doc: str  # one line for Composed's docstring: what it is and which hyperparameters it reads
    rule: type | None = None
    build: Callable[[Point], object] | None = None  # the rule for a point; default ``rule()``
    state: tuple[str, ...] = ()  # the torch state keys it may create
    eps_placements: tuple[str, ...] = ()  # where ε may go (adaptation rules); the first is listed first
    # where each flavor puts ε: "torch", "keras", or "keras/<momentum_rule>" for a choice by momentum
    default_eps: dict[str, str] = field(default_factory=dict)
    momentum_rules: tuple[str, ...] | None = None  # the momentum rules it needs before it (None: any)
    switches: tuple[str, ...] = ()  # boolean options it implements (Composed refuses them elsewhere)
    checks: dict[str, Callable[[str, object], None]] = field(default_factory=dict)  # its own hyperparameters

    @property
    def norm(self) -> str | None:
        """The norm of past gradients the rule divides by (``"L2"``, ``"L∞"``), None if none."""
        return getattr(self.rule, "norm", None)

    def make(self, point: Point):
        if self.rule is None:
            return None
        return self.build(point) if self.build else self.rule()

    def eps_for(self, momentum_rule: str, flavor: str) -> str | None:
        """Where ``flavor`` puts ε for this rule after ``momentum_rule``; None without adaptation."""
        if not self.default_eps:
            return None
        return self.default_eps.get(f"{flavor}/{momentum_rule}", self.default_eps[flavor])


MOMENTUM = (
    Entry("none", "no momentum."),
    Entry("heavy_ball", "torch's heavy-ball buffer (``momentum``, ``dampening``).", HeavyBall,
          state=("momentum_buffer",),
          checks={"momentum": _checks.at_least,
                  "dampening": lambda name, value: _checks.in_unit_interval(name, value, closed=True)}),
    Entry("nesterov", "torch's form of NAG (``momentum``).", HeavyBall, state=("momentum_buffer",)),
    Entry("ema", "Adam's bias-corrected EMA (``betas[0]``).", EMA, state=("exp_avg",)),
    Entry("nesterov_ema", "Nadam's scheduled Nesterov EMA (``betas[0]``, ``momentum_decay``).", ScheduledNesterovEMA,
          build=lambda point: ScheduledNesterovEMA(product_in_param_dtype=point.flavor == "keras"),
          state=("exp_avg", "mu_product"), checks={"momentum_decay": _checks.at_least}),
)

ADAPTATION = (
    Entry("none", "no adaptation."),
    Entry("sum", "Adagrad's Σg² (``initial_accumulator_value``).", SumSquares,
          build=lambda point: SumSquares(point.eps), state=("sum",),
          eps_placements=("outside", "inside"), default_eps={"torch": "outside", "keras": "inside"},
          checks={"initial_accumulator_value": _checks.at_least}),
    Entry("ema", "EMA of g² with decay ``betas[1]``, ``centered``, ``amsgrad``; bias-corrected when the "
                 "momentum is an EMA.", EMASquares,
          build=lambda point: EMASquares(bias_correction=point.momentum_rule in EMA_MOMENTUM,
                                         eps_placement=point.eps),
          state=("exp_avg_sq", "square_avg", "grad_avg", "max_exp_avg_sq"), eps_placements=("outside", "inside", "hat"),
          default_eps={"torch": "outside", "keras": "inside", "keras/ema": "hat", "keras/nesterov_ema": "outside"},
          switches=("centered", "amsgrad")),
    Entry("max", "Adamax's EMA-max of |g| (``betas[1]``).", EMAMaxAbs,
          build=lambda point: EMAMaxAbs(point.eps), state=("exp_inf",),
          eps_placements=("inside", "outside"), default_eps={"torch": "inside", "keras": "outside"}),
    Entry("delta", "Adadelta's ratio (decay ``betas[1]``).", DeltaRatio, state=("square_avg", "acc_delta"),
          eps_placements=("inside",), default_eps={"torch": "inside", "keras": "inside"}),
    Entry("belief", "AdaBelief's bias-corrected EMA of (g − m)² (``betas[1]``, ``amsgrad``); after an EMA "
                    "momentum, whose m it reads.", EMABelief,
          state=("exp_avg_var", "max_exp_avg_var"), eps_placements=("outside",),
          default_eps={"torch": "outside", "keras": "outside"}, momentum_rules=EMA_MOMENTUM, switches=("amsgrad",)),
)

MOMENTUM_RULES = tuple(entry.name for entry in MOMENTUM)
ADAPTATION_RULES = tuple(entry.name for entry in ADAPTATION)
_BY_NAME = {"momentum_rule": {e.name: e for e in MOMENTUM}, "adaptation_rule": {e.name: e for e in ADAPTATION}}


def momentum(name: str) -> Entry:
    _checks.check_choice("momentum_rule", name, MOMENTUM_RULES)
    return _BY_NAME["momentum_rule"][name]


def adaptation(name: str) -> Entry:
    _checks.check_choice("adaptation_rule", name, ADAPTATION_RULES)
    return _BY_NAME["adaptation_rule"][name]


def check_point(momentum_rule: str, adaptation_rule: str, order: str, eps_placement: str | None) -> None:
    """A point of the lattice the rules can run: known names, an ε placement the rule has, its needs met."""
    momentum(momentum_rule)
    entry = adaptation(adaptation_rule)
    _checks.check_choice("order", order, ORDERS)
    if entry.rule is None:
        if eps_placement is not None:
            raise ValueError(
                "`eps_placement` needs an adaptation rule. "
                f"Received: eps_placement={eps_placement!r}, adaptation_rule='none'"
            )
        return
    _checks.check_choice(f"eps_placement (with adaptation_rule={adaptation_rule!r})", eps_placement,
                         entry.eps_placements)
    if entry.momentum_rules is not None and (momentum_rule not in entry.momentum_rules or order != "momentum_first"):
        raise ValueError(
            f"adaptation_rule={adaptation_rule!r} reads the momentum's m, so it needs momentum_rule in "
            f"{entry.momentum_rules} first. Received: momentum_rule={momentum_rule!r}, order={order!r}"
        )


def check_switches(adaptation_rule: str, switches: dict[str, bool]) -> None:
    """Each switch that is on names a rule that implements it (``amsgrad`` with ``ema``, ...)."""
    for name, value in switches.items():
        owners = tuple(entry.name for entry in ADAPTATION if name in entry.switches)
        if value and adaptation_rule not in owners:
            needed = f"={owners[0]!r}" if len(owners) == 1 else f" in {owners}"
            raise ValueError(f"`{name}` needs adaptation_rule{needed}. "
                             f"Received: {name}=True, adaptation_rule={adaptation_rule!r}")


# The rules' own hyperparameter checks, applied by name to every param group (as the shared ones are)
CHECKS = {name: check for entry in (*MOMENTUM, *ADAPTATION) for name, check in entry.checks.items()}


def describe(kind: str) -> str:
    """The choices of ``kind`` ("momentum_rule" or "adaptation_rule") for Composed's docstring."""
    lines = (f'``"{entry.name}"``: {entry.doc}' + (" State: " + ", ".join(f"``{k}``" for k in entry.state) + "."
                                                    if entry.state else "")
             for entry in _BY_NAME[kind].values())
    return "\n".join(textwrap.fill(line, 100, initial_indent=" " * 8, subsequent_indent=" " * 12) for line in lines)
