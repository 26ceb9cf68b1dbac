"""The constructors' surface: one shared tail everywhere, every argument documented, defaults explicit."""

from __future__ import annotations

import inspect
import re

import pytest
import torch

from descentlab import optim
from descentlab.optim._checks import Flavored

CLASSES = {**optim.NAMED, "Composed": optim.Composed}
SHARED = ("weight_decay", "decoupled_weight_decay", "lr_decay", "clipnorm", "global_clipnorm", "clipvalue",
          "maximize", "foreach", "fused", "flavor")
# AdamW is Adam with the decay decoupled and on by default: it takes no switch and decays by default
ABSENT = object()
EXCEPTIONS = {"AdamW": {"decoupled_weight_decay": ABSENT, "weight_decay": Flavored(torch=1e-2, keras=4e-3)}}


def _parameters(cls):
    return {name: p for name, p in inspect.signature(cls.__init__).parameters.items() if name != "self"}


def _default(value):
    return value.by_flavor if isinstance(value, Flavored) else value


@pytest.mark.parametrize("name", list(CLASSES))
def test_every_optimizer_has_the_shared_tail_with_the_same_defaults(name):
    reference = _parameters(optim.SGD)
    parameters = _parameters(CLASSES[name])
    for shared in SHARED:
        expected = EXCEPTIONS.get(name, {}).get(shared, reference[shared].default)
        if expected is ABSENT:
            assert shared not in parameters
        else:
            assert _default(parameters[shared].default) == _default(expected), shared
    keyword_only = [n for n, p in parameters.items() if p.kind is inspect.Parameter.KEYWORD_ONLY]
    assert keyword_only[-7:] == ["clipnorm", "global_clipnorm", "clipvalue", "maximize", "foreach", "fused", "flavor"]


@pytest.mark.parametrize("name", list(CLASSES))
def test_every_constructor_argument_is_documented(name):
    doc = inspect.getdoc(CLASSES[name])
    documented = set(re.findall(r"^\s{4}(\w+):", doc, flags=re.MULTILINE))
    assert set(_parameters(CLASSES[name])) <= documented
    assert "{shared}" not in doc and "{params}" not in doc


@pytest.mark.parametrize("name", list(CLASSES))
def test_defaults_are_exactly_the_hyperparameters(name):
    """Nothing but the arguments (and what a class fixes) reaches the param groups."""
    optimizer = CLASSES[name]([torch.nn.Parameter(torch.zeros(2))])
    expected = set(_parameters(CLASSES[name])) - {"params"}
    if name == "Composed":  # the structure picks the rules; nesterov is what the groups keep of it
        expected = expected - {"momentum_rule", "adaptation_rule", "order", "eps_placement"} | {"nesterov"}
    if name == "AdamW":
        expected |= {"decoupled_weight_decay"}
    assert set(optimizer.defaults) == expected
    assert not any(isinstance(value, Flavored) for value in optimizer.defaults.values())
