"""Argument checks with Keras-style messages: the argument, the rule, the value received."""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Iterable
from typing import Any

import torch

from descentlab.rules.clip import CLIP_OPTIONS

FLAVORS = ("torch", "keras")


class Flavored:
    """A default that depends on the flavor, shown as such in signatures and ``help()``."""

    __slots__ = ("by_flavor",)

    def __init__(self, torch: object, keras: object) -> None:
        self.by_flavor = {"torch": torch, "keras": keras}

    def __repr__(self) -> str:
        return f"Flavored(torch={self.by_flavor['torch']!r}, keras={self.by_flavor['keras']!r})"


def check_flavor(flavor: object) -> str:
    if flavor not in FLAVORS:
        raise ValueError(f"`flavor` must be one of {FLAVORS}. Received: flavor={flavor!r}")
    return flavor


def resolve(value: object, flavor: str) -> Any:
    """The flavor's default where ``value`` is a :class:`Flavored` default, else ``value``."""
    return value.by_flavor[flavor] if isinstance(value, Flavored) else value


def check_choice(name: str, value: object, choices: Iterable[str]) -> None:
    choices = tuple(choices)
    if value not in choices:
        raise ValueError(f"`{name}` must be one of {choices}. Received: {name}={value!r}")


def _number(name: str, value: object, shown: str) -> float:
    if torch.is_tensor(value) and value.numel() == 1:
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or math.isnan(value):
        raise ValueError(f"`{name}` must be a real number. Received: {shown}")
    return float(value)


def _show(name: str, value: object) -> str:
    return f"{name}={value!r}"


def at_least(name: str, value: object, low: float = 0.0, *, shown: str | None = None) -> None:
    shown = shown or _show(name, value)
    if _number(name, value, shown) < low:
        raise ValueError(f"`{name}` must be >= {low:g}. Received: {shown}")


def at_most(name: str, value: object, high: float, *, shown: str | None = None) -> None:
    shown = shown or _show(name, value)
    if _number(name, value, shown) > high:
        raise ValueError(f"`{name}` must be <= {high:g}. Received: {shown}")


def in_unit_interval(name: str, value: object, *, closed: bool, shown: str | None = None) -> None:
    """``value`` in [0, 1] (``closed``) or [0, 1)."""
    shown = shown or _show(name, value)
    number = _number(name, value, shown)
    if not (0.0 <= number <= 1.0 if closed else 0.0 <= number < 1.0):
        raise ValueError(f"`{name}` must be in [0, 1{']' if closed else ')'}. Received: {shown}")


def check_betas(betas: object) -> None:
    if not isinstance(betas, (tuple, list)) or len(betas) != 2:
        raise ValueError(f"`betas` must be a pair (beta1, beta2). Received: betas={betas!r}")
    for i, beta in enumerate(betas):
        in_unit_interval(f"betas[{i}]", beta, closed=False, shown=f"betas={tuple(betas)!r}")


def check_clipping(group: dict) -> None:
    """Each clip option is None/0 (off) or positive, and at most one is on (as in Keras)."""
    on = []
    for name in CLIP_OPTIONS:
        value = group.get(name)
        if value is not None:
            at_least(name, value)
            if value:
                on.append(name)
    if len(on) > 1:
        received = ", ".join(f"{name}={group.get(name)!r}" for name in CLIP_OPTIONS)
        raise ValueError(
            f"Only one of `clipnorm`, `clipvalue` and `global_clipnorm` can be set. Received: {received}"
        )


# The hyperparameters every optimizer shares or that name no rule of the lattice (each rule's own
# are checked by its entry in :mod:`descentlab.optim.lattice`)
_NON_NEGATIVE = ("lr", "eps", "lr_decay", "weight_decay", "l1", "l2", "l2_shrinkage", "beta")
_UNIT_CLOSED = ("alpha", "rho")


def check_group(group: dict, checks: dict[str, Callable[[str, object], None]]) -> None:
    """Check every hyperparameter a param group holds, with ``checks`` for the rules' own (by name);
    raise ``ValueError`` naming the first bad one."""
    for name in _NON_NEGATIVE:
        if name in group:
            at_least(name, group[name])
    for name in _UNIT_CLOSED:
        if name in group:
            in_unit_interval(name, group[name], closed=True)
    for name, check in checks.items():
        if name in group:
            check(name, group[name])
    if "betas" in group:
        check_betas(group["betas"])
    if "lr_power" in group:
        at_most("lr_power", group["lr_power"], 0.0)
    check_clipping(group)
    check_paths(group)
    check_nesterov(group)


def check_nesterov(group: dict) -> None:
    """torch's Nesterov rule; Keras takes nesterov=True with momentum 0 (plain SGD), as its own tests do."""
    nesterov = group.get("nesterov") and group.get("flavor", "torch") == "torch"
    if nesterov and (group.get("momentum", 0) <= 0 or group.get("dampening", 0) != 0):
        raise ValueError(
            "Nesterov momentum requires `momentum` > 0 and `dampening` == 0. "
            f"Received: momentum={group.get('momentum')!r}, dampening={group.get('dampening')!r}"
        )


def check_paths(group: dict) -> None:
    """torch's switches: ``foreach`` and ``fused`` are None (let the dispatcher pick) or bools."""
    for name in ("foreach", "fused"):
        value = group.get(name)
        if value is not None and not isinstance(value, bool):
            raise ValueError(f"`{name}` must be None, True or False. Received: {name}={value!r}")
    for name in ("capturable", "differentiable"):  # torch's switches, taken at the values honoured
        if group.get(name, False) is not False:
            raise ValueError(f"`{name}` must be False: descentlab does not implement {name}=True. "
                             f"Received: {name}={group[name]!r}")
    if group.get("foreach") and group.get("fused"):
        raise ValueError("`fused` and `foreach` cannot both be True. Received: foreach=True, fused=True")


def check_params(params: Iterable[torch.Tensor]) -> None:
    """Refuse what no path can step: integer tensors, and lazily conjugated or negated views (their memory holds
    other values than they read as; torch's own paths disagree on them, or fail)."""
    for i, p in enumerate(params):
        if not (p.is_floating_point() or p.is_complex()):
            raise ValueError(
                f"`params` must be floating-point or complex tensors. Received: params[{i}] of dtype {p.dtype}"
            )
        if p.is_conj() or p.is_neg():
            raise ValueError(
                "`params` must hold their own values, not a lazily conjugated or negated view; make the parameter "
                f"from `t.resolve_conj().resolve_neg()`. Received: params[{i}] with is_conj()={p.is_conj()}, "
                f"is_neg()={p.is_neg()}"
            )
