"""What differs between ``torch.optim.NAME()`` and ``keras.optimizers.NAME()``, read from the library.

Nothing here is a second description of the formulas: the defaults are each named optimizer's
``Flavored`` defaults, the ε placement is the lattice's per-flavor choice
(:meth:`descentlab.optim.lattice.Entry.eps_for`), where the learning rate enters is the chain
each flavor builds (:func:`descentlab.optim._chain.build_chain`), and the formula is the
"Conventions" note of the optimizer's own docstring. The tests hold the defaults against
torch.optim's and Keras's own.
"""

from __future__ import annotations

import inspect
import textwrap
from dataclasses import dataclass

import torch

from descentlab import optim
from descentlab.optim import lattice
from descentlab.port.optimizers import KERAS

# How each ε placement reads, per adaptation rule (the rule's statistic s, its root r = √s)
PLACEMENTS = {
    "outside": "ε added to the root: u / (√s + ε)",
    "inside": "ε under the root: u / √(s + ε)",
    "hat": "ε-hat: ε added to √v before the bias correction, u·√(1 − β2ᵗ)/(√v + ε)",
}
MAX_PLACEMENTS = {"inside": "ε inside the max: s = max(β2·s, |g| + ε)", "outside": "ε added to the max: u / (s + ε)"}
# Names torch and Keras give the same optimizer, where they differ from descentlab's
TORCH_NAMES = {"Nadam": "NAdam"}
KERAS_NAMES = {"FTRL": "Ftrl"}


@dataclass(frozen=True)
class Difference:
    """One way the two frameworks' defaults differ, and what descentlab does for each."""

    what: str
    torch: str
    keras: str


def _named(name: str) -> type[optim.ChainOptimizer]:
    by_lower = {key.lower(): cls for key, cls in optim.NAMED.items()}
    cls = by_lower.get(name.lower())
    if cls is None:
        raise ValueError(f"`name` must be one of {', '.join(optim.NAMED)}. Received: name={name!r}")
    return cls


def differences(name: str) -> list[Difference]:
    """Every difference between the two flavors of the named optimizer, as the library computes them."""
    cls = _named(name)
    rows = _default_differences(cls)
    point = {"momentum_rule": "none", "adaptation_rule": "none", **cls._lattice}
    placement = _eps_placement(point["momentum_rule"], point["adaptation_rule"])
    if placement is not None:
        rows.append(placement)
    if point["momentum_rule"] == "heavy_ball":
        rows.append(Difference("learning rate", "outside the momentum buffer: b ← μ·b + u; p ← p − lr·b",
                               "inside the buffer: m ← μ·m − lr·u; p ← p + m (differs once lr changes)"))
    return rows


def _default_differences(cls: type) -> list[Difference]:
    """Each argument of ``cls`` whose default depends on the flavor (a :class:`~descentlab.optim.Flavored`)."""
    rows = []
    for parameter in inspect.signature(cls).parameters.values():
        if isinstance(parameter.default, optim.Flavored):
            values = parameter.default.by_flavor
            rows.append(Difference(f"default `{parameter.name}`", repr(values["torch"]), repr(values["keras"])))
    return rows


def _eps_placement(momentum_rule: str, adaptation_rule: str) -> Difference | None:
    """Where each flavor puts ε for this point of the lattice, when the two differ (None otherwise)."""
    adaptation = lattice.adaptation(adaptation_rule)
    if adaptation.rule is None:
        return None
    places = MAX_PLACEMENTS if adaptation_rule == "max" else PLACEMENTS
    torch_eps = adaptation.eps_for(momentum_rule, "torch")
    keras_eps = adaptation.eps_for(momentum_rule, "keras")
    if torch_eps is not None and keras_eps is not None and torch_eps != keras_eps:
        return Difference("ε placement", places[torch_eps], places[keras_eps])
    return None


def _conventions(cls: type) -> str:
    doc = inspect.getdoc(cls) or ""
    if "Conventions:" not in doc:
        return ""
    section = doc.split("Conventions:", 1)[1].split("\n\n", 1)[0]
    return " ".join(section.split())


def explain(name: str) -> str:
    """The differences between torch's and Keras's ``name`` at their defaults, and the descentlab
    call that reproduces each side (``descentlab port explain NAME`` prints it)."""
    cls = _named(name)
    cls_name = cls.__name__
    torch_name = TORCH_NAMES.get(cls_name, cls_name)
    keras_name = KERAS_NAMES.get(cls_name, cls_name)
    lines = [f"{cls_name}: torch.optim.{torch_name}() against keras.optimizers.{keras_name}()", ""]
    lines += _table(differences(name))
    conventions = _conventions(cls)
    if conventions:
        lines += ["", textwrap.fill(f"Formulas: {conventions}", 100, subsequent_indent="  ")]
    lines += ["", "Reproduce each side with descentlab:", *_reproductions(cls_name, torch_name, keras_name)]
    return "\n".join(lines)


def _table(rows: list[Difference]) -> list[str]:
    """The differences as aligned lines: what, torch's side, Keras's side."""
    width = max([len(row.what) for row in rows] + [4])
    return [f"  {'':{width}}  torch  |  Keras", *(f"  {row.what:{width}}  {row.torch}  |  {row.keras}" for row in rows)]


def _reproductions(cls_name: str, torch_name: str, keras_name: str) -> list[str]:
    """The descentlab call equal to torch's class and the one equal to Keras's (or that the framework has none)."""
    if hasattr(torch.optim, torch_name):
        lines = [f"  torch.optim.{torch_name}(params)  ==  descentlab.optim.{cls_name}(params)"]
    else:
        lines = [f"  torch.optim has no {torch_name}; descentlab.optim.{cls_name}(params) takes torch's conventions "
                 "for its rules"]
    if keras_name in KERAS:
        lines += [f"  keras.optimizers.{keras_name}()  ==  descentlab.optim.{cls_name}(params, flavor=\"keras\")"
                  f"  (or descentlab.optim.from_keras(keras_optimizer, params))"]
    else:
        lines += [f"  Keras has no {cls_name}; flavor=\"keras\" takes Keras's conventions for its rules"]
    return lines
