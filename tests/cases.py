"""The optimizer-case table (like torch's OptimizerInfo) that feeds the generic tests.

Each case is one named optimizer with non-default hyperparameters, its ``Composed`` spelling, and
the torch.optim class of the same algorithm where torch has one.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from adabelief_pytorch import AdaBelief

from descentlab import optim


@dataclass(frozen=True)
class OptimizerCase:
    id: str
    cls: type
    kwargs: dict
    composed: dict
    torch_cls: type | None = None
    torch_kwargs: dict = field(default_factory=dict)

    def make(self, params, **overrides):
        return self.cls(params, **{**self.kwargs, **overrides})

    def make_composed(self, params, **overrides):
        return optim.Composed(params, **{**self.composed, **overrides})

    def make_torch(self, params):
        return self.torch_cls(params, **self.torch_kwargs)

    def __repr__(self) -> str:
        return self.id


def _case(id, cls, kwargs, composed, torch_cls=None, torch_kwargs=None):
    torch_kwargs = dict(kwargs) if torch_kwargs is None and torch_cls else (torch_kwargs or {})
    return OptimizerCase(id, cls, kwargs, composed, torch_cls, torch_kwargs)


TORCH_CASES = [
    _case("sgd", optim.SGD, dict(lr=0.05), dict(lr=0.05), torch.optim.SGD),
    _case(
        "sgd_momentum_dampening_wd", optim.SGD,
        dict(lr=0.03, momentum=0.8, dampening=0.3, weight_decay=0.01),
        dict(lr=0.03, momentum_rule="heavy_ball", momentum=0.8, dampening=0.3, weight_decay=0.01),
        torch.optim.SGD,
    ),
    _case(
        "sgd_nesterov", optim.SGD,
        dict(lr=0.03, momentum=0.9, nesterov=True, weight_decay=0.02),
        dict(lr=0.03, momentum_rule="nesterov", momentum=0.9, weight_decay=0.02),
        torch.optim.SGD,
    ),
    _case(
        "adagrad", optim.Adagrad,
        dict(lr=0.1, lr_decay=0.01, initial_accumulator_value=0.3, eps=1e-6, weight_decay=0.01),
        dict(lr=0.1, adaptation_rule="sum", lr_decay=0.01, initial_accumulator_value=0.3, eps=1e-6,
             weight_decay=0.01),
        torch.optim.Adagrad,
    ),
    _case(
        "adadelta", optim.Adadelta,
        dict(lr=0.9, rho=0.85, eps=1e-5, weight_decay=0.01),
        dict(lr=0.9, adaptation_rule="delta", betas=(0.9, 0.85), eps=1e-5, weight_decay=0.01),
        torch.optim.Adadelta,
    ),
    _case(
        "rmsprop", optim.RMSprop,
        dict(lr=0.01, alpha=0.95, eps=1e-6),
        dict(lr=0.01, momentum_rule="heavy_ball", adaptation_rule="ema", order="adaptation_first",
             momentum=0.0, betas=(0.9, 0.95), eps=1e-6),
        torch.optim.RMSprop,
    ),
    _case(
        "rmsprop_centered_momentum", optim.RMSprop,
        dict(lr=0.005, alpha=0.9, momentum=0.7, centered=True, weight_decay=0.01),
        dict(lr=0.005, momentum_rule="heavy_ball", adaptation_rule="ema", order="adaptation_first",
             momentum=0.7, betas=(0.9, 0.9), centered=True, weight_decay=0.01),
        torch.optim.RMSprop,
    ),
    _case(
        "adam", optim.Adam,
        dict(lr=0.01, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.01),
        dict(lr=0.01, momentum_rule="ema", adaptation_rule="ema", betas=(0.8, 0.99), eps=1e-6,
             weight_decay=0.01),
        torch.optim.Adam,
    ),
    _case(
        "adam_amsgrad", optim.Adam,
        dict(lr=0.01, betas=(0.85, 0.995), amsgrad=True),
        dict(lr=0.01, momentum_rule="ema", adaptation_rule="ema", betas=(0.85, 0.995), amsgrad=True),
        torch.optim.Adam,
    ),
    _case(
        "adam_decoupled", optim.Adam,
        dict(lr=0.01, betas=(0.8, 0.99), weight_decay=0.1, decoupled_weight_decay=True),
        dict(lr=0.01, momentum_rule="ema", adaptation_rule="ema", betas=(0.8, 0.99), weight_decay=0.1,
             decoupled_weight_decay=True),
        torch.optim.Adam,
    ),
    _case(
        "adamw", optim.AdamW,
        dict(lr=0.01, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.05),
        dict(lr=0.01, momentum_rule="ema", adaptation_rule="ema", betas=(0.8, 0.99), eps=1e-6, weight_decay=0.05,
             decoupled_weight_decay=True),
        torch.optim.AdamW,
    ),
    _case(
        "adamw_amsgrad", optim.AdamW,
        dict(lr=0.01, weight_decay=0.2, amsgrad=True),
        dict(lr=0.01, momentum_rule="ema", adaptation_rule="ema", weight_decay=0.2, amsgrad=True,
             decoupled_weight_decay=True),
        torch.optim.AdamW,
    ),
    _case(
        "adamax", optim.Adamax,
        dict(lr=0.01, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.01),
        dict(lr=0.01, momentum_rule="ema", adaptation_rule="max", betas=(0.8, 0.99), eps=1e-6,
             weight_decay=0.01),
        torch.optim.Adamax,
    ),
    _case(
        "nadam", optim.Nadam,
        dict(lr=0.01, betas=(0.85, 0.995), momentum_decay=6e-3, weight_decay=0.01),
        dict(lr=0.01, momentum_rule="nesterov_ema", adaptation_rule="ema", betas=(0.85, 0.995),
             momentum_decay=6e-3, weight_decay=0.01),
        torch.optim.NAdam,
    ),
    _case(
        "nadam_decoupled", optim.Nadam,
        dict(lr=0.01, weight_decay=0.1, decoupled_weight_decay=True),
        dict(lr=0.01, momentum_rule="nesterov_ema", adaptation_rule="ema", weight_decay=0.1,
             decoupled_weight_decay=True),
        torch.optim.NAdam,
    ),
]

# Algorithms torch lacks, against their authors' own packages (``torch_cls``; real parameters and
# float hyperparameters only, as those packages take)
AUTHORS_CASES = [
    _case(
        "adabelief", optim.AdaBelief,
        dict(lr=0.01, betas=(0.8, 0.99), eps=1e-10, weight_decay=0.01),
        dict(lr=0.01, momentum_rule="ema", adaptation_rule="belief", betas=(0.8, 0.99), eps=1e-10, weight_decay=0.01),
        AdaBelief, dict(lr=0.01, betas=(0.8, 0.99), eps=1e-10, weight_decay=0.01, weight_decouple=False,
                        rectify=False, print_change_log=False),
    ),
    _case(
        "adabelief_amsgrad", optim.AdaBelief,
        dict(lr=0.01, amsgrad=True),
        dict(lr=0.01, momentum_rule="ema", adaptation_rule="belief", eps=1e-16, amsgrad=True),
        AdaBelief, dict(lr=0.01, amsgrad=True, weight_decouple=False, rectify=False, print_change_log=False),
    ),
]

OTHER_CASES = [
    _case(
        "nadamax", optim.Nadamax,
        dict(lr=0.01, betas=(0.85, 0.995), momentum_decay=6e-3, weight_decay=0.01),
        dict(lr=0.01, momentum_rule="nesterov_ema", adaptation_rule="max", betas=(0.85, 0.995),
             momentum_decay=6e-3, weight_decay=0.01),
    ),
    _case(
        "ftrl", optim.FTRL,
        dict(lr=0.1, l1=0.01, l2=0.02, l2_shrinkage=0.01, beta=0.1, lr_power=-0.6),
        {},  # FTRL is no point of the momentum × adaptation lattice
    ),
    _case(
        "sgd_momentum_decoupled", optim.SGD,
        dict(lr=0.03, momentum=0.9, weight_decay=0.1, decoupled_weight_decay=True),
        dict(lr=0.03, momentum_rule="heavy_ball", momentum=0.9, weight_decay=0.1, decoupled_weight_decay=True),
    ),
    _case(
        "rmsprop_decoupled", optim.RMSprop,
        dict(lr=0.01, alpha=0.99, momentum=0.5, weight_decay=0.1, decoupled_weight_decay=True),
        dict(lr=0.01, momentum_rule="heavy_ball", adaptation_rule="ema", order="adaptation_first", momentum=0.5,
             betas=(0.9, 0.99), weight_decay=0.1, decoupled_weight_decay=True),
    ),
    _case(
        "ftrl_decoupled", optim.FTRL,
        dict(lr=0.1, l1=0.01, weight_decay=0.1, decoupled_weight_decay=True),
        {},
    ),
    _case(
        "adam_clipnorm_lr_decay", optim.Adam,
        dict(lr=0.01, clipnorm=0.5, lr_decay=0.01),
        dict(lr=0.01, momentum_rule="ema", adaptation_rule="ema", clipnorm=0.5, lr_decay=0.01),
    ),
    _case(
        "sgd_global_clipnorm_maximize", optim.SGD,
        dict(lr=0.01, momentum=0.9, global_clipnorm=0.3, maximize=True),
        dict(lr=0.01, momentum_rule="heavy_ball", momentum=0.9, global_clipnorm=0.3, maximize=True),
    ),
    _case(
        "rmsprop_clipvalue", optim.RMSprop,
        dict(lr=0.01, alpha=0.99, clipvalue=0.2, momentum=0.5),
        dict(lr=0.01, momentum_rule="heavy_ball", adaptation_rule="ema", order="adaptation_first",
             momentum=0.5, betas=(0.9, 0.99), clipvalue=0.2),
    ),
]

KERAS_FLAVOR_CASES = [
    _case(
        f"keras_{c.id}", c.cls, {**c.kwargs, "flavor": "keras"}, {**c.composed, "flavor": "keras"} if c.composed else {}
    )
    for c in TORCH_CASES + AUTHORS_CASES + OTHER_CASES
]

ALL_CASES = TORCH_CASES + AUTHORS_CASES + OTHER_CASES + KERAS_FLAVOR_CASES
LATTICE_CASES = [c for c in ALL_CASES if c.composed]
