"""The lattice as data: what each rule declares holds, and what is derived from it covers every rule."""

from __future__ import annotations

import inspect

import pytest
import torch

from descentlab import optim
from descentlab.lab import spec, verdict
from descentlab.optim import lattice
from descentlab.report import style

POINTS = [
    (m.name, a.name, order)
    for m in lattice.MOMENTUM
    for a in lattice.ADAPTATION
    for order in lattice.ORDERS
    if (a.momentum_rules is None or (m.name in a.momentum_rules and order == "momentum_first"))
    and not (order == "adaptation_first" and "none" in (m.name, a.name))
]


@pytest.mark.parametrize("momentum_rule, adaptation_rule, order", POINTS)
def test_a_point_keeps_only_the_state_its_rules_declare(momentum_rule, adaptation_rule, order):
    entry = lattice.adaptation(adaptation_rule)
    p = torch.nn.Parameter(torch.ones(3, dtype=torch.float64))
    switches = {name: name in entry.switches for name in ("centered", "amsgrad")}
    optimizer = optim.Composed([p], momentum_rule=momentum_rule, adaptation_rule=adaptation_rule, order=order,
                               foreach=False, fused=False, **switches)  # the reference: no kernel to compile
    for _ in range(2):
        p.grad = torch.full_like(p, 0.5)
        optimizer.step()
    declared = {"step", *lattice.momentum(momentum_rule).state, *entry.state}
    assert set(optimizer.state[p]) <= declared


def test_every_adaptation_rule_declares_a_norm_and_the_choices_are_the_entries():
    assert {a.name: a.norm for a in lattice.ADAPTATION} == {
        "none": None, "sum": "L2", "ema": "L2", "max": "L∞", "delta": "L2", "belief": "L2"}
    assert optim.MOMENTUM_RULES == tuple(m.name for m in lattice.MOMENTUM)
    assert optim.ADAPTATION_RULES == tuple(a.name for a in lattice.ADAPTATION)
    doc = inspect.getdoc(optim.Composed)
    assert all(f'``"{e.name}"``' in doc for e in (*lattice.MOMENTUM, *lattice.ADAPTATION))


def test_every_named_optimizer_is_a_lab_name_with_a_colour_and_a_group():
    names = [cls.__name__.lower() for cls in optim.NAMED.values()]
    assert set(names) <= set(spec.OPTIMIZERS) and "adabelief" in names
    assert set(spec.OPTIMIZERS) == set(style.PALETTE)
    assert verdict.norm("adabelief") == "L2" and "adabelief" in verdict.L2_ADAPTATION


def test_the_default_eps_placement_is_each_frameworks():
    expected = {  # (momentum, adaptation, flavor) -> where torch / Keras put ε
        ("none", "sum", "torch"): "outside", ("none", "sum", "keras"): "inside",
        ("ema", "ema", "torch"): "outside", ("ema", "ema", "keras"): "hat",
        ("nesterov_ema", "ema", "keras"): "outside", ("heavy_ball", "ema", "keras"): "inside",
        ("ema", "max", "torch"): "inside", ("ema", "max", "keras"): "outside",
        ("none", "delta", "torch"): "inside", ("none", "delta", "keras"): "inside",
        ("ema", "belief", "torch"): "outside", ("none", "none", "keras"): None,
    }
    assert {key: lattice.adaptation(key[1]).eps_for(key[0], key[2]) for key in expected} == expected


@pytest.mark.parametrize("flavor", optim.FLAVORS)
@pytest.mark.parametrize("name", list(optim.NAMED))
def test_a_named_class_reports_the_chain_it_steps_with(name, flavor):
    def shape(chain):
        # each stage's type and settings; a final stage's rules are stages of their own in ``stateful``
        settings = [{k: v for k, v in vars(rule).items() if k != "rules"} for rule in chain.stateful]
        return [type(rule).__name__ for rule in chain.stateful], settings, chain.keras_rounding

    cls = optim.NAMED[name]
    built = cls([torch.nn.Parameter(torch.zeros(2))], flavor=flavor).chain
    assert shape(cls.chain_for(flavor)) == shape(built)
